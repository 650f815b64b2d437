"""The day a sent message (and a reply) will be deleted, on every page that shows it.

The expected day is computed here from the stored ``sent_at`` plus the configured
``PORTAL_RETENTION_DAYS``, in the portal's time zone and the page's language, with Babel
directly (not through the helper the pages use). Each page is checked with the default 30 days
and with 7, which proves the pages follow the setting.
"""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from babel.dates import format_date

from portal.models import Message

from ..helpers import (
    csrf_of,
    multipart,
    newest_link,
    page_text,
    press_open,
    row_where,
    send_message,
)

SENDER = "liisa@example.com"
READER = "ville@valtori.fi"
SUBJECT = "Hakemus 2026/31"
NOTICE_EN = "This message and its attachments will be deleted on "


@pytest.fixture(params=[None, 7], ids=["default-30-days", "7-days"])
def retention_days(request) -> int:
    """None: the setting left at its default (30 days)."""
    return request.param


@pytest.fixture
def portal_config(portal_config, retention_days):
    if retention_days is None:
        return portal_config
    return {**portal_config, "retention_days": retention_days}


@pytest.fixture
def days(retention_days) -> int:
    return 30 if retention_days is None else retention_days


def deletion_day(message: Message, days: int, locale: str) -> str:
    """``sent_at`` + ``days`` as a day in the portal's time zone (PORTAL_TIMEZONE's default)."""
    assert message.sent_at is not None
    local = (message.sent_at + timedelta(days=days)).astimezone(ZoneInfo("Europe/Helsinki"))
    return format_date(local, "long", locale=locale)


def the_other_setting(message: Message, days: int, locale: str) -> str:
    """The day the page would show if it ignored the setting (30 for 7, 7 for 30)."""
    return deletion_day(message, 7 if days == 30 else 30, locale)


@pytest.fixture
async def sent(client, sign_in) -> tuple[str, Message]:
    """The sender's browser sent a message to ``READER``: its confirmation path and row."""
    await sign_in(SENDER)
    await client.get("/compose?lang=en")
    fields = {"recipients": READER, "subject": SUBJECT, "body": "Hei!"}
    path = await send_message(client, fields, [("attachments", "a.txt", b"original")])
    return path, await row_where(client, Message, subject=SUBJECT)


@pytest.fixture
async def reader(portal_app, client, sent):
    """The recipient's browser with the message open; and the link."""
    link = await newest_link(client, READER, "m")
    browser = portal_app.test_client()
    assert (await press_open(browser, link)).status_code == 303
    return browser, link


async def test_confirmation_page_says_when_the_message_is_deleted_in_english(client, sent, days):
    path, message = sent

    html = await page_text(await client.get(path + "?lang=en"))

    assert NOTICE_EN + deletion_day(message, days, "en") + "." in html
    assert deletion_day(message, days, "en") != the_other_setting(message, days, "en")
    assert the_other_setting(message, days, "en") not in html


async def test_confirmation_page_writes_the_day_in_finnish(client, sent, days):
    path, message = sent

    html = await page_text(await client.get(path + "?lang=fi"))

    assert deletion_day(message, days, "fi") in html
    assert deletion_day(message, days, "en") not in html
    assert the_other_setting(message, days, "fi") not in html


@pytest.mark.parametrize("lang", ["en", "fi"])
async def test_status_page_lists_the_deletion_day_of_each_message(client, sent, days, lang):
    _path, message = sent

    html = await page_text(await client.get(f"/sent?lang={lang}"))

    assert deletion_day(message, days, lang) in html
    assert the_other_setting(message, days, lang) not in html
    if lang == "en":
        assert "Will be deleted on " + deletion_day(message, days, "en") in html


@pytest.mark.parametrize("lang", ["en", "fi"])
async def test_recipient_sees_when_the_message_is_deleted(sent, reader, days, lang):
    _path, message = sent
    browser, link = reader

    response = await browser.get(f"{link}?lang={lang}")

    assert response.status_code == 200
    html = await page_text(response)
    assert SUBJECT in html  # the message itself, not the landing page
    assert deletion_day(message, days, lang) in html
    assert the_other_setting(message, days, lang) not in html
    if lang == "en":
        assert NOTICE_EN + deletion_day(message, days, "en") + "." in html


@pytest.mark.parametrize("lang", ["en", "fi"])
async def test_original_sender_reading_a_reply_sees_the_replys_own_day(
    client, sent, reader, days, lang
):
    browser, link = reader
    csrf = await csrf_of(browser, link)
    body, content_type = multipart(
        [("csrf_token", csrf), ("body", "Kiitos."), ("action", "send")],
        [("attachments", "vastaus.txt", b"reply")],
    )
    replied = await browser.post(f"{link}/reply", data=body, headers={"Content-Type": content_type})
    assert replied.status_code == 303, await page_text(replied)
    reply = await Message.get(reply_to_id__isnull=False)
    # Sent three days before the original (as stored), so the reply's day and the original's
    # differ: the page must count from the reply's own sending.
    reply.sent_at = reply.sent_at - timedelta(days=3)
    await reply.save(update_fields=["sent_at"])
    original, _path = sent[1], sent[0]
    reply_link = await newest_link(client, SENDER, "m")
    assert (await press_open(client, reply_link)).status_code == 303

    html = await page_text(await client.get(f"{reply_link}?lang={lang}"))

    assert f"Re: {SUBJECT}" in html
    assert deletion_day(reply, days, lang) in html
    assert deletion_day(original, days, lang) not in html
    assert the_other_setting(reply, days, lang) not in html
    if lang == "en":
        assert NOTICE_EN + deletion_day(reply, days, "en") + "." in html
