"""End-to-end fixtures: a real Sinetti server, a real SMTP server and Debian's Chromium.

- ``mail``: a session-scoped aiosmtpd server on loopback capturing every mail the portal sends
  (the portal's outbox worker delivers in the background, so tests poll it with a timeout).
- ``sms_gateway``: a session-scoped HTTP server on loopback standing in for the SMS gateway of
  the ``http`` plugin: it records every POST (headers and JSON), checks the bearer token and
  answers 200; ``wait_for(number)`` polls like ``mail.wait_for``, ``pin(number)`` reads the
  newest PIN sent to a number.
- ``portal_server``: ``sinetti migrate`` then ``sinetti serve --no-migrate`` in a subprocess on a
  free loopback port, with its own data directory, the SMTP transport pointed at ``mail``, the
  ``http`` SMS gateway pointed at ``sms_gateway`` and a 5 MiB attachment limit. Its log is
  printed when it fails to start and attached to the report of every failed test.
  ``running_portal_server(mail, sms_gateway, tmp_path_factory, name, extra_env)`` starts another
  such server with other settings (test_big_uploads.py: a 450 MiB limit, S3 storage).
- Playwright's ``page``/``context`` use ``/usr/bin/chromium`` (see FIELD-NOTES.md) with the
  server as ``base_url``, a Finnish browser (``Accept-Language: fi-FI``) and downloads on.
- ``assert_accessible(page, what)`` runs axe-core (WCAG 2.0/2.1 A and AA) and fails listing every
  violation; ``screenshot(page, name)`` saves a full-page PNG to test-artifacts/screenshots/.
  ``page_in_languages(page, url, lang, what, name)`` opens a page in a language and does both at
  desktop and phone size; ``check_this_page(page, what, name)`` does the same for the page as it
  is (the answer to a POST, say).
- ``register(page, address)`` goes through the start page and returns the personal link from
  the captured registration mail; ``sign_in(page)`` also opens it and lands on the compose page.
- Plain functions for the test modules: ``new_recipient(prefix)``, an address at an allowed
  domain that no other test uses; ``download(page, link_name)``, what clicking a link saves.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import pytest
from playwright.sync_api import Download, Page, expect

from portal.testing import CapturedMail, SmtpServer, free_port, links_in, running_smtp_server

ROOT = Path(__file__).resolve().parents[2]
AXE_SCRIPT = Path(__file__).resolve().parent / "vendor" / "axe-4.14.1.min.js"
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}

ALLOWED_RECIPIENT_DOMAINS = "valtori.fi,example.fi"
MAX_ATTACHMENTS_BYTES = 5 * 1024 * 1024
MAIL_TIMEOUT = 15.0
SMS_TIMEOUT = 15.0
SMS_TOKEN = f"e2e-sms-{uuid.uuid4().hex}"
SMS_PATH = "/api/sms"
SERVER_START_TIMEOUT = 40.0

# The product's words in the three languages (PRODUCT.md, from the original guide).
WORDS = {
    "fi": {
        "Confidential message": "Salassa pidettävä viesti",
        "Sender": "Lähettäjä",
        "Continue": "Jatka",
        "Recipients": "Vastaanottajat",
        "Subject": "Aihe",
        "Request read receipt": "Pyydä lukukuittaus",
        "Message": "Viesti",
        "Signature": "Allekirjoitus",
        "Attachments": "Liitteet",
        "Send": "Lähetä",
        "Cancel": "Lopeta",
        "Message sent": "Viestin lähetys onnistui",
        "Message with attachments (zip)": "Viesti liitetiedostoineen (zip)",
        "Save": "Tallenna",
    },
    "sv": {
        "Confidential message": "Sekretessbelagt meddelande",
        "Sender": "Avsändare",
        "Continue": "Fortsätt",
        "Recipients": "Mottagare",
        "Subject": "Ämne",
        "Request read receipt": "Begär läskvitto",
        "Message": "Meddelande",
        "Signature": "Underskrift",
        "Attachments": "Bilagor",
        "Send": "Sänd",
        "Cancel": "Avsluta",
        "Message sent": "Meddelandet har skickats",
        "Message with attachments (zip)": "Meddelande med bilagor (zip)",
        "Save": "Spara",
    },
    "en": {
        word: word
        for word in (
            "Confidential message",
            "Sender",
            "Continue",
            "Recipients",
            "Subject",
            "Request read receipt",
            "Message",
            "Signature",
            "Attachments",
            "Send",
            "Cancel",
            "Message sent",
            "Message with attachments (zip)",
            "Save",
        )
    },
}


# -- the SMTP server ---------------------------------------------------------------------------


T = TypeVar("T")


def poll(
    find: Callable[[], list[T]], count: int, timeout: float, failure: Callable[[list[T]], str]
) -> list[T]:
    """``find()`` once it holds at least ``count`` items; after ``timeout`` seconds, fail with
    ``failure(what was found)``. For the servers of this file, which run in threads of their own
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
    ``portal.testing.smtp_server`` (which is per test, too short-lived for one server process)."""
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


class SmsGatewayServer:
    """A real HTTP server on 127.0.0.1 that answers like an SMS gateway (``PORTAL_SMS=http``).

    Every POST is recorded in ``requests``; those with the right bearer token, a JSON body and
    a path of ``SMS_PATH`` are answered 200 and are the delivered ``messages``, anything else
    is answered 401/400/404 (and the portal's outbox would retry it).
    """

    def __init__(self, token: str) -> None:
        self.token = token
        self.requests: list[CapturedSms] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="sms-gateway", daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}{SMS_PATH}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

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


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # loopback only
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


_SERVER_LOGS: list[Path] = []


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
) -> Iterator[PortalServer]:
    """``sinetti migrate`` then ``sinetti serve`` on a free loopback port until the block ends,
    with :func:`server_env` and ``extra_env`` (``PORTAL_MAX_ATTACHMENTS_BYTES``,
    ``PORTAL_STORAGE``, …). Its log is attached to the report of a test that fails meanwhile."""
    port = free_port()
    data_dir = tmp_path_factory.mktemp(f"{name}-data")
    log_path = data_dir.parent / f"sinetti-{name}.log"
    env = server_env(port, data_dir, mail, sms_gateway)
    env.update(extra_env or {})
    sinetti = _sinetti_command()
    migrated = subprocess.run(
        [sinetti, "migrate"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    if migrated.returncode != 0:
        pytest.fail(
            f"`sinetti migrate` failed ({migrated.returncode}):\n{migrated.stdout}{migrated.stderr}"
        )

    server = PortalServer(f"http://127.0.0.1:{port}", data_dir, log_path)
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sinetti, "serve", "--no-migrate", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    _SERVER_LOGS.append(log_path)
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
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        _SERVER_LOGS.remove(log_path)


@pytest.fixture(scope="session")
def portal_server(
    mail: MailCatcher, sms_gateway: SmsGatewayServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PortalServer]:
    with running_portal_server(mail, sms_gateway, tmp_path_factory) as server:
        yield server


@pytest.hookimpl(trylast=True)  # after pytest's own reordering by parametrized fixtures
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the browser tests after all others (a stable sort) when one run collects both.

    pytest-playwright's sync API keeps an event loop running in the main thread from the first
    browser test to the end of the session; an async unit test after it fails with "Runner.run()
    cannot be called from a running event loop".
    """
    here = Path(__file__).resolve().parent
    items.sort(key=lambda item: Path(str(item.path)).resolve().is_relative_to(here))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Attach the tail of the server's log to the report of a failed test."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if not report.failed:
        return
    for log_path in _SERVER_LOGS:
        if log_path.exists():
            lines = log_path.read_text(errors="replace").splitlines()
            report.sections.append(
                (f"{log_path.stem} server log (last 80 lines)", "\n".join(lines[-80:]))
            )


# -- the browser -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    """Debian's Chromium: Playwright cannot download its own browser here (FIELD-NOTES.md)."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium")
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": CHROMIUM_ARGS,
        "headless": True,
    }


@pytest.fixture(scope="session")
def base_url(portal_server: PortalServer) -> str:
    return portal_server.url


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict[str, Any], base_url: str) -> dict[str, Any]:
    return {
        **browser_context_args,
        "base_url": base_url,
        "viewport": DESKTOP,
        # A Finnish citizen's browser: the first visit follows Accept-Language.
        "locale": "fi-FI",
        "timezone_id": "Europe/Helsinki",
        "accept_downloads": True,
        # axe-core is injected as an inline script, which the portal's CSP (rightly) forbids.
        # test_security.py checks the pages under the real CSP.
        "bypass_csp": True,
    }


# -- axe-core and screenshots -----------------------------------------------------------------


def _format_violations(violations: list[dict[str, Any]]) -> str:
    lines = []
    for violation in violations:
        lines.append(
            f"- {violation['id']} ({violation['impact']}): {violation['help']}"
            f"  {violation['helpUrl']}"
        )
        for node in violation["nodes"]:
            lines.append(f"    at {' '.join(map(str, node['target']))}")
            lines.append(f"       {node['html'][:200]}")
            for summary_line in (node.get("summary") or "").splitlines():
                lines.append(f"       {summary_line}")
    return "\n".join(lines)


def check_accessible(page: Page, what: str) -> None:
    """Run axe-core on the page as it is now; fail with a readable list of violations."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE_SCRIPT))
    violations = page.evaluate(
        """async (tags) => {
            const result = await axe.run(document, {runOnly: {type: "tag", values: tags}});
            return result.violations.map(v => ({
                id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
                nodes: v.nodes.map(n => ({
                    target: n.target, html: n.html, summary: n.failureSummary,
                })),
            }));
        }""",
        AXE_TAGS,
    )
    assert not violations, (
        f"axe-core found {len(violations)} accessibility violation(s) on {what} ({page.url}):\n"
        + _format_violations(violations)
    )


def save_screenshot(page: Page, name: str) -> Path:
    """A full-page PNG in test-artifacts/screenshots/<name>.png (git-ignored)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


@contextlib.contextmanager
def phone_sized(page: Page) -> Iterator[None]:
    """The page at a phone's viewport (390 × 844) for the duration of the block."""
    before = page.viewport_size or DESKTOP
    page.set_viewport_size(PHONE)
    try:
        yield
    finally:
        page.set_viewport_size(before)


def check_this_page(page: Page, what: str, name: str) -> None:
    """Check the page as it is now with axe and screenshot it at desktop and phone size, as
    ``<name>-<lang>.png`` and ``<name>-<lang>-phone.png`` (``lang`` from ``<html lang>``)."""
    lang = page.locator("html").get_attribute("lang") or "xx"
    check_accessible(page, f"{what} ({lang})")
    save_screenshot(page, f"{name}-{lang}")
    with phone_sized(page):
        check_accessible(page, f"{what} ({lang}, phone)")
        save_screenshot(page, f"{name}-{lang}-phone")


def check_page_in(page: Page, url: str, lang: str, what: str, name: str, status: int = 200) -> None:
    """Open ``url`` in ``lang`` (expecting ``status``); check it with axe and screenshot it at
    desktop and phone size. The language choice sticks for the next pages of the context."""
    separator = "&" if "?" in url else "?"
    response = page.goto(f"{url}{separator}lang={lang}")
    assert response is not None and response.status == status, (
        f"{url}: {response.status if response else None}, expected {status}"
    )
    expect(page.locator("html")).to_have_attribute("lang", lang)
    check_this_page(page, what, name)


@pytest.fixture
def page_in_languages() -> Callable[..., None]:
    return check_page_in


@pytest.fixture(name="check_this_page")
def check_this_page_fixture() -> Callable[[Page, str, str], None]:
    return check_this_page


@pytest.fixture
def assert_accessible() -> Callable[[Page, str], None]:
    return check_accessible


@pytest.fixture
def screenshot() -> Callable[[Page, str], Path]:
    return save_screenshot


@pytest.fixture(name="phone_sized")
def phone_sized_fixture() -> Callable[[Page], contextlib.AbstractContextManager[None]]:
    return phone_sized


@pytest.fixture(name="new_address")
def new_address_fixture() -> Callable[[str], str]:
    return new_address


@pytest.fixture
def words() -> dict[str, dict[str, str]]:
    """The product's words in fi, sv and en (PRODUCT.md): ``words["sv"]["Sender"]``."""
    return WORDS


# -- senders ---------------------------------------------------------------------------------


def new_address(prefix: str) -> str:
    """A sender address no other test uses (tests stay independent of each other)."""
    return f"{prefix}.{uuid.uuid4().hex[:10]}@example.com"


def new_recipient(prefix: str, domain: str = "valtori.fi") -> str:
    """A recipient address at an allowed domain that no other test uses."""
    return f"{prefix}.{uuid.uuid4().hex[:6]}@{domain}"


def download(
    page: Page, link_name: str | re.Pattern[str], timeout: float | None = None
) -> Download:
    """Click the link named ``link_name`` (exactly, for a string) and return the download."""
    with page.expect_download(timeout=timeout) as info:
        page.get_by_role("link", name=link_name, exact=isinstance(link_name, str)).click()
    return info.value


@pytest.fixture
def register(mail: MailCatcher) -> Callable[[Page, str], str]:
    """Register ``address`` through the start page (in English); return the personal link."""

    def run(page: Page, address: str) -> str:
        page.goto("/?lang=en")
        page.get_by_label("Sender", exact=True).fill(address)
        page.get_by_role("button", name="Continue", exact=True).click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Registration succeeded")
        return mail.personal_link(address)

    return run


@pytest.fixture
def sign_in(register: Callable[[Page, str], str]) -> Callable[..., str]:
    """Register a fresh address, open its personal link and land on the compose page.
    Returns the address."""

    def run(page: Page, prefix: str = "sender") -> str:
        address = new_address(prefix)
        link = register(page, address)
        page.goto(link)
        expect(page).to_have_url(re.compile(r"/compose$"))
        expect(page.get_by_role("heading", level=1)).to_have_text("New confidential message")
        return address

    return run
