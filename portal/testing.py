"""Pytest fixtures for Sinetti and for plugin authors (loaded as the ``sinetti`` pytest plugin).

    async def test_something(portal_app, client, sign_in): ...

- ``portal_config``: the settings override of one test (a fresh data directory and database).
  Set ``SINETTI_TEST_DATABASE_URL=postgres://user:pass@host:port`` to run on PostgreSQL: each
  test gets a database of its own, dropped afterwards.
- ``portal_plugins``: the plugin modules loaded (the built-ins; override to add your own).
- ``portal_app``: the app, migrated and started (``before_serving`` ran), ``client`` its client.
- ``smtp_server``: a real SMTP server (aiosmtpd) on loopback capturing every mail.
- ``s3_server``: a real S3 server (moto) on loopback, one per test session;
  ``s3_server.create_bucket()`` makes a fresh bucket, ``s3_server.portal_config(bucket)`` the
  settings that point the ``s3`` storage backend at it (merge it into ``portal_config``).
  ``running_s3_server()`` is the same server as a context manager, for e2e tests and the bench.
- ``sign_in``: registers an address and opens its personal link in ``client``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import email
import email.policy
import os
import re
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any, TypeVar

import pytest
import pytest_asyncio

BUILTIN_PLUGINS = (
    "sinetti_storage_local",
    "sinetti_storage_s3",
    "sinetti_verification_basic",
    "sinetti_mail_smtp",
    "sinetti_devbox",
    "sinetti_sms_http",
    "sinetti_theme_default",
    "sinetti_theme_valtori",
)
LINK = re.compile(r"https?://[^\s\"<>]+/(?:s|m)/[A-Za-z0-9_-]{40,}")


def builtin_plugins() -> list[object]:
    import importlib

    return [importlib.import_module(name) for name in BUILTIN_PLUGINS]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def csrf_from(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "the page has no CSRF field"
    return match.group(1)


def links_in(text: str) -> list[str]:
    return LINK.findall(text)


# -- database -----------------------------------------------------------------------------


async def _postgres_admin(base_url: str, sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(
        base_url.replace("postgres://", "postgresql://", 1).rstrip("/") + "/postgres"
    )
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest_asyncio.fixture
async def portal_database(tmp_path: Path) -> AsyncIterator[str]:
    """A database URL for one test: SQLite in ``tmp_path``, or a fresh PostgreSQL database."""
    base = os.environ.get("SINETTI_TEST_DATABASE_URL", "")
    if not base:
        yield f"sqlite://{tmp_path / 'test.sqlite3'}"
        return
    name = f"sinetti_test_{uuid.uuid4().hex[:12]}"
    await _postgres_admin(base, f'CREATE DATABASE "{name}"')
    try:
        yield base.rstrip("/") + "/" + name
    finally:
        await _postgres_admin(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# -- the app --------------------------------------------------------------------------------


@pytest.fixture
def portal_plugins() -> list[object]:
    return builtin_plugins()


@pytest.fixture
def portal_config(tmp_path: Path, portal_database: str) -> dict[str, Any]:
    return {
        "data_dir": str(tmp_path / "data"),
        "database_url": portal_database,
        "secret_key": "test-secret-key-" + "x" * 32,
        "allowed_recipient_domains": "example.fi,valtori.fi",
        "base_url": "http://portal.test",
        "outbox_poll_seconds": 1,
    }


@pytest_asyncio.fixture
async def portal_app(
    portal_config: dict[str, Any], portal_plugins: list[object]
) -> AsyncIterator[Any]:
    from portal import db
    from portal.app import create_app
    from portal.config import load_settings

    await db.migrate(load_settings(override=portal_config))
    app = create_app(portal_config, plugins=portal_plugins)
    async with app.test_app() as test_app:
        yield test_app


@pytest.fixture
def client(portal_app: Any) -> Any:
    return portal_app.test_client()


def outbox_texts() -> Awaitable[list[tuple[str, str]]]:
    """(recipient, text) of every queued or sent mail still holding its text."""
    from portal.models import OutboxItem

    async def fetch() -> list[tuple[str, str]]:
        return [(item.to_address, item.text) for item in await OutboxItem.all().order_by("id")]

    return fetch()


@pytest.fixture
def sign_in(client: Any) -> Callable[[str], Awaitable[str]]:
    """``await sign_in("a@example.com")`` registers and follows the personal link; returns it.

    The link is read from the outbox before the worker delivers it (the dev transport).
    """

    async def run(address: str = "sender@example.com") -> str:
        page = await client.get("/")
        csrf = csrf_from(await page.get_data(as_text=True))
        response = await client.post("/", form={"email": address, "csrf_token": csrf})
        assert response.status_code == 200, await response.get_data(as_text=True)
        link = await _wait_for_link(address, client.app.extensions["sinetti"].settings.data_dir)
        path = "/" + link.split("/", 3)[3]
        response = await client.get(path)
        assert response.status_code == 303, response.status_code
        return path

    return run


async def _wait_for_link(address: str, data_dir: Path) -> str:
    from portal.models import OutboxItem

    # The registration mail is queued in the same transaction as the link; read it from the
    # outbox (its text is cleared once delivered, so look in the dev mailbox too).
    for _ in range(100):
        item = await OutboxItem.filter(to_address=address).order_by("-id").first()
        if item is not None and item.text:
            found = links_in(item.text)
            if found:
                return found[0]
        if item is not None and not item.text:
            break  # already delivered: the dev mailbox has it
        await asyncio.sleep(0.02)
    from sinetti_devbox import read_mailbox

    # No app context here (the request is over): the data directory is passed in.
    for entry in reversed(read_mailbox(data_dir)):
        if entry["to"] == address and links_in(entry["text"]):
            return links_in(entry["text"])[0]
    raise AssertionError(f"no registration link for {address}")


# -- SMTP -----------------------------------------------------------------------------------


@dataclasses.dataclass
class CapturedMail:
    mail_from: str
    recipients: list[str]
    message: EmailMessage

    def text(self) -> str:
        part = self.message.get_body(preferencelist=("plain",))
        return part.get_content() if part else ""

    def html(self) -> str:
        part = self.message.get_body(preferencelist=("html",))
        return part.get_content() if part else ""


@dataclasses.dataclass
class SmtpServer:
    host: str
    port: int
    messages: list[CapturedMail]

    def to(self, address: str) -> list[CapturedMail]:
        return [m for m in self.messages if address in m.recipients]


S = TypeVar("S", bound=SmtpServer)


@contextlib.contextmanager
def running_smtp_server(kind: type[S] = SmtpServer) -> Iterator[S]:  # type: ignore[assignment]
    """Run a real SMTP server (aiosmtpd) on 127.0.0.1 that keeps every message it receives."""
    from aiosmtpd.controller import Controller

    captured: list[CapturedMail] = []

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            message = email.message_from_bytes(envelope.content, policy=email.policy.default)
            captured.append(CapturedMail(envelope.mail_from, list(envelope.rcpt_tos), message))
            return "250 Message accepted"

    port = free_port()
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield kind("127.0.0.1", port, captured)
    finally:
        controller.stop()


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """A real SMTP server on loopback for one test (see :func:`running_smtp_server`)."""
    server: SmtpServer
    with running_smtp_server() as server:
        yield server


# -- S3 -------------------------------------------------------------------------------------


@dataclasses.dataclass
class S3Server:
    """A moto S3 server on loopback; it speaks the S3 protocol and keeps objects in memory."""

    endpoint_url: str
    region: str = "us-east-1"
    access_key_id: str = "testing"
    secret_access_key: str = "testing"  # noqa: S105 - moto accepts any credentials

    def client(self) -> Any:
        """A (synchronous) boto3 S3 client of this server."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
            config=Config(s3={"addressing_style": "path"}),
        )

    def create_bucket(self, name: str | None = None) -> str:
        """Create a bucket (a fresh random name by default) and return its name."""
        name = name or f"sinetti-test-{uuid.uuid4().hex[:16]}"
        self.client().create_bucket(Bucket=name)
        return name

    def delete_bucket(self, name: str) -> None:
        """Delete a bucket with everything in it, unfinished multipart uploads included."""
        s3 = self.client()
        for upload in s3.list_multipart_uploads(Bucket=name).get("Uploads", []):
            s3.abort_multipart_upload(Bucket=name, Key=upload["Key"], UploadId=upload["UploadId"])
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name):
            for item in page.get("Contents", []):
                s3.delete_object(Bucket=name, Key=item["Key"])
        s3.delete_bucket(Bucket=name)

    def portal_config(self, bucket: str, prefix: str = "") -> dict[str, str]:
        """Settings (``load_settings`` override keys) selecting the ``s3`` backend on ``bucket``."""
        return {
            "storage": "s3",
            "s3_endpoint_url": self.endpoint_url,
            "s3_region": self.region,
            "s3_bucket": bucket,
            "s3_access_key_id": self.access_key_id,
            "s3_secret_access_key": self.secret_access_key,
            "s3_addressing_style": "path",
            "s3_prefix": prefix,
        }


@contextlib.contextmanager
def running_s3_server() -> Iterator[S3Server]:
    """Run moto's S3 server in a thread on 127.0.0.1 (a free port) until the block ends."""
    import logging

    from moto.server import ThreadedMotoServer

    # werkzeug logs every request at INFO to stderr unless its logger says otherwise.
    werkzeug_log = logging.getLogger("werkzeug")
    if werkzeug_log.level == logging.NOTSET:
        werkzeug_log.setLevel(logging.WARNING)
    # port 0: the operating system picks a free port when the server binds, so no race.
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield S3Server(endpoint_url=f"http://{host}:{port}")
    finally:
        server.stop()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """A real S3 server on loopback for the test session (see :func:`running_s3_server`)."""
    with running_s3_server() as server:
        yield server
