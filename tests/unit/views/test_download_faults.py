"""Downloads while storage is down: storage is asked before the response starts, so the
answer is a 503 page in the user's language, never a ``200 OK`` that breaks off.

The S3 server is real (moto on loopback) behind a TCP proxy whose connections are cut, as
storage that goes away and comes back.
"""

from __future__ import annotations

import io
import zipfile

import pytest

from portal.models import Attachment
from portal.testing import builtin_plugins

from ..helpers import newest_link, open_message, page_text, send_message

DATA = b"the attachment's bytes " * 1000
OUTAGE_SECONDS = 600  # longer than any test: the proxy is restored by hand


@pytest.fixture
def portal_config(portal_config, s3_server, proxy):
    bucket = s3_server.create_bucket()
    return {**portal_config, **s3_server.portal_config(bucket), "s3_endpoint_url": proxy.url}


@pytest.fixture
def portal_plugins():
    return builtin_plugins()


@pytest.fixture
async def opened(portal_app, client, sign_in):
    """The sender's status page and a recipient's browser with the message open."""
    await sign_in("liisa@example.com")
    sent = await send_message(
        client,
        {"recipients": "ville@valtori.fi", "subject": "Hakemus"},
        [("attachments", "liite.txt", DATA)],
    )
    link = await newest_link(client, "ville@valtori.fi", "m")
    reader = portal_app.test_client()
    await open_message(reader, link)
    await reader.get(link + "?lang=en")  # the recipient reads in English
    attachment = await Attachment.get()
    return sent, reader, f"{link}/attachments/{attachment.id}", f"{link}/zip"


async def test_an_attachment_download_while_storage_is_down_is_a_503_page_then_works(opened, proxy):
    _sent, reader, attachment_url, _zip = opened

    proxy.cut(OUTAGE_SECONDS)
    down = await reader.get(attachment_url)
    proxy.cut(0)  # storage is back
    up = await reader.get(attachment_url)

    assert down.status_code == 503
    assert down.mimetype == "text/html"
    assert "The files cannot be fetched just now" in await page_text(down)
    assert "Content-Disposition" not in down.headers
    assert up.status_code == 200
    assert await up.get_data() == DATA


async def test_a_zip_download_while_storage_is_down_is_a_503_page_then_works(opened, client, proxy):
    sent, reader, _attachment, recipient_zip = opened
    await client.get(sent + "?lang=fi")

    proxy.cut(OUTAGE_SECONDS)
    sender_down = await client.get(sent + "/zip")
    recipient_down = await reader.get(recipient_zip)
    proxy.cut(0)
    sender_up = await client.get(sent + "/zip")

    assert (sender_down.status_code, recipient_down.status_code) == (503, 503)
    assert "Tiedostoja ei voi juuri nyt hakea" in await page_text(sender_down)
    assert sender_up.status_code == 200
    with zipfile.ZipFile(io.BytesIO(await sender_up.get_data())) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith("liite.txt")]
        assert archive.read(name) == DATA
