"""The confirmation page and the zip of what was sent (only for the sender's own session)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from quart import Blueprint, Response

from portal.context import portal
from portal.models import Sender
from portal.services import compose, zipper
from portal.services.files import format_size, format_when, safe_filename
from portal.services.recipients import mask_phone
from portal.views.compose import sender_required
from portal.web import render_page

bp = Blueprint("sent", __name__)


def attachment_disposition(filename: str) -> str:
    """RFC 6266: an ASCII fallback plus the UTF-8 name."""
    ascii_name = (
        filename.encode("ascii", "replace").decode("ascii").replace("?", "_").replace('"', "_")
    )
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"


@bp.get("/sent/<message_id>")
@sender_required
async def confirmation(sender: Sender, message_id: str) -> Any:
    message = await compose.sent_message(sender.id, message_id)
    if message is None:
        return await render_page("not_found.html", status=404)
    return await render_page(
        "sent.html",
        message=message,
        sent_at=format_when(message.sent_at or message.created_at, portal().settings.tz),
        format_size=format_size,
        mask_phone=mask_phone,
    )


@bp.get("/sent/<message_id>/zip")
@sender_required
async def download_zip(sender: Sender, message_id: str) -> Any:
    message = await compose.sent_message(sender.id, message_id)
    if message is None:
        return await render_page("not_found.html", status=404)
    settings = portal().settings
    text = (await zipper.message_text(message, settings.tz)).encode("utf-8")
    name = safe_filename(f"{message.subject}.zip")
    stream = zipper.zip_stream(portal().providers.storage, message, text, settings.tz)
    response = Response(stream, mimetype="application/zip")
    response.headers["Content-Disposition"] = attachment_disposition(name)
    response.timeout = None  # a big zip takes longer than Quart's default response timeout
    return response
