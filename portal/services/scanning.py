"""Malware scanning before anyone is notified.

With a scanner that inspects files (``PORTAL_SCANNER=clamav``), Send makes the message
``checking`` and queues its recipients' notifications *held* (:mod:`portal.services.outbox`):
they exist, sealed, but are not delivered. Every server process runs :func:`run`, which takes
the messages that wait, one process per message (a conditional UPDATE claims it for a while),
reads each attachment back (decrypted) and streams it to the scanner. Then, in one
transaction that only the first to finish can make:

- **clean**: the message becomes ``clean`` and its held notifications are released;
- **infected**: the message becomes ``infected``, each bad file records what was found, the
  held notifications are deleted (the recipients are never told), and the sender gets an
  e-mail naming the files; the files themselves are deleted from storage after the commit.

Files need not wait for Send: each file of a draft is checked as soon as it is stored
(:func:`check_soon`, :func:`check_early`), while the sender goes on writing or adds more files,
and one found clean keeps that verdict (``Attachment.scanned_at``); Send then checks only the
rest. (clamd's INSTREAM takes one file over one connection, and a file of the compose page
arrives in parts over many requests, maybe to several processes: it cannot be streamed to the
scanner as it arrives.) Anything but a clean verdict before Send changes nothing: the file is
checked again at Send, where malware stops the message as above.

A scanner that cannot be reached (or answers an error) leaves the message waiting: its
attempts and the error are recorded (the sender's page says the check takes longer; operators
see it in ``sinetti scans`` and the log), and it is tried again after a growing pause: fail
closed. ``PORTAL_SCAN_FAIL_OPEN=true`` lets such a message go unscanned instead, logged as a
warning and recorded in the audit trail.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import uuid
from collections.abc import Iterable
from datetime import timedelta

from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from portal.config import Settings
from portal.context import portal
from portal.i18n import locale_context
from portal.keys.base import KeyUnavailable
from portal.models import Attachment, Message, MessageStatus, ScanState
from portal.scanning.base import Scanner, ScannerUnavailable
from portal.services import (
    atomic,
    audit,
    clock,
    message_fields,
    notifications,
    outbox,
    stored_files,
)
from portal.services.files import format_when
from portal.storage.base import StorageBackend, StorageError

log = logging.getLogger(__name__)

#: How long a process holds a message it scans (a 400 MB message takes seconds to a minute).
CLAIM = timedelta(minutes=15)
#: The first pause after a failed attempt; it doubles up to :data:`MAX_PAUSE`.
FIRST_PAUSE = timedelta(seconds=30)
MAX_PAUSE = timedelta(minutes=30)


def holds_notifications() -> bool:
    """Whether Send must hold the notifications for a check (a scanner that looks at files)."""
    return portal().providers.scanner.inspects_files


def pause(attempts: int) -> timedelta:
    """The wait after the ``attempts``-th failed attempt to reach the scanner."""
    return min(FIRST_PAUSE * 2 ** max(attempts - 1, 0), MAX_PAUSE)


@dataclasses.dataclass(frozen=True)
class Found:
    """Malware in one attachment."""

    attachment_id: int
    filename: str
    signature: str


async def due(limit: int = 20) -> list[uuid.UUID]:
    """Messages waiting for their check whose time has come and that no process holds."""
    current = clock.now()
    ids = (
        await Message.filter(scan_state=ScanState.CHECKING, scan_next_at__lte=current)
        .filter(Q(scan_claimed_until__isnull=True) | Q(scan_claimed_until__lt=current))
        .order_by("scan_next_at")
        .limit(limit)
        .values_list("id", flat=True)
    )
    return [uuid.UUID(str(found)) for found in ids]


async def claim(message_id: uuid.UUID, claim_for: timedelta = CLAIM) -> bool:
    """Take the message for a check, in one conditional UPDATE: of processes trying at once,
    exactly one gets it."""
    current = clock.now()
    taken = (
        await Message.filter(
            id=message_id, scan_state=ScanState.CHECKING, scan_next_at__lte=current
        )
        .filter(Q(scan_claimed_until__isnull=True) | Q(scan_claimed_until__lt=current))
        .update(scan_claimed_until=current + claim_for)
    )
    return bool(taken)


async def check(
    settings: Settings, storage: StorageBackend, scanner: Scanner, message_id: uuid.UUID
) -> ScanState | None:
    """Scan the claimed message's files and record the outcome; the new state, or None when
    it waits for another attempt (or another process recorded it first)."""
    attachments = list(await Attachment.filter(message_id=message_id).order_by("id"))
    try:
        found = await _scan(storage, scanner, message_id, attachments)
    except (ScannerUnavailable, StorageError) as exc:
        if isinstance(exc, ScannerUnavailable) and settings.scan_fail_open:
            log.warning("malware scan of message %s skipped (fail open): %s", message_id, exc)
            skipped = await atomic.to_the_end(_clean(message_id, skipped=str(exc)))
            return ScanState.CLEAN if skipped else None
        await atomic.to_the_end(_retry(message_id, str(exc)))
        return None
    # An outcome is recorded to its end even when the server stops meanwhile: a transaction
    # cancelled halfway can keep its connection, and closing the database would wait for ever.
    if not found:
        return ScanState.CLEAN if await atomic.to_the_end(_clean(message_id)) else None
    if not await atomic.to_the_end(_infected(message_id, found)):
        return None
    bad = {item.attachment_id for item in found}
    await _delete_files(storage, [a for a in attachments if a.id in bad])
    return ScanState.INFECTED


async def _scan(
    storage: StorageBackend,
    scanner: Scanner,
    message_id: uuid.UUID,
    attachments: list[Attachment],
) -> list[Found]:
    data_key = await stored_files.data_key(message_id)
    await message_fields.open_rows(attachments)
    found = []
    for attachment in attachments:
        if attachment.scanned_at is not None:
            continue  # found clean in the draft (check_early)
        verdict = await scanner.scan(stored_files.read_attachment(storage, attachment, data_key))
        if not verdict.clean:
            found.append(Found(attachment.id, attachment.filename, verdict.signature or "?"))
    return found


async def _clean(message_id: uuid.UUID, skipped: str = "") -> bool:
    """``checking`` → ``clean`` and the notifications go; False when it was recorded already."""
    async with in_transaction():
        changed = await Message.filter(id=message_id, scan_state=ScanState.CHECKING).update(
            scan_state=ScanState.CLEAN, scan_claimed_until=None, scan_error=skipped
        )
        if not changed:
            return False
        released = await outbox.release_held(message_id)
        await audit.record(
            audit.Event.SCANNED,
            message_id=message_id,
            actor="system",
            released=released,
            skipped=bool(skipped),
        )
    outbox.wake()
    return True


async def _infected(message_id: uuid.UUID, found: list[Found]) -> bool:
    """``checking`` → ``infected``: the files say what was found, the recipients' mails go
    away unsent, the sender is told. False when it was recorded already."""
    async with in_transaction():
        changed = await Message.filter(id=message_id, scan_state=ScanState.CHECKING).update(
            scan_state=ScanState.INFECTED, scan_claimed_until=None, scan_error=""
        )
        if not changed:
            return False
        for item in found:
            await Attachment.filter(id=item.attachment_id).update(malware=item.signature[:255])
        dropped = await outbox.drop_held(message_id)
        message = await Message.get(id=message_id).prefetch_related("sender")
        with locale_context(message.locale):
            sent_at = format_when(message.sent_at or clock.now(), portal().settings.tz)
        mail = await notifications.malware_found(
            message.sender.email,
            message.locale,
            sent_at,
            [(item.filename, item.signature) for item in found],
        )
        await outbox.enqueue_mail(mail, message_ref=message_id)
        await audit.record(
            audit.Event.MALWARE_FOUND,
            message_id=message_id,
            actor="system",
            attachments=len(found),
            withheld=dropped,
        )
    outbox.wake()
    log.warning(
        "message %s stopped: malware in %d file(s) (%s)",
        message_id,
        len(found),
        ", ".join(sorted({item.signature for item in found})),
    )
    return True


async def _retry(message_id: uuid.UUID, error: str) -> None:
    message = await Message.get(id=message_id)
    attempts = message.scan_attempts + 1
    wait = pause(attempts)
    await Message.filter(id=message_id, scan_state=ScanState.CHECKING).update(
        scan_attempts=attempts,
        scan_error=error[:1000],
        scan_next_at=clock.now() + wait,
        scan_claimed_until=None,
    )
    log.warning(
        "malware scan of message %s failed (attempt %d), next try in %d s: %s",
        message_id,
        attempts,
        wait.total_seconds(),
        error,
    )


async def _delete_files(storage: StorageBackend, attachments: list[Attachment]) -> None:
    for attachment in attachments:
        try:
            await storage.delete(attachment.storage_key)
        except Exception:
            # The row names it still: the purge deletes it with the message.
            log.exception("could not delete the infected file %s", attachment.storage_key)


async def report() -> dict[str, object]:
    """For operators (``sinetti scans``): messages per state, and each one still waiting with
    its failed attempts and the scanner's last error."""
    counts = {state.value: await Message.filter(scan_state=state).count() for state in ScanState}
    waiting = (
        await Message.filter(scan_state=ScanState.CHECKING)
        .order_by("sent_at")
        .values("id", "sent_at", "scan_attempts", "scan_error", "scan_next_at")
    )
    return {
        **counts,
        "waiting": [
            {
                "message": str(row["id"]),
                "sent_at": row["sent_at"].isoformat() if row["sent_at"] else None,
                "attempts": row["scan_attempts"],
                "next_try": row["scan_next_at"].isoformat() if row["scan_next_at"] else None,
                "last_error": row["scan_error"],
            }
            for row in waiting
        ],
    }


def check_soon(attachments: Iterable[Attachment]) -> None:
    """Have this process's scan worker check these new files of a draft ahead of Send."""
    if holds_notifications():
        portal().prescans.extend(attachment.id for attachment in attachments)
        wake()


async def check_early(storage: StorageBackend, scanner: Scanner, attachment_id: int) -> bool:
    """Check one file of a draft ahead of Send; True when it was found clean and recorded so.

    A file sent, removed or checked meanwhile is left alone. Malware, a scanner or storage
    that cannot be reached, or a key that cannot be had leave it to the check at Send."""
    attachment = await Attachment.get_or_none(
        id=attachment_id, scanned_at=None, message__status=MessageStatus.DRAFT
    )
    if attachment is None:
        return False
    try:
        data_key = await stored_files.data_key(attachment.message_id)
        await message_fields.open_rows(attachment)
        verdict = await scanner.scan(stored_files.read_attachment(storage, attachment, data_key))
    except (ScannerUnavailable, StorageError, KeyUnavailable) as exc:
        log.info("file %s was not checked before Send (it will be at Send): %s", attachment_id, exc)
        return False
    if not verdict.clean:
        return False  # Send finds it again and stops the message, telling the sender
    # The verdict is for this stored file: a row id can be used again (SQLite reuses the
    # highest one once it is deleted), a storage key never is.
    recorded = await Attachment.filter(
        id=attachment_id, storage_key=attachment.storage_key, scanned_at=None
    ).update(scanned_at=clock.now())
    return bool(recorded)


def wake() -> None:
    """Ask this process's scan worker to look now (after Send committed)."""
    portal().scan_wake.set()


async def run(
    settings: Settings, storage: StorageBackend, scanner: Scanner, poll_seconds: float
) -> None:
    """Check waiting messages, and between them the files of drafts this process received,
    forever (a background task of every server process)."""
    wake_event, early = portal().scan_wake, portal().prescans
    while True:
        wake_event.clear()  # a Send from now on wakes the next round
        try:
            for message_id in await due():
                if await claim(message_id):
                    await check(settings, storage, scanner, message_id)
            if early:  # one file, then the sent messages come first again
                await check_early(storage, scanner, early.popleft())
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("the malware scan worker failed (database down?); will retry")
        if early:
            continue
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake_event.wait(), timeout=poll_seconds)
