"""The SMS PIN gates under parallel requests: tries and the lock, one PIN per "Open message",
one PIN per resend cooldown, the daily cap.

Each test sends its own message to its own recipient and phone number; the sender signs in
once per test. The limits are small so that one burst reaches them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import random

import httpx

from portal.testing import new_recipient

from .helpers import (
    BURST,
    Browser,
    Site,
    at_once,
    audit_events,
    message_of_recipient,
    moment,
    new_phone,
    no_server_errors,
    path_of,
    sms_queued_for,
    statuses,
)

MAX_TRIES = 5
RESEND_SECONDS = 2
DAILY_LIMIT = 3
SETTINGS = {
    "PORTAL_PIN_MAX_TRIES": str(MAX_TRIES),
    "PORTAL_PIN_RESEND_SECONDS": str(RESEND_SECONDS),
    "PORTAL_PIN_DAILY_LIMIT": str(DAILY_LIMIT),
}
SETTLE = 3.0  # seconds for the outbox (polled every second) to send anything still queued
AFTER_COOLDOWN = RESEND_SECONDS + 0.5


@dataclasses.dataclass
class PinMessage:
    """A sent message whose one recipient opens it with an SMS PIN."""

    link: str  # http://…/m/<token>
    phone: str  # as the sender typed it, 040…
    recipient_id: int

    @property
    def path(self) -> str:
        return path_of(self.link)


async def _pin_message(site: Site, sender: tuple[Browser, str, str]) -> PinMessage:
    browser, _address, _link = sender
    address = new_recipient("pin")
    phone = new_phone()
    csrf = await browser.csrf("/compose")
    sent = await browser.compose(csrf, f"{address}.{phone}.sec")
    assert sent.status_code == 303, f"send: {sent.status_code}\n{sent.text[:800]}"
    link = await site.recipient_link(address)
    recipient_id = await site.db.value("SELECT id FROM recipient WHERE email = ?", address)
    return PinMessage(link, phone, int(recipient_id))


async def _recipient_state(site: Site, message: PinMessage) -> tuple[int, bool, bool]:
    """(failed_attempts, locked, opened) as the database has them."""
    failed, locked_at, opened_at = (
        await site.db.rows(
            "SELECT failed_attempts, locked_at, opened_at FROM recipient WHERE id = ?",
            message.recipient_id,
        )
    )[0]
    return int(failed), locked_at is not None, opened_at is not None


async def _codes(site: Site, message: PinMessage) -> list[tuple[object, ...]]:
    return await site.db.rows(
        "SELECT id, created_at FROM access_code WHERE recipient_id = ? ORDER BY created_at, id",
        message.recipient_id,
    )


async def _sms_count(site: Site, message: PinMessage) -> int:
    """SMS the gateway received for the number, after the outbox had time to send the rest."""
    await asyncio.sleep(SETTLE)
    return len(site.sms.to(message.phone))


async def _open(site: Site, browser: Browser, message: PinMessage) -> str:
    """Open message once; return the PIN the SMS brought."""
    before = len(site.sms.to(message.phone))
    opened = await browser.open_message(message.link)
    assert opened.status_code == 303, f"open: {opened.status_code}\n{opened.text[:800]}"
    await site.sms_to(message.phone, before + 1)
    return site.sms.pin(message.phone)


def _wrong_pins(pin: str, count: int) -> list[str]:
    return [str((int(pin) + step) % 10 ** len(pin)).zfill(len(pin)) for step in range(1, count + 1)]


async def _guess(browser: Browser, message: PinMessage, csrf: str, code: str) -> httpx.Response:
    return await browser.http.post(f"{message.path}/code", data={"code": code, "csrf_token": csrf})


async def test_parallel_pin_guesses_never_count_more_than_max_tries_and_never_open_after_lock(
    site: Site, sender: tuple[Browser, str, str], browsers: list[Browser]
) -> None:
    # A run of wrong guesses only: at most MAX_TRIES are counted, then the link is locked.
    message = await _pin_message(site, sender)
    browser = site.browser()
    browsers.append(browser)
    pin = await _open(site, browser, message)
    csrf = await browser.csrf(f"{message.path}/code")
    answers = await at_once(
        _guess(browser, message, csrf, code) for code in _wrong_pins(pin, BURST)
    )
    no_server_errors(answers)
    counted = statuses(answers)
    assert counted[400] <= MAX_TRIES, f"{counted[400]} wrong PINs were answered as checked"
    assert counted[400] + counted[403] == BURST, counted
    failed, locked, opened = await _recipient_state(site, message)
    assert failed <= MAX_TRIES
    assert locked and not opened

    # Once locked, even the right PIN, sent many times at once, opens nothing.
    answers = await at_once(_guess(browser, message, csrf, pin) for _ in range(BURST))
    no_server_errors(answers)
    assert statuses(answers) == {403: BURST}
    failed, locked, opened = await _recipient_state(site, message)
    assert locked and not opened and failed <= MAX_TRIES
    # The trail: each counted wrong guess once, the lock once (the sender is told once).
    events = await audit_events(site.db, await message_of_recipient(site.db, message.recipient_id))
    assert (events["pin_failed"], events["pin_locked"], events["opened"]) == (failed, 1, 0), events

    # The right PIN among a burst of wrong ones: it opens, or the lock came first; never both.
    message = await _pin_message(site, sender)
    browser = site.browser()
    browsers.append(browser)
    pin = await _open(site, browser, message)
    csrf = await browser.csrf(f"{message.path}/code")
    guesses = _wrong_pins(pin, BURST)
    right_at = random.randrange(BURST // 4, BURST // 2)
    guesses.insert(right_at, pin)
    answers = await at_once(_guess(browser, message, csrf, code) for code in guesses)
    no_server_errors(answers)
    counted = statuses(answers)
    assert counted[400] <= MAX_TRIES, f"{counted[400]} wrong PINs were answered as checked"
    assert counted[303] <= 1
    failed, locked, opened = await _recipient_state(site, message)
    assert not (locked and opened), "the message was opened although the link got locked"
    assert failed <= MAX_TRIES
    right = answers[right_at].status_code
    if opened:
        assert right == 303 and not locked
    else:
        assert right == 403 and locked, f"the right PIN got {right}, locked={locked}"
    events = await audit_events(site.db, await message_of_recipient(site.db, message.recipient_id))
    assert (events["pin_locked"], events["opened"]) == (int(locked), int(opened)), events


async def test_parallel_open_message_sends_exactly_one_pin(
    site: Site, sender: tuple[Browser, str, str], browsers: list[Browser]
) -> None:
    message = await _pin_message(site, sender)
    readers = [site.browser() for _ in range(6)]
    browsers.extend(readers)
    tokens = await asyncio.gather(*(reader.csrf(message.path) for reader in readers))
    answers = await at_once(
        readers[i % len(readers)].http.post(
            f"{message.path}/open", data={"csrf_token": tokens[i % len(readers)]}
        )
        for i in range(BURST)
    )
    no_server_errors(answers)
    assert len(await _codes(site, message)) == 1, "one PIN issued, however many opened at once"
    message_id = await message_of_recipient(site.db, message.recipient_id)
    assert await sms_queued_for(site.db, message_id) == 1
    await site.sms_to(message.phone)
    assert await _sms_count(site, message) == 1
    events = await audit_events(site.db, message_id)
    assert events["pin_sent"] == 1, events


async def _resend_burst(browsers: list[Browser], tokens: list[str], message: PinMessage) -> list:
    return await at_once(
        browsers[i % len(browsers)].http.post(
            f"{message.path}/code/resend", data={"csrf_token": tokens[i % len(browsers)]}
        )
        for i in range(BURST)
    )


async def test_parallel_resend_sends_at_most_one_pin_per_cooldown(
    site: Site, sender: tuple[Browser, str, str], browsers: list[Browser]
) -> None:
    message = await _pin_message(site, sender)
    readers = [site.browser() for _ in range(4)]
    browsers.extend(readers)
    await _open(site, readers[0], message)
    tokens = await asyncio.gather(*(r.csrf(f"{message.path}/code") for r in readers))
    await asyncio.sleep(AFTER_COOLDOWN)

    answers = await _resend_burst(readers, tokens, message)
    no_server_errors(answers)
    counted = statuses(answers)
    assert counted[200] + counted[429] == BURST, counted
    codes = await _codes(site, message)
    assert counted[200] >= 1, "the cooldown had passed: one resend goes through"
    assert len(codes) == 1 + counted[200], "each accepted resend issued one PIN, no more"
    times = [moment(created_at) for _id, created_at in codes]
    gaps = [(later - earlier).total_seconds() for earlier, later in itertools.pairwise(times)]
    assert all(gap >= RESEND_SECONDS for gap in gaps), f"PINs issued {gaps} s apart"
    assert await _sms_count(site, message) == len(codes)


async def test_daily_pin_cap_holds_under_parallel_resends(
    site: Site, sender: tuple[Browser, str, str], browsers: list[Browser]
) -> None:
    message = await _pin_message(site, sender)
    readers = [site.browser() for _ in range(4)]
    browsers.extend(readers)
    await _open(site, readers[0], message)
    tokens = await asyncio.gather(*(r.csrf(f"{message.path}/code") for r in readers))
    for _burst in range(DAILY_LIMIT):  # one more burst than the cap leaves room for
        await asyncio.sleep(AFTER_COOLDOWN)
        answers = await _resend_burst(readers, tokens, message)
        no_server_errors(answers)
        assert set(statuses(answers)) <= {200, 429}, statuses(answers)
    assert len(await _codes(site, message)) == DAILY_LIMIT
    assert await _sms_count(site, message) == DAILY_LIMIT
