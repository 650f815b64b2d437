"""Compose, send, cancel and help."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any

from quart import Blueprint

from portal import db, sessions
from portal.context import portal
from portal.i18n import _, current_locale
from portal.models import Message, Sender
from portal.security import streams_its_body
from portal.services import chunked, compose, drafts
from portal.services.compose import ComposeForm
from portal.services.files import format_size
from portal.services.uploads import UploadRejected
from portal.storage.base import StorageError
from portal.views import uploading
from portal.views.statuses import CANNOT_STORE, status_of
from portal.web import client_ip, is_htmx, redirect, render_page

log = logging.getLogger(__name__)

bp = Blueprint("compose", __name__)


def sender_required(view: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    @wraps(view)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        sender = await sessions.current_sender()
        if sender is None:
            return await render_page("session_ended.html", status=401)
        return await view(sender, *args, **kwargs)

    return wrapper


async def _render_compose(
    sender: Sender,
    draft: Message | None,
    form: ComposeForm,
    errors: dict[str, list[str]] | None = None,
    status: int = 200,
) -> Any:
    settings = portal().settings
    return await render_page(
        "compose.html",
        status=status,
        sender=sender,
        form=form,
        errors=errors or {},
        allowed_domains=settings.allowed_recipient_domains,
        phone_suffix=settings.phone_suffix,
        draft_id=str(draft.id) if draft else sessions.draft_id(plan=True),
        **await uploading.attachment_context(sender.id, draft),
    )


async def _refusal(sender: Sender, refused: Exception) -> Any:
    """The compose page again, saying why the body was refused; typed fields are kept."""
    errors, status = await uploading.refusal(refused)
    draft = await drafts.find(sender.id, sessions.draft_id())
    fields = getattr(refused, "fields", None)
    if fields:
        form = ComposeForm.from_fields(fields)
    else:
        form = ComposeForm.from_draft(draft) if draft else ComposeForm()
    return await _render_compose(sender, draft, form, errors, status)


async def cannot_store(sender: Sender, form: ComposeForm) -> Any:
    """The database cannot take a write (a full disk): the page again as typed, saying so;
    the uploaded files of this request were not kept."""
    log.error("compose: the database cannot store the draft or message just now")
    draft = await drafts.find(sender.id, sessions.draft_id())
    errors = {"form": [str(CANNOT_STORE)]}
    return await _render_compose(sender, draft, form, errors, 503)


async def already_sent(closed: drafts.DraftClosed) -> Any:
    """A draft that was sent (or cancelled) meanwhile: say so, and start a new one next time."""
    sessions.remember_draft(None)
    await uploading.drain_body()
    return await render_page(
        "compose_closed.html",
        status=status_of(closed),
        message_id=str(closed.message_id) if closed.sent else "",
    )


@bp.get("/compose")
@sender_required
async def compose_form(sender: Sender) -> Any:
    draft = await drafts.find(sender.id, sessions.draft_id(plan=True))
    form = ComposeForm.from_draft(draft) if draft else ComposeForm()
    return await _render_compose(sender, draft, form)


@bp.post("/compose")
@streams_its_body
@sender_required
async def send(sender: Sender) -> Any:
    settings = portal().settings
    # The form names its draft: sent again after Send (a double press, a reload), it finds
    # that draft sent and is refused, instead of becoming a second message.
    draft_id = uploading.posted_draft_id() or sessions.draft_id(plan=True)
    sessions.remember_draft(draft_id)
    try:
        parsed, reservation = await uploading.receive_form(sender.id, draft_id)
    except (StorageError, UploadRejected) as refused:
        return await _refusal(sender, refused)
    except drafts.DraftClosed as closed:
        return await already_sent(closed)
    except db.UNAVAILABLE:
        return await cannot_store(sender, ComposeForm.from_fields(await uploading.typed_fields()))

    form = ComposeForm.from_fields(parsed.fields)
    checked = await compose.validate(settings, form, sender.email)
    attach_only = parsed.fields.get("action") == "attach"
    unfinished = _(
        "Some files have not been uploaded completely. Wait until they are, or remove "
        "them, and send again."
    )
    draft = await drafts.find(sender.id, draft_id)
    if not attach_only and await chunked.unfinished(draft):
        checked.errors.setdefault("attachments", []).append(unfinished)
    try:
        async with uploading.files_kept_only_if_stored(parsed, reservation):
            if not attach_only and not checked.errors:
                message = await compose.send(
                    settings,
                    sender,
                    draft_id,
                    form,
                    checked.recipients,
                    parsed.files,
                    current_locale(),
                    reservation,
                    client_ip=client_ip(),
                )
                sessions.remember_draft(None)
                return redirect(f"/sent/{message.id}")
            draft = await compose.save_draft(
                sender.id, draft_id, form, parsed.files, current_locale(), reservation
            )
    except drafts.DraftClosed as closed:
        return await already_sent(closed)
    except db.UNAVAILABLE:
        return await cannot_store(sender, form)
    except compose.UploadsUnfinished:
        checked.errors.setdefault("attachments", []).append(unfinished)
    if attach_only:
        return await _render_compose(sender, draft, form)
    return await _render_compose(sender, draft, form, checked.errors, 400)


@bp.post("/compose/attachments/<int(max=2147483647):attachment_id>/remove")
@sender_required
async def remove_attachment(sender: Sender, attachment_id: int) -> Any:
    draft_id = sessions.draft_id()
    await compose.remove_attachment(portal().providers.storage, sender.id, draft_id, attachment_id)
    if is_htmx():
        # htmx swaps only the list of attached files: what is typed in the form stays.
        draft = await drafts.find(sender.id, draft_id)
        return await _render_compose(
            sender, draft, ComposeForm.from_draft(draft) if draft else ComposeForm()
        )
    return redirect("/compose")


@bp.post("/compose/cancel")
async def cancel() -> Any:
    sender = await sessions.current_sender()
    if sender is not None:
        await compose.discard(portal().providers.storage, sender.id, sessions.draft_id())
    await sessions.end()
    return await render_page("cancelled.html")


@bp.get("/help")
async def help_page() -> Any:
    settings = portal().settings
    return await render_page(
        "help.html",
        phone_suffix=settings.phone_suffix,
        max_bytes=format_size(settings.max_attachments_bytes),
        allowed_domains=settings.allowed_recipient_domains,
        days=settings.link_valid_days,
    )
