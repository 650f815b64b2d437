"""The recipient's pages: the personal ``/m/`` link, verification, reading, downloads, close.

GET and HEAD never change anything here: e-mail link scanners fetch every link, often more
than once. Only the **Open message** button (a POST with the session's CSRF token) starts the
verification provider, which may send an SMS.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any

from quart import Blueprint, g, request

from portal import sessions
from portal.context import portal
from portal.i18n import current_locale
from portal.models import Recipient
from portal.services import access, audit, retention
from portal.services.files import format_size, format_when
from portal.verification.base import Outcome, Step, VerificationProvider
from portal.views import downloads
from portal.views.statuses import status_of
from portal.web import client_ip, redirect, render_page

bp = Blueprint("recipient", __name__)

View = Callable[..., Awaitable[Any]]


def _provider(recipient: Recipient) -> VerificationProvider:
    return portal().providers.verification[recipient.verification]


def _when(moment: Any) -> str:
    return format_when(moment, portal().settings.tz)


async def _locked(recipient: Recipient) -> Any:
    return await render_page(
        "recipient/locked.html", status=403, sender_email=recipient.message.sender.email
    )


def with_recipient(view: View) -> View:
    """Resolve the link's token: unknown is 404, locked is 403 (unless the message is already
    open in this browser), else the view gets the recipient (with message and sender)."""

    @wraps(view)
    async def wrapper(token: str, *args: Any, **kwargs: Any) -> Any:
        recipient = await access.find(token)
        if recipient is None:
            return await render_page("not_found.html", status=404)
        if recipient.locked_at is not None and sessions.opened_recipient() != recipient.id:
            # Someone with the link typed wrong codes; a browser that had already opened
            # the message keeps reading, every other is refused.
            return await _locked(recipient)
        return await view(recipient, token, *args, **kwargs)

    return wrapper


def message_open(view: View) -> View:
    """Like :func:`with_recipient`, and the message must be open in this browser session."""

    @with_recipient
    @wraps(view)
    async def wrapper(recipient: Recipient, token: str, *args: Any, **kwargs: Any) -> Any:
        if sessions.opened_recipient() != recipient.id:
            return await render_page("recipient/access_ended.html", status=401, token=token)
        return await view(recipient, token, *args, **kwargs)

    return wrapper


def _message_locale() -> str:
    """The language of what is sent to the recipient: theirs if they chose one, else the
    agency's default (a browser's Accept-Language is not a choice)."""
    return current_locale() if g.get("locale_chosen") else portal().settings.default_locale


async def _follow(recipient: Recipient, token: str, outcome: Outcome) -> Any:
    """Show what the verification provider decided."""
    if outcome.step == Step.VERIFIED:
        await access.record_open(recipient, client_ip())
        await sessions.open_message(recipient.id)
        return redirect(f"/m/{token}")
    if outcome.step == Step.CHALLENGE:
        return await render_page(
            "recipient/code.html",
            status=status_of(outcome.problem),
            token=token,
            prompt=outcome.prompt,
            errors={"code": [outcome.error]} if outcome.error else {},
        )
    if outcome.step == Step.LOCKED:
        return await _locked(recipient)
    if outcome.step == Step.REFUSED:
        return await render_page(
            "recipient/refused.html",
            status=status_of(outcome.problem) if outcome.problem else 429,
            token=token,
            reason=outcome.error,
            sender_email=recipient.message.sender.email,
        )
    return redirect(f"/m/{token}")


@bp.get("/m/<token>")
@with_recipient
async def landing(recipient: Recipient, token: str) -> Any:
    """The message when it is open in this session, else the page with Open message."""
    if sessions.opened_recipient() == recipient.id:
        return await _read(recipient, token)
    return await render_page(
        "recipient/landing.html",
        token=token,
        recipient=recipient,
        sender_email=recipient.message.sender.email,
        how_to_open=_provider(recipient).describe(recipient),
        opened_at=_when(recipient.opened_at) if recipient.opened_at else "",
    )


async def _read(recipient: Recipient, token: str) -> Any:
    message = await access.readable_message(recipient)
    return await render_page(
        "recipient/message.html",
        token=token,
        recipient=recipient,
        message=message,
        recipients=sorted(message.recipients, key=lambda recipient: recipient.id),
        attachments=list(message.attachments),
        sent_at=_when(message.sent_at),
        deletion_day=retention.deletion_day(
            message.sent_at or message.created_at, portal().settings
        ),
        reply_to=message.reply_to,
        reply_to_sent_at=_when(message.reply_to.sent_at) if message.reply_to else "",
        format_size=format_size,
    )


@bp.post("/m/<token>/open")
@with_recipient
async def open_message(recipient: Recipient, token: str) -> Any:
    outcome = await _provider(recipient).start(recipient, _message_locale())
    if outcome.step == Step.CHALLENGE and not outcome.error:
        return redirect(f"/m/{token}/code")  # reloading the code page sends nothing again
    return await _follow(recipient, token, outcome)


@bp.get("/m/<token>/code")
@with_recipient
async def code_form(recipient: Recipient, token: str) -> Any:
    return await _follow(recipient, token, await _provider(recipient).show(recipient))


@bp.post("/m/<token>/code")
@with_recipient
async def check_code(recipient: Recipient, token: str) -> Any:
    answer = (await request.form).get("code", "")
    with audit.client_address(client_ip()):  # for the wrong-code and lock events
        outcome = await _provider(recipient).answer(recipient, answer)
    return await _follow(recipient, token, outcome)


@bp.post("/m/<token>/code/resend")
@with_recipient
async def resend_code(recipient: Recipient, token: str) -> Any:
    outcome = await _provider(recipient).resend(recipient, _message_locale())
    return await _follow(recipient, token, outcome)


@bp.get("/m/<token>/attachments/<int(max=2147483647):attachment_id>")
@message_open
async def download_attachment(recipient: Recipient, token: str, attachment_id: int) -> Any:
    attachment = await access.attachment(recipient, attachment_id)
    if attachment is None:
        return await render_page("not_found.html", status=404)
    return await downloads.file_response(
        recipient.message, attachment, actor=audit.recipient_actor(recipient.id)
    )


@bp.get("/m/<token>/zip")
@message_open
async def download_zip(recipient: Recipient, token: str) -> Any:
    return await downloads.zip_response(
        await access.readable_message(recipient), actor=audit.recipient_actor(recipient.id)
    )


@bp.post("/m/<token>/close")
async def close(token: str) -> Any:
    """End this browser's access (whatever the link: closing is always allowed)."""
    await sessions.close_message()
    return await render_page("recipient/closed.html", token=token)
