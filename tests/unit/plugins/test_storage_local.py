"""The ``local`` storage backend (plugins/storage_local): what only it does. What it shares with
every backend is in tests/unit/storage/test_backends.py."""

from __future__ import annotations

import asyncio
import os
import stat

import pytest
from sinetti_storage_local import LocalStorage

from portal.services.uploads import new_storage_key
from portal.storage.base import ObjectNotFound, StorageError

from ..helpers import stored_files


async def read_all(storage: LocalStorage, key: str, start: int = 0, end: int | None = None):
    return b"".join([chunk async for chunk in storage.read(key, start, end)])


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


# -- resumable uploads: the file behind an upload id ----------------------------------------


async def body(*chunks: bytes):
    for chunk in chunks:
        yield chunk


async def test_an_upload_is_a_temporary_file_named_by_its_id(storage, tmp_path):
    key = new_storage_key()

    upload_id = await storage.start_upload(key)
    tag = await storage.upload_part(key, upload_id, 1, 0, body(b"abc", b"def"))

    assert upload_id == f"{key}.upload"
    assert tag == "6"
    assert stored_files(tmp_path) == [tmp_path / "files" / "tmp" / upload_id]

    await storage.complete_upload(key, upload_id, [tag])

    assert stored_files(tmp_path) == [tmp_path / "files" / key[:2] / key]


async def test_every_part_is_fsynced_before_its_tag_is_returned(storage, monkeypatch):
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    key = new_storage_key()
    upload_id = await storage.start_upload(key)

    await storage.upload_part(key, upload_id, 1, 0, body(b"part"))

    assert len(synced) == 1


@pytest.mark.parametrize(
    "upload_id", ["../../secret.key", "/etc/passwd", "", "{key}.part", "{other}.upload", "{key}"]
)
async def test_upload_ids_other_than_the_keys_own_never_touch_the_file_system(
    storage, tmp_path, upload_id
):
    key, other = new_storage_key(), new_storage_key()
    others_id = await storage.start_upload(other)
    upload_id = upload_id.format(key=key, other=other)

    with pytest.raises(StorageError, match="unknown upload"):
        await storage.upload_part(key, upload_id, 1, 0, body(b"x"))
    with pytest.raises(StorageError, match="unknown upload"):
        await storage.complete_upload(key, upload_id, ["1"])
    await storage.abort_upload(key, upload_id)  # not an error, and nothing removed

    assert stored_files(tmp_path) == [tmp_path / "files" / "tmp" / others_id]


async def test_a_key_that_is_not_a_portal_key_cannot_start_an_upload(storage):
    with pytest.raises(ObjectNotFound):
        await storage.start_upload("../../etc")


async def test_a_part_after_a_gap_is_refused_rather_than_filled_with_zeros(storage):
    key = new_storage_key()
    upload_id = await storage.start_upload(key)
    await storage.upload_part(key, upload_id, 1, 0, body(b"12345"))

    with pytest.raises(StorageError, match="only 5 bytes were received"):
        await storage.upload_part(key, upload_id, 3, 10, body(b"x"))


async def test_a_failed_part_is_written_over_by_its_retry(storage, tmp_path):
    key = new_storage_key()
    upload_id = await storage.start_upload(key)
    tag1 = await storage.upload_part(key, upload_id, 1, 0, body(b"12345"))

    async def broken():
        yield b"6x"
        raise ConnectionResetError

    with pytest.raises(ConnectionResetError):
        await storage.upload_part(key, upload_id, 2, 5, broken())
    tag2 = await storage.upload_part(key, upload_id, 2, 5, body(b"67890"))
    await storage.complete_upload(key, upload_id, [tag1, tag2])

    assert storage.path(key).read_bytes() == b"1234567890"


async def test_a_stalled_copy_of_a_part_ending_after_completion_leaves_the_file_whole(storage):
    key = new_storage_key()
    upload_id = await storage.start_upload(key)
    tag1 = await storage.upload_part(key, upload_id, 1, 0, body(b"12345"))
    release = asyncio.Event()

    async def stalled():  # the first try of part 2: its connection hangs, then breaks
        yield b"67"
        await release.wait()
        raise ConnectionResetError

    first_try = asyncio.create_task(storage.upload_part(key, upload_id, 2, 5, stalled()))
    await asyncio.sleep(0.01)
    tag2 = await storage.upload_part(key, upload_id, 2, 5, body(b"67890"))  # the retry
    await storage.complete_upload(key, upload_id, [tag1, tag2])
    release.set()
    with pytest.raises(ConnectionResetError):
        await first_try

    assert storage.path(key).read_bytes() == b"1234567890"


async def test_completing_with_tags_that_do_not_add_up_is_refused(storage):
    key = new_storage_key()
    upload_id = await storage.start_upload(key)
    tag = await storage.upload_part(key, upload_id, 1, 0, body(b"12345"))

    with pytest.raises(StorageError, match="add up to 10"):
        await storage.complete_upload(key, upload_id, [tag, tag])
    with pytest.raises(StorageError, match="not this backend's tags"):
        await storage.complete_upload(key, upload_id, ['"etag-of-s3"'])

    await storage.complete_upload(key, upload_id, [tag])
    assert await read_all(storage, key) == b"12345"


async def test_stored_files_and_their_folders_are_private_even_under_a_lax_umask(tmp_path):
    from ..helpers import plain_settings

    data_dir = tmp_path / "data"
    previous = os.umask(0o022)  # what a service manager or a shell commonly hands down
    try:
        storage = LocalStorage(plain_settings(data_dir), {})
        await storage.open()
        whole = await storage.writer(new_storage_key())
        await whole.write(b"confidential attachment")
        await whole.commit()
        pending = await storage.writer(new_storage_key())  # still being written
        await pending.write(b"half")
        key = new_storage_key()
        upload = await storage.start_upload(key)

        async def part():
            yield b"uploaded in parts"

        tag = await storage.upload_part(key, upload, 1, 0, part())
        await storage.complete_upload(key, upload, [tag])
        unfinished = await storage.start_upload(new_storage_key())
    finally:
        os.umask(previous)

    paths = [data_dir, *data_dir.rglob("*")]
    modes = {path: stat.S_IMODE(path.stat().st_mode) for path in paths}
    assert len([path for path in modes if path.is_file()]) == 4  # 2 stored, 2 unfinished
    assert unfinished and pending
    for path, mode in modes.items():
        assert mode == (0o700 if path.is_dir() else 0o600), f"{path}: {mode:o}"
    await pending.abort()
