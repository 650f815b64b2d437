"""Request bodies with backpressure.

Quart's request body keeps whatever the server hands it until the view reads it, with no
bound: while a view waits on slow storage (an S3 part upload, a database commit), a big
upload piles up in memory (a 400 MB plain POST into S3 peaked at over 1 GB). Here, while a
view reads its body as a stream, no more than ``BUFFER_LIMIT`` is held: the ASGI receiver stops
taking messages from the server (so TCP flow control slows the client) until the view has
taken what is buffered. A view that awaits the whole body (``await request.body``,
``request.form``) lifts the bound: it asked for everything at once.

This is the one module that touches Quart's private internals (``Body._data``,
``Body._max_content_length``, ``ASGIHTTPConnection.handle_messages``); tests/unit/test_body.py
fails when a Quart release changes them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Generator
from typing import Any

from quart.asgi import ASGIHTTPConnection
from quart.typing import ASGIReceiveCallable
from quart.wrappers.request import Body, Request

BUFFER_LIMIT = 1024 * 1024


class BoundedBody(Body):
    def __init__(self, expected: int | None, max_content_length: int | None) -> None:
        super().__init__(expected, max_content_length)
        self.room = asyncio.Event()
        self.room.set()
        self.bounded = True

    def __await__(self) -> Generator[Any, None, Any]:
        self.bounded = False
        self.room.set()
        return super().__await__()

    async def __anext__(self) -> bytes:
        try:
            return await super().__anext__()
        finally:
            self.room.set()

    def append(self, data: bytes) -> None:
        super().append(data)
        if self.bounded and len(self._data) >= BUFFER_LIMIT:
            self.room.clear()

    def set_complete(self) -> None:
        super().set_complete()
        self.room.set()


def cap_form_body(body: Body, limit: int) -> bool:
    """Refuse more than ``limit`` bytes of ``body`` from now on; True when it is already over.

    Quart's ``Body`` checks its limit on every append and, once crossed, stops buffering and
    makes awaiting the body raise 413: so a body without Content-Length (chunked) is capped as
    it arrives. What arrived before the cap is counted here.
    """
    body._max_content_length = limit
    return len(body._data) > limit


class BoundedRequest(Request):
    body_class = BoundedBody  # type: ignore[assignment]


class BoundedHTTPConnection(ASGIHTTPConnection):
    async def handle_messages(self, request: Request, receive: ASGIReceiveCallable) -> None:
        body = request.body
        room = body.room if isinstance(body, BoundedBody) else None
        while True:
            if room is not None:
                await room.wait()
            message = await receive()
            if message["type"] == "http.request":
                body.append(message.get("body", b""))
                if not message.get("more_body", False):
                    body.set_complete()
            elif message["type"] == "http.disconnect":
                return
