"""What every storage backend must do, checked on each (see ``backend`` in conftest.py)."""

from __future__ import annotations

import os

import pytest

from portal.services.uploads import new_storage_key
from portal.storage.base import ObjectNotFound, StorageBackend, StorageError

MiB = 1024 * 1024


class ClientGone(Exception):
    """What the request body raises when the browser goes away mid-part."""


async def read_all(backend: StorageBackend, key: str, start: int = 0, end: int | None = None):
    return b"".join([chunk async for chunk in backend.read(key, start, end)])


async def store(backend: StorageBackend, data: bytes, step: int = 100_000) -> str:
    key = new_storage_key()
    writer = await backend.writer(key)
    for start in range(0, len(data), step):
        await writer.write(data[start : start + step])
    await writer.commit()
    return key


async def stream(data: bytes, step: int = 256 * 1024, fail_after: int | None = None):
    """``data`` as a request body would arrive; raises ClientGone after ``fail_after`` bytes."""
    for start in range(0, len(data), step):
        if fail_after is not None and start >= fail_after:
            raise ClientGone
        yield data[start : start + step]
    if fail_after is not None:
        raise ClientGone


async def upload(backend: StorageBackend, key: str, data: bytes, part_size: int = 5 * MiB):
    """Send ``data`` as a resumable upload; return the upload id and the tags."""
    upload_id = await backend.start_upload(key)
    tags = []
    for number, offset in enumerate(range(0, len(data), part_size), 1):
        part = data[offset : offset + part_size]
        tags.append(await backend.upload_part(key, upload_id, number, offset, stream(part)))
    return upload_id, tags


# -- one request ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end"),
    [(0, None), (5, None), (0, 1), (10, 20), (262_143, 262_145), (599_990, 700_000), (7, 7)],
)
async def test_committed_object_reads_back_whole_and_in_ranges(backend, start, end):
    data = os.urandom(600_000)

    key = await store(backend, data)

    assert await read_all(backend, key, start, end) == data[start:end]


async def test_a_range_starting_past_the_end_is_empty(backend):
    key = await store(backend, b"0123456789")

    assert await read_all(backend, key, 10) == b""
    assert await read_all(backend, key, 50, 60) == b""


async def test_empty_object(backend):
    key = await store(backend, b"")

    assert await read_all(backend, key) == b""
    assert await read_all(backend, key, 0, 10) == b""
    assert await read_all(backend, key, 3) == b""


async def test_object_of_several_parts_reads_back_identical(backend):
    data = os.urandom(17 * MiB + 3)  # more than two of the S3 writer's 8 MiB parts

    key = await store(backend, data, step=MiB + 1)

    assert await read_all(backend, key) == data
    assert await read_all(backend, key, 8 * MiB - 2, 8 * MiB + 2) == data[8 * MiB - 2 : 8 * MiB + 2]


async def test_nothing_is_visible_before_commit(backend):
    key = new_storage_key()
    writer = await backend.writer(key)
    first = os.urandom(9 * MiB)
    await writer.write(first)  # S3 has sent a part of it already

    with pytest.raises(ObjectNotFound):
        await read_all(backend, key)

    await writer.write(b"end")
    await writer.commit()
    assert await read_all(backend, key) == first + b"end"


@pytest.mark.parametrize("size", [0, 1000, 9 * MiB])
async def test_abort_leaves_nothing(backend, backends, size):
    key = new_storage_key()
    writer = await backend.writer(key)
    await writer.write(os.urandom(size))

    await writer.abort()

    assert backends.leftovers() == []
    with pytest.raises(ObjectNotFound):
        await read_all(backend, key)


async def test_reading_a_missing_key_raises_object_not_found(backend):
    with pytest.raises(ObjectNotFound):
        await read_all(backend, new_storage_key())
    with pytest.raises(ObjectNotFound):
        await read_all(backend, new_storage_key(), 5, 10)
    with pytest.raises(ObjectNotFound):
        await read_all(backend, new_storage_key(), 5, 5)


async def test_delete_removes_the_object_and_is_idempotent(backend, backends):
    key = await store(backend, b"data")

    await backend.delete(key)
    await backend.delete(key)
    await backend.delete(new_storage_key())

    assert backends.leftovers() == []
    with pytest.raises(ObjectNotFound):
        await read_all(backend, key)


async def test_reading_a_large_object_streams_it_in_small_chunks(backend):
    data = os.urandom(20 * MiB)
    key = await store(backend, data, step=MiB)

    sizes = []
    total = bytearray()
    async for chunk in backend.read(key):
        sizes.append(len(chunk))
        total += chunk

    assert max(sizes) <= MiB  # memory does not grow with the object
    assert len(sizes) >= 20
    assert total == data


async def test_a_reader_that_stops_early_leaves_the_backend_usable(backend):
    key = await store(backend, os.urandom(3 * MiB), step=MiB)

    reader = backend.read(key)
    await anext(reader)
    await reader.aclose()

    assert len(await read_all(backend, key)) == 3 * MiB


# -- resumable uploads --------------------------------------------------------------------------


async def test_parts_are_assembled_into_the_object(backend, backends):
    data = os.urandom(3 * 5 * MiB + 12_345)  # three full parts and a short last one
    key = new_storage_key()

    upload_id, tags = await upload(backend, key, data)
    with pytest.raises(ObjectNotFound):
        await read_all(backend, key)  # nothing is visible before completion
    await backend.complete_upload(key, upload_id, tags)

    assert len(tags) == 4
    assert await read_all(backend, key) == data
    assert await read_all(backend, key, 5 * MiB - 1, 5 * MiB + 1) == data[5 * MiB - 1 : 5 * MiB + 1]
    assert [name for name in backends.leftovers() if "upload" in name] == []


async def test_a_single_short_part_is_an_object(backend):
    key = new_storage_key()

    upload_id, tags = await upload(backend, key, b"small")
    await backend.complete_upload(key, upload_id, tags)

    assert await read_all(backend, key) == b"small"


async def test_a_part_sent_again_replaces_the_earlier_one(backend):
    first, second = os.urandom(5 * MiB), os.urandom(5 * MiB)
    last_old, last_new = os.urandom(1000), os.urandom(1000)  # a part keeps its length
    key = new_storage_key()
    upload_id = await backend.start_upload(key)

    await backend.upload_part(key, upload_id, 1, 0, stream(os.urandom(5 * MiB)))
    tag1 = await backend.upload_part(key, upload_id, 1, 0, stream(first))
    tag2 = await backend.upload_part(key, upload_id, 2, 5 * MiB, stream(second))
    await backend.upload_part(key, upload_id, 3, 10 * MiB, stream(last_old))
    tag3 = await backend.upload_part(key, upload_id, 3, 10 * MiB, stream(last_new))
    await backend.complete_upload(key, upload_id, [tag1, tag2, tag3])

    assert await read_all(backend, key) == first + second + last_new


async def test_a_part_that_fails_midway_can_be_sent_again(backend):
    parts = [os.urandom(5 * MiB), os.urandom(5 * MiB), os.urandom(777)]
    key = new_storage_key()
    upload_id = await backend.start_upload(key)
    tag1 = await backend.upload_part(key, upload_id, 1, 0, stream(parts[0]))

    # The body of part 2 breaks off after 3 MiB: the browser's own error comes through.
    with pytest.raises(ClientGone):
        await backend.upload_part(key, upload_id, 2, 5 * MiB, stream(parts[1], fail_after=3 * MiB))

    tag2 = await backend.upload_part(key, upload_id, 2, 5 * MiB, stream(parts[1]))
    # And a last part that breaks off even before its end, sent again.
    with pytest.raises(ClientGone):
        await backend.upload_part(key, upload_id, 3, 10 * MiB, stream(parts[2], fail_after=777))
    tag3 = await backend.upload_part(key, upload_id, 3, 10 * MiB, stream(parts[2]))
    await backend.complete_upload(key, upload_id, [tag1, tag2, tag3])

    assert await read_all(backend, key) == b"".join(parts)


async def test_an_upload_goes_on_in_another_process(backend, backends):
    """Parts handled by different portal processes: only the id and tags travel between them."""
    data = os.urandom(2 * 5 * MiB + 99)
    key = new_storage_key()
    upload_id = await backend.start_upload(key)
    tags = [await backend.upload_part(key, upload_id, 1, 0, stream(data[: 5 * MiB]))]

    other = await backends.make()
    tags.append(
        await other.upload_part(key, upload_id, 2, 5 * MiB, stream(data[5 * MiB : 10 * MiB]))
    )
    third = await backends.make()
    tags.append(await third.upload_part(key, upload_id, 3, 10 * MiB, stream(data[10 * MiB :])))
    await other.complete_upload(key, upload_id, tags)

    assert await read_all(third, key) == data
    assert await read_all(backend, key) == data


async def test_abort_upload_leaves_nothing_and_can_be_repeated(backend, backends):
    key = new_storage_key()
    upload_id = await backend.start_upload(key)
    await backend.upload_part(key, upload_id, 1, 0, stream(os.urandom(5 * MiB)))
    await backend.upload_part(key, upload_id, 2, 5 * MiB, stream(b"tail"))

    await backend.abort_upload(key, upload_id)
    await backend.abort_upload(key, upload_id)
    await (await backends.make()).abort_upload(key, upload_id)

    assert backends.leftovers() == []
    with pytest.raises(ObjectNotFound):
        await read_all(backend, key)


async def test_aborting_an_upload_that_never_was_is_not_an_error(backend, backends):
    await backend.abort_upload(new_storage_key(), "no-such-upload")

    assert backends.leftovers() == []


async def test_parts_of_an_aborted_or_unknown_upload_are_refused(backend):
    key = new_storage_key()
    upload_id = await backend.start_upload(key)
    await backend.abort_upload(key, upload_id)

    with pytest.raises(StorageError):
        await backend.upload_part(key, upload_id, 1, 0, stream(b"late"))
    with pytest.raises(StorageError):
        await backend.complete_upload(key, upload_id, [])
    with pytest.raises(StorageError):
        await backend.upload_part(new_storage_key(), upload_id, 1, 0, stream(b"elsewhere"))


async def test_completing_a_finished_upload_again_keeps_the_object(backend):
    """A retried request (the first answer was lost) must not break a finished upload."""
    key = new_storage_key()
    upload_id, tags = await upload(backend, key, b"done")
    await backend.complete_upload(key, upload_id, tags)

    await backend.complete_upload(key, upload_id, tags)

    assert await read_all(backend, key) == b"done"


async def test_resumable_and_streamed_objects_can_be_deleted(backend, backends):
    key = new_storage_key()
    upload_id, tags = await upload(backend, key, os.urandom(6 * MiB))
    await backend.complete_upload(key, upload_id, tags)

    await backend.delete(key)

    assert backends.leftovers() == []
