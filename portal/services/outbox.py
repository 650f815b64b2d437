"""Queue e-mails and SMS in the database and deliver them in the background, with retries.

Queued items are written inside the caller's transaction, so a message and its notifications
are stored together or not at all. An SMTP outage delays delivery; nothing is lost. Items that
keep failing end as ``failed``, logged as errors and listed by ``sinetti outbox``.

The text of an item carries secrets: a notification's personal link, an SMS's PIN. While the
item waits, its text and html are sealed (:mod:`portal.services.sealing`, a key derived from
``PORTAL_SECRET_KEY``), so a copy of the database holds no working link or PIN; the worker opens
them right before handing them to the transport. Once an item ends, sent or failed, its text
and html are cleared: what stays for operators is the address, subject, status and an error
from which the text was cut out. Read an item's text with :func:`opened_text`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from datetime import timedelta

from quart import has_app_context
from tortoise.expressions import Q

from portal.context import portal
from portal.mail.base import MailTransport, OutgoingMail
from portal.models import Channel, OutboxItem, OutboxStatus
from portal.services import clock
from portal.services.sealing import Sealer, SealError
from portal.sms.base import SmsGateway

log = logging.getLogger(__name__)

CLAIM_SECONDS = 300
BATCH = 20
MAX_BACKOFF_SECONDS = 3600


def _sealer(secret_key: str | None = None) -> Sealer:
    """The outbox's sealer: of ``secret_key``, or of the current app's settings."""
    if secret_key is None:
        secret_key = portal().settings.secret_key
    return Sealer(secret_key)


def _context(column: str, channel: Channel | str, to_address: str) -> str:
    """What a sealed value belongs to: it opens only in the same column of an item of the
    same channel and address, so it cannot be moved to an item with another recipient."""
    return f"outbox {column} {Channel(channel).value} {to_address}"


async def enqueue_mail(mail: OutgoingMail) -> OutboxItem:
    """Queue ``mail`` (plain text and html; they are sealed before they are stored)."""
    sealer = _sealer()
    return await OutboxItem.create(
        channel=Channel.EMAIL,
        to_address=mail.to,
        subject=mail.subject,
        text=sealer.seal(mail.text, _context("text", Channel.EMAIL, mail.to)),
        html=None
        if mail.html is None
        else sealer.seal(mail.html, _context("html", Channel.EMAIL, mail.to)),
        next_attempt_at=clock.now(),
    )


async def enqueue_sms(to: str, text: str) -> OutboxItem:
    """Queue an SMS of plain ``text`` (sealed before it is stored)."""
    sealed = _sealer().seal(text, _context("text", Channel.SMS, to))
    return await OutboxItem.create(
        channel=Channel.SMS, to_address=to, text=sealed, next_attempt_at=clock.now()
    )


def opened_text(item: OutboxItem, secret_key: str | None = None) -> str:
    """The plain text of ``item`` (empty once it ended), with the current app's key unless
    ``secret_key`` is given. Raises :class:`~portal.services.sealing.SealError` when the
    text does not open with that key."""
    return _sealer(secret_key).open(item.text, _context("text", item.channel, item.to_address))


def opened_html(item: OutboxItem, secret_key: str | None = None) -> str | None:
    """The plain html of ``item`` (None when it has none or ended); see :func:`opened_text`."""
    if item.html is None:
        return None
    return _sealer(secret_key).open(item.html, _context("html", item.channel, item.to_address))


def _scrubbed(error: str, *plain: str | None) -> str:
    """``error`` without the item's text: a transport may quote what it was given (an SMS
    gateway echoing the body, a mail server the link), and the error outlives the text."""
    secrets: set[str] = set()
    for text in filter(None, plain):
        if len(text) >= 8:  # a shorter text would cut letters out of the error itself
            secrets.add(text)
        secrets.update(re.findall(r"\S*/[sm]/[A-Za-z0-9_-]+", text))  # personal links
        secrets.update(re.findall(r"[A-Za-z0-9_-]{16,}", text))  # tokens in any form
        secrets.update(re.findall(r"\d{4,}", text))  # PINs
    for secret in sorted(secrets, key=len, reverse=True):
        if secret.strip():
            error = error.replace(secret, "[…]")
    return error


def wake() -> None:
    """Ask the app's background worker to look at the outbox now (after a commit)."""
    if has_app_context():
        portal().outbox_wake.set()


def backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(10 * 2 ** max(attempts - 1, 0), MAX_BACKOFF_SECONDS))


async def _claim(item_id: int) -> bool:
    """Take an item for this process; other processes skip it until the claim expires."""
    current = clock.now()
    claimed = await (
        OutboxItem.filter(id=item_id, status=OutboxStatus.PENDING)
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=current))
        .update(claimed_until=current + timedelta(seconds=CLAIM_SECONDS))
    )
    return bool(claimed)


async def deliver_due(mail: MailTransport, sms: SmsGateway, max_attempts: int) -> int:
    """Deliver what is due; return how many were delivered."""
    current = clock.now()
    due = (
        await OutboxItem.filter(status=OutboxStatus.PENDING, next_attempt_at__lte=current)
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=current))
        .order_by("id")
        .limit(BATCH)
    )
    delivered = 0
    for item in due:
        if not await _claim(item.id):
            continue
        delivered += await _deliver(item, mail, sms, max_attempts)
    return delivered


def _end(item: OutboxItem, status: OutboxStatus) -> None:
    """A final state: the link or PIN in the text is of no use to anyone any more."""
    item.status = status
    item.claimed_until = None
    item.text = ""
    item.html = None  # type: ignore[assignment]


async def _deliver(
    item: OutboxItem, mail: MailTransport, sms: SmsGateway, max_attempts: int
) -> int:
    item.attempts += 1
    try:
        text, html = opened_text(item), opened_html(item)
    except SealError:
        # Another secret key sealed it (PORTAL_SECRET_KEY changed while it waited): retrying
        # cannot help, and the text is unreadable to anyone now.
        _end(item, OutboxStatus.FAILED)
        item.last_error = "SealError: the text does not open with this PORTAL_SECRET_KEY"
        log.error(
            "outbox item %s (%s to %s): %s", item.id, item.channel, item.to_address, item.last_error
        )
        await item.save()
        return 0
    try:
        if item.channel == Channel.EMAIL:
            await mail.send(OutgoingMail(item.to_address, item.subject, text, html))
        else:
            await sms.send(item.to_address, text)
    except Exception as exc:
        permanent = bool(getattr(exc, "permanent", False))
        item.last_error = _scrubbed(f"{type(exc).__name__}: {exc}", text, html)[:2000]
        item.claimed_until = None
        if permanent or item.attempts >= max_attempts:
            _end(item, OutboxStatus.FAILED)
            log.error(
                "outbox item %s (%s to %s) failed for good after %d attempts: %s",
                item.id,
                item.channel,
                item.to_address,
                item.attempts,
                item.last_error,
            )
        else:
            item.next_attempt_at = clock.now() + backoff(item.attempts)
            log.warning(
                "outbox item %s (%s to %s) attempt %d failed, retrying at %s: %s",
                item.id,
                item.channel,
                item.to_address,
                item.attempts,
                item.next_attempt_at.isoformat(timespec="seconds"),
                item.last_error,
            )
        await item.save()
        return 0
    _end(item, OutboxStatus.SENT)
    item.sent_at = clock.now()
    await item.save()
    return 1


async def run_worker(
    mail: MailTransport, sms: SmsGateway, poll_seconds: float, max_attempts: int
) -> None:
    """Deliver forever: at every wake-up and at least every ``poll_seconds`` (a task of the
    app's, started in its app context)."""
    wake_event = portal().outbox_wake
    while True:
        try:
            while await deliver_due(mail, sms, max_attempts) == BATCH:
                pass
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("outbox worker: delivery round failed (database down?); will retry")
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for loses a cancellation that
        # arrives as the event is set (a wake-up at shutdown), and the worker never ends.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(poll_seconds):
                await wake_event.wait()
        wake_event.clear()


async def summary() -> dict[str, int]:
    """Counts per status, for operators."""
    return {status.value: await OutboxItem.filter(status=status).count() for status in OutboxStatus}
