"""portal.services.notifications: what recipients and senders receive by e-mail."""

from __future__ import annotations

import dataclasses
import re

import pytest

from portal.i18n import _, locale_context
from portal.models import OutboxItem
from portal.security import new_token
from portal.services import notifications
from portal.services.outbox import opened_html, opened_text

from ..helpers import send_message

ORGANISATION = {"fi": "Esimerkkivirasto", "sv": "Exempelverket", "en": "Example Agency"}


async def notification(app, default_locale: str = "fi", token: str = "T" * 43):
    settings = dataclasses.replace(
        app.extensions["sinetti"].settings, default_locale=default_locale
    )
    async with app.app_context():
        return await notifications.message_notification(
            settings, "ville@valtori.fi", "liisa@example.com", token
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
    key = client.app.extensions["sinetti"].settings.secret_key
    for item in items:
        mail = f"{item.subject}\n{opened_text(item, key)}\n{opened_html(item, key)}"
        for word in [*secret_words.values(), "verotiedot-virtanen"]:
            assert word not in mail
        assert "Virtanen" not in mail


async def test_html_part_escapes_the_sender_address(portal_app):
    settings = portal_app.app.extensions["sinetti"].settings
    async with portal_app.app.app_context():
        mail = await notifications.message_notification(
            settings, "ville@valtori.fi", '"<b>x</b>"@example.com', "T" * 43
        )

    assert "<b>x</b>" not in mail.html
