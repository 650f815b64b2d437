"""Queue e-mails and SMS in the database and deliver them in the background, with retries.

Queued items are written inside the caller's transaction, so a message and its notifications
are stored together or not at all. An SMTP outage delays delivery; nothing is lost. Items that
keep failing end as ``failed``, logged as errors and listed by ``sinetti outbox``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

from tortoise.expressions import Q

from portal.mail.base import MailTransport, OutgoingMail
from portal.models import Channel, OutboxItem, OutboxStatus
from portal.services import clock
from portal.sms.base import SmsGateway

log = logging.getLogger(__name__)

CLAIM_SECONDS = 300
BATCH = 20
MAX_BACKOFF_SECONDS = 3600

_wake_event: asyncio.Event | None = None


async def enqueue_mail(mail: OutgoingMail) -> OutboxItem:
    return await OutboxItem.create(
        channel=Channel.EMAIL,
        to_address=mail.to,
        subject=mail.subject,
        text=mail.text,
        html=mail.html,
        next_attempt_at=clock.now(),
    )


async def enqueue_sms(to: str, text: str) -> OutboxItem:
    return await OutboxItem.create(
        channel=Channel.SMS, to_address=to, text=text, next_attempt_at=clock.now()
    )


def wake() -> None:
    """Ask the background worker to look at the outbox now (after a commit)."""
    if _wake_event is not None:
        _wake_event.set()


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


async def _deliver(
    item: OutboxItem, mail: MailTransport, sms: SmsGateway, max_attempts: int
) -> int:
    item.attempts += 1
    try:
        if item.channel == Channel.EMAIL:
            await mail.send(OutgoingMail(item.to_address, item.subject, item.text, item.html))
        else:
            await sms.send(item.to_address, item.text)
    except Exception as exc:
        permanent = bool(getattr(exc, "permanent", False))
        item.last_error = f"{type(exc).__name__}: {exc}"[:2000]
        item.claimed_until = None
        if permanent or item.attempts >= max_attempts:
            item.status = OutboxStatus.FAILED
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
    item.status = OutboxStatus.SENT
    item.sent_at = clock.now()
    item.claimed_until = None
    # The text carried a personal link; once delivered, nothing of it is kept.
    item.text = ""
    item.html = None  # type: ignore[assignment]
    await item.save()
    return 1


async def run_worker(
    mail: MailTransport, sms: SmsGateway, poll_seconds: float, max_attempts: int
) -> None:
    """Deliver forever: at every wake-up and at least every ``poll_seconds``."""
    global _wake_event
    _wake_event = asyncio.Event()
    while True:
        try:
            while await deliver_due(mail, sms, max_attempts) == BATCH:
                pass
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("outbox worker: delivery round failed (database down?); will retry")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(_wake_event.wait(), timeout=poll_seconds)
        _wake_event.clear()


async def summary() -> dict[str, int]:
    """Counts per status, for operators."""
    return {status.value: await OutboxItem.filter(status=status).count() for status in OutboxStatus}
