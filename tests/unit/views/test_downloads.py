"""Downloads of a recipient: HTTP Range requests on one attachment, and what counts as a
completed download (the ``download_completed`` hook is tested in test_plugins.py)."""

from __future__ import annotations

import os

import pytest

from portal.models import Attachment

from ..helpers import newest_link, open_message, send_message

SENDER = "liisa@example.com"
RECIPIENT = "ville@valtori.fi"
DATA = os.urandom(300_000)


@pytest.fixture
async def download(portal_app, client, sign_in) -> tuple[object, str]:
    """A recipient's browser with the message open, and the URL of its one attachment."""
    await sign_in(SENDER)
    await send_message(
        client, {"recipients": RECIPIENT, "subject": "S"}, [("attachments", "data.bin", DATA)]
    )
    link = await newest_link(client, RECIPIENT, "m")
    reader = portal_app.test_client()
    await open_message(reader, link)
    attachment = await Attachment.get()
    return reader, f"{link}/attachments/{attachment.id}"


async def test_whole_file_says_ranges_are_accepted_and_carries_its_sha256_as_etag(download):
    reader, url = download

    response = await reader.get(url)

    assert response.status_code == 200
    assert await response.get_data() == DATA
    assert response.headers["Accept-Ranges"] == "bytes"
    assert response.headers["ETag"] == f'"{(await Attachment.get()).sha256}"'


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=0-9", 0, 10),
        ("bytes=1000-", 1000, len(DATA)),
        ("bytes=-500", len(DATA) - 500, len(DATA)),
        ("bytes=299990-999999", 299_990, len(DATA)),
    ],
)
async def test_a_range_request_gets_206_with_exactly_those_bytes(download, header, start, end):
    reader, url = download

    response = await reader.get(url, headers={"Range": header})

    assert response.status_code == 206
    assert await response.get_data() == DATA[start:end]
    assert response.headers["Content-Range"] == f"bytes {start}-{end - 1}/{len(DATA)}"
    assert response.headers["Content-Length"] == str(end - start)
    assert response.headers["Content-Disposition"].startswith("attachment;")


async def test_a_range_beyond_the_end_is_416_with_the_size(download):
    reader, url = download

    response = await reader.get(url, headers={"Range": f"bytes={len(DATA)}-"})

    assert response.status_code == 416
    assert response.headers["Content-Range"] == f"bytes */{len(DATA)}"


async def test_a_range_for_a_changed_file_gets_the_whole_file(download):
    reader, url = download

    response = await reader.get(url, headers={"Range": "bytes=0-9", "If-Range": '"other"'})

    assert response.status_code == 200
    assert await response.get_data() == DATA


async def test_several_ranges_get_the_whole_file(download):
    reader, url = download

    response = await reader.get(url, headers={"Range": "bytes=0-9,20-29"})

    assert response.status_code == 200
    assert await response.get_data() == DATA
