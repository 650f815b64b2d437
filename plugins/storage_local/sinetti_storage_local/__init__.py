"""Storage backend ``local``: attachment files under ``PORTAL_DATA_DIR/files``.

Objects are written to a temporary name, fsync'd and renamed into place on commit, so a crash
never leaves a half-written file under a real key. Keys are the portal's random hex strings;
they are checked before they touch the file system.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import BinaryIO

from portal import hookimpl
from portal.storage.base import ObjectNotFound, StorageBackend, StorageError, StorageWriter

CHUNK = 256 * 1024
_KEY = re.compile(r"^[0-9a-f]{16,128}$")


class LocalWriter(StorageWriter):
    def __init__(self, final: Path, temporary: Path, fh: BinaryIO) -> None:
        self.final = final
        self.temporary = temporary
        self.fh = fh

    async def write(self, data: bytes) -> None:
        try:
            self.fh.write(data)  # into the page cache: microseconds, no thread hop needed
        except OSError as exc:
            raise StorageError(f"cannot write {self.temporary.name}: {exc}") from exc

    async def commit(self) -> None:
        def finish() -> None:
            self.fh.flush()
            os.fsync(self.fh.fileno())
            self.fh.close()
            os.replace(self.temporary, self.final)

        try:
            await asyncio.to_thread(finish)
        except OSError as exc:
            raise StorageError(f"cannot store {self.final.name}: {exc}") from exc

    async def abort(self) -> None:
        self.fh.close()
        self.temporary.unlink(missing_ok=True)


class LocalStorage(StorageBackend):
    name = "local"

    @property
    def root(self) -> Path:
        return self.settings.data_dir / "files"

    async def open(self) -> None:
        (self.root / "tmp").mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> Path:
        if not _KEY.match(key):
            raise ObjectNotFound(key)
        return self.root / key[:2] / key

    async def writer(self, key: str) -> StorageWriter:
        final = self.path(key)
        final.parent.mkdir(parents=True, exist_ok=True)
        (self.root / "tmp").mkdir(parents=True, exist_ok=True)
        temporary = self.root / "tmp" / f"{key}.part"
        try:
            # Writes go to the page cache in microseconds; fsync runs in a thread on commit.
            fh = open(temporary, "xb")  # noqa: SIM115, ASYNC230 - closed by commit/abort
        except OSError as exc:
            raise StorageError(f"cannot create {temporary.name}: {exc}") from exc
        return LocalWriter(final, temporary, fh)

    async def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        try:
            fh = open(self.path(key), "rb")  # noqa: SIM115, ASYNC230 - read in small chunks below
        except FileNotFoundError:
            raise ObjectNotFound(key) from None
        with fh:
            fh.seek(start)
            remaining = None if end is None else max(end - start, 0)
            while remaining is None or remaining > 0:
                size = CHUNK if remaining is None else min(CHUNK, remaining)
                data = fh.read(size)
                if not data:
                    break
                if remaining is not None:
                    remaining -= len(data)
                yield data

    async def delete(self, key: str) -> None:
        try:
            self.path(key).unlink(missing_ok=True)
        except ObjectNotFound:
            return


@hookimpl
def register_storage_backends() -> list[type[StorageBackend]]:
    return [LocalStorage]
