"""The development mailbox (plugins/devbox): mail transport and SMS gateway ``dev``."""

from __future__ import annotations

import pytest
from sinetti_devbox import DevMailTransport, DevSmsGateway, read_mailbox

from portal.mail.base import OutgoingMail

from ..helpers import eventually, page_text, plain_settings, sign_in_with


async def test_dev_transport_keeps_mail_in_the_mailbox_and_prints_it(tmp_path, capsys):
    await DevMailTransport(plain_settings(tmp_path), {}).send(
        OutgoingMail("ville@valtori.fi", "Aihe", "http://portal.test/m/abc")
    )
    await DevSmsGateway(plain_settings(tmp_path), {}).send("+358400123456", "PIN 1234")

    entries = read_mailbox(tmp_path)
    assert [(e["kind"], e["to"]) for e in entries] == [
        ("email", "ville@valtori.fi"),
        ("sms", "+358400123456"),
    ]
    assert entries[0]["text"] == "http://portal.test/m/abc"
    assert "development mailbox: sms to +358400123456" in capsys.readouterr().err


def test_empty_mailbox_is_empty(tmp_path):
    assert read_mailbox(tmp_path) == []


async def test_mailbox_page_shows_what_was_sent_newest_first(portal_app, client):
    await sign_in_with(portal_app.test_client(), "first@example.com")
    await sign_in_with(portal_app.test_client(), "second@example.com")

    async def both_delivered():
        html = await page_text(await client.get("/dev/mailbox?lang=en"))
        return html if "first@example.com" in html and "second@example.com" in html else None

    html = await eventually(both_delivered)
    assert html, "the mailbox page does not list both mails"
    assert html.index("second@example.com") < html.index("first@example.com")
    assert 'href="http://portal.test/s/' in html


class TestWithSmtp:
    @pytest.fixture
    def portal_config(self, portal_config, smtp_server):
        return {
            **portal_config,
            "mail": "smtp",
            "plugin_options": {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(smtp_server.port)},
        }

    async def test_mailbox_page_does_not_exist_outside_development_mode(self, client):
        response = await client.get("/dev/mailbox")

        assert response.status_code == 404
