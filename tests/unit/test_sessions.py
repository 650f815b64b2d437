"""Server-side sessions (issue 8, item 2): the cookie is a random id and nothing else; Cancel,
Close, the idle time, the absolute lifetime and the sweep end a session on the server, so a copy
of the cookie made before ("the attacker's copy", in a second test client) is dead afterwards;
the id and the CSRF token rotate at sign-in and when a recipient passes verification.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import re
from typing import Any

import pytest

from portal.models import Attachment, WebSession
from portal.services import housekeeping
from portal.testing import csrf_from

from .helpers import (
    csrf_of,
    newest_link,
    newest_pin,
    open_message,
    page_text,
    press_open,
    send_message,
    sign_in_with,
)

COOKIE = "sinetti_session"
SENDER = "liisa@example.com"
PLAIN = "ville@valtori.fi"  # opens with the link alone (``none``)
PHONE_RECIPIENT = "maija@example.fi"  # needs an SMS PIN (``.sec``)
PHONE = "+358400123456"
SUBJECT = "Hakemus 2024/17"
PDF = b"%PDF-1.7\n" + bytes(range(256)) * 8
FILES = [("attachments", "hakemus.pdf", PDF)]


# -- cookies -----------------------------------------------------------------------------------


def cookie_of(client: Any) -> str | None:
    """The value of the session cookie the client's jar holds now (None: it holds none)."""
    values = [cookie.value for cookie in client.cookie_jar if cookie.name == COOKIE]
    assert len(values) <= 1, values
    return values[0] if values else None


def browser_with(portal_app: Any, value: str) -> Any:
    """Another browser (a fresh test client) holding ``value`` as its session cookie: the
    attacker's copy of a cookie, or a forged one."""
    other = portal_app.test_client()
    # The test client's requests go to "localhost": a cookie for it is sent with every one.
    other.set_cookie("localhost", COOKIE, value)
    assert cookie_of(other) == value
    return other


def copy_of(portal_app: Any, client: Any) -> Any:
    value = cookie_of(client)
    assert value, "the client holds no session cookie to copy"
    return browser_with(portal_app, value)


def stored_hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


async def is_stored(value: str) -> bool:
    return await WebSession.filter(id_hash=stored_hash(value)).exists()


async def signed_in(client: Any) -> bool:
    """Whether the client's browser is signed in as a sender (the compose page opens)."""
    status = (await client.get("/compose")).status_code
    assert status in (200, 401), status
    return status == 200


def settings_of(portal_app: Any) -> Any:
    return portal_app.app.extensions["sinetti"].settings


# -- fixtures ----------------------------------------------------------------------------------


@pytest.fixture
async def sender(client: Any) -> Any:
    """The sender's browser, signed in."""
    await sign_in_with(client, SENDER)
    return client


@dataclasses.dataclass
class Sent:
    message_id: str
    plain: str  # the /m/ link of PLAIN
    phone: str  # the /m/ link of PHONE_RECIPIENT
    attachment: Attachment


@pytest.fixture
async def sent(sender: Any) -> Sent:
    """A message with an attachment to a ``none`` and a ``.sec`` (SMS PIN) recipient."""
    path = await send_message(
        sender,
        {
            "recipients": f"{PLAIN}, {PHONE_RECIPIENT}.0400123456.sec",
            "subject": SUBJECT,
            "body": "Hei,\nliitteenä hakemus.",
        },
        FILES,
    )
    message_id = path.rsplit("/", 1)[1]
    return Sent(
        message_id=message_id,
        plain=await newest_link(sender, PLAIN, "m"),
        phone=await newest_link(sender, PHONE_RECIPIENT, "m"),
        attachment=await Attachment.get(message_id=message_id),
    )


@pytest.fixture
def reader(portal_app: Any) -> Any:
    """The recipient's browser."""
    return portal_app.test_client()


async def open_with_pin(browser: Any, link: str) -> None:
    """Press Open message, then answer the SMS PIN: the message is open in ``browser``."""
    assert (await press_open(browser, link)).status_code == 303
    pin = await newest_pin(browser, PHONE)
    code_page = await page_text(await browser.get(f"{link}/code?lang=en"))
    answered = await browser.post(
        f"{link}/code", form={"csrf_token": csrf_from(code_page), "code": pin}
    )
    assert answered.status_code == 303, await page_text(answered)


async def open_as(browser: Any, sent: Sent, verification: str) -> str:
    """Open the message in ``browser`` with ``none`` or a PIN; the recipient's link."""
    if verification == "none":
        await open_message(browser, sent.plain)
        return sent.plain
    await open_with_pin(browser, sent.phone)
    return sent.phone


async def reads(browser: Any, link: str, sent: Sent) -> dict[str, bool]:
    """What ``browser`` can get of the message: the text, the attachment, the zip."""
    page = await browser.get(link + "?lang=en")
    attachment = await browser.get(f"{link}/attachments/{sent.attachment.id}")
    archive = await browser.get(f"{link}/zip")
    return {
        "message": page.status_code == 200 and SUBJECT in await page_text(page),
        "attachment": attachment.status_code == 200 and await attachment.get_data() == PDF,
        "zip": archive.status_code == 200,
    }


EVERYTHING = {"message": True, "attachment": True, "zip": True}
NOTHING = {"message": False, "attachment": False, "zip": False}


# -- a copy of the cookie is dead once the session ended ---------------------------------------


async def test_a_cookie_copied_before_cancel_is_refused_afterwards(portal_app, sender):
    value = cookie_of(sender) or ""
    copy = copy_of(portal_app, sender)
    assert await signed_in(copy)  # the copy works as long as the session lives

    cancelled = await sender.post("/compose/cancel", form={"csrf_token": await csrf_of(sender)})

    assert cancelled.status_code == 200
    refused = await copy.get("/compose?lang=en")
    assert refused.status_code == 401
    assert "Your session has ended" in await page_text(refused)
    assert not await signed_in(sender)
    assert not await is_stored(value)


@pytest.mark.parametrize("verification", ["none", "pin"])
async def test_a_cookie_copied_before_close_can_no_longer_read_or_download_the_message(
    portal_app, reader, sent, verification
):
    link = await open_as(reader, sent, verification)
    value = cookie_of(reader) or ""
    copy = copy_of(portal_app, reader)
    assert await reads(copy, link, sent) == EVERYTHING

    closed = await reader.post(f"{link}/close", form={"csrf_token": await csrf_of(reader, link)})

    assert closed.status_code == 200
    assert not await is_stored(value)  # the id is rotated: the copied one is gone
    assert cookie_of(reader) != value
    assert await reads(copy, link, sent) == NOTHING
    assert await reads(reader, link, sent) == NOTHING
    for suffix in (f"/attachments/{sent.attachment.id}", "/zip"):
        assert (await copy.get(link + suffix)).status_code == 401


async def test_a_cookie_copied_before_the_idle_time_is_refused_after_it(
    portal_app, sender, moved_clock
):
    idle = settings_of(portal_app).session_idle_minutes
    copy = copy_of(portal_app, sender)

    moved_clock.advance(minutes=idle - 1)
    assert await signed_in(copy)  # used in time: the idle time starts over
    moved_clock.advance(minutes=idle + 1)

    assert not await signed_in(copy)
    assert not await signed_in(sender)


async def test_a_session_used_every_few_minutes_still_ends_at_its_absolute_lifetime(
    portal_app, sender, moved_clock
):
    settings = settings_of(portal_app)
    idle, lifetime = settings.session_idle_minutes, settings.session_max_hours * 60
    step = idle // 2  # never idle: every step is well inside the idle time
    copy = copy_of(portal_app, sender)
    elapsed = 0
    while elapsed + step < lifetime:
        moved_clock.advance(minutes=step)
        elapsed += step
        assert await signed_in(sender), f"refused {elapsed} minutes after sign-in"
    assert elapsed >= lifetime - step

    moved_clock.advance(minutes=step + 1)  # past the lifetime, still inside the idle time

    assert step + 1 < idle
    assert not await signed_in(copy)
    assert not await signed_in(sender)


async def test_sweeping_removes_an_expired_session_and_keeps_a_live_one(
    portal_app, sender, moved_clock
):
    idle = settings_of(portal_app).session_idle_minutes
    value = cookie_of(sender)
    assert value and await is_stored(value)
    moved_clock.advance(minutes=idle + 1)
    other = portal_app.test_client()
    await sign_in_with(other, "toinen@example.com")  # signed in now: alive
    assert await is_stored(value)  # nobody used the old one since: still stored

    async with portal_app.app.app_context():
        cleaned = await housekeeping.clean_up(
            settings_of(portal_app), portal_app.app.extensions["sinetti"].providers.storage
        )

    assert cleaned.sessions == 1
    assert not await is_stored(value)
    assert await is_stored(cookie_of(other) or "")
    assert not await signed_in(copy_of(portal_app, sender))
    assert await signed_in(other)


# -- ids and CSRF tokens rotate ----------------------------------------------------------------


async def test_session_id_and_csrf_token_rotate_at_sign_in(portal_app, client):
    page = await client.get("/?lang=en")
    registered = await client.post(
        "/", form={"email": SENDER, "csrf_token": csrf_from(await page_text(page))}
    )
    assert registered.status_code == 200
    link = await newest_link(client, SENDER)
    continue_page = await page_text(await client.get(link))
    before, token_before = cookie_of(client), csrf_from(continue_page)
    assert before and await is_stored(before)

    signing_in = await client.post(link, form={"csrf_token": token_before})

    assert signing_in.status_code == 303
    after = cookie_of(client)
    assert after and after != before
    assert await signed_in(client)
    assert not await is_stored(before)
    assert not await signed_in(browser_with(portal_app, before))  # the old id is dead
    assert token_before != await csrf_of(client)
    refused = await client.post("/compose/cancel", form={"csrf_token": token_before})
    assert refused.status_code == 400
    assert await signed_in(client)  # the refused Cancel ended nothing


@pytest.mark.parametrize("verification", ["none", "pin"])
async def test_session_id_and_csrf_token_rotate_when_a_recipient_passes_verification(
    portal_app, reader, sent, verification
):
    link = sent.plain if verification == "none" else sent.phone
    token_before = csrf_from(await page_text(await reader.get(link + "?lang=en")))
    before = cookie_of(reader)
    assert before and await is_stored(before)

    await open_as(reader, sent, verification)

    after = cookie_of(reader)
    assert after and after != before
    assert await reads(reader, link, sent) == EVERYTHING
    assert not await is_stored(before)
    assert await reads(browser_with(portal_app, before), link, sent) == NOTHING
    stale = await reader.post(f"{link}/close", form={"csrf_token": token_before})
    assert stale.status_code == 400
    assert await reads(reader, link, sent) == EVERYTHING  # the refused Close ended nothing


# -- the cookie says nothing -------------------------------------------------------------------


def _decoded(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


async def test_the_cookie_is_a_short_random_id_that_decodes_to_nothing_readable(portal_app, sender):
    value = cookie_of(sender)
    assert value is not None
    token = await csrf_of(sender)
    sender_id = (await WebSession.get(id_hash=stored_hash(value))).data["sender_id"]

    assert re.fullmatch(r"[A-Za-z0-9_-]{32,64}", value), value  # no ".", no signed payload
    raw = _decoded(value)
    assert len(raw) == 32  # 256 random bits and nothing else
    with pytest.raises((UnicodeDecodeError, ValueError)):
        json.loads(raw)
    for secret in (SENDER, token, "sender_id", "csrf", f'"{sender_id}"'):
        assert secret.encode() not in raw and secret not in value
    assert _decoded(token) not in raw
    # Another sign-in of the same sender gets another, unrelated value.
    again = portal_app.test_client()
    await sign_in_with(again, SENDER)
    assert cookie_of(again) not in (None, value)


async def test_the_database_stores_only_the_sha256_of_the_session_id(portal_app, sender):
    value = cookie_of(sender)
    assert value is not None

    rows = await WebSession.all().values()

    assert [row["id_hash"] for row in rows if row["id_hash"] == stored_hash(value)]
    for row in rows:
        assert value not in json.dumps(row, default=str)


# -- unknown and forged cookies ----------------------------------------------------------------


FORGED = {
    "unknown": "A" * 43,
    "over_long": "A" * 101,
    "very_long": "x" * 3000,
    "old_signed_cookie": base64.urlsafe_b64encode(b'{"sender_id":1}').decode().rstrip("=")
    + ".Z0Zvcg.c2lnbmF0dXJl",
    "not_base64": "**not.base64~~!",
}


@pytest.mark.parametrize("kind", [*sorted(FORGED), "stored_hash"])
async def test_a_forged_or_unknown_cookie_is_an_anonymous_session(portal_app, sender, kind):
    value = FORGED.get(kind) or stored_hash(cookie_of(sender) or "")  # the row's key itself
    stranger = browser_with(portal_app, value)

    start = await stranger.get("/?lang=en")
    html = await page_text(start)

    assert start.status_code == 200
    assert "Signed in as" not in html and SENDER not in html
    assert cookie_of(stranger) != value
    assert not await signed_in(stranger)
    assert not await signed_in(browser_with(portal_app, value))
    assert await signed_in(sender)  # the real session is untouched


@pytest.mark.parametrize("path", ["/static/portal.css", "/static/portal.js", "/theme.css"])
async def test_static_files_for_an_anonymous_visitor_store_no_session(portal_app, path):
    visitor = portal_app.test_client()
    before = await WebSession.all().count()

    response = await visitor.get(path)

    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers
    assert cookie_of(visitor) is None
    assert await WebSession.all().count() == before


# -- who is signed in --------------------------------------------------------------------------


@pytest.mark.parametrize("page", ["/compose", "/sent", "/sent/<id>", "/help"])
async def test_the_signed_in_address_is_on_every_sender_page(sender, sent, page):
    path = page.replace("<id>", sent.message_id)

    response = await sender.get(path + "?lang=en")

    assert response.status_code == 200
    assert f"Signed in as {SENDER}" in await page_text(response)


async def test_the_start_page_of_an_anonymous_visitor_names_nobody(client, portal_app):
    await sign_in_with(portal_app.test_client(), SENDER)  # somebody else is signed in

    html = await page_text(await client.get("/?lang=en"))

    assert "Signed in as" not in html and SENDER not in html
