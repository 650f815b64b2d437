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
- ``clamd_server``: a real clamd (Debian's ``clamav-daemon``) on loopback TCP and a Unix
  socket, one process per test session, with a signature database of its own that knows
  :data:`EICAR` and :data:`TEST_MALWARE_MARKER`; ``clamd_server.portal_config()`` selects the
  ``clamav`` scanner on it, ``stop()`` / ``start()`` make an outage. A missing clamd fails
  the test (``make unit`` installs it). ``running_clamd_server(directory)`` for a clamd of
  one's own (another ``StreamMaxLength``).
- ``sign_in``: registers an address and opens its personal link in ``client``.

A real server in a subprocess, for the e2e suite (tests/e2e) and the concurrency suite
(tests/concurrency):

- ``mail``: a session-scoped aiosmtpd server on loopback capturing every mail the portal sends
  (the portal's outbox worker delivers in the background, so tests poll it with a timeout).
- ``sms_gateway``: a session-scoped HTTP server on loopback standing in for the SMS gateway of
  the ``http`` plugin: it records every POST (headers and JSON), checks the bearer token and
  answers 200; ``wait_for(number)`` polls like ``mail.wait_for``, ``pin(number)`` reads the
  newest PIN sent to a number.
- ``running_portal_server(mail, sms_gateway, tmp_path_factory, name, extra_env, serve_args)``:
  ``sinetti migrate`` then ``sinetti serve --no-migrate`` in a subprocess on a free loopback
  port, with its own data directory, the SMTP transport pointed at ``mail``, the ``http`` SMS
  gateway pointed at ``sms_gateway`` and a 5 MiB attachment limit (:func:`server_env`); its
  log is attached to the report of every test that fails while it runs.
- ``new_address(prefix)`` and ``new_recipient(prefix)``: addresses no other test uses.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import email
import email.policy
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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
    "sinetti_keys_local",
    "sinetti_keys_aws_kms",
    "sinetti_scanner_clamav",
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
    try:
        async with app.test_app() as test_app:
            yield test_app
    finally:
        # A shutdown that timed out never closed the database, and its global context would
        # keep every later app of this test process from starting ("Global context fallback
        # is already enabled"): one failing test must not take the rest with it.
        await db.close()


@pytest.fixture
def client(portal_app: Any) -> Any:
    return portal_app.test_client()


def outbox_texts(secret_key: str | None = None) -> Awaitable[list[tuple[str, str]]]:
    """(recipient, text) of every queued or sent mail, the text opened (it is sealed while
    queued, empty once the item ended). ``secret_key``: the portal's
    (``client.app.extensions["sinetti"].settings.secret_key``) outside an app context."""
    from portal.models import OutboxItem
    from portal.services.outbox import address_of, opened_text

    async def fetch() -> list[tuple[str, str]]:
        return [
            (address_of(item, secret_key), opened_text(item, secret_key))
            for item in await OutboxItem.all().order_by("id")
        ]

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
        link = await _wait_for_link(address, client.app.extensions["sinetti"].settings)
        path = "/" + link.split("/", 3)[3]
        await continue_with_link(client, path)
        return path

    return run


async def continue_with_link(client: Any, path: str) -> Any:
    """Open a personal link (``/s/…``) and press Continue: signed in; the 303 answer."""
    page = await client.get(path)
    assert page.status_code == 200, page.status_code
    response = await client.post(path, form={"csrf_token": csrf_from(await page.get_data(True))})
    assert response.status_code == 303, response.status_code
    return response


async def _wait_for_link(address: str, settings: Any) -> str:
    from portal.models import OutboxItem
    from portal.services.outbox import opened_text

    # The registration mail is queued in the same transaction as the link; read it from the
    # outbox (sealed while queued, cleared once delivered, so look in the dev mailbox too).
    # No app context here (the request is over): the settings are passed in.
    for _ in range(100):
        item = await OutboxItem.filter(to_address=address).order_by("-id").first()
        if item is not None and item.text:
            found = links_in(opened_text(item, settings.secret_key))
            if found:
                return found[0]
        if item is not None and not item.text:
            break  # already delivered: the dev mailbox has it
        await asyncio.sleep(0.02)
    from sinetti_devbox import read_mailbox

    for entry in reversed(read_mailbox(settings.data_dir)):
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


class CuttableProxy:
    """A TCP proxy on loopback in front of a server (the portal, S3) whose connections can be
    cut, as a network or a service that goes away: ``cut(seconds)`` resets every open
    connection (a chunk on its way is lost halfway) and resets new ones for that long.
    ``upstream`` counts the bytes that reached the server."""

    def __init__(self, target_port: int) -> None:
        self.target = ("127.0.0.1", target_port)
        self.upstream = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()
        self._down_until = 0.0
        threading.Thread(target=self._accept, name="cuttable-proxy", daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cut(self, seconds: float) -> None:
        self._down_until = time.monotonic() + seconds
        with self._lock:
            sockets, self._open = self._open, []
        for sock in sockets:
            self._reset(sock)

    def close(self) -> None:
        self.cut(0)
        self._listener.close()

    @staticmethod
    def _reset(sock: socket.socket) -> None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
            # A pipe thread blocked on the socket keeps it open past close(): shutdown wakes
            # it, so an established connection is cut too, not only new ones.
            sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            sock.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if time.monotonic() < self._down_until:
                self._reset(client)
                continue
            try:
                server = socket.create_connection(self.target)
            except OSError:
                self._reset(client)
                continue
            with self._lock:
                self._open += [client, server]
            threading.Thread(target=self._pipe, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client, False), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, up: bool) -> None:
        try:
            while data := source.recv(256 * 1024):
                sink.sendall(data)
                if up:
                    with self._lock:
                        self.upstream += len(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


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


# -- clamd ----------------------------------------------------------------------------------

#: The EICAR anti-virus test file, and a marker of our own; the database the harness writes
#: knows both, so no signatures need downloading.
EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
TEST_MALWARE_MARKER = b"SINETTI-TEST-MALWARE-MARKER"
#: The names clamd reports for them (signatures from a database of one's own are UNOFFICIAL).
EICAR_SIGNATURE = "Eicar-Test-Signature.UNOFFICIAL"
MARKER_SIGNATURE = "Sinetti.Test.Marker.UNOFFICIAL"
CLAMD_START_TIMEOUT = 60.0


def _clamd_program() -> str:
    found = shutil.which("clamd") or shutil.which("clamd", path="/usr/sbin:/usr/local/sbin")
    if not found:
        raise RuntimeError(
            "clamd is not installed: the scanner tests run a real one. `make unit` installs it "
            "(apt-get install clamav-daemon)."
        )
    return found


class ClamdServer:
    """A real clamd (Debian's ``clamav-daemon``) on 127.0.0.1 and a Unix socket, with a
    signature database of its own: :data:`EICAR` and :data:`TEST_MALWARE_MARKER`.

    ``address`` / ``unix_address`` are what ``PORTAL_CLAMAV_ADDRESS`` takes;
    ``portal_config()`` the settings override that selects the ``clamav`` scanner on it.
    ``stop()`` and ``start()`` take it away and bring it back on the same port and socket, as an
    outage. ``stream_max_length`` is clamd.conf's ``StreamMaxLength`` (``"1M"``, ``"500M"``).
    """

    def __init__(self, directory: Path, stream_max_length: str = "500M") -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.socket_path = directory / "clamd.sock"
        if len(str(self.socket_path)) > 100:  # a Unix socket path has 108 bytes at most
            self.socket_path = Path(tempfile.mkdtemp(prefix="clamd-")) / "clamd.sock"
        self.config_file = directory / "clamd.conf"
        self.log_file = directory / "clamd.log"
        self._process: subprocess.Popen[bytes] | None = None
        (directory / "sinetti-test.ndb").write_text(
            f"Eicar-Test-Signature:0:*:{EICAR.hex()}\n"
            f"Sinetti.Test.Marker:0:*:{TEST_MALWARE_MARKER.hex()}\n"
        )
        limit = stream_max_length
        self.config_file.write_text(
            "Foreground yes\n"
            f"TCPSocket {self.port}\nTCPAddr 127.0.0.1\n"
            f"LocalSocket {self.socket_path}\n"
            f"DatabaseDirectory {directory}\nTemporaryDirectory {directory}\n"
            f"LogFile {self.log_file}\nLogTime yes\n"
            f"StreamMaxLength {limit}\nMaxFileSize {limit}\nMaxScanSize {limit}\n"
        )

    @property
    def address(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"

    @property
    def unix_address(self) -> str:
        return f"unix://{self.socket_path}"

    def portal_config(self, *, unix: bool = False) -> dict[str, str]:
        """Settings (``load_settings`` override keys) selecting the ``clamav`` scanner here."""
        return {
            "scanner": "clamav",
            "clamav_address": self.unix_address if unix else self.address,
        }

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def log(self) -> str:
        """clamd's log and what it printed, for a failure message."""
        parts = [self.log_file, self.directory / "clamd.out"]
        return "\n".join(p.read_text(errors="replace") for p in parts if p.exists())

    def ping(self) -> bool:
        """Whether clamd answers PONG on its TCP port now."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
                sock.sendall(b"zPING\0")
                return sock.recv(16) == b"PONG\0"
        except OSError:
            return False

    def start(self) -> None:
        """Start clamd (if it is not running) and return once it answers PING."""
        if self.running:
            return
        with (self.directory / "clamd.out").open("ab") as out:
            self._process = subprocess.Popen(  # noqa: S603 - clamd itself, no shell
                [_clamd_program(), f"--config-file={self.config_file}"],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + CLAMD_START_TIMEOUT
        while not self.ping():
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"clamd did not start:\n{self.log()[-3000:]}")
            time.sleep(0.1)

    def pause(self) -> None:
        """Freeze clamd (SIGSTOP): connections are still accepted, nothing is answered, as a
        clamd that hangs. :meth:`resume` lets it go on."""
        if self._process is not None:
            self._process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self._process is not None:
            self._process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        """Stop clamd and wait until it is gone (its port and socket closed)."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        process.send_signal(signal.SIGCONT)  # a paused clamd must wake to end
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def running_clamd_server(directory: Path, stream_max_length: str = "500M") -> Iterator[ClamdServer]:
    """Run a real clamd (see :class:`ClamdServer`) until the block ends."""
    server = ClamdServer(directory, stream_max_length)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def clamd_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClamdServer]:
    """The session's clamd; tests take it through ``clamd_server``, which restarts it."""
    with running_clamd_server(tmp_path_factory.mktemp("clamd")) as server:
        yield server


@pytest.fixture
def clamd_server(clamd_process: ClamdServer) -> ClamdServer:
    """A real clamd on loopback, running when the test starts (one process for the session,
    started again if an earlier test stopped it). Fails, never skips, when clamd is missing."""
    clamd_process.resume()  # as an earlier test may have left it
    clamd_process.start()
    return clamd_process


ALLOWED_RECIPIENT_DOMAINS = "valtori.fi,example.fi"
MAX_ATTACHMENTS_BYTES = 5 * 1024 * 1024
MAIL_TIMEOUT = 15.0
SMS_TIMEOUT = 15.0
SMS_TOKEN = f"test-sms-{uuid.uuid4().hex}"
SMS_PATH = "/api/sms"
SERVER_START_TIMEOUT = 40.0
SOURCE_ROOT = Path(__file__).resolve().parents[1]  # the checkout (an editable install)


# -- a real server for the e2e and concurrency suites: its SMTP server ----------------------


P = TypeVar("P")


def poll(
    find: Callable[[], list[P]], count: int, timeout: float, failure: Callable[[list[P]], str]
) -> list[P]:
    """``find()`` once it holds at least ``count`` items; after ``timeout`` seconds, fail with
    ``failure(what was found)``. For the servers of this module, which run in threads of their own
    (a browser test waits with ``page.wait_for_timeout`` instead, so Playwright's events come)."""
    deadline = time.monotonic() + timeout
    while True:
        found = find()
        if len(found) >= count:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(failure(found))
        time.sleep(0.05)


class MailCatcher(SmtpServer):
    """The captured mail, with polling: the portal's outbox worker delivers in the background."""

    def wait_for(
        self, address: str, count: int = 1, timeout: float = MAIL_TIMEOUT
    ) -> list[CapturedMail]:
        def failure(found: list[CapturedMail]) -> str:
            seen = sorted({r for m in self.messages for r in m.recipients})
            return (
                f"expected {count} mail(s) to {address} within {timeout:.0f} s, got "
                f"{len(found)}; mail arrived for: {', '.join(seen) or 'nobody'}"
            )

        return poll(lambda: self.to(address), count, timeout, failure)

    def wait_for_subject(
        self, address: str, fragment: str, count: int = 1, timeout: float = MAIL_TIMEOUT
    ) -> list[CapturedMail]:
        """The mails to ``address`` whose subject contains ``fragment`` (at least ``count``)."""

        def failure(found: list[CapturedMail]) -> str:
            subjects = [str(m.message["Subject"]) for m in self.to(address)]
            return (
                f"expected {count} mail(s) to {address} with {fragment!r} in the subject "
                f"within {timeout:.0f} s, got {len(found)}; subjects: {subjects}"
            )

        return poll(
            lambda: [m for m in self.to(address) if fragment in str(m.message["Subject"])],
            count,
            timeout,
            failure,
        )

    def personal_link(self, address: str, timeout: float = MAIL_TIMEOUT) -> str:
        """The ``/s/…`` link of the newest registration mail to ``address``."""
        mail = self.wait_for(address, timeout=timeout)[-1]
        links = [link for link in links_in(mail.text()) if "/s/" in link]
        assert links, f"the registration mail to {address} has no personal link:\n{mail.text()}"
        return links[0]


@pytest.fixture(scope="session")
def mail() -> Iterator[MailCatcher]:
    """A real SMTP server (aiosmtpd) on 127.0.0.1 for the whole session, like
    ``smtp_server`` (which is per test, too short-lived for one server process)."""
    with running_smtp_server(MailCatcher) as server:
        yield server


# -- the SMS gateway ---------------------------------------------------------------------------


@dataclasses.dataclass
class CapturedSms:
    """One POST the portal made to the gateway."""

    path: str
    headers: dict[str, str]
    body: Any  # the parsed JSON, or the raw text when it was not JSON
    authorized: bool

    @property
    def to(self) -> str:
        return str(self.body.get("to", "")) if isinstance(self.body, dict) else ""

    @property
    def text(self) -> str:
        return str(self.body.get("text", "")) if isinstance(self.body, dict) else ""


def e164(number: str) -> str:
    """``0401234567`` (as a sender types it) → ``+358401234567`` (what the gateway gets)."""
    number = re.sub(r"[\s\-()]", "", number)
    return "+358" + number[1:] if number.startswith("0") else number


class LoopbackHttpServer:
    """A threaded HTTP server on 127.0.0.1 answering with ``handler``, on ``port`` (by default
    a free one; a given port lets a test bring a stopped server back where it was)."""

    def __init__(self, handler: type[BaseHTTPRequestHandler], name: str, port: int = 0) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name=name, daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_port)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class SmsGatewayServer(LoopbackHttpServer):
    """A real HTTP server on 127.0.0.1 that answers like an SMS gateway (``PORTAL_SMS=http``).

    Every POST is recorded in ``requests``; those with the right bearer token, a JSON body and
    a path of ``SMS_PATH`` are answered 200 and are the delivered ``messages``, anything else
    is answered 401/400/404 (and the portal's outbox would retry it).
    """

    def __init__(self, token: str, port: int = 0) -> None:
        self.token = token
        self.requests: list[CapturedSms] = []
        self._lock = threading.Lock()
        super().__init__(self._handler(), "sms-gateway", port)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{SMS_PATH}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    body: Any = json.loads(raw.decode("utf-8"))
                except (UnicodeDecodeError, json.JSONDecodeError):
                    body = raw.decode("utf-8", errors="replace")
                authorized = self.headers.get("Authorization") == f"Bearer {gateway.token}"
                captured = CapturedSms(self.path, dict(self.headers.items()), body, authorized)
                with gateway._lock:
                    gateway.requests.append(captured)
                if not authorized:
                    self._answer(401, {"error": "unauthorized"})
                elif self.path != SMS_PATH:
                    self._answer(404, {"error": "not found"})
                elif not (captured.to and captured.text):
                    self._answer(400, {"error": "expected JSON with to and text"})
                else:
                    self._answer(200, {"status": "queued"})

            def _answer(self, status: int, body: dict[str, str]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet: the texts carry PINs

        return Handler

    @property
    def messages(self) -> list[CapturedSms]:
        """The SMS the gateway accepted (200)."""
        with self._lock:
            return [
                r for r in self.requests if r.authorized and r.path == SMS_PATH and r.to and r.text
            ]

    def to(self, number: str) -> list[CapturedSms]:
        """The accepted SMS to ``number`` (``040…`` or ``+35840…``), oldest first."""
        wanted = e164(number)
        return [m for m in self.messages if m.to == wanted]

    def wait_for(
        self, number: str, count: int = 1, timeout: float = SMS_TIMEOUT
    ) -> list[CapturedSms]:
        def failure(found: list[CapturedSms]) -> str:
            with self._lock:
                seen = sorted({r.to or "?" for r in self.requests})
                refused = sum(not r.authorized for r in self.requests)
            return (
                f"expected {count} SMS to {e164(number)} within {timeout:.0f} s, got "
                f"{len(found)}; SMS arrived for: {', '.join(seen) or 'nobody'}"
                + (f" ({refused} refused for a wrong token)" if refused else "")
            )

        return poll(lambda: self.to(number), count, timeout, failure)

    def pin(self, number: str) -> str:
        """The newest 6-digit code in the newest SMS to ``number``."""
        found = self.to(number)
        assert found, f"no SMS to {e164(number)}"
        codes = re.findall(r"(?<!\d)\d{6}(?!\d)", found[-1].text)
        assert codes, f"no 6-digit PIN in the newest SMS to {e164(number)}: {found[-1].text!r}"
        return str(codes[-1])


@pytest.fixture(scope="session")
def sms_gateway() -> Iterator[SmsGatewayServer]:
    """The SMS gateway the portal server posts to, for the whole session."""
    gateway = SmsGatewayServer(SMS_TOKEN)
    gateway.start()
    try:
        yield gateway
    finally:
        gateway.stop()


# -- the portal server -------------------------------------------------------------------------


@dataclasses.dataclass
class PortalServer:
    url: str
    data_dir: Path
    log_path: Path
    database_url: str = ""  # PORTAL_DATABASE_URL when set, else SQLite in ``data_dir``
    pid: int = 0  # of ``sinetti serve``, whose process group holds its workers too

    @property
    def database(self) -> Path:
        return self.data_dir / "sinetti.sqlite3"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def sql(self, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Run one statement on the server's SQLite database (committed at once)."""
        with contextlib.closing(sqlite3.connect(self.database, timeout=10)) as conn, conn:
            return conn.execute(query, params).fetchall()

    def stored_files(self) -> list[Path]:
        """Every file the ``local`` storage backend holds."""
        root = self.data_dir / "files"
        return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def _sinetti_command() -> str:
    beside_python = Path(sys.executable).with_name("sinetti")
    found = str(beside_python) if beside_python.exists() else shutil.which("sinetti")
    assert found, "the `sinetti` command is not installed (pip install -e .)"
    return found


def _end_process_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the server's process group (Hypercorn's workers included), SIGKILL after
    10 s; only the group this module started, by its id."""
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


SERVER_LOGS: list[Path] = []


def server_env(
    port: int, data_dir: Path, mail: MailCatcher, sms_gateway: SmsGatewayServer
) -> dict[str, str]:
    """The environment of a test server: no PORTAL_* of the caller's, loopback mail and SMS,
    the 5 MiB limit (override it with ``extra_env``)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PORTAL_")}
    env.update(
        PORTAL_DATA_DIR=str(data_dir),
        PORTAL_BASE_URL=f"http://127.0.0.1:{port}",
        PORTAL_MAIL="smtp",
        PORTAL_SMTP_HOST=mail.host,
        PORTAL_SMTP_PORT=str(mail.port),
        PORTAL_MAIL_FROM="sinetti@valtori.fi",
        PORTAL_SMS="http",
        PORTAL_SMS_HTTP_URL=sms_gateway.url,
        PORTAL_SMS_HTTP_TOKEN=sms_gateway.token,
        PORTAL_ALLOWED_RECIPIENT_DOMAINS=ALLOWED_RECIPIENT_DOMAINS,
        PORTAL_MAX_ATTACHMENTS_BYTES=str(MAX_ATTACHMENTS_BYTES),
        PORTAL_OUTBOX_POLL_SECONDS="1",
        PYTHONUNBUFFERED="1",
    )
    return env


@contextlib.contextmanager
def running_portal_server(
    mail: MailCatcher,
    sms_gateway: SmsGatewayServer,
    tmp_path_factory: pytest.TempPathFactory,
    name: str = "portal",
    extra_env: dict[str, str] | None = None,
    serve_args: Sequence[str] = (),
) -> Iterator[PortalServer]:
    """``sinetti migrate`` then ``sinetti serve`` on a free loopback port until the block ends,
    with :func:`server_env` and ``extra_env`` (``PORTAL_MAX_ATTACHMENTS_BYTES``,
    ``PORTAL_STORAGE``, ``PORTAL_DATABASE_URL``, …) and more ``serve_args`` (``--workers``).
    The server runs in a process group of its own (its workers too), ended as a whole at the
    end. Its log is attached to the report of a test that fails meanwhile."""
    port = free_port()
    data_dir = tmp_path_factory.mktemp(f"{name}-data")
    log_path = data_dir.parent / f"sinetti-{name}.log"
    env = server_env(port, data_dir, mail, sms_gateway)
    env.update(extra_env or {})
    sinetti = _sinetti_command()
    migrated = subprocess.run(  # noqa: S603 - our own command, no shell
        [sinetti, "migrate"], env=env, cwd=SOURCE_ROOT, capture_output=True, text=True, timeout=120
    )
    if migrated.returncode != 0:
        pytest.fail(
            f"`sinetti migrate` failed ({migrated.returncode}):\n{migrated.stdout}{migrated.stderr}"
        )

    server = PortalServer(
        f"http://127.0.0.1:{port}", data_dir, log_path, env.get("PORTAL_DATABASE_URL", "")
    )
    with log_path.open("w") as log:
        process = subprocess.Popen(  # noqa: S603 - our own command, no shell
            [
                *(sinetti, "serve", "--no-migrate", "--host", "127.0.0.1", "--port", str(port)),
                *serve_args,
            ],
            env=env,
            cwd=SOURCE_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a process group of its own: its workers end with it
        )
    server.pid = process.pid
    SERVER_LOGS.append(log_path)
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while not _answers(server.url + "/"):
            if process.poll() is not None:
                pytest.fail(f"the server exited with {process.returncode}:\n{server.log()}")
            if time.monotonic() > deadline:
                pytest.fail(
                    f"the server did not answer in {SERVER_START_TIMEOUT:.0f} s:\n{server.log()}"
                )
            time.sleep(0.1)
        yield server
    finally:
        _end_process_group(process)
        SERVER_LOGS.remove(log_path)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Attach the tail of the server's log to the report of a failed test."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if not report.failed:
        return
    for log_path in SERVER_LOGS:
        if log_path.exists():
            lines = log_path.read_text(errors="replace").splitlines()
            report.sections.append(
                (f"{log_path.stem} server log (last 80 lines)", "\n".join(lines[-80:]))
            )


def new_address(prefix: str) -> str:
    """A sender address no other test uses (tests stay independent of each other)."""
    return f"{prefix}.{uuid.uuid4().hex[:10]}@example.com"


def new_recipient(prefix: str, domain: str = "valtori.fi") -> str:
    """A recipient address at an allowed domain that no other test uses."""
    return f"{prefix}.{uuid.uuid4().hex[:6]}@{domain}"
