"""Request bodies with backpressure (portal/body.py), driven through the ASGI interface as a
server drives it: a view reading its body slowly holds at most about a megabyte of it."""

from __future__ import annotations

import asyncio
import inspect

import pytest
from quart import Quart, abort, request
from quart.asgi import ASGIHTTPConnection
from quart.wrappers.request import Body
from werkzeug.exceptions import RequestEntityTooLarge

from portal.body import (
    BUFFER_LIMIT,
    BoundedBody,
    BoundedHTTPConnection,
    BoundedRequest,
    cap_form_body,
)

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


async def call(app: Quart, path: str, *, chunked: bool = False) -> tuple[int, bytes]:
    """POST PIECES pieces to ``path`` as fast as the app takes them; (status, answer).
    ``chunked``: without Content-Length, as a chunked body arrives."""
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
        "headers": [(b"host", b"test")]
        + ([] if chunked else [(b"content-length", str(PIECE * PIECES).encode())]),
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


# -- the Quart internals portal/body.py relies on: these fail when a Quart release changes them


def test_quart_body_has_the_private_state_that_the_cap_and_the_bound_use():
    body = Body(None, 100)

    assert list(inspect.signature(Body.__init__).parameters) == [
        "self",
        "expected_content_length",
        "max_content_length",
    ]
    assert isinstance(body._data, bytearray)
    assert body._max_content_length == 100
    for method in ("append", "set_complete", "__anext__", "__await__"):
        assert callable(getattr(Body, method)), method


def test_quart_body_refuses_appends_beyond_its_limit_when_awaited():
    body = Body(None, None)
    body._max_content_length = 10  # what cap_form_body sets

    body.append(b"x" * 11)

    with pytest.raises(RequestEntityTooLarge):
        body.__await__().send(None)


def test_quart_connection_reads_the_body_in_handle_messages():
    parameters = list(inspect.signature(ASGIHTTPConnection.handle_messages).parameters)

    assert parameters == ["self", "request", "receive"]
    assert inspect.iscoroutinefunction(ASGIHTTPConnection.handle_messages)
    assert "handle_messages" in vars(BoundedHTTPConnection)
    assert Quart.asgi_http_class is ASGIHTTPConnection  # what create_app replaces
    assert issubclass(BoundedRequest.body_class, Body)


# -- cap_form_body --------------------------------------------------------------------------


def test_cap_counts_what_arrived_before_it():
    body = BoundedBody(None, None)
    body.append(b"x" * 20)

    assert cap_form_body(body, 10) is True
    assert cap_form_body(BoundedBody(None, None), 10) is False


async def test_cap_refuses_what_arrives_after_it():
    body = BoundedBody(None, None)
    body.append(b"x" * 5)

    assert cap_form_body(body, 10) is False
    body.append(b"x" * 6)

    with pytest.raises(RequestEntityTooLarge):
        await body


async def test_cap_leaves_a_body_within_the_limit_whole():
    body = BoundedBody(None, None)
    cap_form_body(body, 10)
    body.append(b"x" * 10)
    body.set_complete()

    assert await body == b"x" * 10


def app_capping_forms(limit: int) -> Quart:
    app = Quart(__name__)
    app.request_class = BoundedRequest
    app.asgi_http_class = BoundedHTTPConnection

    @app.before_request
    async def cap() -> None:
        if cap_form_body(request.body, limit):
            abort(413)

    @app.post("/form")
    async def form() -> str:
        return str(len(await request.body))

    return app


async def test_an_over_limit_chunked_body_is_refused_with_413():
    status, _answer = await call(app_capping_forms(3 * PIECE), "/form", chunked=True)

    assert status == 413


async def test_a_chunked_body_within_the_limit_is_read_whole():
    status, answer = await call(app_capping_forms(PIECE * PIECES), "/form", chunked=True)

    assert status == 200
    assert answer == str(PIECE * PIECES).encode()
