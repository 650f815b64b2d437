"""Guards of portal.services.access_codes that mutation testing found unguarded: the lock read
inside the recipient's guard (not from a stale object, never another recipient's), the exact
expiry and resend instants, the try that locks, the resend cooldown after a used code and the
strength of a new code, the daily limit, and the texts the pages show (in English: a changed
msgid is not found in the catalog and shows as it is). Each test fails when its guard is
dropped or moved by one."""

from __future__ import annotations

from typing import Any

import pytest

from portal import events
from portal.context import portal
from portal.i18n import locale_context
from portal.models import AccessCode, AuditEvent, OutboxItem, Recipient
from portal.services import access, access_codes, clock
from portal.services.outbox import opened_text
from portal.verification.base import Outcome, Problem, Step

from .helpers import newest_link, send_message, token_of

SENDER = "liisa@example.com"
READER_A, READER_B = "maija@example.fi", "ville@example.fi"
PINS = ("111111", "222222", "333333", "444444", "555555", "666666")


@pytest.fixture
def known_pins(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Each new code is the next of ``PINS`` (so a test knows it without reading the SMS)."""
    issued: list[str] = []
    codes = iter(PINS)

    def next_code(length: int) -> str:
        issued.append(next(codes))
        return issued[-1]

    monkeypatch.setattr(access_codes, "new_code", next_code)
    return issued


class Reader:
    """One PIN recipient, driven through the ``sms-pin`` provider as the recipient pages do."""

    def __init__(self, portal_app: Any, token: str) -> None:
        self.app = portal_app.app
        self.token = token
        self.loaded: Recipient | None = None  # the object a request loaded, kept as it was

    async def fresh(self) -> Recipient:
        async with self.app.app_context():  # its phone number opens with the message's key
            found = await access.find(self.token)
        assert found is not None
        return found

    async def call(self, method: str, *args: str, stale: bool = False) -> Outcome:
        recipient = self.loaded if stale and self.loaded else await self.fresh()
        self.loaded = recipient
        async with self.app.app_context():
            with locale_context("en"):
                provider = portal().providers.verification["sms-pin"]
                return await getattr(provider, method)(recipient, *args)

    async def codes(self) -> int:
        return await AccessCode.filter(recipient_id=(await self.fresh()).id).count()

    async def lock(self) -> None:
        await Recipient.filter(id=(await self.fresh()).id).update(locked_at=clock.now())


@pytest.fixture
async def readers(portal_app, client, sign_in, known_pins) -> tuple[Reader, Reader]:
    """Two PIN recipients of one message."""
    await sign_in(SENDER)
    recipients = f"{READER_A}.0400123456.sec, {READER_B}.0401234567.sec"
    await send_message(client, {"recipients": recipients, "subject": "S", "body": "B"})
    return (
        Reader(portal_app, token_of(await newest_link(client, READER_A, "m"))),
        Reader(portal_app, token_of(await newest_link(client, READER_B, "m"))),
    )


# -- the lock ----------------------------------------------------------------------------------


async def test_a_link_locked_meanwhile_refuses_the_right_pin_given_with_a_stale_recipient(
    readers, known_pins
):
    a, _b = readers
    await a.call("start", "fi")
    stale = a.loaded
    assert stale is not None and stale.locked_at is None
    await a.lock()  # another request locked it after this one loaded the recipient

    outcome = await a.call("answer", known_pins[0], stale=True)

    assert outcome.step is Step.LOCKED
    assert stale.locked_at is not None  # the caller's object learns of the lock
    assert (await a.fresh()).opened_at is None
    assert not await AccessCode.filter(used_at__isnull=False).exists()


async def test_a_locked_link_sends_no_code_on_open_or_resend(readers, frozen):
    a, _b = readers
    await a.lock()

    assert (await a.call("start", "fi")).step is Step.LOCKED
    frozen.advance(minutes=5)
    assert (await a.call("resend", "fi")).step is Step.LOCKED
    assert await a.codes() == 0


async def test_another_recipients_lock_does_not_lock_this_link(readers, known_pins):
    a, b = readers
    await b.lock()

    started = await a.call("start", "fi")
    opened = await a.call("answer", known_pins[0])

    assert started.step is Step.CHALLENGE
    assert opened.step is Step.VERIFIED
    assert a.loaded is not None and a.loaded.locked_at is None


async def test_an_unlocked_recipient_object_is_not_marked_locked(readers):
    a, _b = readers

    await a.call("start", "fi")

    assert a.loaded is not None and a.loaded.locked_at is None


async def test_the_last_wrong_try_locks_and_the_one_before_does_not(readers, known_pins):
    a, _b = readers
    await a.call("start", "fi")
    max_tries = 5
    for _ in range(max_tries - 1):
        assert (await a.call("answer", "999999")).step is Step.CHALLENGE

    assert (await a.fresh()).locked_at is None  # one try is still left
    last = await a.call("answer", "999999")

    assert last.step is Step.LOCKED
    assert (await a.fresh()).locked_at is not None


async def test_the_right_pin_after_all_but_one_wrong_tries_still_opens(readers, known_pins):
    a, _b = readers
    await a.call("start", "fi")
    for _ in range(4):
        await a.call("answer", "999999")

    assert (await a.call("answer", known_pins[0])).step is Step.VERIFIED


async def test_the_lock_event_names_the_locked_recipient(readers, monkeypatch):
    a, _b = readers
    fired: list[tuple[str, dict[str, Any]]] = []
    emit = events.emit

    async def recording(name: str, **kwargs: Any) -> None:
        fired.append((name, kwargs))
        await emit(name, **kwargs)

    monkeypatch.setattr(events, "emit", recording)
    await a.call("start", "fi")
    for _ in range(5):
        await a.call("answer", "999999")

    locked = [kwargs for name, kwargs in fired if name == "link_locked"]
    assert len(locked) == 1
    assert locked[0]["recipient"].id == (await a.fresh()).id


async def test_each_wrong_pin_is_on_its_messages_trail_with_the_tries_left(readers):
    """The sender's history shows every failed try of their message (the trail is read by
    message), with how many were left: a trail without them would hide an attack."""
    a, _b = readers
    await a.call("start", "fi")
    for _ in range(2):
        await a.call("answer", "999999")
    recipient = await a.fresh()

    failed = await AuditEvent.filter(event="pin_failed").order_by("id")

    assert [event.message_id for event in failed] == [recipient.message_id] * 2
    assert [event.detail["tries_left"] for event in failed] == [4, 3]
    assert {event.actor for event in failed} == {f"recipient {recipient.id}"}


# -- expiry at its exact instant ---------------------------------------------------------------


async def delivered(reader: Reader) -> None:
    """Wait for the outbox to deliver the reader's newest PIN (its validity starts then; the
    frozen clock makes that the instant it was issued)."""
    from portal.models import OutboxItem, OutboxStatus

    from .helpers import eventually

    recipient = await reader.fresh()
    code = await AccessCode.filter(recipient_id=recipient.id).order_by("-id").first()
    assert code is not None and code.delivery_id is not None

    async def sent() -> bool:
        return await OutboxItem.exists(id=code.delivery_id, status=OutboxStatus.SENT)

    assert await eventually(sent), "the PIN SMS was not delivered"


async def test_a_pin_is_expired_at_the_exact_instant_of_its_expiry(readers, frozen, known_pins):
    a, _b = readers
    await a.call("start", "fi")
    await delivered(a)
    frozen.advance(minutes=10)  # the default validity: now == expires_at

    outcome = await a.call("answer", known_pins[0])

    assert outcome.step is Step.CHALLENGE and outcome.problem is Problem.INVALID
    assert "expired" in outcome.error
    assert (await a.fresh()).opened_at is None
    assert "expired" in (await a.call("show")).error  # the page says so too


async def test_a_pin_opens_a_microsecond_before_its_expiry(readers, frozen, known_pins):
    a, _b = readers
    await a.call("start", "fi")
    frozen.advance(minutes=10, microseconds=-1)

    assert not (await a.call("show")).error
    assert (await a.call("answer", known_pins[0])).step is Step.VERIFIED


async def test_open_sends_a_new_pin_at_the_exact_instant_the_old_one_expires(readers, frozen):
    a, _b = readers
    await a.call("start", "fi")
    await delivered(a)
    frozen.advance(minutes=10, microseconds=-1)
    await a.call("start", "fi")
    assert await a.codes() == 1  # still usable: no second SMS

    frozen.advance(microseconds=1)
    await a.call("start", "fi")

    assert await a.codes() == 2


async def test_a_new_challenge_carries_no_notice(readers):
    a, _b = readers

    outcome = await a.call("start", "fi")

    assert outcome.prompt is not None and outcome.prompt.notice == ""


async def test_a_wrong_answer_carries_no_notice_of_a_new_code(readers):
    a, _b = readers
    await a.call("start", "fi")

    outcome = await a.call("answer", "999999")

    assert outcome.prompt is not None and outcome.prompt.notice == ""


async def test_the_pin_sms_belongs_to_its_message(readers):
    """The SMS carrying a PIN names its message, so its delivery (or failure) goes to that
    message's trail and the sender's page."""
    a, b = readers
    await a.call("start", "fi")
    await b.call("start", "fi")

    for reader in (a, b):
        recipient = await reader.fresh()
        code = await AccessCode.get(recipient_id=recipient.id)
        sms = await OutboxItem.get(id=code.delivery_id)
        assert sms.message_ref == recipient.message_id


# -- resending ---------------------------------------------------------------------------------


async def test_resend_is_refused_until_the_exact_end_of_the_cooldown(readers, frozen):
    a, _b = readers
    await a.call("start", "fi")
    frozen.advance(seconds=59, microseconds=500_000)

    early = await a.call("resend", "fi")

    assert early.problem is Problem.TOO_SOON
    assert "1 second" in early.error
    assert await a.codes() == 1
    frozen.advance(microseconds=500_000)  # exactly resend_after later

    on_time = await a.call("resend", "fi")

    assert on_time.problem is Problem.NONE
    assert on_time.prompt is not None and on_time.prompt.notice == "A new code has been sent."
    assert await a.codes() == 2


async def test_a_resent_code_speaks_the_language_of_the_page_that_asked(
    portal_app, readers, frozen
):
    a, _b = readers
    await a.call("start", "fi")
    frozen.advance(seconds=60)

    await a.call("resend", "sv")

    newest = await OutboxItem.filter(channel="sms").order_by("-id").first()
    assert newest is not None
    async with portal_app.app.app_context():
        text = opened_text(newest)
    assert "din PIN-kod är" in text


async def test_resend_says_the_seconds_left_rounded_up(readers, frozen):
    a, _b = readers
    await a.call("start", "fi")
    frozen.advance(seconds=30)

    refused = await a.call("resend", "fi")

    assert "in 31 seconds" in refused.error


async def test_resend_right_after_a_used_pin_still_waits_for_the_cooldown(
    readers, frozen, known_pins
):
    a, _b = readers
    await a.call("start", "fi")
    assert (await a.call("answer", known_pins[0])).step is Step.VERIFIED
    frozen.advance(seconds=10)

    refused = await a.call("resend", "fi")

    assert refused.problem is Problem.TOO_SOON
    assert await a.codes() == 1


async def test_resend_before_any_pin_sends_the_first(readers):
    a, _b = readers

    outcome = await a.call("resend", "fi")

    assert outcome.step is Step.CHALLENGE and outcome.problem is Problem.NONE
    assert await a.codes() == 1


# -- the code itself ---------------------------------------------------------------------------


def test_new_codes_use_the_whole_range_of_their_digits():
    codes = [access_codes.new_code(6) for _ in range(200)]

    assert all(len(code) == 6 and code.isdigit() for code in codes)
    # Two hundred draws below 500000 would happen once in 2**200 runs.
    assert max(int(code) for code in codes) >= 500_000
    assert len(set(codes)) > 150


# -- what the pages say (the msgid is the catalog's key: a changed one shows untranslated) ------


async def test_the_page_before_any_pin_starts_over(readers):
    a, _b = readers

    assert (await a.call("show")).step is Step.START_OVER


async def test_an_empty_answer_asks_for_the_code_and_counts_no_try(readers):
    a, _b = readers
    await a.call("start", "fi")

    outcome = await a.call("answer", " - ")

    assert (outcome.problem, outcome.error) == (Problem.INVALID, "Enter the code.")
    assert (await a.fresh()).failed_attempts == 0


async def test_wrong_answers_say_how_many_tries_are_left(readers):
    a, _b = readers
    await a.call("start", "fi")

    errors = [(await a.call("answer", "999999")).error for _ in range(4)]

    assert errors[0] == "The code is wrong. You have 4 tries left."
    assert errors[-1] == "The code is wrong. You have 1 try left."


async def test_an_expired_pin_says_so_in_full(readers, frozen, known_pins):
    a, _b = readers
    await a.call("start", "fi")
    await delivered(a)
    frozen.advance(minutes=10)

    outcome = await a.call("answer", known_pins[0])

    assert outcome.error == "The code has expired. Ask for a new one with the button below."


async def test_resend_a_second_early_says_one_second(readers, frozen):
    a, _b = readers
    await a.call("start", "fi")
    frozen.advance(seconds=59, microseconds=500_000)

    refused = await a.call("resend", "fi")

    assert refused.error == "You can ask for a new code in 1 second."


async def test_the_daily_limit_refuses_the_next_pin_and_says_so(readers, frozen, monkeypatch):
    a, _b = readers
    monkeypatch.setattr(access_codes, "new_code", lambda length: "1" * length)
    daily_limit = 10
    await a.call("start", "fi")
    for _ in range(daily_limit - 1):
        frozen.advance(seconds=60)
        assert (await a.call("resend", "fi")).problem is Problem.NONE
    frozen.advance(seconds=60)

    refused = await a.call("resend", "fi")

    assert (refused.step, refused.problem) == (Step.REFUSED, Problem.LIMIT)
    assert refused.error == (
        "Too many codes have been requested for this message today. Try again tomorrow, "
        "or contact the sender."
    )
    assert await a.codes() == daily_limit
