"""The ``smtp`` mail transport (plugins/mail_smtp) against a real SMTP server on loopback."""

from __future__ import annotations

import pytest
from aiosmtpd.controller import Controller
from sinetti_mail_smtp import SmtpTransport, build_message

from portal.app import create_app
from portal.config import ConfigError
from portal.mail.base import MailDeliveryError, OutgoingMail
from portal.testing import builtin_plugins, free_port

from ..helpers import plain_settings

MAIL = OutgoingMail(
    to="ville@valtori.fi",
    subject="Salassa pidettävä viesti / Sekretessbelagt meddelande",
    text="Avaa viesti: http://portal.test/m/abc\n",
    html="<p><a href='http://portal.test/m/abc'>Avaa</a></p>",
)


def transport(tmp_path, **options: str) -> SmtpTransport:
    return SmtpTransport(plain_settings(tmp_path, mail_from="sinetti@portal.test"), options)


async def test_mail_arrives_with_text_and_html_parts(tmp_path, smtp_server):
    smtp = transport(tmp_path, host=smtp_server.host, port=str(smtp_server.port))

    await smtp.send(MAIL)

    (captured,) = smtp_server.to("ville@valtori.fi")
    assert captured.mail_from == "sinetti@portal.test"
    assert captured.message["Subject"] == MAIL.subject
    assert captured.message["Auto-Submitted"] == "auto-generated"
    assert captured.message["Message-ID"].endswith("@portal.test>")
    assert captured.text().replace("\r\n", "\n") == MAIL.text
    assert "http://portal.test/m/abc" in captured.html()


def test_text_only_mail_has_no_html_part():
    message = build_message(OutgoingMail("a@b.fi", "s", "only text"), "from@portal.test")

    assert message.get_content_type() == "text/plain"


async def test_server_down_is_a_temporary_error(tmp_path):
    smtp = transport(tmp_path, host="127.0.0.1", port=str(free_port()), timeout="5")

    with pytest.raises(MailDeliveryError) as error:
        await smtp.send(MAIL)

    assert error.value.permanent is False


async def test_refused_recipient_is_a_permanent_error(tmp_path):
    class Refusing:
        async def handle_RCPT(self, server, session, envelope, address, options):
            return "550 5.1.1 No such user"

    port = free_port()
    controller = Controller(Refusing(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        with pytest.raises(MailDeliveryError) as error:
            await transport(tmp_path, host="127.0.0.1", port=str(port)).send(MAIL)
    finally:
        controller.stop()

    assert error.value.permanent is True


def test_defaults(tmp_path):
    smtp = transport(tmp_path)

    assert (smtp.host, smtp.port, smtp.starttls) == ("localhost", 25, False)
    assert (smtp.username, smtp.password) == (None, None)


@pytest.mark.parametrize(
    ("options", "variable"),
    [
        ({"port": "x"}, "PORTAL_SMTP_PORT"),
        ({"timeout": "soon"}, "PORTAL_SMTP_TIMEOUT"),
        ({"starttls": "sometimes"}, "PORTAL_SMTP_STARTTLS"),
    ],
)
def test_bad_option_names_its_variable(tmp_path, options, variable):
    with pytest.raises(ConfigError, match=variable):
        transport(tmp_path, **options)


@pytest.mark.parametrize("mail", ["smtp", "dev"])
def test_misspelled_smtp_variable_stops_start_up_even_when_smtp_is_not_selected(
    tmp_path, monkeypatch, mail
):
    monkeypatch.setenv("PORTAL_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("PORTAL_MAIL", mail)
    monkeypatch.setenv("PORTAL_SMTP_USER", "portal")  # the setting is PORTAL_SMTP_USERNAME

    with pytest.raises(ConfigError, match=r"^PORTAL_SMTP_USER: unknown setting of the 'smtp'"):
        create_app(plugins=builtin_plugins())
