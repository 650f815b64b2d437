"""The purge, on both storage backends (local files, and S3 on moto's server on loopback):
a sent message goes with every row and stored file of it when its retention ends and not a
moment before; unused links and old logs go; orphans go once an hour old; nothing that a row
names is ever touched; a dry run deletes nothing; parallel purges delete a message once."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime, timedelta

import pytest
from tortoise.exceptions import DoesNotExist

from portal.crypto import storage as sealed
from portal.mail.base import OutgoingMail
from portal.models import (
    AccessCode,
    Attachment,
    AuditEvent,
    Message,
    MessageKey,
    MessageStatus,
    OutboxItem,
    OutboxStatus,
    Recipient,
    RegistrationEvent,
    SenderLink,
    Upload,
)
from portal.services import clock, outbox, purge, stored_files
from portal.services.uploads import new_storage_key
from portal.testing import builtin_plugins

from ..helpers import csrf_of, post_compose, row_where, send_message

SENDER = "liisa@example.com"
FIELDS = {"recipients": "ville@valtori.fi, anna@valtori.fi", "subject": "Hakemus", "body": "x"}
FILES = [
    ("attachments", "hakemus.pdf", b"%PDF-1.7 " * 1000),
    ("attachments", "liite.txt", b"liite " * 500),
]
DAYS = 30


@pytest.fixture(params=["local", "s3"])
def portal_config(request, portal_config):
    config = {**portal_config, "retention_days": DAYS}
    if request.param == "local":
        return config
    s3 = request.getfixturevalue("s3_server")
    return {**config, **s3.portal_config(s3.create_bucket(), prefix="sinetti/")}


@pytest.fixture
def portal_plugins():
    return builtin_plugins()


class BackupCopy:
    """A copy of one stored object, as a backup keeps it (read like a storage backend)."""

    def __init__(self, key: str, data: bytes) -> None:
        self.key, self.data = key, data

    async def read(self, key: str, start: int = 0, end: int | None = None):
        assert key == self.key
        yield self.data[start:end]


def _portal(client):
    return client.app.extensions["sinetti"]


async def run_purge(client, **options) -> purge.Purged:
    """What the server's housekeeping does, in the app's context as the task runs."""
    portal = _portal(client)
    async with client.app.app_context():
        return await purge.purge(portal.settings, portal.providers.storage, **options)


async def stored_keys(client) -> list[str]:
    """Every key the backend holds, finished or not, whatever its age."""
    storage = _portal(client).providers.storage
    far = datetime.now(UTC) + timedelta(days=3650)
    return sorted([item.key async for item in storage.stale(far)])


async def _sent(client) -> Message:
    await send_message(client, FIELDS, FILES)
    return await Message.filter(status=MessageStatus.SENT).order_by("-sent_at").first()


async def test_a_message_goes_with_all_its_rows_and_files_when_its_retention_ends(
    client, sign_in, moved_clock
):
    await sign_in(SENDER)
    message = await _sent(client)
    keys = sorted(
        await Attachment.filter(message_id=message.id).values_list("storage_key", flat=True)
    )
    assert await stored_keys(client) == keys

    moved_clock.advance(days=DAYS, minutes=-1)
    early = await run_purge(client)
    assert early.messages == 0
    assert await Message.exists(id=message.id)
    assert await stored_keys(client) == keys

    moved_clock.advance(minutes=2)
    purged = await run_purge(client)

    assert purged.messages == 1
    assert not await Message.exists(id=message.id)
    for model in (Recipient, Attachment, AccessCode):
        assert await model.filter().count() == 0, model.__name__
    assert await stored_keys(client) == []
    [event] = await AuditEvent.filter(event="purged")
    assert str(event.message_id) == str(message.id) and event.actor == "system"


async def test_only_the_messages_whose_time_is_up_go(client, sign_in, moved_clock):
    await sign_in(SENDER)
    old = await _sent(client)
    moved_clock.advance(days=10)
    await sign_in(SENDER)  # the first session has ended meanwhile
    young = await _sent(client)
    young_keys = sorted(
        await Attachment.filter(message_id=young.id).values_list("storage_key", flat=True)
    )

    moved_clock.advance(days=DAYS - 10, minutes=1)
    purged = await run_purge(client)

    assert purged.messages == 1
    assert not await Message.exists(id=old.id)
    assert await Message.exists(id=young.id)
    assert await Recipient.filter(message_id=young.id).count() == 2
    assert await stored_keys(client) == young_keys


async def test_a_dry_run_counts_what_is_due_and_deletes_nothing(client, sign_in, moved_clock):
    await sign_in(SENDER)
    message = await _sent(client)
    keys = await stored_keys(client)
    moved_clock.advance(days=DAYS + 1)

    due = await run_purge(client, dry_run=True)

    assert due.messages == 1 and due.links == 1 and due.registrations == 1
    assert await Message.exists(id=message.id)
    assert await SenderLink.exists()
    assert await stored_keys(client) == keys
    assert not await AuditEvent.filter(event="purged").exists()


async def test_a_stored_file_already_gone_does_not_stop_the_purge(client, sign_in, moved_clock):
    await sign_in(SENDER)
    message = await _sent(client)
    first = await Attachment.filter(message_id=message.id).first()
    await _portal(client).providers.storage.delete(first.storage_key)
    moved_clock.advance(days=DAYS + 1)

    purged = await run_purge(client)

    assert purged.messages == 1
    assert not await Message.exists(id=message.id)
    assert await stored_keys(client) == []


async def test_unused_links_and_the_old_registration_log_go_and_recent_ones_stay(
    client, sign_in, moved_clock
):
    await sign_in("old@example.com")
    moved_clock.advance(days=29)
    await sign_in("recent@example.com")
    moved_clock.advance(days=1, minutes=1)

    purged = await run_purge(client)

    assert purged.links == 1
    assert await SenderLink.filter(sender__email="recent@example.com").exists()
    assert not await SenderLink.filter(sender__email="old@example.com").exists()
    assert purged.registrations == 2
    assert await RegistrationEvent.all().count() == 0


async def _orphans(client) -> list[str]:
    """An object stored with no row, and an unfinished resumable upload with no row."""
    storage = _portal(client).providers.storage
    stored = new_storage_key()
    writer = await storage.writer(stored)
    await writer.write(os.urandom(1000))
    await writer.commit()
    unfinished = new_storage_key()
    upload_id = await storage.start_upload(unfinished)

    async def part():
        yield os.urandom(5 * 1024 * 1024)

    await storage.upload_part(unfinished, upload_id, 1, 0, part())
    return sorted([stored, unfinished])


async def _live_things(client) -> list[str]:
    """A sent message, a draft with a file, and an unfinished chunked upload of that draft:
    the keys their rows name."""
    await _sent(client)
    response = await post_compose(client, {**FIELDS, "action": "attach"}, FILES[:1])
    assert response.status_code == 200
    announced = await client.post(
        "/compose/uploads",
        json={"filename": "iso.bin", "size": 20_000_000, "type": "", "fingerprint": "iso|1"},
        headers={"X-CSRF-Token": await csrf_of(client)},
    )
    assert announced.status_code == 201
    keys = await Attachment.all().values_list("storage_key", flat=True)
    keys += await Upload.all().values_list("storage_key", flat=True)
    return sorted(keys)


async def test_orphans_go_once_an_hour_old_and_nothing_a_row_names_is_touched(
    client, sign_in, moved_clock
):
    await sign_in(SENDER)
    live = await _live_things(client)
    orphans = await _orphans(client)
    everything = sorted(live + orphans)
    assert sorted(set(await stored_keys(client))) == everything

    young = await run_purge(client)
    assert young.orphans == 0
    assert sorted(set(await stored_keys(client))) == everything

    moved_clock.advance(hours=2)  # the drafts and uploads stay a day: only orphans are due
    purged = await run_purge(client)

    assert purged.orphans == 2
    assert sorted(set(await stored_keys(client))) == live
    assert await Message.filter(status=MessageStatus.DRAFT).count() == 1
    assert await Upload.all().count() == 1
    again = await run_purge(client)
    assert again.orphans == 0


async def test_the_periodic_purge_may_skip_the_orphan_sweep(client, sign_in, moved_clock):
    await sign_in(SENDER)
    orphans = await _orphans(client)
    moved_clock.advance(hours=2)

    skipped = await run_purge(client, orphans=False)
    assert skipped.orphans == 0
    assert sorted(set(await stored_keys(client))) == orphans

    dry = await run_purge(client, dry_run=True)
    assert dry.orphans == 2
    assert sorted(set(await stored_keys(client))) == orphans


async def test_parallel_purges_delete_a_message_once_and_record_it_once(
    client, sign_in, moved_clock
):
    await sign_in(SENDER)
    await _sent(client)
    await _sent(client)
    moved_clock.advance(days=DAYS + 1)

    results = await asyncio.gather(*(run_purge(client) for _ in range(8)))

    assert sum(result.messages for result in results) == 2
    assert await AuditEvent.filter(event="purged").count() == 2
    assert await Message.all().count() == 0
    assert await stored_keys(client) == []


async def test_a_purged_messages_files_can_no_longer_be_opened_even_from_a_copy(
    client, sign_in, moved_clock
):
    await sign_in(SENDER)
    message = await _sent(client)
    attachment = await row_where(client, Attachment, message_id=message.id, filename="hakemus.pdf")
    storage = _portal(client).providers.storage
    backup = b"".join([chunk async for chunk in storage.read(attachment.storage_key)])
    async with client.app.app_context():
        key = await stored_files.data_key(message.id)

    async def from_backup(data_key: bytes) -> bytes:
        reading = sealed.read_plain(
            BackupCopy(attachment.storage_key, backup),
            attachment.storage_key,
            header=bytes(attachment.crypto_header),
            data_key=data_key,
            size=attachment.size,
        )
        return b"".join([chunk async for chunk in reading])

    assert await from_backup(key) == FILES[0][2]  # the copy opens while the message lives
    moved_clock.advance(days=DAYS, minutes=1)
    await run_purge(client)

    assert not await MessageKey.exists(message_id=message.id)
    async with client.app.app_context():
        with pytest.raises(DoesNotExist):  # every process: no row, and this one forgot it
            await stored_files.data_key(message.id)


async def test_notifications_still_held_for_a_malware_check_go_with_their_message(
    client, sign_in, moved_clock
):
    await sign_in(SENDER)
    message, other = await _sent(client), await _sent(client)

    async def hold_a_notification(of: Message) -> None:
        # As Send queues it while a scanner that is away keeps the message waiting.
        async with client.app.app_context():
            mail = OutgoingMail("maija@valtori.fi", "Viesti", "linkki")
            await outbox.enqueue_mail(mail, message_ref=of.id, held=True)

    await hold_a_notification(message)
    await hold_a_notification(other)
    moved_clock.advance(days=DAYS, minutes=1)
    await Message.filter(id=other.id).update(sent_at=clock.now())  # sent just now: not due

    await run_purge(client)

    assert not await Message.exists(id=message.id)
    assert not await OutboxItem.filter(message_ref=message.id, status=OutboxStatus.HELD).exists()
    assert await OutboxItem.filter(message_ref=other.id, status=OutboxStatus.HELD).count() == 1
