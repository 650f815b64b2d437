"""Housekeeping: expired drafts go with their files, idle guards go, deleted rows are not left
readable in the SQLite file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from tortoise import connections

from portal.models import Guard, Message, MessageStatus, Upload, WebSession
from portal.services import atomic, housekeeping

from ..helpers import csrf_of, post_compose, send_message, stored_files

SENDER = "liisa@example.com"
FIELDS = {"recipients": "ville.virkamies@valtori.fi", "subject": "Hakemus", "body": "Liite."}
FILE = ("attachments", "hakemus.pdf", b"%PDF-1.7 " * 1000)


@pytest.fixture
def portal_config(portal_config):
    return {**portal_config, "draft_hours": 24}


def _portal(client):
    return client.app.extensions["sinetti"]


async def clean_up(client) -> housekeeping.Cleaned:
    """What the server's housekeeping task does, in the app's context as the task runs."""
    portal = _portal(client)
    async with client.app.app_context():
        return await housekeeping.clean_up(portal.settings, portal.providers.storage)


async def _draft_with_file_and_upload(client) -> Message:
    response = await post_compose(client, {**FIELDS, "action": "attach"}, [FILE])
    assert response.status_code == 200
    announced = await client.post(
        "/compose/uploads",
        json={"filename": "iso.bin", "size": 20_000_000, "type": "", "fingerprint": "iso|1"},
        headers={"X-CSRF-Token": await csrf_of(client)},
    )
    assert announced.status_code == 201, await announced.get_data(as_text=True)
    return await Message.get(status=MessageStatus.DRAFT)


async def test_a_draft_older_than_draft_hours_is_deleted_with_its_files_and_uploads(
    client, sign_in, data_dir, moved_clock
):
    await sign_in(SENDER)
    draft = await _draft_with_file_and_upload(client)
    assert stored_files(data_dir)

    moved_clock.advance(hours=23, minutes=59)
    kept = await clean_up(client)
    assert kept.drafts == 0 and await Message.exists(id=draft.id)

    moved_clock.advance(minutes=2)
    cleaned = await clean_up(client)

    assert cleaned.drafts == 1
    assert not await Message.exists(id=draft.id)
    assert not await Upload.exists()
    assert stored_files(data_dir) == []
    # The session's draft is gone: the compose page starts empty, not with an error.
    html = await (await client.get("/compose")).get_data(as_text=True)
    assert "hakemus.pdf" not in html


async def test_expiry_never_touches_a_sent_message(client, sign_in, data_dir, moved_clock):
    await sign_in(SENDER)
    await send_message(client, FIELDS, [FILE])

    moved_clock.advance(hours=48)
    cleaned = await clean_up(client)

    assert cleaned.drafts == 0
    assert await Message.filter(status=MessageStatus.SENT).count() == 1
    assert len(stored_files(data_dir)) == 1


async def test_guards_untouched_for_two_days_are_swept_and_recent_ones_kept(moved_clock, client):
    async with atomic.serialized("old"):
        pass
    moved_clock.advance(days=2, minutes=1)
    async with atomic.serialized("recent"):
        pass

    await atomic.sweep_guards()  # (the server's own housekeeping task may have been first)
    assert await Guard.all().values_list("key", flat=True) == ["recent"]
    async with atomic.serialized("old"):  # a swept guard is simply made again
        pass
    assert await Guard.filter(key="old").exists()


async def test_expired_sessions_are_swept_by_housekeeping(client, sign_in, moved_clock):
    await sign_in(SENDER)
    assert await WebSession.all().count() == 1

    moved_clock.advance(minutes=_portal(client).settings.session_idle_minutes + 1)
    cleaned = await clean_up(client)

    assert cleaned.sessions == 1
    assert await WebSession.all().count() == 0


async def test_deleted_rows_are_not_left_readable_in_the_sqlite_file(client, portal_config):
    url = portal_config["database_url"]
    if not url.startswith("sqlite://"):
        pytest.skip("secure_delete is SQLite's: PostgreSQL's VACUUM reclaims dead rows")
    marker = "deleted-secret-" + os.urandom(8).hex()
    async with atomic.serialized(marker):
        pass
    await Guard.filter(key=marker).delete()
    connection = connections.get("default")
    await connection.execute_query("PRAGMA wal_checkpoint(TRUNCATE)")

    path = Path(url.removeprefix("sqlite://"))
    files = [path, path.with_name(path.name + "-wal")]
    contents = b"".join(file.read_bytes() for file in files if file.exists())
    assert marker.encode() not in contents
