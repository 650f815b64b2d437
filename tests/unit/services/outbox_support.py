"""What the outbox tests share: recording transports, transports that block until released,
a raw TCP server that accepts connections and never answers, and the database fixture."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from portal import db
from portal.app import create_app
from portal.config import Settings, load_settings
from portal.mail.base import MailTransport, OutgoingMail
from portal.sms.base import SmsGateway
from portal.testing import builtin_plugins


class RecordingMail(MailTransport):
    name = "recording"

    def __init__(self, failures: list[Exception] | None = None) -> None:
        super().__init__(None, {})  # type: ignore[arg-type]
        self.sent: list[OutgoingMail] = []
        self.failures = list(failures or [])

    async def send(self, mail: OutgoingMail) -> None:
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append(mail)


class RecordingSms(SmsGateway):
    name = "recording"

    def __init__(self, failures: list[Exception] | None = None) -> None:
        super().__init__(None, {})  # type: ignore[arg-type]
        self.sent: list[tuple[str, str]] = []
        self.failures = list(failures or [])

    async def send(self, to: str, text: str) -> None:
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append((to, text))


class GatedMail(MailTransport):
    """A transport whose deliveries wait until ``release`` is set; it counts how many are in
    flight at once."""

    name = "gated"

    def __init__(self) -> None:
        super().__init__(None, {})  # type: ignore[arg-type]
        self.release = asyncio.Event()
        self.in_flight = 0
        self.most_in_flight = 0
        self.sent: list[OutgoingMail] = []

    async def send(self, mail: OutgoingMail) -> None:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await self.release.wait()
        finally:
            self.in_flight -= 1
        self.sent.append(mail)


class SilentServer:
    """A TCP server on loopback that accepts every connection and never sends a byte (a hung
    SMTP server: the client waits for its greeting)."""

    def __init__(self) -> None:
        self.server: asyncio.Server | None = None
        self.connections: list[asyncio.StreamWriter] = []

    async def start(self) -> int:
        async def accept(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.connections.append(writer)

        self.server = await asyncio.start_server(accept, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    def open_connections(self) -> int:
        return sum(1 for writer in self.connections if not writer.is_closing())

    async def stop(self) -> None:
        for writer in self.connections:
            writer.close()
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


@pytest.fixture
async def database(portal_config: dict[str, Any]) -> AsyncIterator[Settings]:
    """The database and an app context (the outbox seals with the app's secret key), but no
    serving app: no background worker competes with the test."""
    settings = load_settings(override=portal_config)
    await db.migrate(settings)
    await db.connect(settings)
    app = create_app(portal_config, plugins=builtin_plugins())
    async with app.app_context():
        yield settings
    await db.close()
