"""The development mailbox (plugins/devbox): mail transport and SMS gateway ``dev``."""

from __future__ import annotations

import dataclasses
import logging
import os
import stat

import pytest
from sinetti_devbox import (
    DevMailTransport,
    DevSmsGateway,
    loopback_base_url,
    mailbox_shown,
    read_mailbox,
)

from portal.mail.base import OutgoingMail

from ..helpers import eventually, page_text, plain_settings, sign_in_with


async def test_dev_transport_keeps_mail_in_the_mailbox_and_prints_it(tmp_path, capsys):
    await DevMailTransport(plain_settings(tmp_path), {}).send(
        OutgoingMail("ville@valtori.fi", "Aihe", "http://portal.test/m/abc", "<p>abc</p>")
    )
    await DevSmsGateway(plain_settings(tmp_path), {}).send("+358400123456", "PIN 1234")

    entries = read_mailbox(tmp_path)
    assert [(e["kind"], e["to"]) for e in entries] == [
        ("email", "ville@valtori.fi"),
        ("sms", "+358400123456"),
    ]
    assert (entries[0]["text"], entries[0]["html"]) == ("http://portal.test/m/abc", "<p>abc</p>")
    assert "development mailbox: sms to +358400123456" in capsys.readouterr().err


def test_empty_mailbox_is_empty(tmp_path):
    assert read_mailbox(tmp_path) == []


class TestOnLoopback:
    @pytest.fixture
    def portal_config(self, portal_config):
        return {**portal_config, "base_url": "http://127.0.0.1:8000"}

    async def test_mailbox_page_shows_what_was_sent_newest_first(self, portal_app, client):
        await sign_in_with(portal_app.test_client(), "first@example.com")
        await sign_in_with(portal_app.test_client(), "second@example.com")

        async def both_delivered():
            html = await page_text(await client.get("/dev/mailbox?lang=en"))
            return html if "first@example.com" in html and "second@example.com" in html else None

        html = await eventually(both_delivered)
        assert html, "the mailbox page does not list both mails"
        assert html.index("second@example.com") < html.index("first@example.com")
        assert 'href="http://127.0.0.1:8000/s/' in html

    async def test_start_up_tells_where_the_mailbox_is_without_alarm(self, caplog):
        messages = start_up_messages(caplog)

        assert not [m for m in messages if m.levelno >= logging.WARNING]


def start_up_messages(caplog) -> list[logging.LogRecord]:
    """What the devbox logged while the portal started (the ``portal_app`` fixture)."""
    return [r for r in caplog.get_records("setup") if r.name == "sinetti_devbox"]


class TestOnAnotherHost:
    """Mail ``dev`` selected by mistake on a portal that others reach: no page of links."""

    @pytest.fixture
    def portal_config(self, portal_config):
        return {**portal_config, "base_url": "https://viestit.example.fi"}

    async def test_mailbox_page_is_not_found(self, client):
        response = await client.get("/dev/mailbox")

        assert response.status_code == 404

    async def test_start_up_warns_that_the_mailbox_is_hidden(self, client, caplog):
        (record,) = start_up_messages(caplog)

        assert record.levelno == logging.WARNING
        assert "development mailbox page is hidden" in record.getMessage()
        assert "PORTAL_DEV_MAILBOX=true" in record.getMessage()


class TestExplicitlyExposed:
    @pytest.fixture
    def portal_config(self, portal_config):
        return {**portal_config, "base_url": "https://viestit.example.fi", "dev_mailbox": "true"}

    async def test_mailbox_page_is_served(self, client):
        response = await client.get("/dev/mailbox?lang=en")

        assert response.status_code == 200
        assert "Development mailbox" in await page_text(response)

    async def test_start_up_warns_loudly_that_the_mailbox_is_exposed(self, client, caplog):
        (record,) = start_up_messages(caplog)

        assert record.levelno == logging.WARNING
        assert "THE DEVELOPMENT MAILBOX IS EXPOSED" in record.getMessage()
        assert "https://viestit.example.fi/dev/mailbox" in record.getMessage()


@pytest.mark.parametrize(
    ("base_url", "loopback"),
    [
        ("http://127.0.0.1:8000", True),
        ("http://127.8.9.10", True),
        ("http://[::1]:8000/", True),
        ("http://localhost:8000", True),
        ("http://LOCALHOST.", True),
        ("http://portal.test", False),
        ("https://viestit.example.fi", False),
        ("http://10.0.0.5:8000", False),
        ("http://0.0.0.0:8000", False),
        ("http://localhost.example.fi", False),
        ("http://127.0.0.1.nip.io", False),
        ("http://[::ffff:8.8.8.8]", False),
    ],
)
def test_loopback_base_url(tmp_path, base_url, loopback):
    assert loopback_base_url(plain_settings(tmp_path, base_url=base_url)) is loopback


def test_mailbox_page_needs_mail_dev_even_when_exposed_explicitly(tmp_path):
    settings = plain_settings(tmp_path, base_url="http://127.0.0.1", dev_mailbox=True)

    assert mailbox_shown(settings)
    assert not mailbox_shown(dataclasses.replace(settings, mail="smtp"))


async def test_mailbox_file_is_readable_by_the_portal_only_even_under_a_lax_umask(tmp_path):
    data_dir = tmp_path / "data"
    previous = os.umask(0o022)
    try:
        await DevSmsGateway(plain_settings(data_dir), {}).send("+358400123456", "PIN 1234")
    finally:
        os.umask(previous)

    assert stat.S_IMODE(os.stat(data_dir / "devmailbox.jsonl").st_mode) == 0o600


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
