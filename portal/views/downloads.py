"""Responses that download what was sent: one attachment, or the message as a zip.

Both stream from the storage backend (memory does not grow with the size) and are always
``attachment``s with a safe RFC 6266 file name: nothing a sender uploaded is ever rendered
inline by the browser.
"""

from __future__ import annotations

from urllib.parse import quote

from quart import Response

from portal.context import portal
from portal.models import Attachment, Message
from portal.services import zipper
from portal.services.files import safe_filename


def attachment_disposition(filename: str) -> str:
    """RFC 6266: an ASCII fallback plus the UTF-8 name."""
    ascii_name = (
        filename.encode("ascii", "replace").decode("ascii").replace("?", "_").replace('"', "_")
    )
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"


def _download(body: object, filename: str, mimetype: str) -> Response:
    response = Response(body, mimetype=mimetype)  # type: ignore[arg-type]
    response.headers["Content-Disposition"] = attachment_disposition(filename)
    response.timeout = None  # a big file takes longer than Quart's default response timeout
    return response


def file_response(attachment: Attachment) -> Response:
    """One attachment, as stored, under its sanitised name; never sniffed or shown inline."""
    stream = portal().providers.storage.read(attachment.storage_key)
    response = _download(stream, safe_filename(attachment.filename), "application/octet-stream")
    response.headers["Content-Length"] = str(attachment.size)
    return response


async def zip_response(message: Message) -> Response:
    """The message text and every attachment as one zip (``message`` has its relations)."""
    settings = portal().settings
    text = (await zipper.message_text(message, settings.tz)).encode("utf-8")
    stream = zipper.zip_stream(portal().providers.storage, message, text, settings.tz)
    return _download(stream, safe_filename(f"{message.subject}.zip"), "application/zip")
