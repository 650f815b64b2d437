"""Start page (Sender + Continue), registration and the personal link."""

from __future__ import annotations

import logging
from typing import Any

from quart import Blueprint, abort, request

from portal import db, sessions
from portal.context import portal
from portal.i18n import _, current_locale
from portal.rules import EMAIL_LINK
from portal.services import registration
from portal.services.registration import LinkInvalid, RegistrationRefused
from portal.views.statuses import CANNOT_STORE, status_of
from portal.web import client_ip, redirect, render_page

log = logging.getLogger(__name__)

bp = Blueprint("sender", __name__)


def _refusal_message(reason: RegistrationRefused.Reason) -> str:
    if reason is RegistrationRefused.Reason.INVALID_ADDRESS:
        return _("Enter your e-mail address in the form name@example.com.")
    if reason is RegistrationRefused.Reason.ADDRESS_LIMIT:
        return _(
            "Too many registration e-mails have been sent to this address today. "
            "Use the newest link in your mailbox, or try again tomorrow."
        )
    return _("Too many registrations from your network. Try again in an hour.")


async def _start_page(
    email: str = "", errors: dict[str, list[str]] | None = None, status: int = 200
) -> Any:
    methods = portal().providers.sign_in
    return await render_page(
        "start.html",
        status=status,
        email=email,
        errors=errors or {},
        email_link=EMAIL_LINK in methods,
        other_methods=[method for name, method in methods.items() if name != EMAIL_LINK],
    )


def _require_email_link() -> None:
    """The e-mailed link's pages exist only while ``PORTAL_SIGN_IN`` offers it."""
    if EMAIL_LINK not in portal().providers.sign_in:
        abort(404)


@bp.get("/")
async def start() -> Any:
    return await _start_page()


@bp.post("/")
async def register() -> Any:
    _require_email_link()
    form = await request.form
    email = form.get("email", "").strip()
    settings = portal().settings
    try:
        result = await registration.register(settings, email, client_ip(), current_locale())
    except RegistrationRefused as refused:
        message = _refusal_message(refused.reason)
        return await _start_page(email, {"email": [message]}, status_of(refused))
    except db.UNAVAILABLE:
        log.error("registration: the database cannot store anything just now")
        return await _start_page(email, {"email": [str(CANNOT_STORE)]}, 503)
    # Registration closes any session: the sender continues from the link in their mailbox.
    await sessions.end()
    return await render_page("registered.html", email=result.email, days=settings.link_valid_days)


async def _link_invalid(invalid: LinkInvalid) -> Any:
    days = portal().settings.link_valid_days
    return await render_page(
        "link_invalid.html",
        status=status_of(invalid),
        expired=invalid.expired,
        days=days,
    )


@bp.get("/s/<token>")
async def personal_link(token: str) -> Any:
    """The personal link asks before it signs in: GET changes nothing (mail scanners fetch
    it, and a page on another site could send a visitor here: login CSRF). Continue posts
    with this session's CSRF token."""
    _require_email_link()
    try:
        sender = await registration.link_owner(portal().settings, token)
    except LinkInvalid as invalid:
        return await _link_invalid(invalid)
    return await render_page(
        "link_continue.html", token=token, masked=registration.masked_address(sender.email)
    )


@bp.post("/s/<token>")
async def sign_in(token: str) -> Any:
    """Continue: sign in (a new session id and CSRF token) and go to the compose page."""
    _require_email_link()
    try:
        sender = await registration.authenticate(portal().settings, token, client_ip())
    except LinkInvalid as invalid:
        return await _link_invalid(invalid)
    await sessions.sign_in(sender)
    return redirect("/compose")
