"""Storage backend ``local``: attachment files under ``PORTAL_DATA_DIR/files``.

Objects are written to a temporary name, fsync'd and renamed into place on commit, so a crash
never leaves a half-written file under a real key. Keys are the portal's random hex strings;
they are checked before they touch the file system.

A resumable upload is the file ``files/tmp/<key>.upload`` (its name is the upload id, checked
against the key whenever it is used): each part is written at its offset and fsync'd before
its tag (the part's length) is returned, so any process sharing the data directory can go on
with it; completing renames it into place.

Files are created 0600 and directories 0700 whatever the process's umask: attachments are
confidential, and no other local user may read them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from collections.abc import AsyncIterable, AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from portal.api import (
    ObjectNotFound,
    StorageBackend,
    StorageError,
    StorageWriter,
    StoredItem,
    hookimpl,
)

CHUNK = 256 * 1024
WRITEBACK_EVERY = 4 * 1024 * 1024
_KEY = re.compile(r"^[0-9a-f]{16,128}$")
#: The unfinished files in ``files/tmp``: a write that has not committed, a resumable upload.
_PARTIAL = re.compile(r"^([0-9a-f]{16,128})\.(part|upload)$")
FILE_MODE = 0o600
DIR_MODE = 0o700


def _private_dir(path: Path) -> None:
    """Create ``path`` and any missing parents 0700 (``mkdir(parents=True)`` would make the
    parents with the umask's mode)."""
    if path.is_dir():
        return
    _private_dir(path.parent)
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=DIR_MODE)


def _create_private(path: Path) -> BinaryIO:
    """A new file opened for writing, 0600; fails if it exists."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    return os.fdopen(fd, "wb")


class Writeback:
    """Has the disk write a file while its bytes still arrive, so the ``fsync`` that makes it
    durable at the end finds little left to do (the upload waits for that fsync).

    Every ``WRITEBACK_EVERY`` bytes an ``fdatasync`` starts in a thread unless one is running;
    :meth:`settle` must be awaited before the file is closed.
    """

    def __init__(self, fh: BinaryIO) -> None:
        self.fh = fh
        self.unsynced = 0
        self.task: asyncio.Future[None] | None = None

    def wrote(self, size: int) -> None:
        self.unsynced += size
        if self.unsynced >= WRITEBACK_EVERY and (self.task is None or self.task.done()):
            self.fh.flush()
            self.unsynced = 0
            self.task = asyncio.ensure_future(asyncio.to_thread(os.fdatasync, self.fh.fileno()))

    async def settle(self) -> None:
        """Wait for a running writeback (its errors show again in the final fsync)."""
        if self.task is not None:
            with contextlib.suppress(OSError):
                await self.task
            self.task = None

    async def make_durable(self) -> None:
        await self.settle()
        self.fh.flush()
        await asyncio.to_thread(os.fsync, self.fh.fileno())


class LocalWriter(StorageWriter):
    def __init__(self, final: Path, temporary: Path, fh: BinaryIO) -> None:
        self.final = final
        self.temporary = temporary
        self.fh = fh
        self.writeback = Writeback(fh)

    async def write(self, data: bytes | bytearray) -> None:
        try:
            self.fh.write(data)  # into the page cache: microseconds, no thread hop needed
            self.writeback.wrote(len(data))
        except OSError as exc:
            raise StorageError(f"cannot write {self.temporary.name}: {exc}") from exc

    async def commit(self) -> None:
        try:
            await self.writeback.make_durable()
            self.fh.close()
            await asyncio.to_thread(os.replace, self.temporary, self.final)
        except OSError as exc:
            raise StorageError(f"cannot store {self.final.name}: {exc}") from exc

    async def abort(self) -> None:
        await self.writeback.settle()
        self.fh.close()
        self.temporary.unlink(missing_ok=True)


class LocalStorage(StorageBackend):
    name = "local"

    @property
    def root(self) -> Path:
        return self.settings.data_dir / "files"

    async def open(self) -> None:
        _private_dir(self.root / "tmp")

    def path(self, key: str) -> Path:
        if not _KEY.match(key):
            raise ObjectNotFound(key)
        return self.root / key[:2] / key

    async def writer(self, key: str) -> StorageWriter:
        final = self.path(key)
        temporary = self.root / "tmp" / f"{key}.part"
        try:
            _private_dir(final.parent)
            _private_dir(temporary.parent)
            # Writes go to the page cache in microseconds; fsync runs in a thread on commit.
            fh = _create_private(temporary)  # closed by commit/abort
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

    # -- resumable uploads ----------------------------------------------------------------

    def upload_path(self, key: str, upload_id: str) -> Path:
        """The file of an upload; an id that is not the one :meth:`start_upload` gave for
        ``key`` is refused, so it can never point anywhere else."""
        self.path(key)  # checks the key
        if upload_id != f"{key}.upload":
            raise StorageError(f"unknown upload {upload_id!r} of {key}")
        return self.root / "tmp" / upload_id

    async def start_upload(self, key: str) -> str:
        self.path(key)
        tmp = self.root / "tmp"
        try:
            _private_dir(tmp)
            _create_private(tmp / f"{key}.upload").close()
        except OSError as exc:
            raise StorageError(f"cannot create {key}.upload: {exc}") from exc
        return f"{key}.upload"

    async def upload_part(
        self,
        key: str,
        upload_id: str,
        number: int,
        offset: int,
        data: AsyncIterable[bytes | bytearray],
    ) -> str:
        path = self.upload_path(key, upload_id)
        failed = f"cannot write part {number} of {upload_id}"
        try:
            fh = open(path, "r+b")  # noqa: SIM115, ASYNC230 - closed below
        except OSError as exc:
            raise StorageError(f"{failed}: {exc}") from exc
        with fh:
            size = os.fstat(fh.fileno()).st_size
            if not 0 <= offset <= size:  # parts arrive in order: a gap is a bug, not zeros
                raise StorageError(
                    f"{failed}: it starts at {offset}, but only {size} bytes were received"
                )
            fh.seek(offset)
            written = 0
            # Never truncate: a request for this part that stalled and ends late (after its
            # retry, even after the upload completed and the file was renamed into place)
            # must not cut the file. Every part of an upload has a fixed place and length,
            # and any copy of it carries the same bytes, so writing over is harmless; a part
            # that failed midway is written over by its retry.
            # The stream's own errors (the browser went away) pass through unchanged; only
            # the file's become StorageError.
            writeback = Writeback(fh)
            try:
                async for chunk in data:
                    try:
                        fh.write(chunk)  # into the page cache, as in LocalWriter.write
                        writeback.wrote(len(chunk))
                    except OSError as exc:
                        # A full disk: give back at once what this request appended (only
                        # that: bytes up to the file's size before belong to earlier parts).
                        with contextlib.suppress(OSError):
                            fh.truncate(max(size, offset))
                        raise StorageError(f"{failed}: {exc}") from exc
                    written += len(chunk)
                try:
                    await writeback.make_durable()
                except OSError as exc:
                    raise StorageError(f"{failed}: {exc}") from exc
            finally:
                await writeback.settle()  # before the file closes under it
        return str(written)

    async def complete_upload(self, key: str, upload_id: str, tags: list[str]) -> None:
        path = self.upload_path(key, upload_id)
        final = self.path(key)
        try:
            expected = sum(int(tag) for tag in tags)
        except ValueError:
            raise StorageError(f"{upload_id}: these are not this backend's tags") from None

        def finish() -> None:
            if not path.exists() and final.exists() and final.stat().st_size == expected:
                return  # completed before (a retried request), as S3 answers too
            with open(path, "rb") as fh:
                size = os.fstat(fh.fileno()).st_size
                if size != expected:
                    raise StorageError(
                        f"{upload_id}: {size} bytes stored, but the parts add up to {expected}"
                    )
                os.fsync(fh.fileno())
            _private_dir(final.parent)
            os.replace(path, final)

        try:
            await asyncio.to_thread(finish)
        except OSError as exc:
            raise StorageError(f"cannot store {key}: {exc}") from exc

    async def abort_upload(self, key: str, upload_id: str) -> None:
        try:
            path = self.upload_path(key, upload_id)
        except StorageError:
            return  # not an upload of ours: there is nothing to throw away
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot remove {upload_id}: {exc}") from exc

    # -- the orphan sweep -----------------------------------------------------------------

    async def stale(self, before: datetime) -> AsyncIterator[StoredItem]:
        cutoff = before.timestamp()
        for directory in await asyncio.to_thread(self._directories):
            for item in await asyncio.to_thread(_stale_in, directory, cutoff):
                yield item

    def _directories(self) -> list[Path]:
        if not self.root.is_dir():
            return []
        return sorted(path for path in self.root.iterdir() if path.is_dir())

    async def discard(self, item: StoredItem) -> None:
        if item.partial is None:
            await self.delete(item.key)
            return
        match = _PARTIAL.match(item.partial)
        if match is None or match.group(1) != item.key:
            raise StorageError(f"not an unfinished file of {item.key}: {item.partial!r}")
        try:
            (self.root / "tmp" / item.partial).unlink(missing_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot remove {item.partial}: {exc}") from exc


def _stale_in(directory: Path, cutoff: float) -> list[StoredItem]:
    """The files of one directory (``files/ab`` or ``files/tmp``) unchanged since ``cutoff``."""
    found = []
    with os.scandir(directory) as entries:
        for entry in entries:
            if directory.name == "tmp":
                match = _PARTIAL.match(entry.name)
                key, partial = (match.group(1), entry.name) if match else (None, None)
            else:
                key, partial = (entry.name, None) if _KEY.match(entry.name) else (None, None)
            if key is None:
                continue
            try:
                modified = entry.stat(follow_symlinks=False).st_mtime
            except FileNotFoundError:
                continue  # committed, finished or deleted while we looked
            if modified < cutoff:
                found.append(StoredItem(key, datetime.fromtimestamp(modified, UTC), partial))
    return found


@hookimpl
def register_storage_backends() -> list[type[StorageBackend]]:
    return [LocalStorage]
