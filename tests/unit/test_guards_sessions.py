"""Guards of portal.sessions that mutation testing found unguarded: opening a message restarts
the session's absolute lifetime and forgets what an earlier opened message left in the session
(its reply draft), Close rotates the id whatever the session holds, and the sweep deletes a
session past its absolute lifetime however recently it was used."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

import pytest

from portal import sessions
from portal.models import Message, MessageStatus, Recipient, WebSession
from portal.services import clock

from .helpers import csrf_of, newest_link, page_text, post_compose, press_open, send_message

COOKIE = "sinetti_session"
SENDER = "liisa@example.com"
READER_A, READER_B = "ville@valtori.fi", "anna@valtori.fi"  # open with the link alone


def cookie_of(browser: Any) -> str:
    values = [cookie.value for cookie in browser.cookie_jar if cookie.name == COOKIE]
    assert len(values) == 1, values
    return str(values[0])


async def stored(browser: Any) -> WebSession | None:
    id_hash = hashlib.sha256(cookie_of(browser).encode()).hexdigest()
    return await WebSession.get_or_none(id_hash=id_hash)


async def plant(browser: Any, **data: Any) -> None:
    """Add ``data`` to the browser's stored session, as an earlier request would have."""
    row = await stored(browser)
    assert row is not None
    await WebSession.filter(id_hash=row.id_hash).update(data={**row.data, **data})


@pytest.fixture
async def links(client, sign_in) -> tuple[str, str]:
    """The /m/ links of two recipients who open with the link alone (two messages)."""
    await sign_in(SENDER)
    await send_message(client, {"recipients": READER_A, "subject": "A", "body": "A"})
    await send_message(client, {"recipients": READER_B, "subject": "B", "body": "B"})
    return await newest_link(client, READER_A, "m"), await newest_link(client, READER_B, "m")


@pytest.fixture
def reader(portal_app) -> Any:
    return portal_app.test_client()


async def test_opening_a_message_restarts_the_absolute_lifetime(reader, links, moved_clock):
    link_a, _link_b = links
    await reader.get(link_a + "?lang=en")  # the session starts here, before verification
    before = await stored(reader)
    assert before is not None
    moved_clock.advance(minutes=30)

    assert (await press_open(reader, link_a)).status_code == 303

    after = await stored(reader)
    assert after is not None
    assert after.created_at >= before.created_at + timedelta(minutes=30)


async def test_opening_another_message_forgets_the_reply_draft_of_the_first(reader, links):
    link_a, link_b = links
    assert (await press_open(reader, link_a)).status_code == 303
    await plant(reader, reply_draft_id="00000000-0000-4000-8000-000000000000")

    assert (await press_open(reader, link_b)).status_code == 303

    row = await stored(reader)
    assert row is not None
    assert "reply_draft_id" not in row.data
    assert row.data["recipient_id"] == (await Recipient.get(email=READER_B)).id


async def test_close_with_a_reply_draft_in_the_session_rotates_the_id(reader, links):
    link_a, _link_b = links
    assert (await press_open(reader, link_a)).status_code == 303
    await plant(reader, reply_draft_id="00000000-0000-4000-8000-000000000000")
    before = cookie_of(reader)

    closed = await reader.post(
        f"{link_a}/close", form={"csrf_token": await csrf_of(reader, link_a)}
    )

    assert closed.status_code == 200
    assert cookie_of(reader) != before
    id_hash = hashlib.sha256(before.encode()).hexdigest()
    assert not await WebSession.filter(id_hash=id_hash).exists()
    row = await stored(reader)
    assert row is None or not {"recipient_id", "reply_draft_id"} & set(row.data)


async def test_the_sweep_deletes_a_busy_session_past_its_absolute_lifetime(portal_app):
    settings = portal_app.app.extensions["sinetti"].settings
    now = clock.now()
    lifetime = timedelta(hours=settings.session_max_hours)
    await WebSession.create(
        id_hash="a" * 64, data={}, created_at=now - lifetime - timedelta(minutes=1), seen_at=now
    )
    await WebSession.create(
        id_hash="b" * 64, data={}, created_at=now - lifetime + timedelta(minutes=1), seen_at=now
    )

    assert await sessions.sweep(settings) == 1

    assert await WebSession.all().values_list("id_hash", flat=True) == ["b" * 64]


# -- the draft ids a session keeps (unit level: mutation testing found them unguarded) ------


@pytest.fixture
async def request_session(portal_app):
    """A request of the app, with its (server-side) session open."""
    async with portal_app.app.test_request_context("/compose"):
        yield


async def test_a_planned_draft_id_is_kept_for_the_next_request_that_only_reads(request_session):
    assert sessions.draft_id() is None  # reading plans nothing
    planned = sessions.draft_id(plan=True)

    assert planned is not None
    assert sessions.draft_id() == planned == sessions.draft_id(plan=True)


async def test_forgetting_a_draft_the_session_never_had_is_harmless(request_session):
    sessions.remember_draft(None)
    sessions.remember_reply_draft(None)

    assert sessions.draft_id() is None and sessions.reply_draft_id() is None


async def test_the_reply_draft_is_remembered_under_its_own_key(request_session):
    assert sessions.reply_draft_id() is None  # reading plans nothing
    sessions.remember_draft("sender-draft")

    sessions.remember_reply_draft("reply-draft")

    assert sessions.reply_draft_id() == "reply-draft"
    assert sessions.draft_id() == "sender-draft"


async def test_an_opened_recipient_that_is_not_a_number_opens_nothing(request_session):
    from quart import session

    session["recipient_id"] = "7"  # never written by the portal: no number, no recipient

    assert sessions.opened_recipient() is None
    session["recipient_id"] = 7
    assert sessions.opened_recipient() == 7


async def test_rotating_gives_a_new_csrf_token_and_keeps_the_absolute_lifetime(request_session):
    from quart import session

    session["csrf"] = "the-token-before"
    started = session.created_at

    await sessions.rotate()

    token = session["csrf"]
    assert isinstance(token, str) and len(token) >= 32 and token != "the-token-before"
    assert session.created_at == started  # only a sign-in (restart=True) starts it anew


async def test_another_sender_signing_in_in_the_same_browser_gets_no_draft_of_the_first(
    client, sign_in
):
    """Signing in again keeps the draft only for the same sender: a second person signing in
    at a shared computer starts afresh, and their files go into a draft of their own."""
    await sign_in(SENDER)
    first = await post_compose(
        client, {"action": "attach"}, [("attachments", "liisan.pdf", b"%PDF-1.7 L")]
    )
    assert first.status_code == 200

    await sign_in("matti@example.com")
    page = await page_text(await client.get("/compose?lang=en"))
    second = await post_compose(
        client, {"action": "attach"}, [("attachments", "matin.pdf", b"%PDF-1.7 M")]
    )

    assert "liisan.pdf" not in page
    assert second.status_code == 200
    drafts = await Message.filter(status=MessageStatus.DRAFT).prefetch_related("sender")
    assert sorted(draft.sender.email for draft in drafts) == [
        "liisa@example.com",
        "matti@example.com",
    ]
