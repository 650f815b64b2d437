"""Receiving a form with files (compose and reply alike): streamed into storage, within the
message's attachment budget, and the user's words for an upload that was refused."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from quart import request

from portal.context import portal
from portal.i18n import L_, _
from portal.models import Attachment, Message
from portal.security import csrf_valid
from portal.services import chunked
from portal.services.files import format_size
from portal.services.uploads import ParsedForm, UploadRejected, delete_files, stream_form
from portal.storage.base import StorageError

log = logging.getLogger(__name__)

#: Room for the text fields and multipart headers besides the files, in a body's length.
FORM_OVERHEAD = 4 * 1024 * 1024

UPLOAD_ERRORS = {
    "csrf": L_(
        "Your session has expired or the form is out of date. Reload the page and try again."
    ),
    "malformed": L_("The form could not be read. Reload the page and try again."),
}


async def receive_form(draft: Message | None) -> ParsedForm:
    """Stream the request's multipart body; files count against what ``draft`` has left.

    Raises :class:`UploadRejected` or :class:`StorageError`; nothing of a refused body is kept.
    """
    budget = await chunked.room_left(portal().settings, draft)
    if (request.content_length or 0) > budget + FORM_OVERHEAD:
        raise UploadRejected("too-large")  # refused before a byte is stored
    return await stream_form(
        request.body,
        request.headers.get("Content-Type", ""),
        portal().providers.storage,
        budget,
        csrf_valid,
    )


@contextlib.asynccontextmanager
async def files_kept_only_if_stored(parsed: ParsedForm) -> AsyncIterator[None]:
    """Delete the files of ``parsed`` again when recording them (draft or message) fails."""
    try:
        yield
    except BaseException:
        await delete_files(portal().providers.storage, parsed.files)
        raise


async def _drain_body() -> None:
    """Read what is left of a refused body, so the browser gets our answer instead of a
    reset connection. Quart's MAX_CONTENT_LENGTH bounds how much this can be."""
    with contextlib.suppress(Exception):
        async for _chunk in request.body:
            pass


async def refusal(refused: Exception) -> tuple[dict[str, list[str]], int]:
    """Errors (keyed by field) and the status for a refused upload, after draining the body."""
    await _drain_body()
    if isinstance(refused, StorageError):
        log.error("storage backend failed while receiving an upload: %s", refused)
        text = _("The files could not be stored right now. Nothing was sent. Try again later.")
        return {"attachments": [text]}, 503
    assert isinstance(refused, UploadRejected)
    if refused.reason == "too-large":
        limit = format_size(portal().settings.max_attachments_bytes)
        text = _(
            "The attachments are too large: together they can be at most %(limit)s. "
            "Nothing of this upload was kept."
        ) % {"limit": limit}
        return {"attachments": [text]}, 413
    return {"form": [str(UPLOAD_ERRORS[refused.reason])]}, 400


async def attachment_context(draft: Message | None) -> dict[str, Any]:
    """What ``_attachments.html`` needs: the draft's files and the room left."""
    settings = portal().settings
    limit = settings.max_attachments_bytes
    attachments = list(await Attachment.filter(message_id=draft.id)) if draft else []
    remaining = max(await chunked.room_left(settings, draft), 0)
    return {
        "attachments": attachments,
        "uploads": await chunked.unfinished(draft),
        "max_bytes": format_size(limit),
        "remaining_bytes": format_size(remaining),
        "remaining_raw": remaining,
        "format_size": format_size,
    }
