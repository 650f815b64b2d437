"""The running portal's outbox worker with the ``smtp`` transport and a real SMTP server."""

from __future__ import annotations

import email
import email.policy

import pytest
from aiosmtpd.controller import Controller

from portal.models import OutboxItem, OutboxStatus
from portal.services import outbox, receipts
from portal.testing import free_port, links_in

from ..helpers import eventually, send_message, sign_in_delivered

SENDER = "liisa@example.com"
RECIPIENTS = ["ville@valtori.fi", "maija@example.fi"]


def smtp_config(portal_config, port: int) -> dict:
    return {
        **portal_config,
        "mail": "smtp",
        "mail_from": "sinetti@portal.test",
        "plugin_options": {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(port), "SMTP_TIMEOUT": "5"},
    }


async def all_items(status: OutboxStatus) -> bool:
    items = await OutboxItem.all()
    return bool(items) and all(item.status is status for item in items)


async def sign_in_through_smtp(client, smtp_server) -> None:
    """Register and open the link, reading it from the outbox or, once delivered, the server."""
    await sign_in_delivered(client, SENDER, lambda: [m.text() for m in smtp_server.to(SENDER)])


async def send(client) -> None:
    await send_message(
        client, {"recipients": ", ".join(RECIPIENTS), "subject": "Hakemus", "body": "Hei"}
    )


class TestSmtpUp:
    @pytest.fixture
    def portal_config(self, portal_config, smtp_server):
        return smtp_config(portal_config, smtp_server.port)

    async def test_queued_mail_is_delivered_with_text_and_html_parts(self, client, smtp_server):
        await sign_in_through_smtp(client, smtp_server)
        await send(client)

        assert await eventually(lambda: all_items(OutboxStatus.SENT))
        for address in [SENDER, *RECIPIENTS]:
            # The sender also gets the signed receipt of the message (it carries no link).
            (mail,) = [m for m in smtp_server.to(address) if receipts.FORMAT not in m.text()]
            assert mail.mail_from == "sinetti@portal.test"
            assert mail.message["From"] == "sinetti@portal.test"
            assert mail.message.get_content_type() == "multipart/alternative"
            assert links_in(mail.text()) and links_in(mail.html())
            assert links_in(mail.text())[0] in mail.html()

    async def test_delivered_mail_keeps_no_text_in_the_database(self, client, smtp_server):
        await sign_in_through_smtp(client, smtp_server)
        await send(client)

        assert await eventually(lambda: all_items(OutboxStatus.SENT))
        for item in await OutboxItem.all():
            assert item.text == ""
            assert item.html is None
            assert item.sent_at is not None


class Capture:
    def __init__(self) -> None:
        self.messages: list[tuple[list[str], email.message.EmailMessage]] = []

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append((list(envelope.rcpt_tos), message))
        return "250 OK"


class TestSmtpDown:
    @pytest.fixture
    def port(self) -> int:
        return free_port()  # nothing listens here until the test starts a server

    @pytest.fixture
    def portal_config(self, portal_config, port):
        return smtp_config(portal_config, port)

    async def test_outage_delays_mail_and_a_later_retry_delivers_all_of_it(
        self, client, sign_in, port, moved_clock
    ):
        await sign_in(SENDER)  # the link is read from the outbox: nothing was delivered
        await send(client)

        async def all_tried() -> bool:
            items = await OutboxItem.all()
            # The registration, two notifications and the sender's receipt.
            return len(items) == 4 and all(item.attempts >= 1 and item.last_error for item in items)

        assert await eventually(all_tried)
        for item in await OutboxItem.all():
            assert item.status is OutboxStatus.PENDING
            assert item.last_error.startswith("MailDeliveryError: SMTP 127.0.0.1:")
            assert item.text and item.html  # nothing lost while waiting

        capture = Capture()
        controller = Controller(capture, hostname="127.0.0.1", port=port)
        controller.start()
        try:
            moved_clock.advance(hours=1)
            outbox.wake()

            assert await eventually(lambda: all_items(OutboxStatus.SENT), timeout=10)
        finally:
            controller.stop()

        delivered = sorted(rcpt for rcpts, _message in capture.messages for rcpt in rcpts)
        assert delivered == sorted([SENDER, SENDER, *RECIPIENTS])
