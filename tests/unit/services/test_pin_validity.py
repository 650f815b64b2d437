"""A PIN lives from its delivery (issue 10, item 5): while its SMS waits for the gateway the PIN
cannot expire and the page says it is on its way, not that it was sent; once the gateway took
it, it is valid for the policy's ten minutes from then."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from portal.models import AccessCode, Channel, OutboxItem, OutboxStatus
from portal.services import access_codes
from portal.verification.base import Problem, Step

from ..helpers import eventually, newest_link, send_message, token_of
from .test_access_codes import RECIPIENT, SENDER, Pins

TEN_MINUTES = timedelta(minutes=10)
ISSUED = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def code() -> AccessCode:
    return AccessCode(created_at=ISSUED, expires_at=ISSUED + TEN_MINUTES, code_hash="x")


def item(status: OutboxStatus, sent_at: datetime | None = None) -> OutboxItem:
    return OutboxItem(channel=Channel.SMS, status=status, sent_at=sent_at)


def test_a_code_on_its_way_has_no_expiry_yet():
    assert access_codes.expiry(code(), item(OutboxStatus.PENDING), TEN_MINUTES) is None


def test_a_delivered_code_expires_its_validity_after_delivery():
    delivered = ISSUED + timedelta(minutes=42)

    ends = access_codes.expiry(code(), item(OutboxStatus.SENT, delivered), TEN_MINUTES)

    assert ends == delivered + TEN_MINUTES


def test_a_code_whose_delivery_failed_or_is_unknown_keeps_its_issue_expiry():
    for delivery in (item(OutboxStatus.FAILED), None):
        assert access_codes.expiry(code(), delivery, TEN_MINUTES) == ISSUED + TEN_MINUTES


# -- through the provider, the gateway down and up again ---------------------------------------


@pytest.fixture
async def pins(portal_app, client, sign_in, data_dir) -> Pins:
    """A PIN recipient of a message just sent, while nothing can be delivered (the dev
    mailbox, which takes the SMS too, cannot be written)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "devmailbox.jsonl").mkdir()
    await sign_in(SENDER)
    fields = {"recipients": f"{RECIPIENT}.0400123456.sec", "subject": "S", "body": "B"}
    await send_message(client, fields)
    return Pins(portal_app, client, token_of(await newest_link(client, RECIPIENT, "m")))


async def sms_tried() -> bool:
    return await OutboxItem.filter(channel=Channel.SMS).exclude(last_error="").exists()


async def gateway_back(data_dir) -> None:
    """The dev mailbox writable again; wait until the worker delivered the SMS."""
    (data_dir / "devmailbox.jsonl").rmdir()

    async def sent() -> bool:
        return await OutboxItem.exists(channel=Channel.SMS, status=OutboxStatus.SENT)

    assert await eventually(sent, timeout=10), "the SMS was not delivered"


async def test_a_waiting_pin_is_on_its_way_and_does_not_expire(pins, moved_clock):
    await pins.start()
    assert await eventually(sms_tried), "the worker did not try the SMS"

    waiting = await pins.show()
    moved_clock.advance(minutes=30)
    later = await pins.show()
    again = await pins.start()

    assert waiting.prompt is not None
    assert waiting.prompt.instructions == (
        "Your code is on its way. It is valid for 10 minutes from when it arrives."
    )
    assert "sent" not in waiting.prompt.instructions.lower()
    assert waiting.prompt.notice.startswith("Sending is delayed.")
    for outcome in (later, again):
        assert outcome.step is Step.CHALLENGE and not outcome.error
    assert await AccessCode.all().count() == 1  # no second SMS while the first waits


async def test_a_pin_delivered_late_is_valid_for_ten_minutes_from_delivery(
    pins, moved_clock, data_dir
):
    await pins.start()
    assert await eventually(sms_tried)
    moved_clock.advance(minutes=30)  # the gateway is down for longer than the validity
    await gateway_back(data_dir)
    pin = await pins.pin()
    delivered = await pins.show()

    moved_clock.advance(minutes=9, seconds=50)
    outcome = await pins.answer(pin)

    assert delivered.prompt is not None and "We sent a PIN code by SMS" in (
        delivered.prompt.instructions
    )
    assert outcome.step is Step.VERIFIED


async def test_a_late_pin_expires_ten_minutes_after_its_delivery(pins, moved_clock, data_dir):
    await pins.start()
    assert await eventually(sms_tried)
    moved_clock.advance(minutes=30)
    await gateway_back(data_dir)
    pin = await pins.pin()

    moved_clock.advance(minutes=10, seconds=1)
    outcome = await pins.answer(pin)

    assert (outcome.step, outcome.problem) == (Step.CHALLENGE, Problem.INVALID)
    assert "expired" in outcome.error
