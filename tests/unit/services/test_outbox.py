"""portal.services.outbox: queued e-mail and SMS, delivery, retries and back-off."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

import pytest

from portal import db
from portal.config import load_settings
from portal.mail.base import MailDeliveryError, MailTransport, OutgoingMail
from portal.models import Channel, OutboxItem, OutboxStatus
from portal.services import clock, outbox
from portal.sms.base import SmsDeliveryError, SmsGateway

from ..helpers import eventually


class RecordingMail(MailTransport):
    name = "recording"

    def __init__(self, failures: list[Exception] | None = None) -> None:
        super().__init__(None, {})  # type: ignore[arg-type]
        self.sent: list[OutgoingMail] = []
        self.failures = list(failures or [])

    async def send(self, mail: OutgoingMail) -> None:
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append(mail)


class RecordingSms(SmsGateway):
    name = "recording"

    def __init__(self, failures: list[Exception] | None = None) -> None:
        super().__init__(None, {})  # type: ignore[arg-type]
        self.sent: list[tuple[str, str]] = []
        self.failures = list(failures or [])

    async def send(self, to: str, text: str) -> None:
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append((to, text))


@pytest.fixture
async def database(portal_config):
    """The database alone: no app, so no background worker competes with the test."""
    settings = load_settings(override=portal_config)
    await db.migrate(settings)
    await db.connect(settings)
    yield settings
    await db.close()


MAIL = OutgoingMail("ville@valtori.fi", "Aihe", "text with a link", "<p>html</p>")


async def test_due_mail_is_delivered_and_its_text_cleared(database):
    await outbox.enqueue_mail(MAIL)
    transport = RecordingMail()

    delivered = await outbox.deliver_due(transport, RecordingSms(), max_attempts=3)

    assert delivered == 1
    assert transport.sent == [MAIL]
    item = await OutboxItem.get()
    assert item.status is OutboxStatus.SENT
    assert item.sent_at is not None
    assert (item.text, item.html) == ("", None)
    assert item.attempts == 1


async def test_sms_goes_through_the_sms_gateway(database):
    await outbox.enqueue_sms("+358400123456", "PIN 123456")
    gateway = RecordingSms()

    await outbox.deliver_due(RecordingMail(), gateway, max_attempts=3)

    assert gateway.sent == [("+358400123456", "PIN 123456")]
    assert (await OutboxItem.get()).channel is Channel.SMS


async def test_failed_delivery_stays_pending_with_the_error_recorded(database):
    await outbox.enqueue_mail(MAIL)
    failing = RecordingMail([MailDeliveryError("SMTP 127.0.0.1:1: connection refused")])

    assert await outbox.deliver_due(failing, RecordingSms(), max_attempts=3) == 0

    item = await OutboxItem.get()
    assert item.status is OutboxStatus.PENDING
    assert item.attempts == 1
    assert item.last_error == "MailDeliveryError: SMTP 127.0.0.1:1: connection refused"
    assert item.text == "text with a link"
    assert item.next_attempt_at > clock.now()


async def test_failed_item_is_retried_after_its_back_off_and_then_delivered(database, moved_clock):
    await outbox.enqueue_mail(MAIL)
    transport = RecordingMail([MailDeliveryError("down")])
    await outbox.deliver_due(transport, RecordingSms(), max_attempts=5)

    moved_clock.advance(seconds=5)
    assert await outbox.deliver_due(transport, RecordingSms(), max_attempts=5) == 0
    moved_clock.advance(seconds=6)  # the first back-off is 10 s
    assert await outbox.deliver_due(transport, RecordingSms(), max_attempts=5) == 1

    assert transport.sent == [MAIL]
    item = await OutboxItem.get()
    assert (item.status, item.attempts, item.text) == (OutboxStatus.SENT, 2, "")


def test_back_off_doubles_and_is_capped_at_an_hour():
    seconds = [outbox.backoff(n).total_seconds() for n in range(1, 12)]

    assert seconds[:5] == [10, 20, 40, 80, 160]
    assert max(seconds) == outbox.MAX_BACKOFF_SECONDS
    assert seconds == sorted(seconds)


async def test_permanent_failure_is_not_retried(database, moved_clock):
    await outbox.enqueue_mail(MAIL)
    transport = RecordingMail([MailDeliveryError("550 no such user", permanent=True)])

    await outbox.deliver_due(transport, RecordingSms(), max_attempts=5)
    moved_clock.advance(hours=2)
    await outbox.deliver_due(transport, RecordingSms(), max_attempts=5)

    item = await OutboxItem.get()
    assert item.status is OutboxStatus.FAILED
    assert item.attempts == 1
    assert transport.sent == []


async def test_item_fails_for_good_after_max_attempts(database, moved_clock):
    await outbox.enqueue_sms("+358400123456", "PIN")
    gateway = RecordingSms([SmsDeliveryError("gateway down") for _ in range(3)])

    for _ in range(4):
        await outbox.deliver_due(RecordingMail(), gateway, max_attempts=3)
        moved_clock.advance(hours=2)

    item = await OutboxItem.get()
    assert item.status is OutboxStatus.FAILED
    assert item.attempts == 3
    assert await outbox.summary() == {"pending": 0, "sent": 0, "failed": 1}


async def test_a_plugin_raising_anything_is_retried_not_fatal(database, moved_clock):
    await outbox.enqueue_mail(MAIL)
    transport = RecordingMail([KeyError("bug in a plugin")])

    await outbox.deliver_due(transport, RecordingSms(), max_attempts=3)
    moved_clock.advance(minutes=1)
    await outbox.deliver_due(transport, RecordingSms(), max_attempts=3)

    assert transport.sent == [MAIL]
    assert "KeyError" in (await OutboxItem.get()).last_error


async def test_item_claimed_by_another_process_is_skipped(database, moved_clock):
    item = await outbox.enqueue_mail(MAIL)
    await OutboxItem.filter(id=item.id).update(claimed_until=clock.now() + timedelta(minutes=5))
    transport = RecordingMail()

    assert await outbox.deliver_due(transport, RecordingSms(), max_attempts=3) == 0
    moved_clock.advance(minutes=6)  # the other process died: its claim expires
    assert await outbox.deliver_due(transport, RecordingSms(), max_attempts=3) == 1


async def test_every_item_is_delivered_exactly_once_across_batches(database):
    for number in range(outbox.BATCH * 2 + 3):
        await outbox.enqueue_mail(OutgoingMail(f"p{number}@valtori.fi", "s", "t"))
    transport = RecordingMail()

    while await outbox.deliver_due(transport, RecordingSms(), max_attempts=3):
        pass

    addresses = [mail.to for mail in transport.sent]
    assert len(addresses) == len(set(addresses)) == outbox.BATCH * 2 + 3


async def test_worker_delivers_at_once_when_woken(database):
    transport = RecordingMail()
    previous = outbox._wake_event  # another app of this process may have left its own
    worker = asyncio.create_task(
        outbox.run_worker(transport, RecordingSms(), poll_seconds=60, max_attempts=3)
    )

    async def started() -> bool:
        return outbox._wake_event is not previous

    try:
        assert await eventually(started)
        await outbox.enqueue_mail(MAIL)
        outbox.wake()

        async def delivered() -> bool:
            return bool(transport.sent)

        assert await eventually(delivered, timeout=5)
    finally:
        worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await worker
