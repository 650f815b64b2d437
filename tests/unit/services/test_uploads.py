"""portal.services.uploads.stream_form with the real local storage backend: files are sealed
as they stream in, and what is stored opens to exactly what was sent."""

from __future__ import annotations

import hashlib
import os
import re
import zlib
from collections.abc import AsyncIterator

import pytest
from sinetti_storage_local import LocalStorage

from portal.crypto import storage as sealed
from portal.crypto.segments import cipher_size
from portal.services import uploads
from portal.services.uploads import UploadRejected, stream_form

from ..helpers import multipart, plain_settings, stored_files

CSRF = "the-sessions-csrf-token"


def csrf_ok(value: str) -> bool:
    return value == CSRF


async def chunked(body: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


DATA_KEY = bytes(range(32))
SETTINGS = plain_settings("data")  # the default file policy: programs and scripts refused


async def read_back(storage: LocalStorage, stored: uploads.StoredFile) -> bytes:
    assert stored.crypto_header is not None
    reading = sealed.read_plain(
        storage,
        stored.storage_key,
        header=stored.crypto_header,
        data_key=DATA_KEY,
        size=stored.size,
    )
    return b"".join([chunk async for chunk in reading])


async def parse(storage, body: bytes, content_type: str, *, budget=10_000_000, chunk=65536):
    return await stream_form(
        chunked(body, chunk), content_type, storage, DATA_KEY, budget, csrf_ok, settings=SETTINGS
    )


@pytest.mark.parametrize(
    ("chunk", "size"), [(1, 3000), (7, 70_000), (4096, 70_000), (1 << 20, 70_000)]
)
async def test_files_are_streamed_to_storage_with_their_checksums(storage, tmp_path, chunk, size):
    first = os.urandom(size)
    second = b"line one\r\n--not-a-boundary\r\nline two\n" * 50
    body, content_type = multipart(
        [("csrf_token", CSRF), ("subject", "Hakemus"), ("body", "Hei\r\nmaailma")],
        [("attachments", "liite.pdf", first), ("attachments", "muistio.txt", second)],
    )

    parsed = await parse(storage, body, content_type, chunk=chunk)

    assert parsed.fields == {"csrf_token": CSRF, "subject": "Hakemus", "body": "Hei\r\nmaailma"}
    assert [f.filename for f in parsed.files] == ["liite.pdf", "muistio.txt"]
    for stored, content in zip(parsed.files, [first, second], strict=True):
        assert stored.size == len(content)
        assert stored.sha256 == hashlib.sha256(content).hexdigest()
        assert stored.crc32 == zlib.crc32(content)
        assert stored.content_type == "application/octet-stream"
        assert await read_back(storage, stored) == content
    assert len(stored_files(tmp_path)) == 2


async def test_storage_key_is_random_and_never_the_file_name(storage, tmp_path):
    body, content_type = multipart(
        [("csrf_token", CSRF)], [("attachments", "../../../etc/passwd", b"root:x:0:0")]
    )

    parsed = await parse(storage, body, content_type)

    (stored,) = parsed.files
    assert re.fullmatch(r"[0-9a-f]{40}", stored.storage_key)
    assert stored.filename == "../../../etc/passwd"  # kept for display only
    (path,) = stored_files(tmp_path)
    assert path.name == stored.storage_key
    assert path.is_relative_to(tmp_path / "files")


async def test_empty_file_input_stores_nothing(storage, tmp_path):
    body, content_type = multipart([("csrf_token", CSRF)], [("attachments", "", b"")])

    parsed = await parse(storage, body, content_type)

    assert parsed.files == []
    assert stored_files(tmp_path) == []


async def test_a_chosen_empty_file_is_kept_as_an_empty_attachment(storage):
    body, content_type = multipart([("csrf_token", CSRF)], [("attachments", "tyhja.txt", b"")])

    parsed = await parse(storage, body, content_type)

    (stored,) = parsed.files
    assert (stored.filename, stored.size, stored.crc32) == ("tyhja.txt", 0, 0)
    assert stored.sha256 == hashlib.sha256(b"").hexdigest()
    assert await read_back(storage, stored) == b""


async def test_an_empty_file_before_the_csrf_field_is_refused(storage, tmp_path):
    body, content_type = multipart(
        [("csrf_token", CSRF)], [("attachments", "tyhja.txt", b"")], files_first=True
    )

    with pytest.raises(UploadRejected, match="csrf"):
        await parse(storage, body, content_type)

    assert stored_files(tmp_path) == []


async def test_missing_csrf_field_is_refused_and_nothing_stored(storage, tmp_path):
    body, content_type = multipart([("subject", "x")], [("attachments", "a.txt", b"data")])

    with pytest.raises(UploadRejected) as rejected:
        await parse(storage, body, content_type)

    assert rejected.value.reason == "csrf"
    assert stored_files(tmp_path) == []


async def test_wrong_csrf_token_is_refused_and_nothing_stored(storage, tmp_path):
    body, content_type = multipart([("csrf_token", "forged")], [("attachments", "a.txt", b"data")])

    with pytest.raises(UploadRejected, match="csrf"):
        await parse(storage, body, content_type)

    assert stored_files(tmp_path) == []


async def test_csrf_field_after_a_file_is_refused_before_storing_a_byte(
    storage, tmp_path, monkeypatch
):
    writers: list[str] = []
    original = storage.writer

    async def spy(key: str):
        writers.append(key)
        return await original(key)

    monkeypatch.setattr(storage, "writer", spy)
    body, content_type = multipart(
        [("csrf_token", CSRF)], [("attachments", "a.bin", b"x" * 10_000)], files_first=True
    )

    with pytest.raises(UploadRejected, match="csrf"):
        await parse(storage, body, content_type)

    assert writers == []
    assert stored_files(tmp_path) == []


@pytest.mark.parametrize("chunk", [1000, 1 << 20])
async def test_crossing_the_budget_mid_stream_keeps_nothing(storage, tmp_path, chunk):
    body, content_type = multipart(
        [("csrf_token", CSRF)],
        [("attachments", "first.bin", b"a" * 6000), ("attachments", "second.bin", b"b" * 6000)],
    )

    with pytest.raises(UploadRejected) as rejected:
        await parse(storage, body, content_type, budget=10_000, chunk=chunk)

    assert rejected.value.reason == "too-large"
    assert stored_files(tmp_path) == []


async def test_exactly_the_budget_is_accepted(storage):
    body, content_type = multipart([("csrf_token", CSRF)], [("attachments", "a", b"z" * 5000)])

    parsed = await parse(storage, body, content_type, budget=5000)

    assert parsed.files[0].size == 5000


async def test_budget_is_checked_before_the_body_ends(storage):
    """A client sending more than the budget is stopped while sending, not after."""
    body, content_type = multipart(
        [("csrf_token", CSRF)], [("attachments", "big.bin", b"q" * 200_000)]
    )
    consumed = 0

    async def counting() -> AsyncIterator[bytes]:
        nonlocal consumed
        async for piece in chunked(body, 1000):
            consumed += len(piece)
            yield piece

    with pytest.raises(UploadRejected, match="too-large"):
        await stream_form(
            counting(), content_type, storage, DATA_KEY, 10_000, csrf_ok, settings=SETTINGS
        )

    assert consumed < 20_000


@pytest.mark.parametrize(
    "content_type",
    [
        "application/x-www-form-urlencoded",
        "multipart/form-data",
        "multipart/form-data; boundary=" + "x" * 201,
        "text/plain; boundary=abc",
        "",
    ],
)
async def test_body_that_is_not_multipart_is_refused(storage, content_type):
    with pytest.raises(UploadRejected, match="malformed"):
        await parse(storage, b"csrf_token=x", content_type)


async def test_truncated_body_is_refused_and_the_partial_file_removed(storage, tmp_path):
    body, content_type = multipart(
        [("csrf_token", CSRF)],
        [("attachments", "done.bin", b"1" * 5000), ("attachments", "cut.bin", b"2" * 50_000)],
    )
    truncated = body[: len(body) - 20_000]

    with pytest.raises(UploadRejected, match="malformed"):
        await parse(storage, truncated, content_type, chunk=4096)

    assert stored_files(tmp_path) == []


async def test_garbage_body_is_refused(storage, tmp_path):
    _body, content_type = multipart([("csrf_token", CSRF)])

    with pytest.raises(UploadRejected, match=r"malformed|csrf"):
        await parse(storage, os.urandom(5000), content_type)

    assert stored_files(tmp_path) == []


async def test_oversized_text_field_is_refused(storage, tmp_path):
    body, content_type = multipart(
        [("csrf_token", CSRF), ("body", "x" * (uploads.MAX_FIELD_BYTES + 1))]
    )

    with pytest.raises(UploadRejected, match="malformed"):
        await parse(storage, body, content_type)


async def test_too_many_parts_are_refused(storage, tmp_path):
    fields = [("csrf_token", CSRF)] + [(f"f{i}", "v") for i in range(uploads.MAX_PARTS + 1)]
    body, content_type = multipart(fields)

    with pytest.raises(UploadRejected, match="malformed"):
        await parse(storage, body, content_type)


async def test_storage_failure_mid_upload_removes_what_this_request_stored(
    storage, tmp_path, monkeypatch
):
    from portal.storage.base import StorageError

    calls = 0
    original = storage.writer

    async def failing_second(key: str):
        nonlocal calls
        calls += 1
        if calls == 2:
            raise StorageError("disk full")
        return await original(key)

    monkeypatch.setattr(storage, "writer", failing_second)
    body, content_type = multipart(
        [("csrf_token", CSRF)],
        [("attachments", "one.bin", b"1" * 100), ("attachments", "two.bin", b"2" * 100)],
    )

    with pytest.raises(StorageError):
        await parse(storage, body, content_type)

    assert stored_files(tmp_path) == []


async def test_what_is_stored_is_sealed_never_the_plaintext(storage):
    marker = b"SINETTI-MARKER-confidential " * 5000  # spans several segments
    body, content_type = multipart([("csrf_token", CSRF)], [("attachments", "a.txt", marker)])

    (stored,) = (await parse(storage, body, content_type)).files

    raw = b"".join([chunk async for chunk in storage.read(stored.storage_key)])
    assert b"SINETTI-MARKER" not in raw
    assert len(raw) == cipher_size(len(marker))
    assert await read_back(storage, stored) == marker


async def test_without_a_data_key_only_the_fields_before_a_file_are_read(storage, tmp_path):
    body, content_type = multipart(
        [("csrf_token", CSRF), ("subject", "Hakemus")], [("attachments", "tyhja.txt", b"")]
    )

    with pytest.raises(UploadRejected) as refused:
        await stream_form(
            chunked(body, 4096), content_type, storage, None, 0, csrf_ok, settings=SETTINGS
        )

    assert refused.value.fields == {"subject": "Hakemus"}
    assert stored_files(tmp_path) == []


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("ohjelma.exe", b"%PDF-1.7 looks like a document"),  # refused by its name
        ("Asennus.MSI", b"anything"),
        ("raportti.pdf", b"MZ\x90\x00\x03" + b"\x00" * 400),  # a Windows program named .pdf
        ("muistio.txt", b"\x7fELF\x02\x01\x01" + b"\x00" * 400),  # a Linux program
        ("ohje.txt", b"#!/bin/sh\nrm -rf ~\n"),  # a script, shorter than the head
    ],
)
@pytest.mark.parametrize("chunk", [1, 4096])
async def test_a_program_or_script_is_refused_by_name_or_bytes_and_nothing_kept(
    storage, tmp_path, name, content, chunk
):
    body, content_type = multipart(
        [("csrf_token", CSRF), ("subject", "Hakemus")],
        [("attachments", "ok.txt", b"fine " * 100), ("attachments", name, content)],
    )

    with pytest.raises(UploadRejected) as refused:
        await parse(storage, body, content_type, chunk=chunk)

    assert refused.value.reason == "file-type"
    assert refused.value.refused_file is not None
    assert (refused.value.refused_file.filename, refused.value.refused_file.reason) == (
        name,
        "program",
    )
    assert refused.value.fields == {"subject": "Hakemus"}
    assert stored_files(tmp_path) == []


async def test_with_an_allowed_list_only_those_types_pass(storage):
    only_pdf = plain_settings("data", allowed_file_types=".PDF, docx")
    body, content_type = multipart(
        [("csrf_token", CSRF)],
        [("attachments", "a.pdf", b"%PDF-1.7"), ("attachments", "b.odt", b"PK\x03\x04")],
    )

    with pytest.raises(UploadRejected) as refused:
        await stream_form(
            chunked(body, 4096), content_type, storage, DATA_KEY, 10_000, csrf_ok, settings=only_pdf
        )

    assert refused.value.refused_file is not None
    assert refused.value.refused_file.reason == "not-allowed"
    assert refused.value.refused_file.filename == "b.odt"
