"""Receiving a form with files (compose and reply alike): streamed into storage, within the
message's attachment budget, and the user's words for an upload that was refused."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from quart import request

from portal.context import portal
from portal.i18n import L_, _, current_locale
from portal.models import Attachment, Message
from portal.security import csrf_valid
from portal.services import chunked, drafts, file_policy, message_fields, message_keys
from portal.services.files import format_size
from portal.services.uploads import (
    ParsedForm,
    StorageFailed,
    UploadRejected,
    delete_files,
    stream_form,
)
from portal.storage.base import StorageError
from portal.views.statuses import status_of

log = logging.getLogger(__name__)

#: Room for the text fields and multipart headers besides the files, in a body's length.
FORM_OVERHEAD = 4 * 1024 * 1024

UPLOAD_ERRORS = {
    "csrf": L_(
        "Your session has expired or the form is out of date. Reload the page and try again."
    ),
    "malformed": L_("The form could not be read. Reload the page and try again."),
}


def posted_draft_id() -> str | None:
    """The draft a form was rendered for (``?draft=`` of its action), if it names one."""
    return str(drafts.parse_id(request.args.get("draft")) or "") or None


async def receive_form(
    sender_id: int, draft_id: str | None
) -> tuple[ParsedForm, drafts.Reservation]:
    """Stream the request's multipart body into the draft ``draft_id`` (made if need be).

    Before a byte is stored, room for the body is reserved on the draft in one atomic step
    (parallel bodies cannot share the same room); files count against that reservation.
    Raises :class:`UploadRejected`, :class:`StorageError` or :class:`drafts.DraftClosed`;
    nothing of a refused body is kept, and its reservation is released.
    """
    try:
        reservation = await drafts.reserve(
            portal().settings,
            sender_id,
            draft_id,
            current_locale(),
            request.content_length,
            FORM_OVERHEAD,
        )
    except drafts.NoRoom as full:
        raise UploadRejected("too-large" if full.limit == "message" else "quota") from None
    try:
        parsed = await stream_form(
            request.body,
            request.headers.get("Content-Type", ""),
            portal().providers.storage,
            await message_keys.ensure(reservation.draft_id),
            reservation.size,
            csrf_valid,
            settings=portal().settings,
        )
    except BaseException:
        await reservation.release()
        raise
    return parsed, reservation


async def typed_fields() -> dict[str, str]:
    """The text fields of the request's body when nothing can be kept (the database cannot
    take a write): files are thrown away, so the form can be shown again as it was typed."""
    try:
        parsed = await stream_form(
            request.body,
            request.headers.get("Content-Type", ""),
            portal().providers.storage,
            None,  # nothing is kept: a file is refused at its first byte, after the fields
            0,
            csrf_valid,
            settings=portal().settings,
        )
    except (UploadRejected, StorageFailed) as refused:
        return refused.fields
    return parsed.fields


@contextlib.asynccontextmanager
async def files_kept_only_if_stored(
    parsed: ParsedForm, reservation: drafts.Reservation
) -> AsyncIterator[None]:
    """Delete the files of ``parsed`` again (and release their room) when recording them
    (draft or message) fails; release the room in any case."""
    try:
        yield
    except BaseException:
        await delete_files(portal().providers.storage, parsed.files)
        raise
    finally:
        await reservation.release()


async def drain_body() -> None:
    """Read what is left of a refused body, so the browser gets our answer instead of a
    reset connection. Quart's MAX_CONTENT_LENGTH bounds how much this can be."""
    with contextlib.suppress(Exception):
        async for _chunk in request.body:
            pass


async def refusal(refused: Exception) -> tuple[dict[str, list[str]], int]:
    """Errors (keyed by field) and the status for a refused upload, after draining the body."""
    await drain_body()
    if isinstance(refused, StorageError):
        log.error("storage backend failed while receiving an upload: %s", refused)
        text = _("The files could not be stored right now. Nothing was sent. Try again later.")
        return {"attachments": [text]}, status_of(refused)
    assert isinstance(refused, UploadRejected)
    if refused.reason == "too-large":
        limit = format_size(portal().settings.max_attachments_bytes)
        text = _(
            "The attachments are too large: together they can be at most %(limit)s. "
            "Nothing of this upload was kept."
        ) % {"limit": limit}
        return {"attachments": [text]}, status_of(refused)
    if refused.reason == "quota":
        return {"attachments": [quota_text()]}, status_of(refused)
    if refused.refused_file is not None:
        return {"attachments": [file_refused_text(refused.refused_file)]}, status_of(refused)
    return {"form": [str(UPLOAD_ERRORS[refused.reason])]}, status_of(refused)


def file_refused_text(refused: file_policy.FileRefused) -> str:
    """Why the file may not be sent, naming it."""
    if refused.reason == "not-allowed":
        return _(
            "“%(name)s” cannot be sent: this service accepts only these file types: %(types)s."
        ) % {"name": refused.filename, "types": allowed_types_text()}
    return _(
        "“%(name)s” cannot be sent: programs and scripts (such as .exe, .bat or .js files) "
        "are not accepted, because they could harm the recipient's computer."
    ) % {"name": refused.filename}


def allowed_types_text() -> str:
    return ", ".join(f".{kind}" for kind in file_policy.allowed_types(portal().settings))


def file_policy_hint() -> str:
    """What the compose page says about file types before anything is chosen."""
    if portal().settings.allowed_file_types:
        return _("You can send only these file types: %(types)s.") % {"types": allowed_types_text()}
    return _("Programs and scripts (such as .exe, .bat or .js files) cannot be sent.")


def quota_text() -> str:
    limit = format_size(portal().settings.max_draft_bytes_per_sender)
    return _(
        "Your unsent messages already hold %(limit)s of files, as much as one sender can "
        "keep waiting. Send or cancel them first. Nothing of this upload was kept."
    ) % {"limit": limit}


async def attachment_context(sender_id: int, draft: Message | None) -> dict[str, Any]:
    """What ``_attachments.html`` needs: the draft's files and the room left."""
    settings = portal().settings
    limit = settings.max_attachments_bytes
    attachments = list(await Attachment.filter(message_id=draft.id)) if draft else []
    await message_fields.open_rows(attachments)
    remaining = max(await drafts.room(settings, sender_id, draft), 0)
    return {
        "attachments": attachments,
        "uploads": await chunked.unfinished(draft),
        "max_bytes": format_size(limit),
        "remaining_bytes": format_size(remaining),
        "remaining_raw": remaining,
        "file_types_hint": file_policy_hint(),
        "format_size": format_size,
    }
