"""The secure reply: from the message view its recipient answers the sender, with files.

The same streaming upload, limits and draft handling as compose; the draft lives in the
recipient's session.
"""

from __future__ import annotations

from typing import Any

from quart import Blueprint

from portal import sessions
from portal.context import portal
from portal.i18n import current_locale
from portal.models import Message, Recipient, Sender
from portal.security import streams_its_body
from portal.services import compose, drafts, replies
from portal.services.uploads import UploadRejected
from portal.storage.base import StorageError
from portal.views import uploading
from portal.views.recipient import message_open
from portal.web import client_ip, is_htmx, redirect, render_page

bp = Blueprint("reply", __name__)


async def _draft(recipient: Recipient) -> tuple[Sender | None, Message | None]:
    """The author, if they have one yet, and their reply draft in this session."""
    author = await replies.existing_author(recipient)
    if author is None:
        return None, None
    return author, await drafts.find(author.id, sessions.reply_draft_id())


async def _render(
    recipient: Recipient,
    token: str,
    draft: Message | None,
    body: str,
    errors: dict[str, list[str]] | None = None,
    status: int = 200,
) -> Any:
    author_id = draft.sender_id if draft is not None else 0  # type: ignore[attr-defined]
    return await render_page(
        "recipient/reply.html",
        status=status,
        token=token,
        original=recipient.message,
        subject=replies.subject_of(recipient.message),
        body=body,
        errors=errors or {},
        draft_id=str(draft.id) if draft else sessions.reply_draft_id(plan=True),
        **await uploading.attachment_context(author_id, draft),
    )


@bp.get("/m/<token>/reply")
@message_open
async def reply_form(recipient: Recipient, token: str) -> Any:
    _author, draft = await _draft(recipient)
    return await _render(recipient, token, draft, draft.body if draft else "")


@bp.post("/m/<token>/reply")
@streams_its_body
@message_open
async def send_reply(recipient: Recipient, token: str) -> Any:
    author, made = await replies.author(recipient)  # a POST may make the author's row
    draft_id = uploading.posted_draft_id() or sessions.reply_draft_id(plan=True)
    sessions.remember_reply_draft(draft_id)
    try:
        parsed, reservation = await uploading.receive_form(author.id, draft_id)
    except (StorageError, UploadRejected) as refused:
        if made:
            await replies.forget_author(author)
        errors, status = await uploading.refusal(refused)
        draft = await drafts.find(author.id, draft_id)
        fields = getattr(refused, "fields", None) or {}
        body = fields.get("body", draft.body if draft else "")
        return await _render(recipient, token, draft, body, errors, status)
    except drafts.DraftClosed:
        return await _reply_closed(token)

    body = parsed.fields.get("body", "").replace("\r\n", "\n")
    attach_only = parsed.fields.get("action") == "attach"
    errors = {} if attach_only else replies.validate(body)
    try:
        async with uploading.files_kept_only_if_stored(parsed, reservation):
            if not attach_only and not errors:
                await replies.send(
                    portal().settings,
                    recipient,
                    author,
                    draft_id,
                    body,
                    parsed.files,
                    current_locale(),
                    reservation,
                    client_ip(),
                )
                sessions.remember_reply_draft(None)
                return redirect(f"/m/{token}/reply/sent")
            draft = await compose.save_draft(
                author.id,
                draft_id,
                replies.form_for(recipient, body),
                parsed.files,
                current_locale(),
                reservation,
            )
    except drafts.DraftClosed:
        return await _reply_closed(token)
    sessions.remember_reply_draft(str(draft.id))
    return await _render(recipient, token, draft, body, errors, 400 if errors else 200)


async def _reply_closed(token: str) -> Any:
    """The reply was sent meanwhile (a second press of Send): it is not sent again."""
    sessions.remember_reply_draft(None)
    await uploading.drain_body()
    return redirect(f"/m/{token}/reply/sent")


@bp.post("/m/<token>/reply/attachments/<int(max=2147483647):attachment_id>/remove")
@message_open
async def remove_attachment(recipient: Recipient, token: str, attachment_id: int) -> Any:
    author, draft = await _draft(recipient)
    if author is not None:
        await compose.remove_attachment(
            portal().providers.storage, author.id, sessions.reply_draft_id(), attachment_id
        )
        draft = await drafts.find(author.id, sessions.reply_draft_id())
    if is_htmx():
        return await _render(recipient, token, draft, draft.body if draft else "")
    return redirect(f"/m/{token}/reply")


@bp.post("/m/<token>/reply/cancel")
@message_open
async def cancel_reply(recipient: Recipient, token: str) -> Any:
    author, _draft_now = await _draft(recipient)
    if author is not None:
        await compose.discard(portal().providers.storage, author.id, sessions.reply_draft_id())
    sessions.remember_reply_draft(None)
    return redirect(f"/m/{token}")


@bp.get("/m/<token>/reply/sent")
@message_open
async def reply_sent(recipient: Recipient, token: str) -> Any:
    return await render_page(
        "recipient/reply_sent.html", token=token, to=recipient.message.sender.email
    )
