"""What a download means besides its bytes: storage is asked before anything is promised,
and when the last byte went out, the download is complete.

The view streams; this module makes sure storage answered before the view sends a status
line (:func:`primed`, :func:`check_readable`: storage down is an error page, not a ``200 OK``
that breaks off), decides when a download counts and fires ``download_completed`` (for
audit logs and download receipts), whoever streams it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager

from portal import events
from portal.models import Attachment, Message
from portal.services import audit
from portal.storage.base import StorageBackend


async def primed(stream: AsyncIterator[bytes | bytearray]) -> AsyncIterator[bytes | bytearray]:
    """``stream`` with its first chunk already fetched: a storage that is down or an object
    that is gone raises :class:`~portal.storage.base.StorageError` here, before the caller
    has sent any header."""
    iterator = aiter(stream)
    first = await anext(iterator, None)

    async def rest() -> AsyncIterator[bytes | bytearray]:
        if first is not None:
            yield first
        async for chunk in iterator:
            yield chunk

    return rest()


async def check_readable(storage: StorageBackend, attachments: list[Attachment]) -> None:
    """Ask storage for the first byte of every attachment (a zip reads them one after the
    other, long after its headers went out); raises ``StorageError`` now if one cannot be
    read."""
    for attachment in attachments:
        end = 1 if attachment.size else None
        stream = storage.read(attachment.storage_key, 0, end)
        try:
            await anext(aiter(stream), None)
        finally:
            close = getattr(stream, "aclose", None)
            if close is not None:
                await close()


def counted(
    stream: AsyncIterator[bytes | bytearray],
    message: Message,
    attachment: Attachment | None,
    *,
    whole: bool,
    context: Callable[[], AbstractAsyncContextManager[object]],
    actor: str,
    client_ip: str | None = None,
) -> AsyncIterator[bytes]:
    """Pass ``stream`` on, as bytes; once its last byte went out, record ``downloaded`` in the audit
    trail (by ``actor`` from ``client_ip``: the attachment's id and size, or the zip's number
    of files; never a file name) and fire ``download_completed`` for ``attachment`` (None:
    the whole message as a zip). A download of part of a file (``whole`` false: a Range that
    stops short of the end) or one broken off midway never counts.

    The stream runs after the request has ended: ``context`` (the app's ``app_context``)
    gives the hook its app, with its settings and translations.
    """

    async def passed_on() -> AsyncIterator[bytes]:
        async for data in stream:
            # ASGI sends bytes: a storage that yields a bytearray has it copied here, as the
            # server would copy it; bytes (what decryption yields) pass as they are.
            yield bytes(data)
        if whole:
            async with context():
                await _record(message, attachment, actor, client_ip)
                await events.emit("download_completed", message=message, attachment=attachment)

    return passed_on()


async def _record(
    message: Message, attachment: Attachment | None, actor: str, client_ip: str | None
) -> None:
    """``downloaded``: the attachment's id and size, or the zip's number of files."""
    if attachment is not None:
        await audit.record(
            audit.Event.DOWNLOADED,
            message_id=message.id,
            actor=actor,
            client_ip=client_ip,
            attachment=attachment.id,
            size=attachment.size,
        )
    else:
        await audit.record(
            audit.Event.DOWNLOADED,
            message_id=message.id,
            actor=actor,
            client_ip=client_ip,
            zip=True,
            attachments=len(message.attachments),
        )
