"""A full disk: the data directory (SQLite database and stored files) on a small tmpfs that a
test fills up. Every answer is a clear page or JSON in the user's language, never a 500, and
nothing is left half-stored. (The database is SQLite in the tmpfs whatever the test run's
database is: a full PostgreSQL disk cannot be made here.)"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from portal.models import Attachment, Message, MessageStatus, Upload

from ..helpers import (
    csrf_of,
    newest_link,
    page_text,
    post_compose,
    send_message,
    stored_files,
)

DISK_BYTES = 8 * 1024 * 1024
CHUNK = 1024 * 1024  # one chunk: more than a full disk has room for


@pytest.fixture
def disk(tmp_path):
    """A tmpfs of 8 MiB (root may mount one; CI runs as root) with ``fill()`` and ``free()``."""
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK_BYTES}", "tmpfs", str(mount)], check=True
    )
    yield Disk(mount)
    subprocess.run(["umount", "-l", str(mount)], check=False)


class Disk:
    def __init__(self, mount: Path) -> None:
        self.mount = mount
        self.filler = mount / "filler"

    def fill(self, leave: int = 0) -> None:
        """Write until the disk is full; then free ``leave`` bytes again."""
        with contextlib.suppress(OSError), self.filler.open("ab", buffering=0) as fh:
            while True:
                fh.write(b"\0" * 65536)
        if leave:
            os.truncate(self.filler, max(self.filler.stat().st_size - leave, 0))

    def free_bytes(self) -> int:
        return shutil.disk_usage(self.mount).free

    def free(self) -> None:
        self.filler.unlink(missing_ok=True)

    def used_by_portal(self) -> int:
        return sum(
            path.stat().st_size
            for path in self.mount.rglob("*")
            if path.is_file() and path != self.filler
        )


@pytest.fixture
def portal_config(portal_config, disk):
    data = disk.mount / "data"
    return {**portal_config, "data_dir": str(data), "database_url": f"sqlite://{data}/db.sqlite3"}


def test_the_fixture_really_fills_the_disk(disk):
    disk.fill()
    with pytest.raises(OSError) as full:
        (disk.mount / "more").write_bytes(b"x" * 100_000)
    assert full.value.errno == errno.ENOSPC


async def test_registering_on_a_full_disk_is_a_503_page_that_keeps_the_address(client, disk):
    csrf = await csrf_of(client, "/?lang=en")
    disk.fill()

    response = await client.post("/", form={"email": "liisa@example.com", "csrf_token": csrf})

    page = await page_text(response)
    assert response.status_code == 503
    assert 'value="liisa@example.com"' in page
    assert "cannot be saved just now" in page


async def test_sending_on_a_full_disk_is_a_503_page_that_keeps_what_was_typed(
    client, sign_in, disk
):
    await sign_in("liisa@example.com")
    await client.get("/compose?lang=en")
    disk.fill()

    response = await post_compose(
        client,
        {
            "recipients": "ville@valtori.fi",
            "subject": "Hakemus",
            "body": "Tärkeä viesti",
            "action": "send",
        },
        [("attachments", "liite.txt", b"x" * 10_000)],
    )

    page = await page_text(response)
    assert response.status_code == 503
    assert "Hakemus" in page and "Tärkeä viesti" in page and "ville@valtori.fi" in page
    assert "cannot be saved just now" in page
    # Nothing half-stored: no attachment, no sent message, no stored file.
    assert await Attachment.all().count() == 0
    assert await Message.filter(status=MessageStatus.SENT).count() == 0
    assert stored_files(disk.mount / "data") == []

    disk.free()  # the operator made room: the same message goes through
    sent = await send_message(
        client,
        {"recipients": "ville@valtori.fi", "subject": "Hakemus", "body": "Tärkeä viesti"},
        [("attachments", "liite.txt", b"x" * 10_000)],
    )
    assert sent.startswith("/sent/")
    assert await Attachment.all().count() == 1


async def test_a_chunk_that_meets_a_full_disk_frees_its_bytes_and_the_upload_can_be_removed(
    client, sign_in, disk
):
    await sign_in("liisa@example.com")
    csrf = await csrf_of(client, "/compose?lang=en")
    data = os.urandom(CHUNK)
    begun = await client.post(
        "/compose/uploads",
        json={
            "filename": "iso.pdf",
            "size": len(data),
            "type": "application/pdf",
            "fingerprint": "f|1",
        },
        headers={"X-CSRF-Token": csrf},
    )
    upload_id = (await begun.get_json())["id"]
    disk.fill(leave=CHUNK // 4)  # room for a quarter of the chunk
    room = disk.free_bytes()

    chunk = await client.put(
        f"/compose/uploads/{upload_id}",
        data=data,
        headers={"X-CSRF-Token": csrf, "Upload-Offset": "0"},
    )
    # The bytes the chunk got onto the disk before it was full are given back at once.
    held = sum(path.stat().st_size for path in stored_files(disk.mount / "data"))
    free = disk.free_bytes()
    removed = await client.delete(f"/compose/uploads/{upload_id}", headers={"X-CSRF-Token": csrf})

    assert chunk.status_code == 503
    assert "could not be stored" in (await chunk.get_json())["error"]
    assert held == 0
    assert free >= room - 64 * 1024  # (a page of the database may have grown)
    assert removed.status_code == 204
    assert stored_files(disk.mount / "data") == []
    assert await Upload.all().count() == 0

    disk.free()
    sent = await send_message(client, {"recipients": "ville@valtori.fi", "subject": "S"})
    assert sent.startswith("/sent/")  # Send is not refused for the upload that is gone


async def test_opening_a_message_on_a_full_disk_is_a_503_page_not_a_500(
    portal_app, client, sign_in, disk
):
    await sign_in("liisa@example.com")
    await send_message(client, {"recipients": "ville@valtori.fi", "subject": "S"})
    link = await newest_link(client, "ville@valtori.fi", "m")
    reader = portal_app.test_client()
    csrf = await csrf_of(reader, link + "?lang=en")
    disk.fill()

    response = await reader.post(f"{link}/open", form={"csrf_token": csrf})

    assert response.status_code == 503
    assert "cannot save anything just now" in await page_text(response)
