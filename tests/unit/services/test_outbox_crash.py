"""A worker process killed (SIGKILL) in the middle of a delivery: the SMTP server already has
the mail but the worker never recorded it. Its claim expires one delivery timeout and a
margin later, the item is delivered again, and both copies carry the same Message-ID."""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sinetti_mail_smtp import SmtpTransport

from portal.config import load_settings
from portal.context import portal
from portal.mail.base import OutgoingMail
from portal.models import OutboxItem, OutboxStatus
from portal.services import outbox
from portal.testing import free_port

from ..helpers import eventually

WORKER = """
import asyncio, json, sys
from portal import db
from portal.app import create_app
from portal.config import load_settings
from portal.services import outbox_lanes
from portal.testing import builtin_plugins
from sinetti_mail_smtp import SmtpTransport

config, port = json.loads(sys.argv[1]), sys.argv[2]

async def main():
    settings = load_settings(override=config)
    await db.connect(settings)
    app = create_app(config, plugins=builtin_plugins())
    async with app.app_context():
        smtp = SmtpTransport(settings, {"host": "127.0.0.1", "port": port, "timeout": "600"})
        sms = app.extensions["sinetti"].providers.sms
        await outbox_lanes.run_worker(smtp, sms, 1, 5, timeout_seconds=600)

asyncio.run(main())
"""


class StallingServer:
    """A real SMTP server (aiosmtpd) that keeps every message it receives and, while
    ``stall`` is set, does not answer the end of DATA (the mail is in, the 250 never comes)."""

    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []
        self.stall = threading.Event()
        self.port = free_port()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(
            email.message_from_bytes(envelope.content, policy=email.policy.default)
        )
        while self.stall.is_set():
            await asyncio.sleep(0.05)
        return "250 Message accepted"


@pytest.fixture
def smtp() -> Iterator[StallingServer]:
    server = StallingServer()
    controller = Controller(server, hostname="127.0.0.1", port=server.port)
    controller.start()
    try:
        yield server
    finally:
        server.stall.clear()
        controller.stop()


async def test_killed_worker_mail_is_delivered_again_with_the_same_message_id(
    database, portal_config, smtp, moved_clock
):
    config = {**portal_config, "mail_from": "sinetti@portal.test"}
    item = await outbox.enqueue_mail(OutgoingMail("ville@valtori.fi", "Aihe", "Avaa viesti"))
    smtp.stall.set()
    worker = subprocess.Popen(
        [sys.executable, "-c", WORKER, json.dumps(config), str(smtp.port)],
        start_new_session=True,  # a process group of its own, killed below by its id
    )
    try:

        async def mail_is_in() -> bool:
            return len(smtp.messages) == 1

        assert await eventually(mail_is_in, timeout=30), "the worker did not deliver"
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)
    smtp.stall.clear()

    lost = await OutboxItem.get(id=item.id)
    assert (lost.status, lost.attempts, lost.last_error) == (OutboxStatus.PENDING, 1, "")
    assert lost.claimed_until is not None  # the dead worker's claim, to expire
    transport = SmtpTransport(
        load_settings(override=config), {"host": "127.0.0.1", "port": str(smtp.port)}
    )
    sms = portal().providers.sms
    assert await outbox.deliver_due(transport, sms, max_attempts=5) == 0  # still claimed

    moved_clock.advance(seconds=outbox.claim_time(600).total_seconds() + 1)
    assert await outbox.deliver_due(transport, sms, max_attempts=5) == 1

    first, second = smtp.messages
    assert first["Message-ID"] == second["Message-ID"] == item.mail_message_id
    delivered = await OutboxItem.get(id=item.id)
    assert (delivered.status, delivered.attempts) == (OutboxStatus.SENT, 2)
