"""An attachment's bytes at rest: sealed with its message's data key on the way into storage,
opened on the way out. The one place where the services meet :mod:`portal.crypto.storage`.

Every file stored from now on is encrypted (see ``docs/encryption.md``); its row keeps the
segment header. A row without one holds a file stored as it came: an empty file (nothing to
hide) or one stored before encryption at rest; it is read as it is.

A stored object that fails authentication (changed, cut short, moved under another key) is
reported as :class:`StorageError`: the download stops with the error page of storage that
cannot be read, and the operator's log says which file.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterable, AsyncIterator

from portal.crypto import storage as sealed
from portal.crypto.segments import Tampered
from portal.models import Attachment, Upload
from portal.services import message_keys
from portal.storage.base import StorageBackend, StorageError

log = logging.getLogger(__name__)


async def upload_part(
    storage: StorageBackend,
    upload: Upload,
    number: int,
    offset: int,
    data: AsyncIterable[bytes],
) -> str:
    """Store part ``number`` of a resumable upload (plaintext from ``offset``); its tag."""
    if upload.crypto_header is None:  # begun before encryption at rest
        return await storage.upload_part(
            upload.storage_key, upload.backend_upload_id, number, offset, data
        )
    return await sealed.upload_part(
        storage,
        upload.storage_key,
        upload.backend_upload_id,
        number,
        offset,
        data,
        size=upload.size,
        header=bytes(upload.crypto_header),
        data_key=await message_keys.ensure(upload.message_id),
    )


async def data_key(message_id: uuid.UUID) -> bytes:
    """The key to read the message's files with: fetch it before a stream that outlives the
    request (a zip), where the key provider cannot be reached."""
    return await message_keys.data_key(message_id)


def read(
    storage: StorageBackend,
    key: str,
    header: bytes | None,
    size: int,
    data_key: bytes,
    start: int = 0,
    end: int | None = None,
) -> AsyncIterator[bytes | bytearray]:
    """Plaintext ``start``..``end`` (exclusive; None: the end) of the file of ``size`` bytes
    stored under ``key`` with segment ``header`` (None: stored as it came)."""
    if header is None:
        return storage.read(key, start, end)
    return _checked(
        key,
        sealed.read_plain(
            storage,
            key,
            header=bytes(header),
            data_key=data_key,
            size=size,
            start=start,
            end=end,
        ),
    )


async def read_upload(storage: StorageBackend, upload: Upload) -> AsyncIterator[bytes | bytearray]:
    """The whole plaintext of a completed resumable upload (to compute its SHA-256)."""
    if upload.crypto_header is None:
        return storage.read(upload.storage_key)
    data_key = await message_keys.ensure(upload.message_id)
    return read(storage, upload.storage_key, upload.crypto_header, upload.size, data_key)


def read_attachment(
    storage: StorageBackend,
    attachment: Attachment,
    data_key: bytes,
    start: int = 0,
    end: int | None = None,
) -> AsyncIterator[bytes | bytearray]:
    """The attachment's plaintext, or the range ``start``..``end`` of it."""
    return read(
        storage,
        attachment.storage_key,
        attachment.crypto_header,
        attachment.size,
        data_key,
        start,
        end,
    )


async def _checked(
    key: str, stream: AsyncIterator[bytes | bytearray]
) -> AsyncIterator[bytes | bytearray]:
    try:
        async for data in stream:
            yield data
    except Tampered as exc:
        log.error("stored file %s failed authentication: %s", key, exc)
        raise StorageError(f"stored file {key} failed authentication") from exc
