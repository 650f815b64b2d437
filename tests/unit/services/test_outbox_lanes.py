"""portal.services.outbox_lanes and the claims of portal.services.outbox: separate lanes for
e-mail and SMS, deliveries in parallel up to a limit, a timeout on each, and claims that last
one delivery (released at once, expiring soon after a crash)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sinetti_mail_smtp import SmtpTransport
from sinetti_sms_http import HttpSmsGateway

from portal.config import load_settings
from portal.context import portal
from portal.mail.base import MailTransport, OutgoingMail
from portal.models import Channel, OutboxItem, OutboxStatus
from portal.services import audit, clock, outbox, outbox_lanes
from portal.sms.base import SmsGateway
from portal.testing import SmsGatewayServer

from ..helpers import eventually
from .outbox_support import GatedMail, RecordingMail, RecordingSms, SilentServer

log = logging.getLogger(__name__)

PIN = ("+358401234567", "Sinetti PIN 480913")


@contextlib.asynccontextmanager
async def running_worker(
    mail: MailTransport, sms: SmsGateway, *, timeout_seconds: float = 30, concurrency: int = 4
) -> AsyncIterator[asyncio.Task[None]]:
    worker = asyncio.create_task(
        outbox_lanes.run_worker(
            mail,
            sms,
            poll_seconds=60,
            max_attempts=3,
            timeout_seconds=timeout_seconds,
            concurrency=concurrency,
        )
    )
    try:
        yield worker
    finally:
        worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await worker


async def test_a_hung_smtp_server_does_not_delay_an_sms_queued_after_the_mail(
    database, portal_config
):
    hung = SilentServer()
    port = await hung.start()
    gateway = SmsGatewayServer("gateway-token")
    gateway.start()
    settings = load_settings(override={**portal_config, "mail_from": "sinetti@portal.test"})
    smtp = SmtpTransport(settings, {"host": "127.0.0.1", "port": str(port), "timeout": "600"})
    sms = HttpSmsGateway(settings, {"url": gateway.url, "token": "gateway-token"})
    await sms.open()
    try:
        async with running_worker(smtp, sms, timeout_seconds=600):
            mail_item = await outbox.enqueue_mail(OutgoingMail("ville@valtori.fi", "Aihe", "t"))
            outbox.wake()

            async def mail_hangs() -> bool:
                return len(hung.connections) == 1

            assert await eventually(mail_hangs)  # the SMTP client waits for a greeting
            loop = asyncio.get_running_loop()
            queued_at = loop.time()
            await outbox.enqueue_sms(*PIN)
            outbox.wake()

            async def sms_delivered() -> bool:
                return await OutboxItem.exists(channel=Channel.SMS, status=OutboxStatus.SENT)

            assert await eventually(sms_delivered, timeout=10)
            log.info("SMS delivered %.3f s after it was queued", loop.time() - queued_at)
            (message,) = gateway.messages
            assert (message.to, message.text) == PIN
            mail_now = await OutboxItem.get(id=mail_item.id)
            # The mail is still being delivered: claimed, tried once, no outcome yet.
            assert mail_now.status is OutboxStatus.PENDING
            assert (mail_now.attempts, mail_now.last_error) == (1, "")
            assert mail_now.claimed_until is not None and mail_now.claimed_until > clock.now()
    finally:
        await sms.close()
        gateway.stop()
        await hung.stop()


async def test_deliveries_of_a_lane_run_in_parallel_up_to_the_limit(database):
    transport = GatedMail()
    for number in range(7):
        await outbox.enqueue_mail(OutgoingMail(f"p{number}@valtori.fi", "s", "t"))

    async with running_worker(transport, RecordingSms(), concurrency=3):
        outbox.wake()

        async def three_in_flight() -> bool:
            return transport.in_flight == 3

        assert await eventually(three_in_flight)
        await asyncio.sleep(0.2)  # time for a fourth to start, if the limit did not hold
        assert transport.in_flight == 3
        claimed = await OutboxItem.filter(claimed_until__isnull=False).count()
        assert claimed == 3  # the others wait unclaimed: another process may take them
        transport.release.set()

        async def all_sent() -> bool:
            return await OutboxItem.filter(status=OutboxStatus.SENT).count() == 7

        assert await eventually(all_sent)
    assert transport.most_in_flight == 3
    assert sorted(mail.to for mail in transport.sent) == sorted(
        f"p{number}@valtori.fi" for number in range(7)
    )


async def test_a_delivery_that_hangs_times_out_is_released_and_retried_later(database):
    await outbox.enqueue_mail(OutgoingMail("ville@valtori.fi", "Aihe", "t"))
    hanging = GatedMail()  # never released

    assert await outbox.deliver_due(hanging, RecordingSms(), max_attempts=3, timeout_seconds=1) == 0

    item = await OutboxItem.get()
    assert item.status is OutboxStatus.PENDING
    assert item.last_error == "TimeoutError: no answer within 1 s"
    assert (item.claimed_until, item.claim_token) == (None, None)
    assert item.next_attempt_at > clock.now()
    assert hanging.in_flight == 0  # the hung send was cancelled, not left running


async def test_a_claim_lasts_the_delivery_timeout_plus_a_margin(database):
    item = await outbox.enqueue_mail(OutgoingMail("ville@valtori.fi", "Aihe", "t"))
    before = clock.now()

    (claimed,) = await outbox.claim_due(list(Channel), 10, outbox.claim_time(45))

    assert claimed.id == item.id and claimed.claim_token
    assert claimed.attempts == 1
    margin = timedelta(seconds=45 + outbox.CLAIM_MARGIN_SECONDS)
    assert before + margin <= claimed.claimed_until <= clock.now() + margin
    assert await outbox.claim_due(list(Channel), 10, outbox.claim_time(45)) == []


async def test_a_claim_is_released_as_soon_as_the_delivery_ends(database):
    await outbox.enqueue_mail(OutgoingMail("ok@valtori.fi", "Aihe", "t"))
    await outbox.enqueue_sms(*PIN)
    failing_sms = RecordingSms([RuntimeError("gateway down")])

    await outbox.deliver_due(RecordingMail(), failing_sms, max_attempts=3)

    for item in await OutboxItem.all():
        assert (item.claimed_until, item.claim_token) == (None, None)


async def test_a_crashed_workers_claim_expires_after_timeout_and_margin(database, moved_clock):
    await outbox.enqueue_mail(OutgoingMail("ville@valtori.fi", "Aihe", "t"))
    (lost,) = await outbox.claim_due(list(Channel), 10, outbox.claim_time(30))  # then it dies
    transport = RecordingMail()

    moved_clock.advance(seconds=30 + outbox.CLAIM_MARGIN_SECONDS - 1)
    assert await outbox.deliver_due(transport, RecordingSms(), max_attempts=3) == 0
    moved_clock.advance(seconds=2)
    assert await outbox.deliver_due(transport, RecordingSms(), max_attempts=3) == 1

    item = await OutboxItem.get()
    assert (item.status, item.attempts) == (OutboxStatus.SENT, 2)
    assert transport.sent[0].message_id == lost.mail_message_id


async def test_a_worker_whose_claim_expired_cannot_overwrite_the_new_workers_outcome(
    database, moved_clock
):
    await outbox.enqueue_sms(*PIN)
    (slow,) = await outbox.claim_due([Channel.SMS], 10, outbox.claim_time(30))
    moved_clock.advance(minutes=2)
    (fresh,) = await outbox.claim_due([Channel.SMS], 10, outbox.claim_time(30))

    assert await outbox.deliver(fresh, RecordingMail(), RecordingSms(), max_attempts=3) == 1
    # The slow worker comes back with an error: it must not make the sent item pending again.
    await outbox.deliver(slow, RecordingMail(), RecordingSms([RuntimeError("late")]), 3)

    item = await OutboxItem.get()
    assert (item.status, item.last_error, item.attempts) == (OutboxStatus.SENT, "", 2)


async def test_each_lane_claims_only_its_own_channel(database):
    await outbox.enqueue_mail(OutgoingMail("ville@valtori.fi", "Aihe", "t"))
    await outbox.enqueue_sms(*PIN)

    (sms_item,) = await outbox.claim_due([Channel.SMS], 10, outbox.claim_time(30))
    (mail_item,) = await outbox.claim_due([Channel.EMAIL], 10, outbox.claim_time(30))

    assert (sms_item.channel, mail_item.channel) == (Channel.SMS, Channel.EMAIL)


async def test_a_wake_up_reaches_both_lanes(database):
    mail, sms = RecordingMail(), RecordingSms()
    portal().outbox_wake = asyncio.Event()
    async with running_worker(mail, sms):
        await asyncio.sleep(0.1)  # both lanes made their first round and sleep for 60 s
        await outbox.enqueue_mail(OutgoingMail("ville@valtori.fi", "Aihe", "t"))
        await outbox.enqueue_sms(*PIN)
        outbox.wake()

        async def both_sent() -> bool:
            return bool(mail.sent) and bool(sms.sent)

        assert await eventually(both_sent)


@pytest.mark.parametrize("concurrency", [1, 2])
async def test_every_item_is_delivered_once_by_two_workers_in_parallel(database, concurrency):
    for number in range(30):
        await outbox.enqueue_mail(OutgoingMail(f"p{number}@valtori.fi", "s", "t"))
        await outbox.enqueue_sms(f"+35840000{number:04d}", "PIN")
    mails = [RecordingMail(), RecordingMail()]
    gateways = [RecordingSms(), RecordingSms()]

    async with (
        running_worker(mails[0], gateways[0], concurrency=concurrency),
        running_worker(mails[1], gateways[1], concurrency=concurrency),
    ):
        outbox.wake()

        async def all_sent() -> bool:
            return await OutboxItem.filter(status=OutboxStatus.SENT).count() == 60

        assert await eventually(all_sent, timeout=20)

    addresses = [m.to for t in mails for m in t.sent] + [n for g in gateways for n, _ in g.sent]
    assert len(addresses) == len(set(addresses)) == 60


async def test_an_item_whose_deliveries_keep_killing_the_worker_ends_failed(database, moved_clock):
    await outbox.enqueue_mail(OutgoingMail("ville@valtori.fi", "Aihe", "t"))
    for _ in range(2):  # two workers claim it and die before they record anything
        assert await outbox.claim_due(list(Channel), 10, outbox.claim_time(30))
        moved_clock.advance(minutes=2)
    transport = RecordingMail()

    assert await outbox.deliver_due(transport, RecordingSms(), max_attempts=2) == 0

    item = await OutboxItem.get()
    assert transport.sent == []
    assert (item.status, item.attempts) == (OutboxStatus.FAILED, 3)
    assert item.last_error.startswith("gave up after 2 attempts")
    assert outbox.opened_text(item) == "t"  # kept sealed: `sinetti outbox retry` may help


async def test_claiming_no_items_claims_none(database):
    await outbox.enqueue_mail(OutgoingMail("ville@valtori.fi", "Aihe", "t"))

    assert await outbox.claim_due(list(Channel), 0, outbox.claim_time(30)) == []
    assert (await OutboxItem.get()).claimed_until is None


async def test_stopping_the_worker_while_it_records_a_delivery_waits_and_records_it(
    database, monkeypatch
):
    # The delivery happened: losing its record would send the mail again after a restart.
    recording, go_on = asyncio.Event(), asyncio.Event()
    record_delivery = audit.record_delivery

    async def slow_record_delivery(item: OutboxItem, delivered: bool) -> object:
        recording.set()
        await go_on.wait()
        return await record_delivery(item, delivered=delivered)

    monkeypatch.setattr(audit, "record_delivery", slow_record_delivery)
    await outbox.enqueue_mail(OutgoingMail("ville@valtori.fi", "Aihe", "t"))
    transport = RecordingMail()
    async with running_worker(transport, RecordingSms()) as worker:
        await asyncio.wait_for(recording.wait(), timeout=30)
        worker.cancel()
        stopped, _ = await asyncio.wait({worker}, timeout=0.5)
        assert not stopped, "the worker stopped in the middle of recording a delivery"
        go_on.set()
        with pytest.raises(asyncio.CancelledError):
            await worker

    item = await OutboxItem.get()
    assert (item.status, item.claim_token, len(transport.sent)) == (OutboxStatus.SENT, None, 1)
