"""Secrets in links, CSRF protection and the security headers of every response."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

from quart import Response, abort, request, session

TOKEN_BYTES = 32  # 256 bits of randomness in every personal link
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "object-src 'none'",
    ]
)


def new_token() -> str:
    """A URL-safe token with 256 bits of randomness."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def hash_token(token: str) -> str:
    """What is stored of a token: its SHA-256, so a database leak reveals no usable link."""
    return hashlib.sha256(token.encode()).hexdigest()


def csrf_token() -> str:
    """The session's CSRF token, made on first use."""
    token = session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return str(token)


def csrf_valid(candidate: str | None) -> bool:
    expected = session.get("csrf")
    # Bytes: compare_digest refuses str with non-ASCII characters (a TypeError, a 500).
    return bool(
        candidate
        and expected
        and hmac.compare_digest(
            str(candidate).encode("utf-8", "surrogatepass"), str(expected).encode()
        )
    )


def streams_its_body(view: Any) -> Any:
    """Mark a view that parses a multipart body as a stream and checks CSRF there itself."""
    view.streams_body = True
    return view


async def check_csrf() -> None:
    """``before_request``: refuse a state-changing request without the session's token.

    Views marked with :func:`streams_its_body` are skipped: they check the token themselves.
    """
    if request.method in SAFE_METHODS:
        return
    if csrf_valid(request.headers.get(CSRF_HEADER)):
        return
    # The form's own field: an htmx page keeps the header of the page it was first loaded
    # with, and the token changes at sign-in and when a message is opened.
    if request.mimetype == "application/x-www-form-urlencoded" and csrf_valid(
        (await request.form).get(CSRF_FIELD)
    ):
        return
    abort(400, description="csrf")


def set_security_headers(response: Response, *, https: bool) -> Response:
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    headers["Referrer-Policy"] = "no-referrer"
    headers["X-Content-Type-Options"] = "nosniff"
    headers["X-Frame-Options"] = "DENY"
    headers["Cross-Origin-Opener-Policy"] = "same-origin"
    headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"
    if https:
        headers["Strict-Transport-Security"] = "max-age=31536000"
    if not request.path.startswith("/static/") and request.path != "/theme.css":
        # Pages carry personal data and secrets in their URLs: nothing is cached anywhere.
        headers["Cache-Control"] = "no-store"
        headers["Pragma"] = "no-cache"
    return response
