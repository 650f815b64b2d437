"""The browser session, kept by the server: who is signed in, and until when.

The cookie (HttpOnly, SameSite=Lax, Secure on https, no expiry: it ends with the browser)
carries only a random 256-bit id; the data — the CSRF token, a sender's access, a recipient's
open message — lives in the database (:class:`portal.models.WebSession`), shared by every
server process, and only the id's SHA-256 is stored. So the server can end a session: Cancel,
Close, ``session_idle_minutes`` without use and ``session_max_hours`` after sign-in each
delete (or replace) the row, and a copy of the cookie made before is worth nothing.

The id and the CSRF token are rotated at sign-in and when a recipient passes verification,
so an id planted in a browser before (session fixation) never becomes a signed-in one.

Two independent accesses can live in one session:

- a sender's (their id and current draft), ended by Cancel;
- a recipient's: the one message they opened (recipient id and reply draft), ended by Close.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import uuid
from datetime import datetime, timedelta
from typing import Any

from quart import Quart, Response, has_request_context, request, session
from quart.sessions import SecureCookieSession, SessionInterface
from quart.wrappers import BaseRequestWebsocket
from tortoise.expressions import Q

from portal import db
from portal.config import Settings
from portal.context import portal
from portal.models import Sender, WebSession
from portal.security import SAFE_METHODS, TOKEN_BYTES
from portal.services import clock

log = logging.getLogger(__name__)

#: How often a busy session's last use is written (idle time is counted in minutes).
SEEN_EVERY = timedelta(seconds=60)
#: Requests that never need the session (static files): no database look-up for them.
SESSIONLESS_PREFIXES = ("/static/", "/theme/", "/theme.css", "/favicon")


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


class ServerSession(SecureCookieSession):
    """The session's data plus where it is stored. ``id_hash`` is None until it is saved."""

    def __init__(self, initial: Any = None, **state: Any) -> None:
        super().__init__(initial)
        self.id_hash: str | None = state.get("id_hash")
        self.created_at: datetime = state.get("created_at") or clock.now()
        self.seen_at: datetime | None = state.get("seen_at")
        self.cookie_value: str | None = None  # a new id to hand to the browser
        self.drop_cookie = False
        self.transient = bool(state.get("transient"))  # never stored (static files)


def _lifetimes(settings: Settings | None = None) -> tuple[timedelta, timedelta]:
    settings = settings or portal().settings
    return timedelta(minutes=settings.session_idle_minutes), timedelta(
        hours=settings.session_max_hours
    )


def _alive(row: WebSession, current: datetime) -> bool:
    idle, absolute = _lifetimes()
    return row.seen_at > current - idle and row.created_at > current - absolute


class ServerSessionInterface(SessionInterface):
    session_class = ServerSession

    async def open_session(self, app: Quart, request: BaseRequestWebsocket) -> ServerSession | None:
        if request.path.startswith(SESSIONLESS_PREFIXES):
            return ServerSession(transient=True)
        cookie = request.cookies.get(self.get_cookie_name(app))
        if not cookie or len(cookie) > 100:
            return ServerSession()
        row = await WebSession.get_or_none(id_hash=_hash(cookie))
        current = clock.now()
        if row is None or not _alive(row, current):
            if row is not None:
                await row.delete()
            fresh = ServerSession()
            fresh.drop_cookie = True
            return fresh
        return ServerSession(
            row.data, id_hash=row.id_hash, created_at=row.created_at, seen_at=row.seen_at
        )

    async def _store(self, session: ServerSession, response: Response | Any) -> None:
        current = clock.now()
        if session.id_hash is None:
            # A refused state-changing request that came without a session (a form posted
            # from another site: no SameSite=Lax cookie) starts none: its answer must not
            # replace the visitor's own cookie.
            refused = response.status_code >= 400 and request.method not in SAFE_METHODS
            if session.modified and dict(session) and not refused:
                await _store_new(session, current)
        elif session.modified:
            # UPDATE only: a session ended meanwhile (Cancel in another tab) stays ended.
            if not await WebSession.filter(id_hash=session.id_hash).update(
                data=dict(session), seen_at=current
            ):
                session.drop_cookie = True
        elif session.seen_at is None or session.seen_at < current - SEEN_EVERY:
            await WebSession.filter(id_hash=session.id_hash).update(seen_at=current)

    async def save_session(self, app: Quart, session: Any, response: Response | Any | None) -> None:
        if not isinstance(session, ServerSession) or session.transient or response is None:
            return
        try:
            await self._store(session, response)
        except db.UNAVAILABLE as exc:
            # A full disk or a database that is down must not turn the answer into a 500:
            # the page still goes out, and the session stays as it was stored last.
            log.warning("the session could not be saved: the database cannot take a write: %r", exc)
            return
        name = self.get_cookie_name(app)
        if session.cookie_value is not None:
            response.set_cookie(
                name,
                session.cookie_value,
                httponly=True,
                secure=self.get_cookie_secure(app),
                samesite=self.get_cookie_samesite(app),
                path=self.get_cookie_path(app),
            )
        elif session.drop_cookie:
            response.delete_cookie(name, path=self.get_cookie_path(app))


async def _store_new(session: ServerSession, current: datetime) -> None:
    session_id = secrets.token_urlsafe(TOKEN_BYTES)
    session.id_hash = _hash(session_id)
    session.cookie_value = session_id
    await WebSession.create(
        id_hash=session.id_hash, data=dict(session), created_at=session.created_at, seen_at=current
    )


def _current() -> ServerSession:
    current = session._get_current_object()  # type: ignore[attr-defined]
    assert isinstance(current, ServerSession), "the app's session_interface is not ours"
    return current


async def _forget_stored() -> None:
    """Delete the stored session: its id (and every copy of the cookie) is dead from now on."""
    current = _current()
    if current.id_hash is not None:
        await WebSession.filter(id_hash=current.id_hash).delete()
    current.id_hash = None
    current.drop_cookie = True


async def rotate(*, restart: bool = False) -> None:
    """A new id and a new CSRF token for the same data; the old id is dead at once.

    ``restart`` also starts the absolute lifetime anew (a sign-in).
    """
    current = _current()
    await _forget_stored()
    current["csrf"] = secrets.token_urlsafe(32)
    if restart:
        current.created_at = clock.now()
    current.modified = True


async def end() -> None:
    """End the session on the server (Cancel, registration): nothing of it is left."""
    await _forget_stored()
    _current().clear()


async def sign_in(sender: Sender) -> None:
    current = _current()
    # Signing in again in the same browser keeps the sender's draft (and its files).
    draft = current.get("draft_id") if current.get("sender_id") == sender.id else None
    for key in ("sender_id", "sender_email", "draft_id"):
        current.pop(key, None)
    await rotate(restart=True)
    current["sender_id"] = sender.id
    current["sender_email"] = sender.email  # shown on every page while signed in
    if draft:
        current["draft_id"] = draft


async def current_sender() -> Sender | None:
    sender_id = session.get("sender_id")
    if not isinstance(sender_id, int):
        return None
    return await Sender.get_or_none(id=sender_id)


def signed_in_as() -> str:
    """The address of the sender signed in in this session ("" for nobody, and outside a
    request: a mail being rendered)."""
    if not has_request_context():
        return ""
    email = session.get("sender_email")
    return email if isinstance(email, str) and "sender_id" in session else ""


def _planned(key: str, plan: bool) -> str | None:
    """The draft id under ``key``; with ``plan``, one is chosen now when there is none, so
    that parallel requests of this browser all use the same draft."""
    value = session.get(key)
    if isinstance(value, str):
        return value
    if not plan:
        return None
    value = str(uuid.uuid4())
    session[key] = value
    return value


def _remember(key: str, message_id: str | None) -> None:
    if message_id is None:
        session.pop(key, None)
    else:
        session[key] = message_id


def draft_id(*, plan: bool = False) -> str | None:
    """The id of the sender's draft in this session (see :func:`_planned`)."""
    return _planned("draft_id", plan)


def remember_draft(message_id: str | None) -> None:
    _remember("draft_id", message_id)


RECIPIENT_KEYS = ("recipient_id", "reply_draft_id")


async def open_message(recipient_id: int) -> None:
    """The recipient passed verification: their message is open in this browser."""
    for key in RECIPIENT_KEYS:
        session.pop(key, None)
    await rotate(restart=True)
    session["recipient_id"] = recipient_id


def opened_recipient() -> int | None:
    """The id of the recipient whose message is open in this session, or None."""
    recipient_id = session.get("recipient_id")
    return recipient_id if isinstance(recipient_id, int) else None


async def close_message() -> None:
    """Close: the message is no longer open here, and the session id before is dead."""
    had_message = any(key in session for key in RECIPIENT_KEYS)
    for key in RECIPIENT_KEYS:
        session.pop(key, None)
    if had_message:
        await rotate()


def reply_draft_id(*, plan: bool = False) -> str | None:
    """The id of the recipient's reply draft in this session (see :func:`_planned`)."""
    return _planned("reply_draft_id", plan)


def remember_reply_draft(message_id: str | None) -> None:
    _remember("reply_draft_id", message_id)


async def sweep(settings: Settings) -> int:
    """Delete sessions past their idle or absolute lifetime (a background task calls it)."""
    idle, absolute = _lifetimes(settings)
    current = clock.now()
    return await WebSession.filter(
        Q(seen_at__lt=current - idle) | Q(created_at__lt=current - absolute)
    ).delete()
