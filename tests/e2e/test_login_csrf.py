"""Login CSRF (issue 8, item 3): a page on another site cannot sign a visitor in with the
attacker's own personal link, neither by sending the browser to it nor by posting to it.

The attacker registers their own address and gets their personal link. Their page is served
from another origin and another *site* on loopback: a small ``http.server`` on 127.0.0.1 opened
as ``http://localhost:<port>/`` (the portal is ``http://127.0.0.1:<port>``, so the two share no
site and the portal's SameSite=Lax cookie is not sent with a cross-site POST). The page is not
ours, so no CSP of ours applies to it: its inline script runs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import html
import json
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlsplit

import pytest
from conftest import continue_with_link
from playwright.sync_api import Page, expect

from portal.testing import LoopbackHttpServer

pytestmark = pytest.mark.e2e

COOKIE = "sinetti_session"


# -- the attacker's site -----------------------------------------------------------------------


class ForeignSite(LoopbackHttpServer):
    """An HTTP server on 127.0.0.1 whose pages are opened as ``http://localhost:<port>/…``:
    another origin and another site than the portal's ``http://127.0.0.1:<port>``."""

    def __init__(self) -> None:
        self.pages: dict[str, str] = {}
        self.served: list[str] = []
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = site.pages.get(self.path)
                site.served.append(self.path)
                data = (body or "not found").encode()
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        super().__init__(Handler, "foreign-site")

    def url(self, path: str) -> str:
        return f"http://localhost:{self.port}{path}"

    def serve(self, path: str, page: str) -> str:
        self.pages[path] = page
        return self.url(path)


@pytest.fixture(scope="module")
def foreign_site(base_url: str) -> Iterator[ForeignSite]:
    site = ForeignSite()
    # Another site, not only another port: SameSite cookies treat them as strangers.
    assert urlsplit(site.url("/")).hostname == "localhost"
    assert urlsplit(base_url).hostname == "127.0.0.1"
    site.start()
    try:
        yield site
    finally:
        site.stop()


def navigating_page(target: str) -> str:
    return (
        "<!doctype html><html lang='en'><head><title>Win a prize</title></head><body>"
        "<p>Loading your prize…</p>"
        f"<script>window.location = {json.dumps(target)};</script></body></html>"
    )


def posting_page(target: str, csrf_token: str | None) -> str:
    field = (
        f'<input type="hidden" name="csrf_token" value="{html.escape(csrf_token)}">'
        if csrf_token is not None
        else ""
    )
    return (
        "<!doctype html><html lang='en'><head><title>Win a prize</title></head><body>"
        f'<form id="f" method="post" action="{html.escape(target)}">{field}'
        '<input type="hidden" name="prize" value="1"></form>'
        "<script>document.getElementById('f').submit();</script></body></html>"
    )


# -- the portal's side -------------------------------------------------------------------------


@dataclasses.dataclass
class Attacker:
    address: str
    link: str  # the attacker's own personal link, http://127.0.0.1:<port>/s/<token>
    page: Page  # the attacker's own browser

    @property
    def path(self) -> str:
        return urlsplit(self.link).path

    @property
    def masked(self) -> str:
        return self.address[:1] + "•••@" + self.address.rpartition("@")[2]


@pytest.fixture
def attacker(new_context: Callable[..., Any], register, new_address) -> Attacker:
    """The attacker registers their own address in their own browser: their personal link."""
    own = new_context().new_page()
    address = new_address("attacker")
    return Attacker(address, register(own, address), own)


def last_use(portal_server, address: str) -> str:
    rows = portal_server.sql(
        "SELECT last_used_at FROM sender_link JOIN sender ON sender.id = sender_link.sender_id "
        "WHERE sender.email = ?",
        (address,),
    )
    assert len(rows) == 1, rows
    return str(rows[0][0])


def sender_id(portal_server, address: str) -> int:
    ((found,),) = portal_server.sql("SELECT id FROM sender WHERE email = ?", (address,))
    return int(found)


def stored_sessions(portal_server) -> dict[str, dict[str, Any]]:
    """Every stored session: its data by the SHA-256 of its id."""
    return {
        id_hash: json.loads(data) if isinstance(data, str) else data
        for id_hash, data in portal_server.sql("SELECT id_hash, data FROM web_session")
    }


def session_cookie(page: Page, base_url: str) -> str | None:
    values = [c["value"] for c in page.context.cookies(base_url) if c["name"] == COOKIE]
    return values[0] if values else None


def assert_not_signed_in(page: Page, base_url: str, portal_server, attacker: Attacker) -> None:
    """Neither on the server (no session of the victim, nor any session at all, holds a
    sender) nor in the browser (the compose page answers 401, the session-ended page)."""
    sessions = stored_sessions(portal_server)
    cookie = session_cookie(page, base_url)
    if cookie is not None:
        mine = sessions.get(hashlib.sha256(cookie.encode()).hexdigest(), {})
        assert "sender_id" not in mine, mine
    attackers_id = sender_id(portal_server, attacker.address)
    assert not [data for data in sessions.values() if data.get("sender_id") == attackers_id]

    response = page.goto("/compose?lang=en")
    assert response is not None and response.status == 401
    expect(page.get_by_role("heading", level=1)).to_have_text("Your session has ended")
    expect(page.get_by_label("Subject", exact=True)).to_have_count(0)


# -- the tests ---------------------------------------------------------------------------------


def test_a_foreign_page_that_sends_the_browser_to_the_attackers_link_signs_nobody_in(
    page: Page, base_url, attacker, foreign_site, portal_server, screenshot
) -> None:
    page.goto("/")  # the victim has used the portal before: a session of their own
    used_before = last_use(portal_server, attacker.address)
    lure = foreign_site.serve("/navigate", navigating_page(attacker.link))

    page.goto(lure)

    expect(page).to_have_url(attacker.link)
    assert "/navigate" in foreign_site.served
    # The personal link only asks: the Continue page, naming the (masked) attacker.
    expect(page.locator("main form")).to_have_attribute("action", attacker.path)
    expect(page.locator("main")).to_contain_text(attacker.masked)
    expect(page.locator("main")).not_to_contain_text(attacker.address)
    screenshot(page, "login-csrf-navigated-to-the-attackers-link")
    assert last_use(portal_server, attacker.address) == used_before  # GET changed nothing
    assert_not_signed_in(page, base_url, portal_server, attacker)


@pytest.mark.parametrize("forged_token", ["none", "made_up", "the_attackers_own"])
def test_a_foreign_page_that_posts_to_the_attackers_link_signs_nobody_in(
    page: Page, base_url, attacker, foreign_site, portal_server, screenshot, forged_token
) -> None:
    page.goto("/")  # the victim has used the portal before: a session of their own
    token = {
        "none": None,
        "made_up": "x" * 43,
        # A real token, of the attacker's own session on the Continue page.
        "the_attackers_own": _continue_page_token(attacker),
    }[forged_token]
    used_before = last_use(portal_server, attacker.address)
    lure = foreign_site.serve(f"/post-{forged_token}", posting_page(attacker.link, token))

    with page.expect_response(
        lambda r: r.request.method == "POST" and urlsplit(r.url).path == attacker.path
    ) as posted:
        page.goto(lure)

    assert posted.value.status == 400
    expect(page.locator("main")).not_to_contain_text(attacker.masked)
    screenshot(page, f"login-csrf-posted-{forged_token}")
    assert last_use(portal_server, attacker.address) == used_before  # not used to sign in
    assert_not_signed_in(page, base_url, portal_server, attacker)
    # The link itself was good all along: its owner, pressing Continue, is signed in.
    continue_with_link(attacker.page, attacker.link)
    assert last_use(portal_server, attacker.address) != used_before


def _continue_page_token(attacker: Attacker) -> str:
    attacker.page.goto(attacker.link)
    value = attacker.page.locator("main form input[name=csrf_token]").get_attribute("value")
    assert value
    return value
