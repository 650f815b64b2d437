"""The purge: what the portal deletes because its time is up, and what a crash left behind.

Every server process runs it periodically (:mod:`portal.services.housekeeping`), and
``sinetti purge [--dry-run]`` runs it at once. What goes:

- sent messages (and replies) ``PORTAL_RETENTION_DAYS`` after sending, with their recipients'
  links and codes, their attachments and the stored files (:mod:`portal.services.retention`),
  and their wrapped data key: from that moment no copy of their files (a backup, an object
  the delete missed) can be decrypted;
- personal links unused for ``PORTAL_LINK_VALID_DAYS`` (they no longer sign in anyway);
- the registration log once no limit counts it (a day);
- delivered and failed notifications as old as the retention;
- audit events after ``PORTAL_AUDIT_RETENTION_DAYS``;
- **orphans**: stored objects and unfinished writes that no row references and that have not
  changed for :data:`ORPHAN_AGE`.

Rows go first, each message in a transaction of its own, and the stored objects they named
after. A crash between the two (or storage that is down) leaves objects no row references:
the orphan sweep deletes them later, so nothing is left for good whatever fails. The same holds
for a crash at any point of an upload or a send: a write under way is invisible (a ``.part``
file, an S3 multipart upload) until it commits, and an object stored just before its row would
have been is unreferenced. A write under way changes its bytes all the time, so it is never an
hour old; the sweep leaves alone anything a row names.

Several processes may purge at once: a message is deleted by one conditional DELETE, and only
the process whose DELETE removed it records the ``purged`` event and deletes its files.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta

from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from portal.config import Settings
from portal.models import (
    Attachment,
    Message,
    MessageStatus,
    OutboxItem,
    OutboxStatus,
    RegistrationEvent,
    SenderLink,
    Upload,
)
from portal.services import atomic, audit, clock, message_keys, outbox_admin, retention
from portal.storage.base import StorageBackend, StoredItem

log = logging.getLogger(__name__)

#: Stored bytes no row references are deleted once they are this old: a write under way
#: changes all the time, and an object is given its row right after it is stored.
ORPHAN_AGE = timedelta(hours=1)
#: The registration log counts for the limits of the last day at most.
REGISTRATION_LOG_KEPT = timedelta(days=1)
#: Keys looked up in the database at once by the orphan sweep.
SWEEP_BATCH = 500


@dataclasses.dataclass
class Purged:
    """What one purge deleted (or, dry, would delete)."""

    messages: int = 0
    links: int = 0
    registrations: int = 0
    notifications: int = 0
    audit_events: int = 0
    orphans: int = 0

    def as_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Cutoffs:
    """The instants before which each kind of record is due, for one purge."""

    sent: datetime
    link_used: datetime
    registered: datetime
    audit: datetime
    orphan: datetime

    @classmethod
    def at(cls, now: datetime, settings: Settings, orphan_age: timedelta = ORPHAN_AGE) -> Cutoffs:
        return cls(
            sent=retention.sent_before(now, settings),
            link_used=now - timedelta(days=settings.link_valid_days),
            registered=now - REGISTRATION_LOG_KEPT,
            audit=now - timedelta(days=settings.audit_retention_days),
            orphan=now - orphan_age,
        )


async def purge(
    settings: Settings,
    storage: StorageBackend,
    *,
    dry_run: bool = False,
    orphans: bool = True,
    orphan_age: timedelta = ORPHAN_AGE,
) -> Purged:
    """Delete everything that is due now (with ``dry_run``, only count it); ``orphans``:
    sweep the storage too (it lists every stored object, so the periodic purge does it less
    often). A shorter ``orphan_age`` is safe only while no server is running: a write under
    way is unreferenced until it ends."""
    cut = Cutoffs.at(clock.now(), settings, orphan_age)
    if dry_run:
        return await _count_due(cut, storage, orphans)
    purged = Purged(
        messages=await purge_messages(storage, cut.sent),
        links=await SenderLink.filter(last_used_at__lt=cut.link_used).delete(),
        registrations=await RegistrationEvent.filter(created_at__lt=cut.registered).delete(),
        notifications=await outbox_admin.purge_ended(cut.sent),
        audit_events=await audit.purge_before(cut.audit),
    )
    if orphans:
        purged.orphans = await sweep_orphans(storage, cut.orphan)
    if any(purged.as_dict().values()):
        log.info("purge: %s", ", ".join(f"{n} {what}" for what, n in purged.as_dict().items()))
    return purged


async def _count_due(cut: Cutoffs, storage: StorageBackend, orphans: bool) -> Purged:
    return Purged(
        messages=await _due_messages(cut.sent).count(),
        links=await SenderLink.filter(last_used_at__lt=cut.link_used).count(),
        registrations=await RegistrationEvent.filter(created_at__lt=cut.registered).count(),
        notifications=await outbox_admin.ended(cut.sent).count(),
        audit_events=await audit.due(cut.audit).count(),
        orphans=len(await find_orphans(storage, cut.orphan)) if orphans else 0,
    )


def _due_messages(sent_before: datetime) -> QuerySet[Message]:
    return Message.filter(status=MessageStatus.SENT, sent_at__lt=sent_before)


async def purge_messages(storage: StorageBackend, sent_before: datetime) -> int:
    """Delete the messages sent before ``sent_before`` and their stored files."""
    due = await _due_messages(sent_before).values_list("id", "sender_id")
    count = 0
    for message_id, sender_id in due:
        keys = await atomic.to_the_end(_delete_message(message_id, sender_id))
        message_keys.forget(message_id)  # its wrapped key went with the row: crypto-shredded
        if keys is None:
            continue  # another process purged it first
        count += 1
        await _delete_objects(storage, keys)
    return count


async def _delete_message(message_id: uuid.UUID, sender_id: int) -> list[str] | None:
    """Delete one message's rows (recipients, codes, attachments go with it) and record it;
    return the keys of its stored files, or None when it was gone already.

    The keys are read before the transaction (a sent message's attachments never change), so
    that its first statement is the write: on SQLite a transaction that read first cannot
    write once another process committed meanwhile ("database is locked", at once)."""
    keys = await Attachment.filter(message_id=message_id).values_list("storage_key", flat=True)
    async with in_transaction():
        if not await Message.filter(id=message_id, status=MessageStatus.SENT).delete():
            return None
        # Notifications still held for its malware check (a scanner away for the whole
        # retention) would otherwise stay: they are no outbox item that ends.
        await OutboxItem.filter(message_ref=message_id, status=OutboxStatus.HELD).delete()
        await audit.record(
            "purged",
            message_id=message_id,
            sender_id=sender_id,
            actor="system",
            attachments=len(keys),
        )
    return [str(key) for key in keys]


async def _delete_objects(storage: StorageBackend, keys: Iterable[str]) -> None:
    for key in keys:
        try:
            await storage.delete(key)
        except Exception:
            # The row is gone: the object is an orphan now, and the sweep retries it.
            log.exception("purge: could not delete stored file %s; the sweep retries", key)


async def find_orphans(storage: StorageBackend, before: datetime) -> list[StoredItem]:
    """Stored objects and unfinished writes unchanged since ``before`` that no row names."""
    found: list[StoredItem] = []
    batch: list[StoredItem] = []
    async for item in storage.stale(before):
        batch.append(item)
        if len(batch) >= SWEEP_BATCH:
            found += await _unreferenced(batch)
            batch = []
    return found + await _unreferenced(batch)


async def _unreferenced(items: list[StoredItem]) -> list[StoredItem]:
    keys = list({item.key for item in items})
    if not keys:
        return []
    named = set(await Attachment.filter(storage_key__in=keys).values_list("storage_key", flat=True))
    named |= set(await Upload.filter(storage_key__in=keys).values_list("storage_key", flat=True))
    return [item for item in items if item.key not in named]


async def sweep_orphans(storage: StorageBackend, before: datetime) -> int:
    """Delete the orphans (:func:`find_orphans`); return how many went."""
    count = 0
    for item in await find_orphans(storage, before):
        try:
            await storage.discard(item)
        except Exception:
            log.exception("purge: could not delete orphan %s (%s)", item.key, item.partial)
            continue
        log.warning(
            "purge: deleted orphan %s%s, last changed %s",
            item.key,
            f" ({item.partial})" if item.partial else "",
            item.modified.isoformat(),
        )
        count += 1
    return count
