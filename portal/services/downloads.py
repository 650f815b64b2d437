"""What a download means besides its bytes: when the last byte went out, it is complete.

The view streams; this module decides when a download counts and fires
``download_completed`` (for audit logs and download receipts), whoever streams it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager

from portal import events
from portal.models import Attachment, Message


def counted(
    stream: AsyncIterator[bytes],
    message: Message,
    attachment: Attachment | None,
    *,
    whole: bool,
    context: Callable[[], AbstractAsyncContextManager[object]],
) -> AsyncIterator[bytes]:
    """Pass ``stream`` on; once its last byte went out, fire ``download_completed`` for
    ``attachment`` (None: the whole message as a zip). A download of part of a file
    (``whole`` false: a Range that stops short of the end) or one broken off midway never
    counts.

    The stream runs after the request has ended: ``context`` (the app's ``app_context``)
    gives the hook its app, with its settings and translations.
    """

    async def passed_on() -> AsyncIterator[bytes]:
        async for data in stream:
            yield data
        if whole:
            async with context():
                await events.emit("download_completed", message=message, attachment=attachment)

    return passed_on()
