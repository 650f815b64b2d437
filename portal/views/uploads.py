"""The chunked upload protocol of the compose page (used by its script; the form without
JavaScript posts files the plain way).

    POST   /compose/uploads        {"filename", "size", "type", "fingerprint"} → 201 upload
    GET    /compose/uploads/<id>   where the upload stands (the server decides the offset)
    PUT    /compose/uploads/<id>   one chunk; header Upload-Offset: where it starts
    DELETE /compose/uploads/<id>   stop and throw away (POST …/remove without JavaScript)

Answers are JSON: ``{"id", "offset", "size", "chunk_size", "complete"}``, and for a finished
file ``"attachment": {"id", "filename", "size", "sha256"}``. Refusals carry ``"error"`` (the
user's words, in their language) and, where it matters, the ``"offset"`` to continue from.
"""

from __future__ import annotations

import logging
from typing import Any

from quart import Blueprint, jsonify, request

from portal import sessions
from portal.context import portal
from portal.i18n import _, current_locale
from portal.models import Attachment, Sender, Upload
from portal.security import CSRF_HEADER, csrf_valid, streams_its_body
from portal.services import chunked, file_policy
from portal.services.announcement import BadAnnouncement, parse_announcement
from portal.services.chunked import ChunkRefused
from portal.services.files import format_size
from portal.storage.base import StorageError
from portal.views import uploading
from portal.views.compose import sender_required
from portal.views.statuses import status_of
from portal.web import redirect

log = logging.getLogger(__name__)
bp = Blueprint("uploads", __name__)


def _state(upload: Upload | Attachment) -> dict[str, Any]:
    if isinstance(upload, Attachment):
        return {
            "offset": upload.size,
            "size": upload.size,
            "complete": True,
            "attachment": {
                "id": upload.id,
                "filename": upload.filename,
                "size": upload.size,
                "size_text": format_size(upload.size),
                "sha256": upload.sha256,
            },
        }
    return {
        "id": str(upload.id),
        "filename": upload.filename,
        "offset": upload.received,
        "size": upload.size,
        "chunk_size": upload.chunk_size,
        "complete": False,
    }


def _refused(refused: ChunkRefused) -> Any:
    limit = format_size(portal().settings.max_attachments_bytes)
    messages = {
        "too-large": _(
            "The file is too large: the attachments of a message can be at most %(limit)s together."
        )
        % {"limit": limit},
        "offset": _("The upload continues from where the server has it."),
        "length": _("Part of the file was lost on the way; it is sent again."),
        "size": _("The file could not be read."),
        "quota": uploading.quota_text(),
        "sent": _(
            "This message has already been sent: no files can be added to it. "
            "Reload the page to write a new message."
        ),
        "gone": _("This upload no longer exists. Choose the file again."),
    }
    body: dict[str, Any] = {"error": messages[refused.reason], "reason": refused.reason}
    if refused.offset is not None:
        body["offset"] = refused.offset
    return jsonify(body), status_of(refused)


def _file_refused(refused: file_policy.FileRefused) -> Any:
    body = {"error": uploading.file_refused_text(refused), "reason": "file-type"}
    return jsonify(body), status_of(refused)


def _storage_failed(exc: StorageError) -> Any:
    log.error("storage backend failed during a chunked upload: %s", exc)
    return jsonify({"error": _("The file could not be stored right now. Try again later.")}), 503


@bp.post("/compose/uploads")
@sender_required
async def begin(sender: Sender) -> Any:
    try:
        announced = parse_announcement(await request.body)
    except BadAnnouncement as bad:
        return jsonify({"error": bad.message, "reason": bad.reason}), 400
    # The session plans the draft's id before it exists: announcements in parallel all find
    # (or make) the same draft.
    try:
        draft, upload = await chunked.begin(
            portal().settings,
            portal().providers.storage,
            sender.id,
            sessions.draft_id(plan=True),
            filename=announced.filename or "file",
            size=announced.size,
            content_type=announced.content_type,
            fingerprint=announced.fingerprint,
            locale=current_locale(),
        )
    except ChunkRefused as refused:
        return _refused(refused)
    except file_policy.FileRefused as refused:
        return _file_refused(refused)
    except StorageError as exc:
        return _storage_failed(exc)
    sessions.remember_draft(str(draft.id))
    return jsonify(_state(upload)), 201


async def _own(sender: Sender, upload_id: str) -> Upload | None:
    return await chunked.find(sender.id, upload_id)


@bp.get("/compose/uploads/<upload_id>")
@sender_required
async def status(sender: Sender, upload_id: str) -> Any:
    upload: Upload | Attachment | None = await _own(sender, upload_id)
    if upload is None:
        # Finished while the browser was not listening: say what it became.
        upload = await chunked.finished(sender.id, upload_id)
    if upload is None:
        return jsonify({"error": _("This upload no longer exists. Choose the file again.")}), 404
    return jsonify(_state(upload))


@bp.put("/compose/uploads/<upload_id>")
@streams_its_body
@sender_required
async def chunk(sender: Sender, upload_id: str) -> Any:
    if not csrf_valid(request.headers.get(CSRF_HEADER)):
        return jsonify({"error": _("Your session has expired. Reload the page.")}), 400
    upload = await _own(sender, upload_id)
    if upload is None:
        return jsonify({"error": _("This upload no longer exists. Choose the file again.")}), 404
    try:
        offset = int(request.headers.get("Upload-Offset", ""))
    except ValueError:
        return jsonify({"error": _("The file could not be read."), "offset": upload.received}), 400
    try:
        result = await chunked.receive(
            portal().providers.storage,
            sender.id,
            upload,
            offset,
            request.content_length,
            request.body,
        )
    except ChunkRefused as refused:
        return _refused(refused)
    except file_policy.FileRefused as refused:
        return _file_refused(refused)
    except StorageError as exc:
        return _storage_failed(exc)
    return jsonify(_state(result))


async def _abort_own(sender: Sender, upload_id: str) -> None:
    upload = await _own(sender, upload_id)
    if upload is not None:
        await chunked.abort(portal().providers.storage, upload)


@bp.delete("/compose/uploads/<upload_id>")
@sender_required
async def cancel(sender: Sender, upload_id: str) -> Any:
    await _abort_own(sender, upload_id)
    return "", 204


@bp.post("/compose/uploads/<upload_id>/remove")
@sender_required
async def remove(sender: Sender, upload_id: str) -> Any:
    """The same without JavaScript: a form on the compose page."""
    await _abort_own(sender, upload_id)
    return redirect("/compose")
