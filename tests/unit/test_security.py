"""portal.security: CSRF, security headers, the session cookie and token hashing."""

from __future__ import annotations

import hashlib
import re
from http.cookies import SimpleCookie
from urllib.parse import urlencode

import pytest

from portal.security import hash_token, new_token
from portal.testing import csrf_from

from .helpers import page_text, post_compose, row_counts


def cookies_set(response) -> dict[str, str]:
    """Each Set-Cookie header by cookie name."""
    found = {}
    for header in response.headers.get_all("Set-Cookie"):
        name = SimpleCookie(header)
        found[next(iter(name))] = header
    return found


async def test_post_without_csrf_token_is_refused(client):
    response = await client.post("/", form={"email": "liisa@example.com"})

    assert response.status_code == 400
    assert await row_counts() == dict.fromkeys(await row_counts(), 0)


async def test_post_with_a_forged_csrf_token_is_refused(client):
    await client.get("/")

    response = await client.post("/", form={"email": "a@example.com", "csrf_token": "forged"})

    assert response.status_code == 400
    assert (await row_counts())["Sender"] == 0


async def test_csrf_token_from_another_session_is_refused(portal_app):
    mine, theirs = portal_app.test_client(), portal_app.test_client()
    their_token = csrf_from(await page_text(await theirs.get("/")))
    await mine.get("/")

    response = await mine.post("/", form={"email": "a@example.com", "csrf_token": their_token})

    assert response.status_code == 400


async def test_csrf_token_in_the_htmx_header_is_accepted(client):
    html = await page_text(await client.get("/"))
    token = re.search(r'hx-headers=\'\{"X-CSRF-Token": "([^"]+)"\}\'', html).group(1)

    response = await client.post(
        "/", form={"email": "liisa@example.com"}, headers={"X-CSRF-Token": token}
    )

    assert response.status_code == 200
    assert (await row_counts())["Sender"] == 1


@pytest.mark.parametrize("path", ["/compose/cancel", "/compose/attachments/1/remove"])
async def test_other_state_changing_posts_need_the_token(client, sign_in, path):
    await sign_in("liisa@example.com")

    response = await client.post(path, form={})

    assert response.status_code == 400


async def test_upload_without_csrf_is_refused(client, sign_in, data_dir):
    await sign_in("liisa@example.com")

    response = await post_compose(
        client, {"subject": "x", "recipients": "v@valtori.fi", "action": "send"}, csrf=""
    )

    assert response.status_code == 400
    assert (await row_counts())["Message"] == 0


async def test_content_security_policy_forbids_inline_code_and_framing(client):
    csp = (await client.get("/")).headers["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))

    assert "unsafe-inline" not in csp
    assert "unsafe-eval" not in csp
    assert directives["frame-ancestors"] == "'none'"
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["default-src"] == "'self'"


@pytest.mark.parametrize(
    "path", ["/", "/help", "/no/such/page", "/static/portal.css", "/theme.css"]
)
async def test_every_response_has_the_security_headers(client, path):
    headers = (await client.get(path)).headers

    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]


async def test_pages_with_personal_data_are_never_cached(client, sign_in):
    from .helpers import newest_link

    await sign_in("liisa@example.com")
    response = await post_compose(
        client, {"recipients": "v@valtori.fi", "subject": "S", "body": "B", "action": "send"}
    )
    sent = response.headers["Location"]
    recipient = await newest_link(client, "v@valtori.fi", "m")

    for path in ("/", "/compose", sent, sent + "/zip", recipient, "/help"):
        assert (await client.get(path)).headers["Cache-Control"] == "no-store", path


async def test_pages_have_no_inline_scripts_or_styles(client, sign_in):
    await sign_in("liisa@example.com")

    for path in ("/", "/compose", "/help", "/no/such/page"):
        html = await page_text(await client.get(path))
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), path
        assert "<style" not in html, path
        assert not re.search(r"\sstyle=", html), path
        assert not re.search(r"\son[a-z]+=", html), path


async def test_session_cookie_is_http_only_and_same_site_lax(client):
    response = await client.get("/")

    cookie = cookies_set(response)["sinetti_session"]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Secure" not in cookie


class TestOnHttps:
    @pytest.fixture
    def portal_config(self, portal_config):
        return {**portal_config, "base_url": "https://viestit.example.fi"}

    async def test_session_and_language_cookies_are_secure(self, client):
        response = await client.get("/?lang=sv", scheme="https")

        cookies = cookies_set(response)
        assert "sinetti_session" not in cookies
        session = cookies["__Host-sinetti_session"]  # set by this host only, Secure, Path=/
        assert "Secure" in session and "Path=/" in session and "Domain" not in session
        assert "Secure" in cookies["sinetti_lang"]
        assert response.headers["Strict-Transport-Security"].startswith("max-age=")


def test_stored_token_hash_is_sha256_of_the_token():
    token = new_token()

    assert hash_token(token) == hashlib.sha256(token.encode()).hexdigest()
    assert token not in hash_token(token)


def oversized_form(csrf: str) -> bytes:
    return urlencode(
        {"email": "a@example.com", "csrf_token": csrf, "pad": "x" * 1_100_000}
    ).encode()


async def test_oversized_ordinary_form_is_refused_with_413(client):
    body = oversized_form(csrf_from(await page_text(await client.get("/"))))

    response = await client.post(
        "/",
        data=body,
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Content-Length": str(len(body)),
        },
    )

    assert response.status_code == 413
    assert (await row_counts())["Sender"] == 0


async def test_oversized_ordinary_form_without_content_length_is_refused_with_413(client):
    """A chunked body carries no Content-Length: the limit holds as the bytes arrive."""
    body = oversized_form(csrf_from(await page_text(await client.get("/"))))

    response = await client.post(
        "/", data=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )

    assert response.status_code == 413
    assert (await row_counts())["Sender"] == 0
