"""The interface every storage backend implements (local disk, S3, …)."""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import AsyncIterable, AsyncIterator
from datetime import datetime

from portal.providers import Provider


class StorageError(Exception):
    """The storage backend failed (disk full, bucket unreachable, …)."""


class ObjectNotFound(StorageError):
    """No object is stored under the key."""


@dataclasses.dataclass(frozen=True)
class StoredItem:
    """Something a backend holds, as :meth:`StorageBackend.stale` finds it: a complete object
    (``partial`` is None) or the unfinished bytes of one — a write that never committed or a
    resumable upload — named by ``partial``, which :meth:`StorageBackend.discard` understands."""

    key: str
    #: When its bytes last changed (timezone-aware).
    modified: datetime
    partial: str | None = None


class StorageWriter(ABC):
    """Receives one object's bytes in order. Nothing is visible before :meth:`commit`."""

    @abstractmethod
    async def write(self, data: bytes | bytearray) -> None: ...

    @abstractmethod
    async def commit(self) -> None:
        """Make the object durable and visible under its key."""

    @abstractmethod
    async def abort(self) -> None:
        """Throw away what was written. Must not raise if nothing was written."""


class StorageBackend(Provider, ABC):
    """Stores attachment bytes under random keys chosen by the portal (never file names).

    Two ways in: :meth:`writer` for a body streamed in one request (the form without
    JavaScript), and resumable uploads in parts (:meth:`start_upload` …) for the chunked
    uploads of the compose page. One way out: :meth:`read`, with byte ranges.
    """

    @abstractmethod
    async def writer(self, key: str) -> StorageWriter:
        """Start writing a new object under ``key``."""

    @abstractmethod
    def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """Yield the bytes of ``key`` from ``start`` up to ``end`` (exclusive; None: the end).

        Raises :class:`ObjectNotFound` when there is no such object.
        """

    @abstractmethod
    async def delete(self, key: str) -> None:
        """Delete ``key``; deleting a missing key is not an error."""

    # -- resumable uploads -----------------------------------------------------------------
    # An object that arrives in numbered parts over many requests, possibly handled by
    # different server processes: everything needed to continue is returned to the portal,
    # which keeps it in the database (the upload id and each part's tag).

    @abstractmethod
    async def start_upload(self, key: str) -> str:
        """Begin an object under ``key`` that will arrive in parts; return an upload id."""

    @abstractmethod
    async def upload_part(
        self,
        key: str,
        upload_id: str,
        number: int,
        offset: int,
        data: AsyncIterable[bytes | bytearray],
    ) -> str:
        """Store part ``number`` (1, 2, …), the bytes from ``offset`` of the object; return
        its tag. Parts arrive in order; every part but the last has the same size (at least
        5 MiB, as S3 requires), so a part has a fixed place and length. Sending a part again
        replaces it, and a copy that ends late (a stalled request of the same part, even after
        completion) must not harm the object. Raise :class:`StorageError` when it cannot be
        stored; errors of ``data`` itself (the browser went away) pass through unchanged.
        Nothing of a failed part counts: the portal sends it again.
        """

    @abstractmethod
    async def complete_upload(self, key: str, upload_id: str, tags: list[str]) -> None:
        """Assemble the parts (their tags in order) into the object under ``key``."""

    @abstractmethod
    async def abort_upload(self, key: str, upload_id: str) -> None:
        """Throw the parts away. Aborting an unknown or finished upload is not an error."""

    # -- the orphan sweep ------------------------------------------------------------------
    # A crash can leave bytes no row knows: a write that never committed, an upload nobody
    # finishes, an object stored just before its row would have been. The purge lists what
    # has not changed for a while and throws away what no row references. Both methods are
    # optional: a backend that cannot list what it holds yields nothing and is not swept.

    async def stale(self, before: datetime) -> AsyncIterator[StoredItem]:
        """Yield every object and unfinished write or upload under this backend's keys whose
        bytes last changed before ``before``, in any order. Anything not named like the
        portal's keys (another application's files in a shared bucket) is never yielded."""
        return
        yield  # an async generator that yields nothing

    async def discard(self, item: StoredItem) -> None:
        """Delete what :meth:`stale` yielded: the object, or the unfinished bytes (by default
        an unfinished resumable upload named by its upload id). Something already gone is
        not an error."""
        if item.partial is None:
            await self.delete(item.key)
        else:
            await self.abort_upload(item.key, item.partial)
