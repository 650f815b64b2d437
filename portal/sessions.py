"""The sender's browser session: who is signed in through their personal link, and until when.

The session is a signed cookie (HttpOnly, SameSite=Lax, Secure on https) holding the sender's
id, the CSRF token, the current draft and the last time it was used; it ends after
``session_idle_minutes`` without use, on Cancel, and when the browser closes.
"""

from __future__ import annotations

from quart import session

from portal.context import portal
from portal.models import Sender
from portal.services import clock


def _now() -> int:
    return int(clock.now().timestamp())


def sign_in(sender: Sender) -> None:
    csrf = session.get("csrf")
    # Opening the link again in the same browser keeps the sender's draft (and its files).
    draft = session.get("draft_id") if session.get("sender_id") == sender.id else None
    session.clear()
    if csrf:
        session["csrf"] = csrf
    if draft:
        session["draft_id"] = draft
    session["sender_id"] = sender.id
    session["seen"] = _now()


def sign_out() -> None:
    session.clear()


async def current_sender() -> Sender | None:
    sender_id = session.get("sender_id")
    if not isinstance(sender_id, int):
        return None
    idle = portal().settings.session_idle_minutes * 60
    if _now() - int(session.get("seen", 0)) > idle:
        sign_out()
        return None
    session["seen"] = _now()
    return await Sender.get_or_none(id=sender_id)


def draft_id() -> str | None:
    value = session.get("draft_id")
    return value if isinstance(value, str) else None


def remember_draft(message_id: str | None) -> None:
    if message_id is None:
        session.pop("draft_id", None)
    else:
        session["draft_id"] = message_id
