"""portal.services.outbox: queued e-mail and SMS, delivery, retries and back-off."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from datetime import timedelta
from typing import Literal

import pytest

from portal.app import create_app
from portal.context import portal
from portal.mail.base import MailDeliveryError, OutgoingMail
from portal.models import Channel, OutboxItem, OutboxStatus
from portal.services import clock, outbox, outbox_lanes
from portal.services.sealing import SealError
from portal.sms.base import SmsDeliveryError
from portal.testing import builtin_plugins

from ..helpers import eventually
from .outbox_support import RecordingMail, RecordingSms

MAIL = OutgoingMail("ville@valtori.fi", "Aihe", "text with a link", "<p>html</p>")


def without_ids(mails: list[OutgoingMail]) -> list[OutgoingMail]:
    """The mails as queued: the outbox adds the Message-ID it fixed when queueing."""
    return [dataclasses.replace(mail, message_id=None) for mail in mails]


async def test_due_mail_is_delivered_and_its_text_cleared(database):
    await outbox.enqueue_mail(MAIL)
    transport = RecordingMail()

    delivered = await outbox.deliver_due(transport, RecordingSms(), max_attempts=3)

    assert delivered == 1
    assert without_ids(transport.sent) == [MAIL]
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
    delivered = await OutboxItem.get()
    assert delivered.channel is Channel.SMS
    # Delivered, it keeps only the end of the number, which outlives no purge of its message.
    assert (delivered.to_address, delivered.text) == ("•••• 456", "")


async def test_a_gateway_error_quoting_the_number_is_stored_without_it(database):
    await outbox.enqueue_sms("+358400123456", "PIN 123456")
    gateway = RecordingSms([SmsDeliveryError("no route to 0400123456 (+358400123456)")])

    await outbox.deliver_due(RecordingMail(), gateway, max_attempts=3)

    error = (await OutboxItem.get()).last_error
    assert "400123456" not in error and "no route to" in error


async def test_failed_delivery_stays_pending_with_the_error_recorded(database):
    await outbox.enqueue_mail(MAIL)
    failing = RecordingMail([MailDeliveryError("SMTP 127.0.0.1:1: connection refused")])

    assert await outbox.deliver_due(failing, RecordingSms(), max_attempts=3) == 0

    item = await OutboxItem.get()
    assert item.status is OutboxStatus.PENDING
    assert item.attempts == 1
    assert item.last_error == "MailDeliveryError: SMTP 127.0.0.1:1: connection refused"
    assert outbox.opened_text(item) == "text with a link"
    assert item.next_attempt_at > clock.now()


async def test_failed_item_is_retried_after_its_back_off_and_then_delivered(database, moved_clock):
    await outbox.enqueue_mail(MAIL)
    transport = RecordingMail([MailDeliveryError("down")])
    await outbox.deliver_due(transport, RecordingSms(), max_attempts=5)

    moved_clock.advance(seconds=5)
    assert await outbox.deliver_due(transport, RecordingSms(), max_attempts=5) == 0
    moved_clock.advance(seconds=6)  # the first back-off is 10 s
    assert await outbox.deliver_due(transport, RecordingSms(), max_attempts=5) == 1

    assert without_ids(transport.sent) == [MAIL]
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
    assert await outbox.summary() == {"held": 0, "pending": 0, "sent": 0, "failed": 1}


async def test_a_plugin_raising_anything_is_retried_not_fatal(database, moved_clock):
    await outbox.enqueue_mail(MAIL)
    transport = RecordingMail([KeyError("bug in a plugin")])

    await outbox.deliver_due(transport, RecordingSms(), max_attempts=3)
    moved_clock.advance(minutes=1)
    await outbox.deliver_due(transport, RecordingSms(), max_attempts=3)

    assert without_ids(transport.sent) == [MAIL]
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


class WatchedEvent(asyncio.Event):
    """An event that tells when someone has started waiting for it."""

    def __init__(self) -> None:
        super().__init__()
        self.waited = asyncio.Event()

    async def wait(self) -> Literal[True]:
        self.waited.set()
        return await super().wait()


async def test_worker_delivers_at_once_when_woken(database):
    transport = RecordingMail()
    portal().outbox_wake = wake = WatchedEvent()  # the app's own event, not a module's
    worker = asyncio.create_task(
        outbox_lanes.run_worker(transport, RecordingSms(), poll_seconds=60, max_attempts=3)
    )

    async def started() -> bool:
        return wake.waited.is_set()  # its first round is done; it sleeps for 60 s now

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


async def test_worker_ends_when_cancelled_as_it_is_woken(database):
    # A wake-up (a registration just before shutdown) and the shutdown's cancel in the same
    # turn of the loop: asyncio.wait_for on Python 3.11 lost such a cancel and the worker
    # went on forever, so the server's shutdown timed out.
    portal().outbox_wake = wake = WatchedEvent()
    worker = asyncio.create_task(
        outbox_lanes.run_worker(RecordingMail(), RecordingSms(), poll_seconds=60, max_attempts=3)
    )

    async def started() -> bool:
        return wake.waited.is_set()

    assert await eventually(started)
    await asyncio.sleep(0)  # the worker is parked in its wait
    outbox.wake()
    worker.cancel()
    done, _ = await asyncio.wait([worker], timeout=5)

    assert worker in done and worker.cancelled()


# -- secrets in the outbox: sealed while pending, gone once the item ended --------------------

TOKEN = "Zx8VbQ3kLm7Pq2Rs9Tu4Wv6Xy1Za5Bc0De3Fg8Hj2Kl"
LINK_MAIL = OutgoingMail(
    "ville@valtori.fi",
    "Uusi viesti",
    f"Avaa viesti: http://portal.test/m/{TOKEN}",
    f'<p><a href="http://portal.test/m/{TOKEN}">Avaa</a></p>',
)
PIN_TEXT = "Sinetti PIN 480913"


async def stored_columns() -> list[dict]:
    """The outbox rows as the database holds them (what a copy of it would show)."""
    from tortoise import Tortoise

    return await Tortoise.get_connection("default").execute_query_dict(
        "SELECT text, html, last_error FROM outbox_item ORDER BY id"
    )


async def test_pending_items_hold_neither_the_link_token_nor_the_pin(database):
    await outbox.enqueue_mail(LINK_MAIL)
    await outbox.enqueue_sms("+358400123456", PIN_TEXT)

    rows = await stored_columns()

    assert len(rows) == 2
    for row in rows:
        stored = f"{row['text']} {row['html']}"
        assert TOKEN not in stored and "480913" not in stored and "portal.test" not in stored
    mail, sms = await OutboxItem.all().order_by("id")
    assert (outbox.opened_text(mail), outbox.opened_html(mail)) == (LINK_MAIL.text, LINK_MAIL.html)
    assert outbox.opened_text(sms) == PIN_TEXT


async def test_the_same_text_is_sealed_differently_every_time(database):
    await outbox.enqueue_sms("+358400123456", PIN_TEXT)
    await outbox.enqueue_sms("+358400123456", PIN_TEXT)

    first, second = await stored_columns()

    assert first["text"] != second["text"]


async def test_transport_gets_the_plain_text_and_the_sent_item_keeps_none(database):
    await outbox.enqueue_mail(LINK_MAIL)
    transport = RecordingMail()

    assert await outbox.deliver_due(transport, RecordingSms(), max_attempts=3) == 1

    assert without_ids(transport.sent) == [LINK_MAIL]
    assert await stored_columns() == [{"text": "", "html": None, "last_error": ""}]


async def test_permanently_failed_item_keeps_its_link_only_sealed_and_none_in_its_error(database):
    await outbox.enqueue_mail(LINK_MAIL)
    echoing = MailDeliveryError(f"550 refused: {LINK_MAIL.text}", permanent=True)

    await outbox.deliver_due(RecordingMail([echoing]), RecordingSms(), max_attempts=5)

    item = await OutboxItem.get()
    assert item.status is OutboxStatus.FAILED
    (row,) = await stored_columns()
    assert row["text"].startswith("sealed:v1:") and row["html"].startswith("sealed:v1:")
    assert TOKEN not in f"{row['text']} {row['html']}"  # kept sealed for a retry, no more
    assert row["last_error"].startswith("MailDeliveryError: 550 refused:")
    assert TOKEN not in row["last_error"] and "/m/" not in row["last_error"]
    assert (item.to_address, item.subject) == (LINK_MAIL.to, LINK_MAIL.subject)


async def test_sms_failed_after_max_attempts_keeps_its_pin_only_sealed(database, moved_clock):
    await outbox.enqueue_sms("+358400123456", PIN_TEXT)
    gateway = RecordingSms([SmsDeliveryError(f"gateway said: bad text {PIN_TEXT!r}")] * 3)

    for _ in range(3):
        await outbox.deliver_due(RecordingMail(), gateway, max_attempts=3)
        moved_clock.advance(hours=2)

    item = await OutboxItem.get()
    assert (item.status, item.attempts) == (OutboxStatus.FAILED, 3)
    (row,) = await stored_columns()
    assert row["text"].startswith("sealed:v1:") and "480913" not in row["text"]
    assert row["html"] is None
    assert outbox.opened_text(item) == PIN_TEXT  # sealed, for `sinetti outbox retry`
    assert "gateway said: bad text" in row["last_error"]
    assert "480913" not in row["last_error"]


async def test_a_retried_item_stays_sealed_and_its_error_has_no_pin(database):
    await outbox.enqueue_sms("+358400123456", PIN_TEXT)
    gateway = RecordingSms([SmsDeliveryError("echo: PIN 480913")])

    await outbox.deliver_due(RecordingMail(), gateway, max_attempts=3)

    (row,) = await stored_columns()
    assert row["text"].startswith("sealed:v1:") and "480913" not in row["text"]
    assert row["last_error"] == "SmsDeliveryError: echo: PIN […]"


async def test_another_secret_key_cannot_open_a_pending_item(database):
    await outbox.enqueue_sms("+358400123456", PIN_TEXT)
    item = await OutboxItem.get()

    with pytest.raises(SealError):
        outbox.opened_text(item, secret_key="another-secret-key-" + "y" * 32)
    assert outbox.opened_text(item, secret_key=database.secret_key) == PIN_TEXT


async def test_sealed_text_moved_to_another_recipient_does_not_open(database):
    await outbox.enqueue_sms("+358400123456", PIN_TEXT)
    await outbox.enqueue_sms("+358400999999", "Sinetti PIN 111111")
    first, second = await OutboxItem.all().order_by("id")

    await OutboxItem.filter(id=second.id).update(text=first.text)  # an attacker's UPDATE
    moved = await OutboxItem.get(id=second.id)

    with pytest.raises(SealError):
        outbox.opened_text(moved)


async def test_item_sealed_with_a_replaced_secret_key_fails_at_once_and_is_cleared(
    database, portal_config
):
    other = create_app(
        {**portal_config, "secret_key": "the-old-secret-key-" + "z" * 32}, plugins=builtin_plugins()
    )
    async with other.app_context():
        await outbox.enqueue_sms("+358400123456", PIN_TEXT)
    gateway = RecordingSms()

    await outbox.deliver_due(RecordingMail(), gateway, max_attempts=5)

    item = await OutboxItem.get()
    assert gateway.sent == []
    assert (item.status, item.text) == (OutboxStatus.FAILED, "")
    assert "PORTAL_SECRET_KEY" in item.last_error
