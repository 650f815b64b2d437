"""Attachments at rest, on both storage backends (local files, and S3 on moto's server on
loopback): what storage holds is sealed, whether a file came with the form or in chunks; a
recipient downloads exactly what was sent; a stored object that was changed is refused with
the storage error page and logged; a file stored before encryption at rest still opens."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from portal.crypto.segments import SEGMENT, cipher_size
from portal.models import Attachment
from portal.services.chunked import CHUNK_SIZE
from portal.testing import builtin_plugins

from ..helpers import (
    csrf_of,
    newest_link,
    open_message,
    page_text,
    post_compose,
    row_where,
    rows_where,
    stored_files,
)

SENDER = "liisa@example.com"
RECIPIENT = "ville@valtori.fi"
MARKER = b"SINETTI-MARKER-"
FORM_FILE = MARKER + b"form " * 40_000  # several segments
CHUNKED_FILE = MARKER + b"chunked " * 30_000


@pytest.fixture(params=["local", "s3"])
def portal_config(request, portal_config):
    if request.param == "local":
        return portal_config
    s3 = request.getfixturevalue("s3_server")
    return {**portal_config, **s3.portal_config(s3.create_bucket(), prefix="sinetti/")}


@pytest.fixture
def portal_plugins():
    return builtin_plugins()


class Objects:
    """The stored objects as they lie on disk or in the bucket, past the portal's code."""

    def __init__(self, config: dict, request: pytest.FixtureRequest) -> None:
        self.config = config
        self.s3 = request.getfixturevalue("s3_server") if config.get("storage") == "s3" else None

    def _key(self, storage_key: str) -> str:
        return self.config["s3_prefix"] + storage_key

    def all(self) -> dict[str, bytes]:
        if self.s3 is None:
            return {path.name: path.read_bytes() for path in stored_files(self.config["data_dir"])}
        s3, bucket = self.s3.client(), self.config["s3_bucket"]
        listed = s3.list_objects_v2(Bucket=bucket).get("Contents", [])
        return {
            item["Key"]: s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
            for item in listed
        }

    def replace(self, storage_key: str, data: bytes) -> None:
        if self.s3 is None:
            (path,) = [p for p in stored_files(self.config["data_dir"]) if p.name == storage_key]
            Path(path).write_bytes(data)
        else:
            bucket = self.config["s3_bucket"]
            self.s3.client().put_object(Bucket=bucket, Key=self._key(storage_key), Body=data)

    def read(self, storage_key: str) -> bytes:
        if self.s3 is None:
            (path,) = [p for p in stored_files(self.config["data_dir"]) if p.name == storage_key]
            return Path(path).read_bytes()
        bucket = self.config["s3_bucket"]
        return self.s3.client().get_object(Bucket=bucket, Key=self._key(storage_key))["Body"].read()


@pytest.fixture
def objects(portal_config, request) -> Objects:
    return Objects(portal_config, request)


async def upload_in_chunks(client, csrf: str, name: str, data: bytes) -> None:
    begun = await client.post(
        "/compose/uploads",
        json={"filename": name, "size": len(data), "type": "text/plain", "fingerprint": name},
        headers={"X-CSRF-Token": csrf},
    )
    upload = await begun.get_json()
    assert len(data) < CHUNK_SIZE  # one chunk, the last: sealed with its end flag
    answer = await client.put(
        f"/compose/uploads/{upload['id']}",
        data=data,
        headers={"X-CSRF-Token": csrf, "Upload-Offset": "0"},
    )
    assert (await answer.get_json())["complete"] is True


async def send_both_ways(client, sign_in) -> str:
    """A message with one file sent in chunks and one with the form; the recipient's link."""
    await sign_in(SENDER)
    csrf = await csrf_of(client, "/compose?lang=en")
    await upload_in_chunks(client, csrf, "chunked.txt", CHUNKED_FILE)
    fields = {"action": "send", "recipients": RECIPIENT, "subject": "S", "body": "B"}
    response = await post_compose(client, fields, [("attachments", "form.txt", FORM_FILE)])
    assert response.status_code == 303, await page_text(response)
    return await newest_link(client, RECIPIENT, "m")


async def test_storage_holds_only_sealed_bytes_and_the_recipient_gets_the_plaintext(
    portal_app, client, sign_in, objects
):
    link = await send_both_ways(client, sign_in)

    stored = objects.all()
    assert len(stored) == 2
    assert not [key for key, data in stored.items() if MARKER in data]
    assert sorted(len(data) for data in stored.values()) == sorted(
        [cipher_size(len(FORM_FILE)), cipher_size(len(CHUNKED_FILE))]
    )
    reader = portal_app.test_client()
    await open_message(reader, link)
    for attachment in await rows_where(client, Attachment):
        response = await reader.get(f"{link}/attachments/{attachment.id}")
        expected = FORM_FILE if attachment.filename == "form.txt" else CHUNKED_FILE
        assert await response.get_data() == expected, attachment.filename
        assert attachment.crypto_header is not None


async def test_a_changed_stored_object_is_refused_with_the_storage_page_and_logged(
    portal_app, client, sign_in, objects, caplog
):
    link = await send_both_ways(client, sign_in)
    attachment = await row_where(client, Attachment, filename="form.txt")
    sealed = bytearray(objects.read(attachment.storage_key))
    sealed[SEGMENT + 100] ^= 1  # one bit of the second segment
    objects.replace(attachment.storage_key, bytes(sealed))
    reader = portal_app.test_client()
    await open_message(reader, link)
    url = f"{link}/attachments/{attachment.id}"

    with caplog.at_level(logging.ERROR):
        first_segment = await reader.get(url, headers={"Range": f"bytes=0-{SEGMENT - 1}"})
        second_segment = await reader.get(url, headers={"Range": f"bytes={SEGMENT}-"})

    assert first_segment.status_code == 206  # the segments that are intact still open
    assert await first_segment.get_data() == FORM_FILE[:SEGMENT]
    assert second_segment.status_code == 503
    assert MARKER not in await second_segment.get_data()
    assert f"stored file {attachment.storage_key} failed authentication" in caplog.text


async def test_a_file_stored_before_encryption_at_rest_still_opens(
    portal_app, client, sign_in, objects
):
    link = await send_both_ways(client, sign_in)
    attachment = await row_where(client, Attachment, filename="form.txt")
    objects.replace(attachment.storage_key, FORM_FILE)  # as an older version stored it
    await Attachment.filter(id=attachment.id).update(crypto_header=None)
    reader = portal_app.test_client()
    await open_message(reader, link)

    response = await reader.get(f"{link}/attachments/{attachment.id}")

    assert response.status_code == 200
    assert await response.get_data() == FORM_FILE
