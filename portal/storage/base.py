"""The interface every storage backend implements (local disk, S3, …)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator

from portal.providers import Provider


class StorageError(Exception):
    """The storage backend failed (disk full, bucket unreachable, …)."""


class ObjectNotFound(StorageError):
    """No object is stored under the key."""


class StorageWriter(ABC):
    """Receives one object's bytes in order. Nothing is visible before :meth:`commit`."""

    @abstractmethod
    async def write(self, data: bytes) -> None: ...

    @abstractmethod
    async def commit(self) -> None:
        """Make the object durable and visible under its key."""

    @abstractmethod
    async def abort(self) -> None:
        """Throw away what was written. Must not raise if nothing was written."""


class StorageBackend(Provider, ABC):
    """Stores attachment bytes under random keys chosen by the portal (never file names)."""

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
