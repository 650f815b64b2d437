"""portal.services.notifications: what recipients and senders receive by e-mail."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from babel.dates import format_date

from portal.i18n import _, locale_context
from portal.models import Message, OutboxItem
from portal.security import new_token
from portal.services import notifications

from ..helpers import (
    csrf_of,
    eventually,
    mail_content,
    multipart,
    newest_link,
    press_open,
    row_where,
    send_message,
    sign_in_delivered,
)

ORGANISATION = {"fi": "Esimerkkivirasto", "sv": "Exempelverket", "en": "Example Agency"}
#: 00:30 on 2 December in Helsinki: 30 days later is 1 January 2027 there, 31 December in UTC.
SENT_AT = datetime(2026, 12, 1, 22, 30, tzinfo=UTC)


async def notification(app, default_locale: str = "fi", token: str = "T" * 43):
    settings = dataclasses.replace(
        app.extensions["sinetti"].settings, default_locale=default_locale
    )
    async with app.app_context():
        return await notifications.message_notification(
            settings, "ville@valtori.fi", "liisa@example.com", token, sent_at=SENT_AT
        )


def html_languages(html: str) -> list[str]:
    return re.findall(r'<div lang="(\w\w)">', html)


@pytest.mark.parametrize(
    ("default", "order"),
    [("fi", ["fi", "sv", "en"]), ("sv", ["sv", "fi", "en"]), ("en", ["en", "fi", "sv"])],
)
async def test_notification_is_in_three_languages_default_first(portal_app, default, order):
    mail = await notification(portal_app.app, default)

    assert html_languages(mail.html) == order
    positions = [mail.text.index(ORGANISATION[locale]) for locale in order]
    assert positions == sorted(positions)
    subjects = []
    async with portal_app.app.app_context():  # the app's catalogs translate
        for locale in order:
            with locale_context(locale):
                subjects.append(_("Confidential message"))
                assert _("Open message") in mail.html
    assert mail.subject == " / ".join(subjects)


async def test_notification_carries_the_personal_link_and_the_organisation(portal_app):
    token = new_token()

    mail = await notification(portal_app.app, token=token)

    assert mail.to == "ville@valtori.fi"
    assert f"http://portal.test/m/{token}" in mail.text
    assert f'href="http://portal.test/m/{token}"' in mail.html
    assert "liisa@example.com" in mail.text
    for name in ORGANISATION.values():
        assert name in mail.text and name in mail.html


async def test_sent_notifications_hold_no_message_content(client, sign_in):
    await sign_in("liisa@example.com")
    secret_words = {
        "subject": "Verotarkastus Virtanen",
        "body": "Henkilötunnus 010101-123N ja tilinumero",
        "signature": "Allekirjoitus Salainen",
    }
    await send_message(
        client,
        {"recipients": "ville@valtori.fi, maija@example.fi", **secret_words},
        [("attachments", "verotiedot-virtanen.pdf", b"%PDF")],
    )

    items = await OutboxItem.filter(to_address__in=["ville@valtori.fi", "maija@example.fi"])
    assert len(items) == 2
    for item in items:
        text, html = await mail_content(client.app, item)
        assert "liisa@example.com" in text  # the real mail, not an empty one
        mail = f"{item.subject}\n{text}\n{html}"
        for word in [*secret_words.values(), "verotiedot-virtanen"]:
            assert word not in mail
        assert "Virtanen" not in mail


async def test_html_part_escapes_the_sender_address(portal_app):
    settings = portal_app.app.extensions["sinetti"].settings
    async with portal_app.app.app_context():
        mail = await notifications.message_notification(
            settings, "ville@valtori.fi", '"<b>x</b>"@example.com', "T" * 43, sent_at=SENT_AT
        )

    assert "<b>x</b>" not in mail.html


# -- the day the message is deleted ------------------------------------------------------------


def day_of(sent_at: datetime, days: int, locale: str) -> str:
    """``sent_at`` + ``days`` as a day in Helsinki (the portal's default time zone)."""
    local = (sent_at + timedelta(days=days)).astimezone(ZoneInfo("Europe/Helsinki"))
    return format_date(local, "long", locale=locale)


async def test_notification_says_until_when_the_message_opens_in_each_language(portal_app):
    mail = await notification(portal_app.app)

    assert "The message will be deleted on January 1, 2027; open it before then." in mail.text
    assert "The message will be deleted on January 1, 2027; open it before then." in mail.html
    for localised in ("1. tammikuuta 2027", "1 januari 2027"):  # fi, sv
        assert localised in mail.text and localised in mail.html
    assert "December 31, 2026" not in mail.text  # the portal's time zone, not UTC


async def test_notification_day_follows_the_retention_setting(portal_app):
    settings = dataclasses.replace(portal_app.app.extensions["sinetti"].settings, retention_days=7)
    async with portal_app.app.app_context():
        mail = await notifications.message_notification(
            settings, "ville@valtori.fi", "liisa@example.com", "T" * 43, sent_at=SENT_AT
        )

    assert "The message will be deleted on December 9, 2026; open it before then." in mail.text
    assert "9. joulukuuta 2026" in mail.html
    assert "January 1, 2027" not in mail.text


class TestSentWithSevenDays:
    """Mails of a real Send with ``PORTAL_RETENTION_DAYS=7``: the day counts from the stored
    ``sent_at``."""

    @pytest.fixture
    def portal_config(self, portal_config):
        return {**portal_config, "retention_days": 7}

    async def test_recipients_notification_and_senders_receipt_name_the_day(self, client, sign_in):
        await sign_in("liisa@example.com")
        await client.get("/compose?lang=en")
        await send_message(client, {"recipients": "ville@valtori.fi", "subject": "S", "body": "B"})
        sent_at = (await row_where(client, Message, subject="S")).sent_at

        notified = await OutboxItem.get(to_address="ville@valtori.fi")
        notice, _html = await mail_content(client.app, notified)
        assert (
            f"The message will be deleted on {day_of(sent_at, 7, 'en')}; open it before then."
            in notice
        )
        assert day_of(sent_at, 7, "fi") in notice and day_of(sent_at, 7, "sv") in notice
        assert day_of(sent_at, 30, "en") not in notice
        item = await OutboxItem.filter(to_address="liisa@example.com").order_by("-id").first()
        receipt, receipt_html = await mail_content(client.app, item)
        assert (
            "Your message and its attachments will be deleted from the portal on "
            f"{day_of(sent_at, 7, 'en')}."
        ) in receipt
        assert day_of(sent_at, 7, "en") in receipt_html

    async def test_reply_notification_names_the_replys_own_day(self, portal_app, client, sign_in):
        await sign_in("liisa@example.com")
        await client.get("/compose?lang=en")
        await send_message(client, {"recipients": "ville@valtori.fi", "subject": "S", "body": "B"})
        link = await newest_link(client, "ville@valtori.fi", "m")
        reader = portal_app.test_client()
        await press_open(reader, link)
        body, content_type = multipart(
            [("csrf_token", await csrf_of(reader, link)), ("body", "Kiitos"), ("action", "send")]
        )
        response = await reader.post(
            f"{link}/reply", data=body, headers={"Content-Type": content_type}
        )
        assert response.status_code == 303
        reply = await Message.get(reply_to_id__isnull=False).prefetch_related("recipients")
        item = await OutboxItem.get(id=reply.recipients[0].notification_id)

        text, html = await mail_content(client.app, item)

        assert "Reply to your confidential message" in item.subject
        assert (
            f"The message will be deleted on {day_of(reply.sent_at, 7, 'en')}; open it before then."
            in text
        )
        assert day_of(reply.sent_at, 7, "fi") in html


class TestDeliveredOverSmtp:
    @pytest.fixture
    def portal_config(self, portal_config, smtp_server):
        return {
            **portal_config,
            "retention_days": 7,
            "mail": "smtp",
            "mail_from": "sinetti@portal.test",
            "plugin_options": {
                "SMTP_HOST": "127.0.0.1",
                "SMTP_PORT": str(smtp_server.port),
                "SMTP_TIMEOUT": "5",
            },
        }

    async def test_delivered_notification_names_the_day_in_text_and_html(self, client, smtp_server):
        await sign_in_delivered(
            client,
            "liisa@example.com",
            lambda: [m.text() for m in smtp_server.to("liisa@example.com")],
        )
        await send_message(client, {"recipients": "ville@valtori.fi", "subject": "S", "body": "B"})
        sent_at = (await row_where(client, Message, subject="S")).sent_at

        async def delivered():
            return smtp_server.to("ville@valtori.fi")

        (mail,) = await eventually(delivered)

        for locale in ("fi", "sv", "en"):
            assert day_of(sent_at, 7, locale) in mail.text()
            assert day_of(sent_at, 7, locale) in mail.html()
        assert (
            f"The message will be deleted on {day_of(sent_at, 7, 'en')}; open it before then."
            in mail.text()
        )
