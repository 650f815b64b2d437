"""Request bodies with backpressure (portal/body.py), driven through the ASGI interface as a
server drives it: a view reading its body slowly holds at most about a megabyte of it."""

from __future__ import annotations

import asyncio

from quart import Quart, request

from portal.body import BUFFER_LIMIT, BoundedHTTPConnection, BoundedRequest

PIECE = 64 * 1024
PIECES = 200  # 12.5 MiB


def app_reading_slowly(seen: list[int]) -> Quart:
    app = Quart(__name__)
    app.request_class = BoundedRequest
    app.asgi_http_class = BoundedHTTPConnection

    @app.post("/stream")
    async def stream() -> str:
        total = 0
        async for data in request.body:
            seen.append(len(data))  # everything that was buffered when the view asked
            total += len(data)
            await asyncio.sleep(0.001)  # slow storage
        return str(total)

    @app.post("/whole")
    async def whole() -> str:
        return str(len(await request.body))

    return app


async def call(app: Quart, path: str) -> tuple[int, bytes]:
    """POST PIECES pieces to ``path`` as fast as the app takes them; (status, answer)."""
    sent = 0
    status = 0
    answer = bytearray()

    async def receive() -> dict:
        nonlocal sent
        sent += 1
        if sent > PIECES:
            await asyncio.sleep(3600)  # nothing more: the server waits for the client
        return {"type": "http.request", "body": b"x" * PIECE, "more_body": sent < PIECES}

    async def send(message: dict) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            answer.extend(message.get("body", b""))

    scope = {
        "type": "http",
        "http_version": "1.1",
        "asgi": {"spec_version": "2.1"},
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"test"), (b"content-length", str(PIECE * PIECES).encode())],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
        "extensions": {},
    }
    async with app.app_context():
        await app.startup()
        try:
            await asyncio.wait_for(
                app.asgi_app(scope, receive, send),  # type: ignore[arg-type]
                timeout=30,
            )
        finally:
            await app.shutdown()
    return status, bytes(answer)


async def test_a_slow_streaming_view_never_holds_much_more_than_the_limit():
    seen: list[int] = []

    status, answer = await call(app_reading_slowly(seen), "/stream")

    assert status == 200
    assert answer == str(PIECE * PIECES).encode()
    assert max(seen) <= BUFFER_LIMIT + PIECE


async def test_a_view_awaiting_the_whole_body_gets_all_of_it():
    status, answer = await call(app_reading_slowly([]), "/whole")

    assert status == 200
    assert answer == str(PIECE * PIECES).encode()
