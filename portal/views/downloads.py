"""Responses that download what was sent: one attachment, or the message as a zip.

Both stream from the storage backend (memory does not grow with the size) and are always
``attachment``s with a safe RFC 6266 file name: nothing a sender uploaded is ever rendered
inline by the browser. A single attachment answers HTTP Range requests, so a broken download
continues where it stopped. A download counts as complete (the ``download_completed`` hook)
only once its last byte was handed to the server.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from urllib.parse import quote

from quart import Response, current_app, request
from werkzeug.datastructures import Range
from werkzeug.http import parse_range_header

from portal.context import portal
from portal.models import Attachment, Message
from portal.services import downloads, stored_files, zipper
from portal.services.files import safe_filename
from portal.web import client_ip


def attachment_disposition(filename: str) -> str:
    """RFC 6266: an ASCII fallback plus the UTF-8 name."""
    ascii_name = (
        filename.encode("ascii", "replace").decode("ascii").replace("?", "_").replace('"', "_")
    )
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"


def _download(body: object, filename: str, mimetype: str, status: int = 200) -> Response:
    response = Response(body, status=status, mimetype=mimetype)  # type: ignore[arg-type]
    response.headers["Content-Disposition"] = attachment_disposition(filename)
    response.timeout = None  # a big file takes longer than Quart's default response timeout
    return response


def _app_context() -> Callable[[], AbstractAsyncContextManager[object]]:
    """The app's context for after the request (the stream outlives it)."""
    return current_app._get_current_object().app_context  # type: ignore[attr-defined]


class Unsatisfiable(Exception):
    """The requested range lies outside the file (416)."""


def requested_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``(start, end)`` (end exclusive) of a single-range ``Range`` header; None when there is
    no usable header (send everything). Raises :class:`Unsatisfiable` for a range outside.

    Werkzeug parses the header; a header it cannot read, another unit or several ranges get
    the whole file, which RFC 9110 allows (a server may ignore Range). A suffix longer than
    the file is the whole file (RFC 9110, 14.1.1), which werkzeug would refuse.
    """
    parsed = parse_range_header(header)
    if parsed is None or parsed.units != "bytes" or len(parsed.ranges) != 1:
        return None
    start, stop = parsed.ranges[0]
    if stop is None and start < -size:  # the last N bytes of a file shorter than N
        parsed = Range("bytes", [(-size, None)])
    wanted = parsed.range_for_length(size)
    if wanted is None:
        raise Unsatisfiable
    return wanted


async def file_response(message: Message, attachment: Attachment, *, actor: str) -> Response:
    """One attachment as stored, under its sanitised name; never sniffed or shown inline.
    ``actor``: who downloads it, as the audit trail names them.

    Storage is asked before the response starts: when it is down, ``StorageError`` reaches
    the app's handler (a 503 page), never a ``200`` that breaks off."""
    size = attachment.size
    etag = f'"{attachment.sha256}"'
    name = safe_filename(attachment.filename)
    try:
        wanted = requested_range(request.headers.get("Range"), size)
    except Unsatisfiable:
        response = _download(b"", name, "application/octet-stream", status=416)
        response.headers["Content-Range"] = f"bytes */{size}"
        return response
    if wanted and request.headers.get("If-Range", etag) != etag:
        wanted = None  # the file changed since the first part: send it whole
    start, end = wanted or (0, size)
    data_key = await stored_files.data_key(message.id)
    stream = await downloads.primed(
        stored_files.read_attachment(portal().providers.storage, attachment, data_key, start, end)
    )
    response = _download(
        downloads.counted(
            stream,
            message,
            attachment,
            whole=end == size,
            context=_app_context(),
            actor=actor,
            client_ip=client_ip(),
        ),
        name,
        "application/octet-stream",
        status=206 if wanted else 200,
    )
    if wanted:
        response.headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
    response.headers["Content-Length"] = str(end - start)
    response.headers["Accept-Ranges"] = "bytes"
    response.headers["ETag"] = etag
    return response


async def zip_response(message: Message, receipt: str | None = None, *, actor: str) -> Response:
    """The message text and every attachment as one zip (``message`` has its relations);
    every attachment is checked readable first (see :func:`file_response`). ``receipt``: the
    signed receipt, added as ``receipt.json`` and ``receipt.txt`` (the sender's zip)."""
    settings = portal().settings
    await downloads.check_readable(portal().providers.storage, zipper.kept_attachments(message))
    text = (await zipper.message_text(message, settings.tz)).encode("utf-8")
    extra: list[tuple[str, bytes]] = []
    if receipt is not None:
        extra.append((zipper.RECEIPT_JSON, receipt.encode("utf-8")))
        readable = await zipper.receipt_text(receipt, settings.tz)
        extra.append((zipper.RECEIPT_TEXT, readable.encode("utf-8")))
    data_key = await stored_files.data_key(message.id)
    stream = zipper.zip_stream(
        portal().providers.storage, message, data_key, text, settings.tz, extra
    )
    return _download(
        downloads.counted(
            stream,
            message,
            None,
            whole=True,
            context=_app_context(),
            actor=actor,
            client_ip=client_ip(),
        ),
        safe_filename(f"{message.subject}.zip"),
        "application/zip",
    )
