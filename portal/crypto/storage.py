"""Encrypted files on any storage backend: what the services write and read goes through here.

A storage backend (a plugin) only ever sees sealed segments (:mod:`portal.crypto.segments`):
:class:`SealingWriter` wraps a backend's writer, :func:`upload_part` seals one part of a
resumable upload at its fixed place, and :func:`read_plain` asks the backend for exactly the
stored bytes of the segments that hold a plaintext range and opens them. The file's storage
key is the segments' context, so a stored object moved under another key does not open; the
header (salt and nonce prefix) is kept in the file's row.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator

from portal.crypto.segments import (
    BATCH,
    SEGMENT,
    TAG,
    Bytes,
    Opener,
    Sealer,
    cipher_span,
    run_segments,
    split,
)
from portal.storage.base import StorageBackend, StorageWriter


def _context(key: str) -> bytes:
    return key.encode("ascii")


class SealingWriter(StorageWriter):
    """Seals what it is given into segments and hands them to the backend's writer."""

    def __init__(self, inner: StorageWriter, sealer: Sealer) -> None:
        self.inner = inner
        self.sealer = sealer
        self._pending = bytearray()
        self._index = 0

    @property
    def header(self) -> bytes:
        return self.sealer.header

    async def write(self, data: Bytes) -> None:
        self._pending += data
        # Whole segments with more bytes after them are not the last: sealed BATCH at a time.
        if (count := (len(self._pending) - 1) // SEGMENT) >= BATCH:
            await self._seal(count)

    async def _seal(self, count: int) -> None:
        run, self._pending = split(self._pending, count * SEGMENT)
        await self.inner.write(await run_segments(self.sealer.seal_run, self._index, run))
        self._index += count

    async def commit(self) -> None:
        if (count := (len(self._pending) - 1) // SEGMENT) > 0:
            await self._seal(count)
        await self.inner.write(self.sealer.seal(self._index, bytes(self._pending), True))
        self._pending.clear()
        await self.inner.commit()

    async def abort(self) -> None:
        self._pending.clear()
        await self.inner.abort()


async def writer(storage: StorageBackend, key: str, data_key: bytes) -> SealingWriter:
    """A writer of a new encrypted object under ``key``; keep its ``header`` in the row."""
    return SealingWriter(await storage.writer(key), Sealer(data_key, _context(key)))


async def upload_part(
    storage: StorageBackend,
    key: str,
    upload_id: str,
    number: int,
    offset: int,
    data: AsyncIterable[bytes],
    *,
    size: int,
    header: bytes,
    data_key: bytes,
) -> str:
    """Seal and store the part of plaintext ``offset`` (a multiple of ``SEGMENT``) of a file
    of ``size`` bytes; the backend gets it at its stored offset. Its tag."""
    sealer = Sealer(data_key, _context(key), header)
    stored_offset = offset // SEGMENT * (SEGMENT + TAG)
    return await storage.upload_part(
        key, upload_id, number, stored_offset, sealer.stream(data, offset, size)
    )


def read_plain(
    storage: StorageBackend,
    key: str,
    *,
    header: bytes,
    data_key: bytes,
    size: int,
    start: int = 0,
    end: int | None = None,
) -> AsyncIterator[bytes | bytearray]:
    """Plaintext ``start``..``end`` (exclusive; None: the end) of the encrypted file of
    ``size`` bytes under ``key``: only its segments are read. A changed, cut or moved object
    raises :class:`portal.crypto.segments.Tampered` as the bad segment is reached."""
    span = cipher_span(start, size if end is None else end, size)
    opener = Opener(data_key, _context(key), header)
    return opener.stream(storage.read(key, span.stored_start, span.stored_end), span, size)
