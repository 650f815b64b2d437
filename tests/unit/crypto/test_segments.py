"""portal.crypto.segments: the stored-file format round-trips for every size and every range,
and any change to the stored bytes (a flipped bit, a cut, segments reordered or moved between
files, a file swapped for another of the same message) fails to decrypt."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portal.crypto import segments
from portal.crypto.segments import HEADER, SEGMENT, TAG, Opener, Sealer, Tampered

KEY = bytes(range(32))
CONTEXT = b"attachments/ab/abcdef"
#: Sizes around the segment boundaries, where off-by-one mistakes live.
EDGES = [0, 1, SEGMENT - 1, SEGMENT, SEGMENT + 1, 2 * SEGMENT, 3 * SEGMENT - 1, 3 * SEGMENT + 7]


async def _chunks(data: bytes, size: int) -> AsyncIterator[bytes]:
    for at in range(0, len(data), size):
        yield data[at : at + size]


async def _collect(chunks: AsyncIterator[bytes]) -> bytes:
    return b"".join([chunk async for chunk in chunks])


async def seal(plaintext: bytes, chunk: int = 10_000, context: bytes = CONTEXT) -> bytes:
    """The header (as the row keeps it) and the stored segments, joined for the tests."""
    sealer = Sealer(KEY, context)
    return sealer.header + await _collect(sealer.stream(_chunks(plaintext, chunk or 1)))


async def read(
    stored: bytes,
    size: int,
    start: int = 0,
    end: int | None = None,
    chunk: int = 7_000,
    context: bytes = CONTEXT,
) -> bytes:
    """Plaintext ``start``..``end`` as a download reads it: only the span's stored bytes."""
    end = size if end is None else end
    span = segments.cipher_span(start, end, size)
    opener = Opener(KEY, context, stored[:HEADER])
    part = stored[HEADER + span.stored_start : HEADER + span.stored_end]
    return await _collect(opener.stream(_chunks(part, chunk), span, size))


@pytest.mark.parametrize("size", EDGES)
async def test_every_size_round_trips_and_has_the_predicted_stored_size(size):
    plaintext = os.urandom(size)
    stored = await seal(plaintext)
    assert len(stored) == HEADER + segments.cipher_size(size)
    assert segments.plain_size(len(stored) - HEADER) == size
    assert await read(stored, size) == plaintext
    assert size < 16 or plaintext[:16] not in stored  # (a byte or two may recur by chance)


@settings(max_examples=60, deadline=None)
@given(
    size=st.sampled_from(EDGES[1:]) | st.integers(1, 4 * SEGMENT),
    data=st.data(),
    chunk=st.integers(1, 3 * SEGMENT),
)
async def test_any_range_reads_exactly_its_bytes_from_its_segments_only(size, data, chunk):
    plaintext = os.urandom(size)
    stored = await seal(plaintext, chunk)
    start = data.draw(st.integers(0, size))
    end = data.draw(st.integers(start, size))
    span = segments.cipher_span(start, end, size)
    assert span.stored_end - span.stored_start <= (span.last - span.first + 1) * (SEGMENT + TAG)
    assert await read(stored, size, start, end, chunk) == plaintext[start:end]


@pytest.mark.parametrize("start", [SEGMENT - 1, SEGMENT, SEGMENT + 1, 2 * SEGMENT])
async def test_a_range_at_a_segment_boundary_decrypts_one_or_two_segments(start):
    size = 3 * SEGMENT + 5
    plaintext = os.urandom(size)
    stored = await seal(plaintext)
    span = segments.cipher_span(start, start + 2, size)
    assert span.last - span.first == (1 if start % SEGMENT == SEGMENT - 1 else 0)
    assert await read(stored, size, start, start + 2) == plaintext[start : start + 2]


def _segments_of(stored: bytes) -> list[bytes]:
    body = stored[HEADER:]
    return [body[at : at + SEGMENT + TAG] for at in range(0, len(body), SEGMENT + TAG)]


def _joined(header: bytes, parts: Iterable[bytes]) -> bytes:
    return header + b"".join(parts)


async def _fails(stored: bytes, size: int, **kwargs: object) -> None:
    with pytest.raises(Tampered):
        await read(stored, size, **kwargs)  # type: ignore[arg-type]


async def test_a_flipped_bit_anywhere_fails():
    size = 2 * SEGMENT + 100
    stored = await seal(os.urandom(size))
    for at in (HEADER - 1, HEADER, HEADER + SEGMENT + 3, len(stored) - 1):
        changed = bytearray(stored)
        changed[at] ^= 0x01
        await _fails(bytes(changed), size)


async def test_a_file_cut_after_a_whole_segment_fails_even_with_the_size_it_would_have():
    size = 3 * SEGMENT
    stored = await seal(os.urandom(size))
    cut = stored[: HEADER + 2 * (SEGMENT + TAG)]
    # The cut is a valid-looking stored size, but its new last segment was not sealed as last.
    assert segments.plain_size(len(cut) - HEADER) == 2 * SEGMENT
    await _fails(cut, 2 * SEGMENT)
    await _fails(cut, size)


async def test_reordered_segments_fail():
    size = 3 * SEGMENT + 1
    stored = await seal(os.urandom(size))
    first, second, *rest = _segments_of(stored)
    await _fails(_joined(stored[:HEADER], [second, first, *rest]), size)


async def test_a_segment_moved_from_another_file_fails():
    size = 2 * SEGMENT + 1
    one, other = await seal(os.urandom(size)), await seal(os.urandom(size))
    mixed = _segments_of(one)
    mixed[1] = _segments_of(other)[1]
    await _fails(_joined(one[:HEADER], mixed), size)


async def test_a_file_swapped_for_another_of_the_same_key_fails_under_the_other_name():
    size = 1000
    stored = await seal(os.urandom(size), context=b"attachments/aa/first")
    await _fails(stored, size, context=b"attachments/bb/second")


async def test_a_wrong_data_key_fails():
    size = 500
    stored = await seal(os.urandom(size))
    span = segments.cipher_span(0, size, size)
    opener = Opener(os.urandom(32), CONTEXT, stored[:HEADER])
    with pytest.raises(Tampered):
        await _collect(opener.stream(_chunks(stored[HEADER:], 100), span, size))


@pytest.mark.parametrize("stored_size", [0, TAG - 1, SEGMENT + TAG + 3])
def test_a_stored_size_no_encryption_gives_is_refused(stored_size):
    with pytest.raises(Tampered):
        segments.plain_size(stored_size)


def test_a_header_of_another_format_is_refused():
    with pytest.raises(Tampered):
        Opener(KEY, CONTEXT, b"PK\x03\x04" + bytes(HEADER - 4))


def test_every_file_gets_its_own_salt_and_nonce_prefix():
    headers = {Sealer(KEY, CONTEXT).header for _ in range(100)}
    assert len(headers) == 100


@pytest.mark.parametrize("size", [1, SEGMENT, 2 * SEGMENT + 5, 5 * SEGMENT])
@pytest.mark.parametrize("part", [SEGMENT, 2 * SEGMENT])
async def test_parts_sealed_on_their_own_make_the_same_file_as_one_stream(size, part):
    plaintext = os.urandom(size)
    sealer = Sealer(KEY, CONTEXT)
    parts = [
        await _collect(sealer.stream(_chunks(plaintext[at : at + part], 1000), at, size))
        for at in range(0, size, part)
    ]
    stored = b"".join(parts)
    assert all(len(one) == len(parts[0]) for one in parts[:-1]), "parts have fixed places"
    assert len(stored) == segments.cipher_size(size)
    assert await read(sealer.header + stored, size) == plaintext
    assert await read(sealer.header + stored, size, size - 1, size) == plaintext[-1:]


async def test_a_part_stream_must_start_at_a_segment():
    with pytest.raises(ValueError):
        await _collect(Sealer(KEY, CONTEXT).stream(_chunks(b"x", 1), 1, 10))


async def test_chunks_that_stop_inside_a_segment_short_of_the_end_leave_it_out():
    sealer = Sealer(KEY, CONTEXT)

    async def short() -> AsyncIterator[bytes]:
        yield b"x" * (SEGMENT + 100)  # a part of a 3-segment file, cut short

    stored = [piece async for piece in sealer.stream(short(), 0, 3 * SEGMENT)]

    assert stored == [sealer.seal(0, b"x" * SEGMENT, False)]
