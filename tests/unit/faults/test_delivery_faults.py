"""The mail server and the SMS gateway really stopped (their ports closed) in the middle of a
flow and started again on the same port: nothing is lost, nothing arrives twice, and the pages
say what is going on meanwhile.

The portal runs in-process with its background outbox worker, the ``smtp`` transport and the
``http`` SMS gateway, both pointed at real servers on loopback. Retries are quick
(``PORTAL_OUTBOX_RETRY_SECONDS=1``, polled every second); no clock is moved.
"""

from __future__ import annotations

import email
import email.policy
import re
import socket
from collections import Counter
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiosmtpd.controller import Controller

from portal.models import AccessCode, Channel, OutboxItem, OutboxStatus
from portal.services import clock, outbox, outbox_admin
from portal.testing import CapturedMail, SmsGatewayServer, csrf_from, e164, free_port, links_in

from ..helpers import eventually, page_text, press_open, send_message, sign_in_delivered

SENDER = "liisa@example.com"
RECIPIENTS = ["ville@valtori.fi", "maija@example.fi", "pekka@valtori.fi"]
PIN_RECIPIENT = "sanna@example.fi"
PHONE = "0400123456"
SUBJECT = "Hakemus 2026/12"
TOKEN = "gateway-token-of-the-fault-tests"
WAIT = 30.0  # generous: the machine may be loaded; a healthy run takes a few seconds


# -- servers that can be stopped and started again on their port -------------------------------


def port_is_closed(port: int) -> bool:
    """Nothing listens on the loopback ``port`` (a connection is refused)."""
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


class RestartableSmtp:
    """A real SMTP server (aiosmtpd) on one loopback port: ``stop()`` closes the port,
    ``start()`` listens there again. ``messages`` keeps every mail received, across restarts."""

    def __init__(self) -> None:
        self.port = free_port()
        self.messages: list[CapturedMail] = []
        self._controller: Controller | None = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append(CapturedMail(envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 Message accepted"

    def start(self) -> None:
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def to(self, address: str) -> list[CapturedMail]:
        return [m for m in self.messages if address in m.recipients]


class RestartableGateway:
    """The SMS gateway stand-in (:class:`SmsGatewayServer`) on one loopback port, stopped and
    started again there; ``requests`` are every POST any of its runs received."""

    def __init__(self) -> None:
        self._runs: list[SmsGatewayServer] = []
        self._running: SmsGatewayServer | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/sms"

    def start(self) -> None:
        server = SmsGatewayServer(TOKEN, port=self.port)
        server.start()
        self.port = server.port
        self._runs.append(server)
        self._running = server

    def stop(self) -> None:
        if self._running is not None:
            self._running.stop()
            self._running = None

    @property
    def requests(self) -> list[Any]:
        return [request for run in self._runs for request in run.requests]

    def to(self, number: str) -> list[Any]:
        return [sms for run in self._runs for sms in run.to(number)]


@pytest.fixture
def smtp() -> Iterator[RestartableSmtp]:
    server = RestartableSmtp()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def gateway() -> Iterator[RestartableGateway]:
    server = RestartableGateway()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def portal_config(portal_config, smtp, gateway) -> dict[str, Any]:
    return {
        **portal_config,
        "mail": "smtp",
        "mail_from": "sinetti@portal.test",
        "sms": "http",
        "outbox_poll_seconds": 1,
        "outbox_retry_seconds": 1,
        "outbox_delivery_timeout_seconds": 5,
        "plugin_options": {
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(smtp.port),
            "SMTP_TIMEOUT": "5",
            "SMS_HTTP_URL": gateway.url,
            "SMS_HTTP_TOKEN": TOKEN,
            "SMS_HTTP_TIMEOUT": "5",
        },
    }


# -- helpers --------------------------------------------------------------------------------


async def signed_in_sender(client, smtp: RestartableSmtp) -> None:
    """The sender signed in through the running SMTP server, its mail delivered and recorded
    (nothing of the sign-in is in flight when a test stops a server)."""
    await sign_in_delivered(client, SENDER, lambda: [m.text() for m in smtp.to(SENDER)])
    assert await eventually(everything_sent, timeout=WAIT), "the registration mail is not sent"
    await client.get("/compose?lang=en")  # the sender's language for the pages below


async def everything_sent() -> bool:
    items = await OutboxItem.all()
    return bool(items) and all(item.status is OutboxStatus.SENT for item in items)


def statuses(html: str) -> dict[str, str]:
    """The status page's recipient rows: address → state (``queued``, ``notified``, …)."""
    found = {}
    for row in re.findall(r"<tr>\s*<td>.*?</tr>", html, re.S):
        address = re.search(r"<td>([^<\s]+)", row)
        state = re.search(r'class="status status--([a-z-]+)"', row)
        if address and state:
            found[address.group(1)] = state.group(1)
    return found


async def status_page(client) -> dict[str, str]:
    response = await client.get("/sent?lang=en")
    assert response.status_code == 200
    return statuses(await page_text(response))


# -- the SMTP server stopped while a message is sent -----------------------------------------


async def test_mail_queued_while_the_smtp_server_is_down_arrives_once_when_it_is_back(client, smtp):
    await signed_in_sender(client, smtp)
    smtp.stop()
    assert port_is_closed(smtp.port)

    confirmation = await send_message(
        client, {"recipients": ", ".join(RECIPIENTS), "subject": SUBJECT, "body": "Hei"}
    )

    page = await client.get(confirmation + "?lang=en")
    assert page.status_code == 200
    assert "Message sent" in await page_text(page)
    queued = await OutboxItem.filter(status=OutboxStatus.PENDING).order_by("id")
    # One notification per recipient and the sender's receipt.
    assert sorted(item.to_address for item in queued) == sorted([*RECIPIENTS, SENDER])

    async def each_tried_twice() -> bool:
        # (A claim counts its attempt at once: unclaimed again, the second attempt is over.)
        items = await OutboxItem.filter(id__in=[item.id for item in queued])
        return all(
            item.attempts >= 2 and item.last_error and item.claimed_until is None for item in items
        )

    assert await eventually(each_tried_twice, timeout=WAIT), "the worker did not keep trying"
    for item in await OutboxItem.filter(id__in=[item.id for item in queued]):
        assert item.status is OutboxStatus.PENDING
        assert item.last_error.startswith(f"MailDeliveryError: SMTP 127.0.0.1:{smtp.port}")
        assert item.text and item.html  # still sealed, nothing lost
        # The next try comes within PORTAL_OUTBOX_RETRY_SECONDS (1), doubling: not the default 10.
        assert item.next_attempt_at - clock.now() <= outbox.backoff(item.attempts, 1)
    report = await outbox_admin.report()
    assert (report["pending"], report["failed"]) == (4, 0)
    assert report["lanes"]["email"]["pending"] == 4
    assert report["oldest_pending_seconds"] is not None
    assert await status_page(client) == dict.fromkeys(RECIPIENTS, "queued")
    assert smtp.to(RECIPIENTS[0]) == []

    smtp.start()

    assert await eventually(everything_sent, timeout=WAIT), "the mail was not delivered"
    for item in queued:
        copies = smtp.to(item.to_address)
        if item.to_address == SENDER:  # the registration mail came before
            copies = [m for m in copies if m.message["Message-ID"] == item.mail_message_id]
        assert len(copies) == 1, f"{item.to_address} got {len(copies)} copies"
        assert copies[0].message["Message-ID"] == item.mail_message_id
        if item.to_address != SENDER:
            assert links_in(copies[0].text()), "the notification has no link"
    message_ids = Counter(str(m.message["Message-ID"]) for m in smtp.messages)
    assert len(smtp.messages) == 5 and set(message_ids.values()) == {1}
    assert await status_page(client) == dict.fromkeys(RECIPIENTS, "notified")


# -- the SMS gateway stopped while a recipient opens a message ---------------------------------


async def test_a_pin_asked_for_while_the_gateway_is_down_arrives_once_and_opens_the_message(
    portal_app, client, smtp, gateway
):
    await signed_in_sender(client, smtp)
    await send_message(
        client,
        {"recipients": f"{PIN_RECIPIENT}.{PHONE}.sec", "subject": SUBJECT, "body": "Salainen"},
    )

    async def notification() -> str | None:
        found = [link for m in smtp.to(PIN_RECIPIENT) for link in links_in(m.text())]
        return urlsplit(found[0]).path if found else None

    link = await eventually(notification, timeout=WAIT)
    assert link, "the notification did not arrive"
    gateway.stop()
    assert port_is_closed(gateway.port)
    reader = portal_app.test_client()

    opened = await press_open(reader, link)

    assert opened.status_code == 303
    assert urlsplit(opened.headers["Location"]).path == f"{link}/code"
    (sms,) = await OutboxItem.filter(channel=Channel.SMS)
    assert sms.status is OutboxStatus.PENDING
    first = await page_text(await reader.get(f"{link}/code?lang=en"))
    assert "Your code is on its way. It is valid for 10 minutes from when it arrives." in first

    async def tried() -> bool:
        return bool((await OutboxItem.get(id=sms.id)).last_error)

    assert await eventually(tried, timeout=WAIT), "the worker did not try the gateway"
    waiting = await reader.get(f"{link}/code?lang=en")
    html = await page_text(waiting)
    assert waiting.status_code == 200
    assert "Your code is on its way." in html
    assert "Sending is delayed. We keep trying; this can take a few minutes." in html
    assert 'class="error-summary"' not in html
    again = await press_open(reader, link)  # pressing Open again sends no second code
    assert again.status_code == 303
    report = await outbox_admin.report()
    assert report["lanes"]["sms"]["pending"] == 1
    tried_item = await OutboxItem.get(id=sms.id)
    assert tried_item.status is OutboxStatus.PENDING and tried_item.text  # sealed, kept
    assert "127.0.0.1" in tried_item.last_error and PHONE[1:] not in tried_item.last_error

    gateway.start()  # the same port

    async def delivered() -> bool:
        return (await OutboxItem.get(id=sms.id)).status is OutboxStatus.SENT

    assert await eventually(delivered, timeout=WAIT), "the PIN SMS was not delivered"
    (received,) = gateway.to(PHONE)
    assert len(gateway.requests) == 1  # one POST in all: none before, none twice
    assert received.to == e164(PHONE)
    assert await AccessCode.all().count() == 1
    code_page = await page_text(await reader.get(f"{link}/code?lang=en"))
    assert "Sending is delayed" not in code_page
    (pin,) = re.findall(r"(?<!\d)\d{6}(?!\d)", received.text)

    answered = await reader.post(
        f"{link}/code", form={"csrf_token": csrf_from(code_page), "code": pin}
    )

    assert answered.status_code == 303
    assert urlsplit(answered.headers["Location"]).path == link
    message = await page_text(await reader.get(link))
    assert SUBJECT in message and "Salainen" in message
    assert len(gateway.requests) == 1


def test_the_restartable_servers_really_close_their_port_and_come_back_on_it(smtp, gateway):
    for server in (smtp, gateway):
        port = server.port
        assert not port_is_closed(port)
        server.stop()
        assert port_is_closed(port)
        server.start()
        assert server.port == port and not port_is_closed(port)
