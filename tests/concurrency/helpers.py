"""What the concurrency tests do with a server: simulated browsers, the flows of a sender and a
recipient, bursts of parallel requests, and reading the server's database.

A :class:`Browser` is one ``httpx.AsyncClient`` with its own cookie jar (one person's browser;
redirects are not followed, so a test sees each 303). ``Browser(server, source="127.0.0.7")``
connects from another loopback address: the server sees another client IP (the per-IP
registration cap then counts it apart), with no proxy header involved.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import html
import re
import sqlite3
import uuid
from collections import Counter
from collections.abc import Awaitable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from portal.testing import (
    MailCatcher,
    PortalServer,
    SmsGatewayServer,
    csrf_from,
    links_in,
    server_env,
)

BURST = 60  # requests fired at once at each gate (the issue asks for at least 50)
TIMEOUT = httpx.Timeout(120.0)
LIMITS = httpx.Limits(max_connections=BURST * 2, max_keepalive_connections=BURST * 2)
MiB = 1024 * 1024


# -- the server's database ---------------------------------------------------------------------


@dataclasses.dataclass
class Database:
    """The server's own database, read by the tests to check an invariant where it is kept.

    Queries use ``?`` placeholders on both databases (turned into ``$1``… for PostgreSQL).
    """

    url: str  # postgres://… or empty for the SQLite file below
    sqlite_path: Path

    async def rows(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        if self.url.startswith("postgres"):
            return await self._postgres(query, params)
        return await asyncio.to_thread(self._sqlite, query, params)

    async def value(self, query: str, *params: Any) -> Any:
        rows = await self.rows(query, *params)
        assert len(rows) == 1, f"{query}: expected one row, got {rows}"
        return rows[0][0]

    async def execute(self, query: str, *params: Any) -> int:
        """Run one writing statement and commit it (a test setting the scene, say moving a
        message's ``sent_at`` back); return how many rows it changed."""
        if self.url.startswith("postgres"):
            status = await self._postgres(query, params, write=True)
            return int(str(status).rsplit(" ", 1)[-1])
        return await asyncio.to_thread(self._sqlite_write, query, params)

    def _sqlite(self, query: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        with contextlib.closing(sqlite3.connect(self.sqlite_path, timeout=30)) as conn:
            return conn.execute(query, tuple(params)).fetchall()

    def _sqlite_write(self, query: str, params: Sequence[Any]) -> int:
        with contextlib.closing(sqlite3.connect(self.sqlite_path, timeout=30)) as conn, conn:
            return conn.execute(query, tuple(params)).rowcount

    async def _postgres(self, query: str, params: Sequence[Any], write: bool = False) -> Any:
        import asyncpg

        numbered = iter(range(1, 1000))
        query = re.sub(r"\?", lambda _: f"${next(numbered)}", query)
        conn = await asyncpg.connect(self.url.replace("postgres://", "postgresql://", 1))
        try:
            if write:
                return await conn.execute(query, *params)  # autocommit: "UPDATE 12"
            return [tuple(row) for row in await conn.fetch(query, *params)]
        finally:
            await conn.close()


async def audit_events(db: Database, message_id: Any) -> Counter[str]:
    """How many events of each kind the audit trail holds for the message ``message_id``."""
    rows = await db.rows(
        "SELECT event, count(*) FROM audit_event WHERE message_id = ? GROUP BY event", message_id
    )
    return Counter({str(event): int(count) for event, count in rows})


async def message_of_recipient(db: Database, recipient_id: int) -> Any:
    return await db.value("SELECT message_id FROM recipient WHERE id = ?", recipient_id)


async def data_keys(db: Database, data_dir: Path) -> dict[str, bytes]:
    """Every message's data key (by message id), unwrapped as the server unwraps it: by the
    ``local`` key provider's KEK in the server's data directory."""
    from sinetti_keys_local import LocalKeyProvider

    from portal.config import load_settings
    from portal.keys.base import WrappedKey

    settings = load_settings(environ={}, override={"data_dir": data_dir, "secret_key": "k" * 40})
    provider = LocalKeyProvider(settings, {})
    await provider.open()
    found = {}
    for message_id, kek_id, wrapped in await db.rows(
        "SELECT message_id, kek_id, wrapped FROM message_key"
    ):
        found[str(message_id)] = await provider.unwrap(
            WrappedKey(str(kek_id), bytes(wrapped)), f"message:{message_id}".encode()
        )
    return found


async def file_names(db: Database, data_dir: Path, message_id: str) -> list[tuple[str, str]]:
    """(storage key, file name) of the message's attachments, the names opened with its key
    (they are sealed in the database)."""
    from portal.services.message_fields import open_value

    data_key = (await data_keys(db, data_dir))[str(message_id)]
    rows = await db.rows(
        "SELECT storage_key, filename FROM attachment WHERE message_id = ?", message_id
    )
    return [
        (str(key), open_value(data_key, "attachment", "filename", message_id, str(name)))
        for key, name in rows
    ]


async def sms_queued_for(db: Database, message_id: Any) -> int:
    """How many SMS the outbox holds for the message (by the message each names: their
    numbers are sealed, and masked once delivered)."""
    return int(
        await db.value(
            "SELECT count(*) FROM outbox_item WHERE channel = 'sms' AND message_ref = ?",
            message_id,
        )
    )


async def attachments_opened(
    db: Database, data_dir: Path, stored: dict[str, Any]
) -> dict[str, str]:
    """The SHA-256 of the plaintext of every attachment in ``stored`` (its stored bytes by
    storage key), opened as the server opens it: its message's data key unwrapped by the
    ``local`` key provider's KEK in the server's data directory, then its segments."""

    from portal.crypto.segments import Opener, cipher_span

    keys = await data_keys(db, data_dir)
    rows = await db.rows("SELECT storage_key, size, crypto_header, message_id FROM attachment")
    opened: dict[str, str] = {}
    for key, size, header, message_id in rows:
        data_key = keys.get(str(message_id))
        if stored.get(key) is None or data_key is None:
            continue

        async def whole(data: bytes = stored[key]) -> Any:
            yield data

        opener = Opener(data_key, str(key).encode("ascii"), bytes(header))
        digest = hashlib.sha256()
        async for plain in opener.stream(whole(), cipher_span(0, size, size), size):
            digest.update(plain)
        opened[str(key)] = digest.hexdigest()
    return opened


def moment(value: Any) -> datetime:
    """A timestamp column as an aware datetime (asyncpg gives one, SQLite an ISO string)."""
    found = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return found if found.tzinfo else found.replace(tzinfo=UTC)


# -- the server under test ---------------------------------------------------------------------


@dataclasses.dataclass
class Site:
    """A running ``sinetti serve --workers 2`` with its mail, SMS gateway and database."""

    server: PortalServer
    mail: MailCatcher
    sms: SmsGatewayServer
    db: Database
    settings: dict[str, str]  # the PORTAL_* settings the module chose

    @property
    def url(self) -> str:
        return self.server.url

    def setting(self, name: str) -> int:
        return int(self.settings[name])

    def command_env(self) -> dict[str, str]:
        """The server's own environment, for a ``sinetti`` command beside it: the same data
        directory, database and settings."""
        port = int(self.url.rsplit(":", 1)[1])
        env = {**server_env(port, self.server.data_dir, self.mail, self.sms), **self.settings}
        if self.db.url:
            env["PORTAL_DATABASE_URL"] = self.db.url
        return env

    def browser(self, source: str | None = None) -> Browser:
        return Browser(self, source)

    async def personal_link(self, address: str) -> str:
        return await asyncio.to_thread(self.mail.personal_link, address)

    async def recipient_link(self, address: str) -> str:
        """The ``/m/…`` link of the newest notification mail to ``address``."""
        mails = await asyncio.to_thread(self.mail.wait_for, address)
        found = [link for link in links_in(mails[-1].text()) if "/m/" in link]
        assert found, f"the notification to {address} has no message link:\n{mails[-1].text()}"
        return found[0]

    async def sms_to(self, number: str, count: int = 1) -> list[Any]:
        return await asyncio.to_thread(self.sms.wait_for, number, count)


def path_of(link: str) -> str:
    return urlsplit(link).path


class Browser:
    """One simulated browser: its own cookies, no redirects followed."""

    def __init__(self, site: Site, source: str | None = None) -> None:
        self.site = site
        self.compose_action = "/compose"
        transport = httpx.AsyncHTTPTransport(local_address=source, limits=LIMITS, retries=0)
        self.http = httpx.AsyncClient(
            base_url=site.url, transport=transport, follow_redirects=False, timeout=TIMEOUT
        )

    async def __aenter__(self) -> Browser:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.http.aclose()

    def copy_cookies_from(self, other: Browser) -> None:
        """This browser now holds a copy of ``other``'s cookies (a copied session)."""
        for cookie in other.http.cookies.jar:
            self.http.cookies.jar.set_cookie(cookie)

    async def csrf(self, path: str) -> str:
        """The CSRF token of the page at ``path``; on the compose page also where its form
        posts (``/compose?draft=…``: the form names its draft, as a browser's does)."""
        page = await self.http.get(path)
        assert page.status_code == 200, f"GET {path}: {page.status_code}\n{page.text[:500]}"
        action = re.search(r'<form id="compose" method="post" action="([^"]+)"', page.text)
        if action:
            self.compose_action = html.unescape(action.group(1))
        return csrf_from(page.text)

    async def register(self, address: str, csrf: str | None = None) -> httpx.Response:
        csrf = csrf or await self.csrf("/")
        return await self.http.post("/", data={"email": address, "csrf_token": csrf})

    async def sign_in(self, link: str) -> None:
        """Open the personal link: GET shows "Continue as …", its POST signs in."""
        path = path_of(link)
        page = await self.http.get(path)
        assert page.status_code == 200, f"{path}: {page.status_code}\n{page.text[:500]}"
        page = await self.http.post(path, data={"csrf_token": csrf_from(page.text)})
        assert page.status_code == 303, f"{path}: {page.status_code}\n{page.text[:500]}"
        assert page.headers["location"].endswith("/compose"), page.headers["location"]

    async def compose(
        self,
        csrf: str,
        recipients: str,
        *,
        subject: str = "Concurrency",
        body: str = "A confidential message.",
        files: Sequence[tuple[str, bytes]] = (),
        attach_only: bool = False,
    ) -> httpx.Response:
        """POST the compose form as a browser does: to its action, the CSRF field first, the
        files last."""
        fields = [
            ("csrf_token", csrf),
            ("recipients", recipients),
            ("subject", subject),
            ("body", body),
            ("signature", "Sender"),
        ]
        if attach_only:
            fields.append(("action", "attach"))
        parts: list[tuple[str, Any]] = [(name, (None, value)) for name, value in fields]
        if files:
            parts += [
                ("attachments", (name, data, "application/octet-stream")) for name, data in files
            ]
        else:  # a browser sends the empty file field when no file was chosen
            parts.append(("attachments", ("", b"", "application/octet-stream")))
        return await self.http.post(self.compose_action, files=parts)

    async def announce(self, csrf: str, size: int, name: str = "file.bin") -> httpx.Response:
        """POST /compose/uploads for a file of ``size`` bytes (a fingerprint of its own)."""
        return await self.http.post(
            "/compose/uploads",
            json={
                "filename": name,
                "size": size,
                "type": "application/octet-stream",
                "fingerprint": uuid.uuid4().hex,
            },
            headers={"X-CSRF-Token": csrf},
        )

    async def put_chunk(
        self, csrf: str, upload_id: str, offset: int, data: bytes
    ) -> httpx.Response:
        return await self.http.put(
            f"/compose/uploads/{upload_id}",
            content=data,
            headers={
                "X-CSRF-Token": csrf,
                "Upload-Offset": str(offset),
                "Content-Type": "application/offset+octet-stream",
            },
        )

    async def open_message(self, link: str) -> httpx.Response:
        path = path_of(link)
        csrf = await self.csrf(path)
        return await self.http.post(f"{path}/open", data={"csrf_token": csrf})


async def at_once(requests: Iterable[Awaitable[httpx.Response]]) -> list[httpx.Response]:
    """Fire every request together (``asyncio.gather``) and return the answers in order."""
    return list(await asyncio.gather(*requests))


def statuses(answers: Iterable[httpx.Response]) -> Counter[int]:
    return Counter(answer.status_code for answer in answers)


def no_server_errors(answers: Iterable[httpx.Response]) -> None:
    """No answer of the burst was a 5xx (the server's log, attached to a failed test's report,
    has the traceback)."""
    errors = [a for a in answers if a.status_code >= 500]
    assert not errors, f"{len(errors)} answers were server errors: " + ", ".join(
        f"{n} × {request}"
        for request, n in Counter(
            f"{a.request.method} {a.request.url.path} → {a.status_code}" for a in errors
        ).items()
    )


def new_phone() -> str:
    """A Finnish mobile number (040…) no other test uses."""
    return "040" + str(uuid.uuid4().int % 10**7).zfill(7)
