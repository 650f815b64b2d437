"""The browser session: who is signed in through a personal link, and until when.

The session is a signed cookie (HttpOnly, SameSite=Lax, Secure on https) holding the CSRF
token and two independent accesses, each ending after ``session_idle_minutes`` without use:

- a sender's (their id, current draft, last use), ended by Cancel;
- a recipient's: the one message they opened (recipient id, reply draft, last use), ended by
  Close. Reopening later goes through the link and the verification again.

Both end when the browser closes.
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


def _idle(seen_key: str) -> bool:
    idle = portal().settings.session_idle_minutes * 60
    return _now() - int(session.get(seen_key, 0)) > idle


async def current_sender() -> Sender | None:
    sender_id = session.get("sender_id")
    if not isinstance(sender_id, int):
        return None
    if _idle("seen"):
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


RECIPIENT_KEYS = ("recipient_id", "recipient_seen", "reply_draft_id")


def open_message(recipient_id: int) -> None:
    """The recipient passed verification: their message is open in this browser."""
    close_message()
    session["recipient_id"] = recipient_id
    session["recipient_seen"] = _now()


def opened_recipient() -> int | None:
    """The id of the recipient whose message is open here, or None (never, or idle too long)."""
    recipient_id = session.get("recipient_id")
    if not isinstance(recipient_id, int):
        return None
    if _idle("recipient_seen"):
        close_message()
        return None
    session["recipient_seen"] = _now()
    return recipient_id


def close_message() -> None:
    for key in RECIPIENT_KEYS:
        session.pop(key, None)


def reply_draft_id() -> str | None:
    value = session.get("reply_draft_id")
    return value if isinstance(value, str) else None


def remember_reply_draft(message_id: str | None) -> None:
    if message_id is None:
        session.pop("reply_draft_id", None)
    else:
        session["reply_draft_id"] = message_id
