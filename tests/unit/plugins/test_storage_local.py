"""The ``local`` storage backend (plugins/storage_local)."""

from __future__ import annotations

import os

import pytest
from sinetti_storage_local import LocalStorage

from portal.services.uploads import new_storage_key
from portal.storage.base import ObjectNotFound

from ..helpers import stored_files


async def read_all(storage: LocalStorage, key: str, start: int = 0, end: int | None = None):
    return b"".join([chunk async for chunk in storage.read(key, start, end)])


async def store(storage: LocalStorage, data: bytes) -> str:
    key = new_storage_key()
    writer = await storage.writer(key)
    for start in range(0, len(data), 100_000):
        await writer.write(data[start : start + 100_000])
    await writer.commit()
    return key


async def test_committed_object_reads_back_byte_identical(storage):
    data = os.urandom(600_000)  # more than one read chunk

    key = await store(storage, data)

    assert await read_all(storage, key) == data


@pytest.mark.parametrize(("start", "end"), [(0, 1), (10, 20), (262_143, 262_145), (5, None)])
async def test_range_reads_return_exactly_the_range(storage, start, end):
    data = os.urandom(300_000)
    key = await store(storage, data)

    assert await read_all(storage, key, start, end) == data[start:end]


async def test_nothing_is_visible_before_commit(storage):
    key = new_storage_key()
    writer = await storage.writer(key)
    await writer.write(b"half")

    with pytest.raises(ObjectNotFound):
        await read_all(storage, key)

    await writer.commit()
    assert await read_all(storage, key) == b"half"


async def test_abort_leaves_no_file(storage, tmp_path):
    writer = await storage.writer(new_storage_key())
    await writer.write(b"secret" * 1000)

    await writer.abort()

    assert stored_files(tmp_path) == []


async def test_delete_removes_the_object_and_tolerates_a_missing_one(storage, tmp_path):
    key = await store(storage, b"data")

    await storage.delete(key)
    await storage.delete(key)

    assert stored_files(tmp_path) == []
    with pytest.raises(ObjectNotFound):
        await read_all(storage, key)


@pytest.mark.parametrize("key", ["../../secret.key", "abc", "ABCDEF0123456789", "a" * 129, ""])
async def test_keys_that_are_not_portal_keys_never_touch_the_file_system(storage, key):
    with pytest.raises(ObjectNotFound):
        await read_all(storage, key)
    with pytest.raises(ObjectNotFound):
        await storage.writer(key)
    await storage.delete(key)  # deleting is never an error


async def test_writing_an_existing_key_twice_is_refused(storage):
    key = new_storage_key()
    first = await storage.writer(key)

    with pytest.raises(Exception, match="cannot create"):
        await storage.writer(key)

    await first.abort()


def test_local_storage_is_registered_as_local():
    import sinetti_storage_local

    assert sinetti_storage_local.register_storage_backends() == [LocalStorage]
    assert LocalStorage.name == "local"
