"""portal.services.access_codes: the one-time PIN of the ``sms-pin`` provider, from issue to
lock, driven the way the recipient pages drive it (and through them where the page decides)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from portal import models
from portal.app import create_app
from portal.config import ConfigError
from portal.context import portal
from portal.i18n import locale_context
from portal.models import AccessCode, Channel, OutboxItem, OutboxStatus, Recipient
from portal.services import access, access_codes, outbox
from portal.testing import builtin_plugins, csrf_from
from portal.verification.base import CodePolicy, Outcome, Problem, Step

from ..helpers import (
    all_sms_delivered,
    delivered_sms,
    eventually,
    newest_link,
    newest_pin,
    page_text,
    queued_mails_to,
    send_message,
    token_of,
    wrong_code,
)

SENDER = "liisa@example.com"
RECIPIENT = "maija@example.fi"
PHONE = "+358400123456"  # what the sender typed as .0400123456.sec
SUBJECT = "Verotarkastus 2024/17"
BODY = "Luottamuksellinen sisältö: tilinumero FI21 1234 5600 0007 85"
SMS_TEXT = "%(organisation)s: your PIN code is %(pin)s. It is valid for %(minutes)d minutes."


class Pins:
    """Drives the ``sms-pin`` provider of the app as the recipient pages do (texts in English)."""

    def __init__(self, portal_app, client, token: str) -> None:
        self.app = portal_app.app
        self.client = client
        self.token = token

    async def recipient(self) -> Recipient:
        async with self.app.app_context():  # its phone number opens with the message's key
            found = await access.find(self.token)
        assert found is not None
        return found

    async def _call(self, method: str, *args: str) -> Outcome:
        async with self.app.app_context():
            with locale_context("en"):
                provider = portal().providers.verification["sms-pin"]
                return await getattr(provider, method)(await self.recipient(), *args)

    async def start(self, locale: str = "fi") -> Outcome:
        return await self._call("start", locale)

    async def show(self) -> Outcome:
        return await self._call("show")

    async def answer(self, text: str) -> Outcome:
        return await self._call("answer", text)

    async def resend(self, locale: str = "fi") -> Outcome:
        return await self._call("resend", locale)

    async def pin(self, count: int = 1, length: int = 6) -> str:
        return await newest_pin(self.client, PHONE, count, length)

    async def code_hash(self, pin: str) -> str:
        async with self.app.app_context():
            return access_codes.code_hash((await self.recipient()).id, pin)


async def sms_items() -> int:
    return await OutboxItem.filter(channel=Channel.SMS).count()


@pytest.fixture
async def token(client, sign_in) -> str:
    """The personal link token of a phone-verified recipient of a message just sent."""
    await sign_in(SENDER)
    await client.get("/compose?lang=en")
    fields = {"recipients": f"{RECIPIENT}.0400123456.sec", "subject": SUBJECT, "body": BODY}
    await send_message(client, fields)
    return token_of(await newest_link(client, RECIPIENT, "m"))


@pytest.fixture
def pins(portal_app, client, token) -> Pins:
    return Pins(portal_app, client, token)


# -- the code and what is stored of it -----------------------------------------------------


async def test_pin_is_six_digits_and_only_its_hmac_is_stored(pins):
    outcome = await pins.start()

    assert outcome.step is Step.CHALLENGE and not outcome.error
    pin = await pins.pin()
    assert re.fullmatch(r"\d{6}", pin)
    stored = await AccessCode.get()
    assert stored.code_hash == await pins.code_hash(pin)
    assert re.fullmatch(r"[0-9a-f]{64}", stored.code_hash)


async def test_no_row_holds_the_pin_once_the_sms_is_delivered(pins):
    await pins.start()
    pin = await pins.pin()

    async def delivered() -> bool:
        return await OutboxItem.filter(channel=Channel.SMS, status=OutboxStatus.SENT).exists()

    assert await eventually(delivered)
    for name in models.__all__:
        model = getattr(models, name)
        if not hasattr(model, "all"):
            continue  # an enum
        for row in await model.all().values():
            for column, value in row.items():
                if isinstance(value, str) and not column.endswith("_hash"):
                    assert pin not in value, f"{name}.{column} holds the PIN"


async def test_sms_goes_to_the_e164_number_with_the_pin_and_organisation_only(pins, portal_app):
    await pins.start()
    pin = await pins.pin()

    (text,) = delivered_sms(pins.client, PHONE)
    organisation = portal_app.app.extensions["sinetti"].providers.theme.text("organisation", "fi")
    queued = await OutboxItem.get(channel=Channel.SMS)
    # Sealed while it waits, only the number's end once delivered (as it is by now, or soon).
    assert PHONE not in queued.to_address
    secret_key = portal_app.app.extensions["sinetti"].settings.secret_key
    assert outbox.address_of(queued, secret_key) in (PHONE, "•••• 456")
    assert pin in text and organisation in text
    for secret in (SUBJECT, "Verotarkastus", BODY, "FI21", SENDER):
        assert secret not in text


async def recipient_opens(portal_app, token: str, query: str = "", **headers: str) -> str:
    """A recipient's browser presses Open message; the SMS text that it caused."""
    browser = portal_app.test_client()
    landing = await browser.get(f"/m/{token}{query}", headers=headers)
    csrf = csrf_from(await page_text(landing))
    response = await browser.post(f"/m/{token}/open", form={"csrf_token": csrf}, headers=headers)
    assert response.status_code == 303
    pin = await newest_pin(browser, PHONE)
    (text,) = delivered_sms(browser, PHONE)
    return text.replace(pin, "<pin>")


def expected_sms(portal_app, locale: str, minutes: int = 10) -> str:
    portal = portal_app.app.extensions["sinetti"]
    theme = portal.providers.theme
    # The app's own catalog of the plugin's domain: the SMS is translated by it, in the app's
    # context.
    return portal.translations["verification-basic"][locale].ugettext(SMS_TEXT) % {
        "organisation": theme.text("organisation", locale),
        "pin": "<pin>",
        "minutes": minutes,
    }


async def test_sms_is_in_the_agency_default_language_not_the_browsers(portal_app, token):
    text = await recipient_opens(portal_app, token, **{"Accept-Language": "sv-SE,sv;q=0.9"})

    assert text == expected_sms(portal_app, "fi")
    assert text != expected_sms(portal_app, "sv") and text != expected_sms(portal_app, "en")


async def test_sms_is_in_the_language_the_recipient_chose(portal_app, token):
    text = await recipient_opens(portal_app, token, "?lang=sv")

    assert text == expected_sms(portal_app, "sv")
    assert text != expected_sms(portal_app, "fi")


async def test_provider_writes_the_sms_in_the_locale_it_is_given(pins, portal_app):
    await pins.start(locale="en")
    pin = await pins.pin()

    (text,) = delivered_sms(pins.client, PHONE)
    assert text.replace(pin, "<pin>") == expected_sms(portal_app, "en")


# -- answering -------------------------------------------------------------------------------


async def test_pin_still_opens_just_before_ten_minutes(pins, moved_clock):
    await pins.start()
    pin = await pins.pin()

    moved_clock.advance(minutes=9, seconds=58)

    assert (await pins.answer(pin)).step is Step.VERIFIED


async def test_expired_pin_is_refused_with_400_and_not_counted_as_a_try(pins, moved_clock):
    await pins.start()
    pin = await pins.pin()
    await all_sms_delivered()  # the gateway has it; its validity starts once that is recorded
    moved_clock.advance(minutes=10, seconds=1)

    outcome = await pins.answer(pin)

    assert outcome.step is Step.CHALLENGE
    assert outcome.problem is Problem.INVALID
    assert "expired" in outcome.error
    recipient = await pins.recipient()
    assert recipient.failed_attempts == 0
    assert recipient.opened_at is None
    shown = await pins.show()
    assert shown.problem is Problem.NONE and "expired" in shown.error


async def test_wrong_pin_counts_and_says_how_many_tries_are_left(pins):
    await pins.start()
    pin = await pins.pin()

    outcomes = [await pins.answer(wrong_code(pin)) for _ in range(4)]

    assert [o.problem for o in outcomes] == [Problem.INVALID] * 4
    assert [o.step for o in outcomes] == [Step.CHALLENGE] * 4
    assert "4 tries left" in outcomes[0].error
    assert "3 tries left" in outcomes[1].error
    assert "1 try left" in outcomes[3].error
    assert (await pins.recipient()).failed_attempts == 4


async def test_five_wrong_pins_lock_the_link_and_tell_the_sender_once(pins):
    await pins.start()
    pin = await pins.pin()
    mails_before = len(await queued_mails_to(SENDER))

    outcomes = [await pins.answer(wrong_code(pin)) for _ in range(5)]

    assert [o.step for o in outcomes] == [Step.CHALLENGE] * 4 + [Step.LOCKED]
    assert outcomes[-1].step is Step.LOCKED
    recipient = await pins.recipient()
    assert recipient.locked_at is not None
    mails = await queued_mails_to(SENDER)
    assert len(mails) == mails_before + 1
    assert mails[-1].subject == "A recipient could not open your message"  # the message's en

    sixth = await pins.answer(wrong_code(pin))

    assert sixth.step is Step.LOCKED
    assert len(await queued_mails_to(SENDER)) == mails_before + 1
    assert (await pins.recipient()).locked_at == recipient.locked_at


async def test_right_pin_resets_the_count_of_wrong_ones(pins):
    await pins.start()
    pin = await pins.pin()
    await pins.answer(wrong_code(pin))
    await pins.answer(wrong_code(pin))
    assert (await pins.recipient()).failed_attempts == 2

    outcome = await pins.answer(pin)

    assert outcome.step is Step.VERIFIED
    assert (await pins.recipient()).failed_attempts == 0
    assert (await AccessCode.get()).used_at is not None


async def test_spaces_and_dashes_typed_in_the_pin_are_forgiven(pins):
    await pins.start()
    pin = await pins.pin()

    outcome = await pins.answer(f" {pin[:3]} - {pin[3:]}\t")

    assert outcome.step is Step.VERIFIED


async def test_empty_answer_asks_for_the_code_without_counting(pins):
    await pins.start()
    await pins.pin()

    outcome = await pins.answer(" - ")

    assert outcome.problem is Problem.INVALID and outcome.error
    assert (await pins.recipient()).failed_attempts == 0


async def test_used_pin_cannot_be_used_twice(pins):
    await pins.start()
    pin = await pins.pin()
    assert (await pins.answer(pin)).step is Step.VERIFIED

    again = await pins.answer(pin)

    assert again.step is Step.START_OVER


async def test_pin_of_one_recipient_does_not_open_for_another(pins, client, portal_app):
    await pins.start()
    pin = await pins.pin()
    await send_message(client, {"recipients": "ville@example.fi.0400999888.sec", "subject": "S"})
    other = Pins(portal_app, client, token_of(await newest_link(client, "ville@example.fi", "m")))
    await other.start()

    assert (await other.answer(pin)).problem is Problem.INVALID


# -- sending again ---------------------------------------------------------------------------


async def test_only_the_newest_pin_is_valid_after_a_resend(pins, moved_clock):
    await pins.start()
    first = await pins.pin()
    moved_clock.advance(seconds=61)

    resent = await pins.resend()

    assert resent.step is Step.CHALLENGE and not resent.error
    assert resent.prompt is not None and resent.prompt.notice == "A new code has been sent."
    second = await pins.pin(count=2)
    assert first != second
    assert (await pins.answer(first)).problem is Problem.INVALID
    assert (await pins.answer(second)).step is Step.VERIFIED


async def test_resend_waits_sixty_seconds_and_says_how_long(pins, moved_clock):
    await pins.start()

    refused = await pins.resend()

    assert refused.step is Step.CHALLENGE and refused.problem is Problem.TOO_SOON
    seconds = int(re.search(r"in (\d+) seconds", refused.error).group(1))
    assert 55 <= seconds <= 60
    moved_clock.advance(seconds=30)
    later = int(re.search(r"in (\d+) seconds", (await pins.resend()).error).group(1))
    assert 25 <= later <= 31
    assert await sms_items() == 1

    moved_clock.advance(seconds=31)

    assert (await pins.resend()).problem is Problem.NONE
    assert await sms_items() == 2


async def test_daily_limit_refuses_the_eleventh_pin_with_429(pins, moved_clock):
    await pins.start()
    for _day in range(9):
        moved_clock.advance(seconds=61)
        assert (await pins.resend()).problem is Problem.NONE
    assert await sms_items() == 10
    moved_clock.advance(seconds=61)

    refused = await pins.resend()

    assert refused.step is Step.REFUSED and refused.problem is Problem.LIMIT
    assert "today" in refused.error
    await all_sms_delivered()
    moved_clock.advance(minutes=11)  # the last PIN expired: Open message would send one
    assert (await pins.start()).step is Step.REFUSED
    assert await sms_items() == 10

    moved_clock.advance(hours=24)

    assert (await pins.resend()).step is Step.CHALLENGE
    assert await sms_items() == 11


async def test_start_sends_no_second_sms_while_a_pin_can_be_used(pins, moved_clock):
    first = await pins.start()
    again = await pins.start()

    assert first.step is again.step is Step.CHALLENGE
    assert not again.error
    assert await sms_items() == 1

    await all_sms_delivered()
    moved_clock.advance(minutes=10, seconds=1)
    await pins.start()

    assert await sms_items() == 2


async def test_start_after_a_successful_open_sends_a_new_pin(pins):
    await pins.start()
    assert (await pins.answer(await pins.pin())).step is Step.VERIFIED

    await pins.start()

    assert await sms_items() == 2
    assert await AccessCode.filter(used_at__isnull=True).count() == 1


# -- settings --------------------------------------------------------------------------------


def test_pin_settings_change_the_policy(portal_config):
    options = {
        "PIN_LENGTH": "8",
        "PIN_VALID_MINUTES": "3",
        "PIN_MAX_TRIES": "2",
        "PIN_RESEND_SECONDS": "5",
        "PIN_DAILY_LIMIT": "4",
    }

    app = create_app({**portal_config, "plugin_options": options}, plugins=builtin_plugins())

    policy = app.extensions["sinetti"].providers.verification["sms-pin"].policy
    assert policy == CodePolicy(
        length=8,
        valid=timedelta(minutes=3),
        max_tries=2,
        resend_after=timedelta(seconds=5),
        daily_limit=4,
    )


def test_default_policy_is_six_digits_ten_minutes_five_tries(portal_config):
    app = create_app(portal_config, plugins=builtin_plugins())

    policy = app.extensions["sinetti"].providers.verification["sms-pin"].policy
    assert (policy.length, policy.valid, policy.max_tries) == (6, timedelta(minutes=10), 5)
    assert (policy.resend_after, policy.daily_limit) == (timedelta(seconds=60), 10)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PIN_LENGTH", "x"),
        ("PIN_LENGTH", "3"),
        ("PIN_LENGTH", "13"),
        ("PIN_VALID_MINUTES", "0"),
        ("PIN_MAX_TRIES", "-1"),
        ("PIN_RESEND_SECONDS", "1.5"),
        ("PIN_DAILY_LIMIT", ""),
        ("PIN_LENTGH", "6"),
    ],
)
def test_bad_pin_setting_stops_start_up_naming_the_variable(portal_config, name, value):
    config = {**portal_config, "plugin_options": {name: value}}

    with pytest.raises(ConfigError, match=f"PORTAL_{name}"):
        create_app(config, plugins=builtin_plugins())


class TestShortPins:
    @pytest.fixture
    def portal_config(self, portal_config):
        options = {"PIN_LENGTH": "4", "PIN_MAX_TRIES": "2", "PIN_VALID_MINUTES": "2"}
        return {**portal_config, "plugin_options": options}

    async def test_settings_shape_the_pin_its_expiry_and_the_lock(self, pins, portal_app):
        await pins.start()
        pin = await pins.pin(length=4)
        assert re.fullmatch(r"\d{4}", pin)
        (text,) = delivered_sms(pins.client, PHONE)
        assert text.replace(pin, "<pin>") == expected_sms(portal_app, "fi", minutes=2)

        first = await pins.answer(wrong_code(pin))
        assert "1 try left" in first.error
        assert (await pins.answer(wrong_code(pin))).step is Step.LOCKED

    async def test_pin_expires_after_the_set_minutes(self, pins, moved_clock):
        await pins.start()
        pin = await pins.pin(length=4)
        moved_clock.advance(minutes=2, seconds=1)

        assert "expired" in (await pins.answer(pin)).error
