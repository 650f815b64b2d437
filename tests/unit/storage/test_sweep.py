"""What the orphan sweep asks of every backend (``stale`` and ``discard``), on each backend:
everything the portal stored, finished or not, is listed once it is old enough, nothing else
is, and each listed thing can be thrown away, twice without error."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

from portal.services.uploads import new_storage_key
from portal.storage.base import StorageBackend, StoredItem

from .test_backends import MiB, store, upload

LATER = timedelta(minutes=5)


async def stale(backend: StorageBackend, before: datetime) -> list[StoredItem]:
    return [item async for item in backend.stale(before)]


async def _one_of_each(backend: StorageBackend) -> tuple[str, str, str]:
    """A committed object, a write that never committed, and an unfinished resumable upload.
    The write is over one S3 part, so S3 holds something of it (a multipart upload)."""
    done = await store(backend, os.urandom(1000))
    writing = new_storage_key()
    writer = await backend.writer(writing)
    await writer.write(os.urandom(8 * MiB + 1))
    resumable = new_storage_key()
    await upload(backend, resumable, os.urandom(5 * MiB + 10), part_size=5 * MiB)
    return done, writing, resumable


async def test_stale_lists_objects_unfinished_writes_and_uploads_but_only_once_old(backend):
    done, writing, resumable = await _one_of_each(backend)

    assert await stale(backend, datetime.now(UTC) - timedelta(hours=1)) == []
    found = await stale(backend, datetime.now(UTC) + LATER)

    by_key = {item.key: item for item in found}
    assert sorted(by_key) == sorted([done, writing, resumable])
    assert by_key[done].partial is None
    assert by_key[writing].partial is not None
    assert by_key[resumable].partial is not None
    assert all(item.modified.tzinfo is not None for item in found)


async def test_discarding_everything_stale_leaves_nothing_and_may_be_repeated(backend, backends):
    await _one_of_each(backend)
    found = await stale(backend, datetime.now(UTC) + LATER)
    assert backends.leftovers()

    for item in found:
        await backend.discard(item)
    for item in found:
        await backend.discard(item)  # already gone: not an error

    assert backends.leftovers() == []
    assert await stale(backend, datetime.now(UTC) + LATER) == []


async def test_discarding_one_object_keeps_the_others(backend):
    kept = await store(backend, b"kept")
    thrown = await store(backend, b"thrown")
    [item] = [i for i in await stale(backend, datetime.now(UTC) + LATER) if i.key == thrown]

    await backend.discard(item)

    assert sorted(i.key for i in await stale(backend, datetime.now(UTC) + LATER)) == [kept]


async def test_files_not_named_like_the_portals_keys_are_never_listed(backend, backends):
    own = await store(backend, b"ours")
    if hasattr(backends, "server"):  # S3: another application's keys in the same bucket
        s3 = backends.server.client()
        s3.put_object(Bucket=backends.bucket, Key="other-app/" + new_storage_key(), Body=b"x")
        s3.put_object(Bucket=backends.bucket, Key="attachments/README.txt", Body=b"x")
    else:
        root = backends.data_dir / "files"
        (root / own[:2] / "README.txt").write_bytes(b"x")
        (root / "tmp" / "notes.txt").write_bytes(b"x")

    found = await stale(backend, datetime.now(UTC) + LATER)

    assert [item.key for item in found] == [own]
