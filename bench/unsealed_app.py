"""The portal with encryption at rest switched off, for the benchmark only: the ratio of
encrypted to unencrypted speed is measured in the same run (``bench/run.py --only encryption``).

There is no setting that turns encryption off. This module replaces, in the benchmark's server
process alone, the two places where files get sealed: a form's file writer, and the segment
header a chunked upload gets when it is announced. A row without a header is a file stored as
it came, which every read path already handles (files stored before encryption at rest).
"""

from __future__ import annotations

from portal.crypto import segments
from portal.crypto import storage as sealed
from portal.storage.base import StorageBackend, StorageWriter


class _PlainWriter(StorageWriter):
    header = None

    def __init__(self, inner: StorageWriter) -> None:
        self.inner = inner

    async def write(self, data: bytes) -> None:
        await self.inner.write(data)

    async def commit(self) -> None:
        await self.inner.commit()

    async def abort(self) -> None:
        await self.inner.abort()


async def _plain_writer(storage: StorageBackend, key: str, data_key: bytes) -> _PlainWriter:
    return _PlainWriter(await storage.writer(key))


sealed.writer = _plain_writer  # type: ignore[assignment]
segments.new_header = lambda: None  # type: ignore[assignment,return-value]

from portal.asgi import app  # noqa: E402  (after the switch: the app imports the patched modules)

__all__ = ["app"]
