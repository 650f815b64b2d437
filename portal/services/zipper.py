"""The zip of a sent message: a text file with the message and its headers, every
attachment under its sanitised, de-duplicated name and, in the sender's zip, the signed
receipt (``receipt.json`` exactly as signed, ``receipt.txt`` a readable copy).

Built as a stream: memory does not grow with the size. Attachments are stored (not
compressed) with the size and CRC-32 recorded at upload, so nothing is buffered, and zip64 is
used only if a member or the whole archive needs it (macOS Archive Utility rejects needless
zip64).
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, tzinfo

from babel.dates import format_datetime
from stream_zip import NO_COMPRESSION_32, NO_COMPRESSION_64, async_stream_zip

from portal.i18n import _, babel_locale
from portal.models import Attachment, Message
from portal.rendering import render_text
from portal.services import receipts, stored_files
from portal.services.files import safe_filename, unique_names
from portal.storage.base import StorageBackend

ZIP32_LIMIT = 0xFFFFFFFF - 1024 * 1024  # leave room for headers and the central directory
MODE = 0o600


async def message_text(message: Message, tz: tzinfo) -> str:
    """The message as a plain-text document (headers, body, signature, attachment list)."""
    sent_at = format_datetime(message.sent_at, "long", tzinfo=tz, locale=babel_locale())
    # The opened rows as lists: the template would query a relation again (sealed).
    return await render_text(
        "message.txt",
        message=message,
        recipients=sorted(message.recipients, key=lambda recipient: recipient.id),
        attachments=list(message.attachments),
        sent_at=sent_at,
    )


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    yield data


RECEIPT_JSON = "receipt.json"
RECEIPT_TEXT = "receipt.txt"


async def receipt_text(document: str, tz: tzinfo) -> str:
    """The signed receipt ``document`` as a readable text in the current language (a copy of
    what it says; the signature is in ``receipt.json``)."""
    receipt, _signature = receipts.parse(document)
    sent_at = datetime.strptime(receipt["sent_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    return await render_text(
        "receipt.txt",
        receipt=receipt,
        sent_at=format_datetime(sent_at, "long", tzinfo=tz, locale=babel_locale()),
        key_url=receipt["portal"] + "/.well-known/sinetti-receipt-key",
    )


def kept_attachments(message: Message) -> list[Attachment]:
    """The message's attachments that are still stored: not those deleted for malware."""
    return [attachment for attachment in message.attachments if attachment.malware is None]


def zip_names(attachments: list[Attachment], extra: Sequence[str] = ()) -> list[str]:
    """The message text's name, the attachments' names, then ``extra`` (files written last,
    the receipt's): these keep their names, an attachment that has one is renamed."""
    text_name = safe_filename(_("message") + ".txt")
    names = unique_names([text_name, *extra, *(safe_filename(a.filename) for a in attachments)])
    return [names[0], *names[1 + len(extra) :], *names[1 : 1 + len(extra)]]


def zip_stream(
    storage: StorageBackend,
    message: Message,
    data_key: bytes,
    text: bytes,
    tz: tzinfo,
    extra: Sequence[tuple[str, bytes]] = (),
) -> AsyncIterator[bytes]:
    """Stream the zip of ``message``, its files opened with ``data_key``; ``text`` is
    :func:`message_text` and ``extra`` the (name, content) of further small files (the
    receipt's). All of these are fetched and rendered beforehand, and the names translated
    now: the stream runs after the request and app contexts are gone, where there are no
    translations and no key provider."""
    attachments = kept_attachments(message)
    names = zip_names(attachments, [name for name, _content in extra])
    return _zip_stream(
        storage,
        message,
        attachments,
        names,
        data_key,
        text,
        tz,
        [content for _name, content in extra],
    )


async def _zip_stream(
    storage: StorageBackend,
    message: Message,
    attachments: list[Attachment],
    names: list[str],
    data_key: bytes,
    text: bytes,
    tz: tzinfo,
    extra: list[bytes],
) -> AsyncIterator[bytes]:
    total = len(text) + sum(a.size for a in attachments) + sum(len(data) for data in extra)
    needs_zip64 = total > ZIP32_LIMIT
    method = NO_COMPRESSION_64 if needs_zip64 else NO_COMPRESSION_32
    modified = (message.sent_at or datetime.now(UTC)).astimezone(tz).replace(tzinfo=None)

    async def members():
        yield names[0], modified, MODE, method(len(text), zlib.crc32(text)), _chunks(text)
        for name, attachment in zip(names[1 : 1 + len(attachments)], attachments, strict=True):
            yield (
                name,
                modified,
                MODE,
                method(attachment.size, attachment.crc32),
                stored_files.read_attachment(storage, attachment, data_key),
            )
        for name, data in zip(names[1 + len(attachments) :], extra, strict=True):
            yield name, modified, MODE, method(len(data), zlib.crc32(data)), _chunks(data)

    async for chunk in async_stream_zip(
        members(), chunk_size=256 * 1024, extended_timestamps=False
    ):
        yield chunk
