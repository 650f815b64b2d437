"""The few lines of clamd's protocol the scanner needs, over asyncio sockets: ``zPING`` and
``zINSTREAM`` (a file sent as length-prefixed chunks, answered ``stream: OK`` or
``stream: <signature> FOUND``).

Written directly rather than through a client library: it is small, and every way it can go
wrong (refused, reset, timed out, an ERROR answer) must become :class:`ScannerUnavailable`
with a message an operator can act on, while an error of the caller's own chunks (storage
failing) passes through untouched.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import socket
import struct
from collections.abc import AsyncIterable
from typing import Any
from urllib.parse import urlsplit

from portal.api import ScannerUnavailable, Verdict

DEFAULT_PORT = 3310
#: The largest piece sent in one INSTREAM chunk; the caller's chunks are cut to this.
PIECE_BYTES = 1024 * 1024
#: The longest answer read: a signature name is far shorter.
ANSWER_LIMIT = 64 * 1024
#: How long to look for clamd's last words after it hung up while the file was being sent.
AFTER_BREAK_SECONDS = 2.0
_END = struct.pack(">I", 0)


@dataclasses.dataclass(frozen=True)
class Address:
    """Where clamd listens: a TCP ``host`` and ``port``, or a Unix socket ``path``."""

    host: str = ""
    port: int = 0
    path: str = ""

    def __str__(self) -> str:
        if self.path:
            return f"unix://{self.path}"
        host = f"[{self.host}]" if ":" in self.host else self.host  # an IPv6 address
        return f"tcp://{host}:{self.port}"


def parse_address(text: str) -> Address:
    """``tcp://host[:port]`` or ``unix:///path/to/socket``; ValueError for anything else."""
    parts = urlsplit(text.strip())
    if parts.scheme == "unix" and not parts.netloc and parts.path.startswith("/"):
        return Address(path=parts.path)
    if parts.scheme == "tcp" and parts.hostname and parts.path in ("", "/"):
        port = parts.port or DEFAULT_PORT  # ValueError when it is no port number
        return Address(host=parts.hostname, port=port)
    raise ValueError(text)


class Clamd:
    """One clamd; each call opens its own connection (clamd answers one command per
    connection), and each step (connecting, sending a piece, waiting for the answer) may take
    ``timeout`` seconds.

    Plain non-blocking sockets rather than asyncio streams: when clamd refuses a file midway
    (a size limit) it answers and hangs up while we are still sending, and only the socket
    itself still holds that answer after the send fails (a stream transport closes at once).
    """

    def __init__(self, address: Address, timeout: float) -> None:
        self.address = address
        self.timeout = timeout

    def _unavailable(self, what: str) -> ScannerUnavailable:
        return ScannerUnavailable(f"clamd at {self.address}: {what}")

    async def _connect(self) -> socket.socket:
        loop = asyncio.get_running_loop()
        if self.address.path:
            targets: list[tuple[int, Any]] = [(socket.AF_UNIX, self.address.path)]
        else:
            try:
                found = await loop.getaddrinfo(
                    self.address.host, self.address.port, type=socket.SOCK_STREAM
                )
            except OSError as error:
                raise self._unavailable(f"cannot find the host: {_reason(error)}") from error
            targets = [(family, sockaddr) for family, _, _, _, sockaddr in found]
        failure: OSError | None = None
        for family, target in targets:
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.setblocking(False)
            try:
                async with asyncio.timeout(self.timeout):
                    await loop.sock_connect(sock, target)
            except TimeoutError:
                sock.close()
                raise self._unavailable(f"no connection within {self.timeout:g} s") from None
            except OSError as error:
                sock.close()
                failure = error
                continue
            except BaseException:
                sock.close()
                raise
            return sock
        raise self._unavailable(f"cannot connect: {_reason(failure)}") from failure

    async def _send(self, sock: socket.socket, data: bytes | memoryview) -> None:
        async with asyncio.timeout(self.timeout):
            await asyncio.get_running_loop().sock_sendall(sock, data)

    async def _answer(self, sock: socket.socket, wait: float | None = None) -> str:
        """The NUL-terminated answer; :class:`ScannerUnavailable` when clamd hangs up first."""
        wait = self.timeout if wait is None else wait
        loop = asyncio.get_running_loop()
        raw = b""
        try:
            async with asyncio.timeout(wait):
                while not raw.endswith(b"\0") and len(raw) < ANSWER_LIMIT:
                    data = await loop.sock_recv(sock, 4096)
                    if not data:
                        break
                    raw += data
        except TimeoutError:
            raise self._unavailable(f"no answer within {wait:g} s") from None
        except OSError as error:
            if not raw:
                raise self._unavailable(f"the connection broke: {_reason(error)}") from None
        if not raw:
            raise self._unavailable("the connection closed without an answer")
        return raw.split(b"\0", 1)[0].decode("utf-8", "replace").strip()

    async def ping(self) -> None:
        """Raise :class:`ScannerUnavailable` unless clamd answers ``PONG``."""
        with await self._connect() as sock:
            try:
                await self._send(sock, b"zPING\0")
            except (OSError, TimeoutError) as error:
                raise self._unavailable(f"the connection broke: {_reason(error)}") from None
            answer = await self._answer(sock)
        if answer != "PONG":
            raise self._unavailable(f"answered {answer!r} to PING")

    async def instream(self, chunks: AsyncIterable[bytes | bytearray]) -> Verdict:
        """Stream the file of ``chunks`` to clamd and read its verdict."""
        with await self._connect() as sock:
            try:
                await self._send(sock, b"zINSTREAM\0")
                async for chunk in chunks:  # the caller's own errors pass through unchanged
                    view = memoryview(chunk)
                    for start in range(0, len(view), PIECE_BYTES):
                        piece = view[start : start + PIECE_BYTES]
                        await self._send(sock, struct.pack(">I", len(piece)))
                        await self._send(sock, piece)
                await self._send(sock, _END)
            except (OSError, TimeoutError) as error:
                answer = await self._answer_after_break(sock, error)
            else:
                answer = await self._answer(sock)
        return self.verdict(answer)

    async def _answer_after_break(self, sock: socket.socket, error: Exception) -> str:
        """clamd hung up (or stalled) while the file was being sent. It may have said why
        first (a size limit): its words if it did, else what broke."""
        with contextlib.suppress(ScannerUnavailable):
            return await self._answer(sock, wait=min(self.timeout, AFTER_BREAK_SECONDS))
        if isinstance(error, TimeoutError):
            raise self._unavailable(f"took no data for {self.timeout:g} s") from None
        raise self._unavailable(f"the connection broke: {_reason(error)}") from None

    def verdict(self, answer: str) -> Verdict:
        """``stream: OK`` → clean; ``stream: <signature> FOUND`` → infected; anything else
        (``… ERROR``) → :class:`ScannerUnavailable`."""
        text = answer.removeprefix("stream:").strip()
        if text == "OK":
            return Verdict.ok()
        if text.endswith(" FOUND") and text[: -len(" FOUND")].strip():
            return Verdict.infected(text[: -len(" FOUND")].strip())
        if "size limit exceeded" in text:
            raise self._unavailable(
                f"refused the file: {text} (StreamMaxLength in clamd.conf must be at least "
                "PORTAL_MAX_ATTACHMENTS_BYTES)"
            )
        raise self._unavailable(f"answered {text!r}")


def _reason(error: BaseException | None) -> str:
    """An OS error as an operator reads it: ``Connection refused``, not ``[Errno 111] …``."""
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error) or type(error).__name__
