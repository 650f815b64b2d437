"""portal.crypto.storage on each backend (local files, S3 on moto): the backend holds only
sealed segments, a file written in one request or in resumable parts reads back whole and by
any range, and an object moved under another key does not open."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest

from portal.crypto import segments
from portal.crypto import storage as sealed
from portal.crypto.segments import SEGMENT, Tampered, cipher_size
from portal.storage.base import StorageBackend

MiB = 1024 * 1024
DATA_KEY = os.urandom(32)
MARKER = b"SALAINEN-MERKKIJONO-4711"


def with_markers(size: int) -> bytes:
    data = bytearray(os.urandom(size))
    for at in range(0, size - len(MARKER), SEGMENT // 2):
        data[at : at + len(MARKER)] = MARKER
    return bytes(data)


async def collect(chunks: AsyncIterator[bytes]) -> bytes:
    return b"".join([chunk async for chunk in chunks])


async def raw(backend: StorageBackend, key: str) -> bytes:
    return await collect(backend.read(key))


async def stream(data: bytes, piece: int = 100_000) -> AsyncIterator[bytes]:
    for at in range(0, len(data), piece):
        yield data[at : at + piece]


async def store(backend: StorageBackend, key: str, data: bytes) -> bytes:
    writer = await sealed.writer(backend, key, DATA_KEY)
    for at in range(0, len(data), 70_000):
        await writer.write(data[at : at + 70_000])
    await writer.commit()
    return writer.header


async def read(backend, key, header, size, start=0, end=None) -> bytes:
    return await collect(
        sealed.read_plain(
            backend, key, header=header, data_key=DATA_KEY, size=size, start=start, end=end
        )
    )


@pytest.mark.parametrize("size", [0, 1, SEGMENT, 3 * SEGMENT + 7])
async def test_a_written_file_is_stored_sealed_and_reads_back(backend, size):
    data = with_markers(size)
    key = os.urandom(16).hex()

    header = await store(backend, key, data)

    stored = await raw(backend, key)
    assert len(stored) == cipher_size(size)
    assert MARKER not in stored
    assert await read(backend, key, header, size) == data


@pytest.mark.parametrize(
    ("start", "end"),
    [(0, 1), (SEGMENT - 1, SEGMENT + 1), (SEGMENT, 2 * SEGMENT), (2 * SEGMENT + 3, None)],
)
async def test_a_range_reads_exactly_its_bytes(backend, start, end):
    size = 3 * SEGMENT + 99
    data = with_markers(size)
    key = os.urandom(16).hex()
    header = await store(backend, key, data)

    assert await read(backend, key, header, size, start, end) == data[start:end]


async def test_a_file_in_resumable_parts_reads_back_whole_and_by_range(backend):
    part = 5 * MiB  # S3's smallest part; 80 segments
    data = with_markers(2 * part + 12_345)
    key = os.urandom(16).hex()
    header = segments.new_header()
    upload_id = await backend.start_upload(key)
    tags = []
    for number, offset in enumerate(range(0, len(data), part), 1):
        tags.append(
            await sealed.upload_part(
                backend,
                key,
                upload_id,
                number,
                offset,
                stream(data[offset : offset + part]),
                size=len(data),
                header=header,
                data_key=DATA_KEY,
            )
        )
    await backend.complete_upload(key, upload_id, tags)

    stored = await raw(backend, key)
    assert len(stored) == cipher_size(len(data)) and MARKER not in stored
    assert await read(backend, key, header, len(data)) == data
    assert (
        await read(backend, key, header, len(data), part - 1, part + 1) == data[part - 1 : part + 1]
    )


async def test_an_object_copied_under_another_key_does_not_open(backend):
    size = 2 * SEGMENT
    first, second = os.urandom(16).hex(), os.urandom(16).hex()
    header = await store(backend, first, os.urandom(size))
    copy = await backend.writer(second)
    await copy.write(await raw(backend, first))
    await copy.commit()

    with pytest.raises(Tampered):
        await read(backend, second, header, size)
