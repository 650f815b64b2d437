"""Downloads of a recipient: HTTP Range requests on one attachment, and what counts as a
completed download (the ``download_completed`` hook is tested in test_plugins.py)."""

from __future__ import annotations

import os

import pytest

from portal.models import Attachment
from portal.views.downloads import Unsatisfiable, requested_range

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
        ("bytes=0-", 0, len(DATA)),
        ("bytes=-1", len(DATA) - 1, len(DATA)),
        ("bytes=-999999", 0, len(DATA)),
        # at the 64 KiB segments' boundaries (the file is stored sealed in segments)
        ("bytes=65535-65536", 65_535, 65_537),
        ("bytes=65536-131071", 65_536, 131_072),
        ("bytes=131071-131071", 131_071, 131_072),
        ("bytes=262144-", 262_144, len(DATA)),
        ("bytes=262143-262144", 262_143, 262_145),
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


@pytest.mark.parametrize("header", [f"bytes={len(DATA)}-", "bytes=999999-1000000"])
async def test_a_range_beyond_the_end_is_416_with_the_size(download, header):
    reader, url = download

    response = await reader.get(url, headers={"Range": header})

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


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-9", (0, 10)),
        ("bytes=10-", (10, 100)),
        ("bytes=90-200", (90, 100)),
        ("bytes=-30", (70, 100)),
        ("bytes=-100", (0, 100)),
        ("bytes=-500", (0, 100)),  # a suffix longer than the file is all of it
        ("bytes=99-99", (99, 100)),
    ],
)
def test_a_single_range_is_read_as_start_and_end(header, expected):
    assert requested_range(header, 100) == expected


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "bytes=0-9,20-29",  # several ranges
        "bytes=-5,0-0",
        "items=0-9",  # another unit
        "bytes=9-0",  # not a range at all
        "bytes=abc",
        "bytes=-",
    ],
)
def test_no_single_usable_range_means_the_whole_file(header):
    assert requested_range(header, 100) is None


@pytest.mark.parametrize(
    ("header", "size"),
    [("bytes=100-", 100), ("bytes=500-600", 100), ("bytes=0-", 0), ("bytes=-5", 0)],
)
def test_a_range_outside_the_file_is_unsatisfiable(header, size):
    with pytest.raises(Unsatisfiable):
        requested_range(header, size)
