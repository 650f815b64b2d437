"""The concurrency suite's server: ``sinetti serve --workers 2`` on the database under test.

Each test module gets one server (``site``), started with the module's ``SETTINGS`` (the
limits it puts under load, kept small so a burst reaches them) on top of
``portal.testing.server_env``: mail over SMTP to the session's aiosmtpd server (``mail``), SMS
over HTTP to the gateway stand-in (``sms_gateway``), the outbox polled every second and a 5 MiB
attachment limit. Two worker processes: a limit that holds only inside one process fails here.

The database is SQLite in the server's data directory, or, with
``SINETTI_TEST_DATABASE_URL=postgres://user:pass@host:port``, a fresh PostgreSQL database per
server (created before ``sinetti migrate``, dropped afterwards). ``site.db`` reads it.

No browser: the suite runs with ``-p no:playwright``; the requests are httpx's.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import pytest_asyncio

from portal.testing import (
    MailCatcher,
    SmsGatewayServer,
    _postgres_admin,
    new_address,
    running_portal_server,
)

from .helpers import Browser, Database, Site

WORKERS = 2
BASE_SETTINGS = {
    "PORTAL_MAX_ATTACHMENTS_BYTES": str(5 * 1024 * 1024),
    "PORTAL_OUTBOX_POLL_SECONDS": "1",
    # Every test signs in from 127.0.0.1; only test_registrations.py puts this cap under load.
    "PORTAL_REGISTRATIONS_PER_IP_PER_HOUR": "1000",
}


def _admin(base: str, sql: str) -> None:
    """One statement on the PostgreSQL server, from a thread with a loop of its own (the
    fixtures here are synchronous and may run while another loop is current)."""
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, _postgres_admin(base, sql)).result()


@contextlib.contextmanager
def server_database(name: str) -> Iterator[str]:
    """A PostgreSQL database URL of its own when SINETTI_TEST_DATABASE_URL is set, else ""
    (the server then uses SQLite in its data directory)."""
    base = os.environ.get("SINETTI_TEST_DATABASE_URL", "")
    if not base:
        yield ""
        return
    database = f"sinetti_concurrency_{name}_{uuid.uuid4().hex[:8]}"
    _admin(base, f'CREATE DATABASE "{database}"')
    try:
        yield base.rstrip("/") + "/" + database
    finally:
        _admin(base, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


@pytest.fixture(scope="module")
def site(
    request: pytest.FixtureRequest,
    mail: MailCatcher,
    sms_gateway: SmsGatewayServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Site]:
    """The module's server, with its ``SETTINGS`` (``PORTAL_*`` strings)."""
    name = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_")
    settings = {**BASE_SETTINGS, **getattr(request.module, "SETTINGS", {})}
    # A module whose settings name a server of the session (clamd's address) gives a fixture.
    if hasattr(request.module, "SETTINGS_FIXTURE"):
        settings.update(request.getfixturevalue(request.module.SETTINGS_FIXTURE))
    with server_database(name) as database_url:
        env = dict(settings)
        if database_url:
            env["PORTAL_DATABASE_URL"] = database_url
        with running_portal_server(
            mail,
            sms_gateway,
            tmp_path_factory,
            f"concurrency-{name}",
            env,
            serve_args=("--workers", str(WORKERS)),
        ) as server:
            db = Database(database_url, server.database)
            yield Site(server, mail, sms_gateway, db, settings)


@pytest_asyncio.fixture
async def browsers(site: Site) -> AsyncIterator[list[Browser]]:
    """Browsers made with ``browsers.append(site.browser())`` are closed after the test."""
    made: list[Browser] = []
    yield made
    for browser in made:
        await browser.http.aclose()


@pytest_asyncio.fixture
async def sender(site: Site, browsers: list[Browser]) -> tuple[Browser, str, str]:
    """A fresh sender signed in: (their browser, their address, their personal link)."""
    browser = site.browser()
    browsers.append(browser)
    address = new_address("sender")
    answer = await browser.register(address)
    assert answer.status_code == 200, f"registration: {answer.status_code}\n{answer.text[:500]}"
    link = await site.personal_link(address)
    await browser.sign_in(link)
    return browser, address, link
