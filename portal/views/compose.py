"""Compose, send, cancel and help."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any

from quart import Blueprint

from portal import sessions
from portal.context import portal
from portal.i18n import _, current_locale
from portal.models import Message, Sender
from portal.security import streams_its_body
from portal.services import chunked, compose
from portal.services.compose import ComposeForm
from portal.services.files import format_size
from portal.services.uploads import UploadRejected
from portal.storage.base import StorageError
from portal.views import uploading
from portal.web import is_htmx, redirect, render_page

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
        **await uploading.attachment_context(draft),
    )


async def _refusal(sender: Sender, draft: Message | None, refused: Exception) -> Any:
    """The compose page again, saying why the body was refused; typed fields are kept."""
    errors, status = await uploading.refusal(refused)
    fields = getattr(refused, "fields", None)
    if fields:
        form = ComposeForm.from_fields(fields)
    else:
        form = ComposeForm.from_draft(draft) if draft else ComposeForm()
    return await _render_compose(sender, draft, form, errors, status)


@bp.get("/compose")
@sender_required
async def compose_form(sender: Sender) -> Any:
    draft = await compose.get_draft(sender.id, sessions.draft_id())
    form = ComposeForm.from_draft(draft) if draft else ComposeForm()
    return await _render_compose(sender, draft, form)


@bp.post("/compose")
@streams_its_body
@sender_required
async def send(sender: Sender) -> Any:
    settings = portal().settings
    draft = await compose.get_draft(sender.id, sessions.draft_id())
    try:
        parsed = await uploading.receive_form(draft)
    except (StorageError, UploadRejected) as refused:
        return await _refusal(sender, draft, refused)

    form = ComposeForm.from_fields(parsed.fields)
    checked = compose.validate(settings, form)
    attach_only = parsed.fields.get("action") == "attach"
    if not attach_only and await chunked.unfinished(draft):
        checked.errors.setdefault("attachments", []).append(
            _(
                "Some files have not been uploaded completely. Wait until they are, or remove "
                "them, and send again."
            )
        )
    if attach_only or checked.errors:
        async with uploading.files_kept_only_if_stored(parsed):
            draft = await compose.save_draft(sender.id, draft, form, parsed.files, current_locale())
        sessions.remember_draft(str(draft.id))
        if attach_only:
            return await _render_compose(sender, draft, form)
        return await _render_compose(sender, draft, form, checked.errors, 400)
    async with uploading.files_kept_only_if_stored(parsed):
        message = await compose.send(
            settings, sender, draft, form, checked.recipients, parsed.files, current_locale()
        )
    sessions.remember_draft(None)
    portal().pm.hook.message_sent(message=message)
    return redirect(f"/sent/{message.id}")


@bp.post("/compose/attachments/<int:attachment_id>/remove")
@sender_required
async def remove_attachment(sender: Sender, attachment_id: int) -> Any:
    draft = await compose.get_draft(sender.id, sessions.draft_id())
    if draft is not None:
        await compose.remove_attachment(portal().providers.storage, draft, attachment_id)
    if is_htmx():
        # htmx swaps only the list of attached files: what is typed in the form stays.
        return await _render_compose(
            sender, draft, ComposeForm.from_draft(draft) if draft else ComposeForm()
        )
    return redirect("/compose")


@bp.post("/compose/cancel")
async def cancel() -> Any:
    sender = await sessions.current_sender()
    if sender is not None:
        draft = await compose.get_draft(sender.id, sessions.draft_id())
        await compose.discard(portal().providers.storage, draft)
    sessions.sign_out()
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
