"""Failed outbox items stay visible and can be queued again (portal.services.outbox_admin,
``sinetti outbox retry``), and ``sinetti outbox --json`` tells operators how the queue does."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest

from portal import db
from portal.cli import main
from portal.config import load_settings
from portal.mail.base import MailDeliveryError, OutgoingMail
from portal.models import Channel, OutboxItem, OutboxStatus
from portal.services import clock, outbox, outbox_admin
from portal.services.sealing import Sealer
from portal.sms.base import SmsDeliveryError

from .outbox_support import RecordingMail, RecordingSms

MAIL = OutgoingMail("ville@valtori.fi", "Aihe", "Avaa viesti")


async def fail_for_good(item: OutboxItem, moved_clock) -> None:
    """Let ``item`` use up its 2 attempts against a transport that is down."""
    down = RecordingMail([MailDeliveryError("down")] * 2)
    gateway_down = RecordingSms([SmsDeliveryError("down")] * 2)
    for _ in range(2):
        await outbox.deliver_due(down, gateway_down, max_attempts=2)
        moved_clock.advance(hours=2)
    assert (await OutboxItem.get(id=item.id)).status is OutboxStatus.FAILED


async def test_an_item_that_ran_out_of_attempts_is_delivered_after_a_retry(database, moved_clock):
    item = await outbox.enqueue_mail(MAIL)
    await fail_for_good(item, moved_clock)
    transport = RecordingMail()
    assert await outbox.deliver_due(transport, RecordingSms(), max_attempts=2) == 0

    assert await outbox_admin.retry([item.id]) == [item.id]
    queued = await OutboxItem.get(id=item.id)
    assert (queued.status, queued.attempts) == (OutboxStatus.PENDING, 0)
    assert await outbox.deliver_due(transport, RecordingSms(), max_attempts=2) == 1

    (sent,) = transport.sent
    assert (sent.to, sent.text, sent.message_id) == (MAIL.to, MAIL.text, item.mail_message_id)
    assert (await OutboxItem.get(id=item.id)).status is OutboxStatus.SENT


async def test_a_retried_item_gets_all_its_attempts_again(database, moved_clock):
    item = await outbox.enqueue_sms("+358401234567", "PIN 480913")
    await fail_for_good(item, moved_clock)
    await outbox_admin.retry([item.id])

    await outbox.deliver_due(RecordingMail(), RecordingSms([SmsDeliveryError("still")]), 2)

    again = await OutboxItem.get(id=item.id)
    assert (again.status, again.attempts) == (OutboxStatus.PENDING, 1)


async def test_retry_all_queues_every_failed_item_and_nothing_else(database, moved_clock):
    first = await outbox.enqueue_mail(MAIL)
    second = await outbox.enqueue_sms("+358401234567", "PIN 480913")
    await fail_for_good(first, moved_clock)
    await fail_for_good(second, moved_clock)
    waiting = await outbox.enqueue_mail(OutgoingMail("maija@valtori.fi", "Aihe", "t"))

    assert await outbox_admin.retry() == [first.id, second.id]

    assert await outbox_admin.retry() == []  # a second run has nothing left to queue
    assert (await OutboxItem.get(id=waiting.id)).attempts == 0


async def test_an_item_whose_text_is_gone_cannot_be_retried(database, moved_clock):
    item = await outbox.enqueue_mail(MAIL)
    await OutboxItem.filter(id=item.id).update(status=OutboxStatus.FAILED, text="")

    assert await outbox_admin.retry([item.id]) == []
    assert (await OutboxItem.get(id=item.id)).status is OutboxStatus.FAILED


async def test_a_pending_or_sent_item_is_not_touched_by_retry(database):
    pending = await outbox.enqueue_mail(MAIL)
    await OutboxItem.filter(id=pending.id).update(attempts=3)

    assert await outbox_admin.retry([pending.id]) == []
    assert (await OutboxItem.get(id=pending.id)).attempts == 3


async def test_report_counts_per_lane_and_the_oldest_pending_age(database, moved_clock):
    await outbox.enqueue_mail(MAIL)
    moved_clock.advance(seconds=30)
    await outbox.enqueue_sms("+358401234567", "PIN 480913")
    failed = await outbox.enqueue_mail(OutgoingMail("maija@valtori.fi", "Aihe", "t"))
    await OutboxItem.filter(id=failed.id).update(status=OutboxStatus.FAILED)
    moved_clock.advance(seconds=90)

    report = await outbox_admin.report()

    assert (report["pending"], report["sent"], report["failed"]) == (2, 0, 1)
    assert report["oldest_pending_seconds"] == 120
    assert report["lanes"]["email"] == {
        "held": 0,
        "pending": 1,
        "sent": 0,
        "failed": 1,
        "oldest_pending_seconds": 120,
    }
    assert report["lanes"]["sms"] == {
        "held": 0,
        "pending": 1,
        "sent": 0,
        "failed": 0,
        "oldest_pending_seconds": 90,
    }


async def test_report_of_an_empty_outbox_has_no_oldest_age(database):
    report = await outbox_admin.report()

    assert report["oldest_pending_seconds"] is None
    assert report["lanes"]["sms"]["oldest_pending_seconds"] is None


async def test_purge_forgets_ended_items_but_not_pending_ones(database, moved_clock):
    sent = await outbox.enqueue_mail(MAIL)
    pending = await outbox.enqueue_sms("+358401234567", "PIN 480913")
    await OutboxItem.filter(id=sent.id).update(status=OutboxStatus.SENT, text="")
    moved_clock.advance(days=31)

    assert await outbox_admin.purge_ended(clock.now() - timedelta(days=30)) == 1

    assert [item.id for item in await OutboxItem.all()] == [pending.id]


# -- the command ------------------------------------------------------------------------------

pytestmark = pytest.mark.usefixtures("restore_umask")  # ``main`` sets the process's umask


def seed(items: list[dict]) -> list[int]:
    """Rows in the database of ``PORTAL_DATA_DIR`` (made by ``sinetti migrate``)."""

    async def run() -> list[int]:
        await db.connect(load_settings())
        try:
            created = []
            for fields in items:
                created.append(
                    await OutboxItem.create(
                        **{
                            "to_address": "ville@valtori.fi",
                            "text": "sealed:v1:xyz",
                            "next_attempt_at": clock.now(),
                            "created_at": clock.now(),
                            **fields,
                        }
                    )
                )
            return [item.id for item in created]
        finally:
            await db.close()

    return asyncio.run(run())


def statuses() -> dict[int, tuple[str, int]]:
    async def run() -> dict[int, tuple[str, int]]:
        await db.connect(load_settings())
        try:
            return {i.id: (i.status.value, i.attempts) for i in await OutboxItem.all()}
        finally:
            await db.close()

    return asyncio.run(run())


@pytest.fixture
def data_dir_env(tmp_path, monkeypatch):
    monkeypatch.setenv("PORTAL_DATA_DIR", str(tmp_path))
    assert main(["migrate"]) == 0


def test_outbox_json_prints_counts_per_lane_and_the_oldest_age(data_dir_env, capsys):
    seed(
        [
            {"channel": Channel.EMAIL, "created_at": clock.now() - timedelta(minutes=10)},
            {"channel": Channel.SMS, "status": OutboxStatus.FAILED},
        ]
    )
    capsys.readouterr()

    assert main(["outbox", "--json"]) == 0

    report = json.loads(capsys.readouterr().out)
    assert (report["pending"], report["failed"]) == (1, 1)
    assert 600 <= report["oldest_pending_seconds"] < 660
    assert report["lanes"]["sms"]["failed"] == 1 and report["lanes"]["email"]["pending"] == 1


def test_outbox_lists_the_failed_items_and_which_can_be_retried(data_dir_env, capsys):
    number = Sealer(load_settings().secret_key).seal("+358401234567", outbox.ADDRESS_CONTEXT)
    seed(
        [
            {
                "channel": Channel.SMS,
                "to_address": number,
                "status": OutboxStatus.FAILED,
                "last_error": "gw down",
            },
            {"channel": Channel.EMAIL, "status": OutboxStatus.FAILED, "text": ""},
        ]
    )
    capsys.readouterr()

    assert main(["outbox"]) == 0

    out = capsys.readouterr().out
    assert "failed: 2 (email 1, sms 1)" in out
    assert "failed #1 sms to •••• 567: gw down" in out  # the number sealed, shown masked
    assert "failed #2 email to ville@valtori.fi (cannot be retried)" in out


def test_outbox_retry_ids_queues_those_and_names_what_it_could_not(data_dir_env, capsys):
    failed, other, cleared = seed(
        [
            {"channel": Channel.EMAIL, "status": OutboxStatus.FAILED, "attempts": 12},
            {"channel": Channel.SMS, "status": OutboxStatus.FAILED, "attempts": 12},
            {"channel": Channel.EMAIL, "status": OutboxStatus.FAILED, "text": ""},
        ]
    )
    capsys.readouterr()

    assert main(["outbox", "retry", str(failed), str(cleared), "999"]) == 1

    out, err = capsys.readouterr()
    assert f"Queued again: #{failed}" in out
    assert f"#{cleared}: not a failed item that can be retried" in err and "#999:" in err
    assert statuses() == {failed: ("pending", 0), other: ("failed", 12), cleared: ("failed", 0)}


def test_outbox_retry_all_queues_every_failed_item(data_dir_env, capsys):
    ids = seed([{"channel": c, "status": OutboxStatus.FAILED, "attempts": 3} for c in Channel])

    assert main(["outbox", "retry", "--all"]) == 0

    assert statuses() == {item_id: ("pending", 0) for item_id in ids}
    assert main(["outbox", "retry", "--all"]) == 0
    assert "Nothing to retry." in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["outbox", "retry"], ["outbox", "retry", "--all", "1"]])
def test_outbox_retry_needs_either_all_or_ids(data_dir_env, capsys, argv):
    assert main(argv) == 2

    assert "give --all or the IDs" in capsys.readouterr().err
