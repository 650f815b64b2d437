"""End-to-end fixtures: a real Sinetti server, a real SMTP server and Debian's Chromium.

The servers come from ``portal.testing`` (shared with tests/concurrency): ``mail`` (aiosmtpd
on loopback), ``sms_gateway`` (an SMS gateway stand-in) and ``running_portal_server``.

- ``portal_server``: ``sinetti migrate`` then ``sinetti serve --no-migrate`` in a subprocess on a
  free loopback port, with its own data directory, the SMTP transport pointed at ``mail``, the
  ``http`` SMS gateway pointed at ``sms_gateway`` and a 5 MiB attachment limit. Its log is
  printed when it fails to start and attached to the report of every failed test.
  ``running_portal_server(mail, sms_gateway, tmp_path_factory, name, extra_env)`` starts another
  such server with other settings (test_big_uploads.py: a 450 MiB limit, S3 storage).
- Playwright's ``page``/``context`` use Debian's ``/usr/bin/chromium`` (Playwright cannot
  download its own browser without internet access) with the server as ``base_url``, a
  Finnish browser (``Accept-Language: fi-FI``) and downloads on.
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
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Download, Page, expect

from portal.testing import (
    MailCatcher,
    PortalServer,
    SmsGatewayServer,
    new_address,
    new_recipient,
    running_portal_server,
)

# Re-exported for the test modules, which import them from here.
__all__ = ["PortalServer", "new_recipient", "running_portal_server"]

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


# The product's words in the three languages (docs: the UI words of the original guide).
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


# -- the portal server (the SMTP server, the SMS gateway and the server itself: portal.testing)


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


# -- the browser -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    """Debian's Chromium: Playwright cannot download its own browser without internet access."""
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
    """The product's words in fi, sv and en: ``words["sv"]["Sender"]``."""
    return WORDS


# -- senders ---------------------------------------------------------------------------------


def download(
    page: Page, link_name: str | re.Pattern[str], timeout: float | None = None
) -> Download:
    """Click the link named ``link_name`` (exactly, for a string) and return the download."""
    with page.expect_download(timeout=timeout) as info:
        page.get_by_role("link", name=link_name, exact=isinstance(link_name, str)).click()
    return info.value


def continue_with_link(page: Page, link: str) -> None:
    """Open a personal link and press Continue on its page: signed in, on the compose page."""
    page.goto(link)
    page.locator("main form").get_by_role("button").click()
    expect(page).to_have_url(re.compile(r"/compose$"))


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
        continue_with_link(page, link)
        expect(page.get_by_role("heading", level=1)).to_have_text("New confidential message")
        return address

    return run


def reload_until(page: Any, done: Callable[[], bool], what: str, seconds: float = 60.0) -> None:
    """Reload the page until ``done()``: the pages do not refresh themselves, and what they
    show waits on background work (a delivery, a malware check)."""
    deadline = time.monotonic() + seconds
    while True:
        page.reload()
        if done():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"after {seconds:.0f} s still not {what} ({page.url})")
        page.wait_for_timeout(500)
