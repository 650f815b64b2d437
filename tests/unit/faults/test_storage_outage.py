"""S3 stopped mid-flow and started again: uploads, sends and the purge lose nothing and leave
nothing behind.

The S3 server is real (moto on loopback) behind a TCP proxy whose connections are cut, as
storage that goes away and comes back (downloads under the same outage:
``tests/unit/views/test_download_faults.py``).
"""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime, timedelta

import pytest

from portal.models import Attachment, Message, MessageStatus, Upload
from portal.services import purge
from portal.services.chunked import CHUNK_SIZE
from portal.testing import builtin_plugins

from ..helpers import csrf_of, page_text, post_compose, send_message

SENDER = "liisa@example.com"
FIELDS = {"recipients": "ville@valtori.fi", "subject": "Hakemus", "body": "Liitteenä."}
DATA = os.urandom(2 * CHUNK_SIZE + 1000)
OUTAGE_SECONDS = 600  # longer than any test: the proxy is restored by hand


@pytest.fixture
def bucket(s3_server):
    name = s3_server.create_bucket()
    yield name
    s3_server.delete_bucket(name)


@pytest.fixture
def portal_config(portal_config, s3_server, proxy, bucket):
    return {
        **portal_config,
        **s3_server.portal_config(bucket),
        "s3_endpoint_url": proxy.url,
        "max_attachments_bytes": 4 * CHUNK_SIZE,
    }


@pytest.fixture
def portal_plugins():
    return builtin_plugins()


def in_bucket(s3_server, bucket) -> tuple[set[str], set[str]]:
    """The bucket's objects and unfinished multipart uploads, asked past the proxy."""
    s3 = s3_server.client()
    objects = {item["Key"] for item in s3.list_objects_v2(Bucket=bucket).get("Contents", [])}
    uploads = {u["Key"] for u in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])}
    return objects, uploads


async def put(client, csrf, upload_id, offset):
    return await client.put(
        f"/compose/uploads/{upload_id}",
        data=DATA[offset : offset + CHUNK_SIZE],
        headers={"X-CSRF-Token": csrf, "Upload-Offset": str(offset)},
    )


async def test_a_chunk_refused_while_s3_is_down_is_sent_again_after_and_the_file_is_whole(
    client, sign_in, proxy
):
    await sign_in(SENDER)
    csrf = await csrf_of(client, "/compose?lang=en")
    announced = await client.post(
        "/compose/uploads",
        json={"filename": "iso.bin", "size": len(DATA), "type": "", "fingerprint": "iso|1"},
        headers={"X-CSRF-Token": csrf},
    )
    upload_id = (await announced.get_json())["id"]
    assert (await put(client, csrf, upload_id, 0)).status_code == 200

    proxy.cut(OUTAGE_SECONDS)
    down = await put(client, csrf, upload_id, CHUNK_SIZE)
    proxy.cut(0)

    assert down.status_code == 503
    assert "could not be stored right now" in (await down.get_json())["error"]
    assert (await Upload.get(id=upload_id)).received == CHUNK_SIZE  # nothing of it counted
    offset = CHUNK_SIZE
    while offset < len(DATA):
        answer = await put(client, csrf, upload_id, offset)
        assert answer.status_code == 200, await answer.get_json()
        offset = (await answer.get_json())["offset"]
    attachment = await Attachment.get(upload_id=upload_id)
    assert attachment.sha256 == hashlib.sha256(DATA).hexdigest()

    sent = await send_message(client, FIELDS)
    zipped = await client.get(sent + "/zip")
    assert zipped.status_code == 200


async def test_a_send_while_s3_is_down_keeps_nothing_and_the_same_send_works_after(
    client, sign_in, proxy, s3_server, bucket
):
    await sign_in(SENDER)
    files = [("attachments", "hakemus.pdf", DATA)]

    proxy.cut(OUTAGE_SECONDS)
    down = await post_compose(client, {"action": "send", **FIELDS}, files)
    proxy.cut(0)

    assert down.status_code == 503
    assert "Hakemus" in await page_text(down)  # what was typed is still in the form
    assert not await Message.filter(status=MessageStatus.SENT).exists()
    assert not await Attachment.exists()
    assert in_bucket(s3_server, bucket) == (set(), set())

    up = await post_compose(client, {"action": "send", **FIELDS}, files)
    assert up.status_code == 303
    [attachment] = await Attachment.all()
    assert attachment.sha256 == hashlib.sha256(DATA).hexdigest()
    assert in_bucket(s3_server, bucket) == ({attachment.storage_key}, set())


async def test_a_purge_while_s3_is_down_deletes_the_message_and_the_sweep_its_files_later(
    client, sign_in, proxy, s3_server, bucket, moved_clock
):
    portal = client.app.extensions["sinetti"]
    await sign_in(SENDER)
    await send_message(client, FIELDS, [("attachments", "hakemus.pdf", DATA)])
    [key] = await Attachment.all().values_list("storage_key", flat=True)
    moved_clock.advance(days=portal.settings.retention_days, minutes=1)

    proxy.cut(OUTAGE_SECONDS)
    async with client.app.app_context():
        during = await purge.purge(portal.settings, portal.providers.storage, orphans=False)
    proxy.cut(0)

    assert during.messages == 1
    assert not await Message.exists()  # the content is unreachable at once
    assert in_bucket(s3_server, bucket) == ({key}, set())  # its file could not go yet

    async with client.app.app_context():
        # The sweep leaves a file alone for an hour after it last changed: the bucket's
        # clock is real, so ask as if an hour had passed.
        orphans = await purge.sweep_orphans(
            portal.providers.storage, datetime.now(UTC) + timedelta(minutes=1)
        )

    assert orphans == 1
    assert in_bucket(s3_server, bucket) == (set(), set())
