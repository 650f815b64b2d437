"""The format of an encrypted stored file: AES-256-GCM in fixed-size segments.

A stored file is the plaintext cut into segments of ``SEGMENT`` bytes (the last one shorter,
or empty for an empty file), each encrypted on its own with a 16-byte tag. Its header, which
is not secret, is kept in the file's database row (so every segment, and every part of a
resumable upload, has a fixed place in the stored object)::

    header   = b"SNS1" | salt (16 bytes) | nonce prefix (7 bytes)
    key      = HKDF-SHA256(data key, salt, info = b"sinetti segments 1" | context)
    nonce_i  = nonce prefix | i as 4 bytes big-endian | 1 if segment i is the last, else 0
    segment_i = AES-256-GCM(key, nonce_i, plaintext_i)     (ciphertext and tag)

This is the STREAM construction (Hoang, Reyhanitabar, Rogaway, Vizár 2015) as age and Tink's
streaming AEAD use it: the segment's index and the last-segment flag are in its nonce, so a
segment moved to another place, segments reordered, or a file cut after a whole segment all
fail to decrypt; the random salt gives every file a key of its own, and ``context`` (the
file's storage key) binds the file to its name, so two files of one message cannot be
swapped. Any byte range of the plaintext can be read by decrypting only the segments that
hold it (:func:`cipher_span`), which is what an HTTP Range request needs.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import struct
from collections.abc import AsyncIterable, AsyncIterator, Callable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

MAGIC = b"SNS1"
SALT = 16
NONCE_PREFIX = 7
HEADER = len(MAGIC) + SALT + NONCE_PREFIX
SEGMENT = 64 * 1024  # plaintext bytes per segment
TAG = 16
#: Segments sealed together, in a worker thread (see :func:`run_segments`): 512 KiB, so the
#: hand-off to the thread costs little against the work.
BATCH = 8
#: Plaintext that :meth:`Opener.stream` hands on at once (about: a stored chunk's more at most).
PART = 1024 * 1024
KEY = 32  # AES-256
_INFO = b"sinetti segments 1"

#: What is sealed and opened: a run is read through a ``memoryview`` (no copy) and written
#: into one new ``bytearray``, which the storage writes as it is.
Bytes = bytes | bytearray | memoryview


class Tampered(ValueError):
    """The stored bytes are not what was encrypted: changed, cut, reordered or swapped."""


def cipher_size(plain_size: int) -> int:
    """The stored size of a file of ``plain_size`` bytes."""
    segments = max(1, -(-plain_size // SEGMENT))
    return plain_size + segments * TAG


def plain_size(stored_size: int) -> int:
    """The plaintext size of a stored file of ``stored_size`` bytes (:func:`cipher_size`
    inverted); a size no encryption can give raises :class:`Tampered`."""
    full, rest = divmod(stored_size, SEGMENT + TAG)
    # The last segment is the ``rest`` (at least a tag), or a whole one when nothing is left.
    size = full * SEGMENT + (rest - TAG if rest else 0)
    if stored_size < TAG or 0 < rest < TAG or cipher_size(size) != stored_size:
        raise Tampered(f"a stored file of {stored_size} bytes cannot be an encrypted one")
    return size


@dataclasses.dataclass(frozen=True)
class Span:
    """Where plaintext bytes ``start``..``end`` (exclusive) lie in the stored file: the stored
    bytes ``stored_start``..``stored_end`` (exclusive) hold segments ``first``..``last``."""

    first: int
    last: int
    stored_start: int
    stored_end: int
    skip: int  # plaintext bytes of segment ``first`` before ``start``
    length: int  # plaintext bytes wanted


def cipher_span(start: int, end: int, size: int) -> Span:
    """The segments that hold plaintext ``start``..``end`` (exclusive) of a file of ``size``."""
    if not 0 <= start <= end <= size:
        raise ValueError(f"range {start}..{end} is not within 0..{size}")
    last_segment = max(0, -(-size // SEGMENT) - 1)
    first = min(start // SEGMENT, last_segment)
    last = min(max(end - 1, start) // SEGMENT, last_segment)
    stored_end = min((last + 1) * (SEGMENT + TAG), cipher_size(size))
    return Span(
        first=first,
        last=last,
        stored_start=first * (SEGMENT + TAG),
        stored_end=stored_end,
        skip=start - first * SEGMENT,
        length=end - start,
    )


def _derive(data_key: bytes, salt: bytes, context: bytes) -> AESGCM:
    if len(data_key) != KEY:
        raise ValueError("the data key must be 32 bytes")
    key = HKDF(algorithm=hashes.SHA256(), length=KEY, salt=salt, info=_INFO + context)
    return AESGCM(key.derive(data_key))


def _nonce(prefix: bytes, index: int, last: bool) -> bytes:
    return prefix + struct.pack(">IB", index, 1 if last else 0)


def new_header() -> bytes:
    """A new file's header: the magic, a random salt and a random nonce prefix."""
    return MAGIC + os.urandom(SALT) + os.urandom(NONCE_PREFIX)


class Sealer:
    """Encrypts one file's segments; its :attr:`header` (new and random unless given: a
    resumable upload gives the one it stored) goes into the file's row."""

    def __init__(self, data_key: bytes, context: bytes, header: bytes | None = None) -> None:
        self.header = header or new_header()
        salt, self._prefix = _parse_header(self.header)
        self._aead = _derive(data_key, salt, context)

    def seal(self, index: int, plaintext: bytes, last: bool) -> bytes:
        if len(plaintext) > SEGMENT or (not last and len(plaintext) != SEGMENT):
            raise ValueError("every segment but the last is exactly SEGMENT bytes")
        return self._aead.encrypt(_nonce(self._prefix, index, last), plaintext, None)

    def seal_run(self, first: int, plaintext: Bytes) -> bytearray:
        """Segments ``first``, ``first + 1``, … of whole-segment ``plaintext``, none the last,
        sealed into one new buffer."""
        segments = _cut(plaintext, SEGMENT)
        out = bytearray(len(segments) * (SEGMENT + TAG))
        for n, segment, place in _places(segments, memoryview(out), SEGMENT + TAG):
            self._aead.encrypt_into(_nonce(self._prefix, first + n, False), segment, None, place)
        return out

    async def stream(
        self, chunks: AsyncIterable[bytes], offset: int = 0, size: int | None = None
    ) -> AsyncIterator[bytes | bytearray]:
        """The stored bytes for the plaintext ``chunks`` (of any sizes) that start at
        ``offset`` (a multiple of ``SEGMENT``) of a file of ``size`` bytes (None: unknown, the
        file ends where the chunks end), sealed :data:`BATCH` segments at a time once they
        are there. Chunks that stop inside a segment short of ``size`` leave that segment
        out: the caller counts the bytes, refuses a short part and takes it again whole."""
        if offset % SEGMENT:
            raise ValueError("a stream starts at a segment boundary")
        index, pending, at = offset // SEGMENT, bytearray(), offset

        def sealable() -> int:
            # A whole segment is the last only if the file ends with it: with a known size
            # that is decided now, else only when a further byte (or the end) shows it.
            if size is None:
                return max(0, (len(pending) - 1) // SEGMENT)
            return min(len(pending) // SEGMENT, max(0, -(-(size - at) // SEGMENT) - 1))

        async def seal_now(count: int) -> bytearray:
            nonlocal index, at, pending
            run, pending = split(pending, count * SEGMENT)
            sealed = await run_segments(self.seal_run, index, run)
            index, at = index + count, at + count * SEGMENT
            return sealed

        async for chunk in chunks:
            pending += chunk
            if (count := sealable()) >= BATCH:
                yield await seal_now(count)
        if count := sealable():
            yield await seal_now(count)
        if size is None or at + len(pending) == size:
            yield self.seal(index, bytes(pending), last=True)


class Opener:
    """Decrypts the segments of one stored file, given its header."""

    def __init__(self, data_key: bytes, context: bytes, header: bytes) -> None:
        salt, self._prefix = _parse_header(header)
        self._aead = _derive(data_key, salt, context)

    def open(self, index: int, sealed: bytes, last: bool) -> bytes:
        try:
            return self._aead.decrypt(_nonce(self._prefix, index, last), sealed, None)
        except InvalidTag:
            raise Tampered(f"segment {index} does not decrypt") from None

    def open_segments(self, first: int, segments: list[memoryview], into: memoryview) -> None:
        """Open the whole segments ``first``, ``first + 1``, … (none the last), wherever each
        lies, one after the other into ``into``."""
        for n, segment, place in _places(segments, into, SEGMENT):
            try:
                self._aead.decrypt_into(
                    _nonce(self._prefix, first + n, False), segment, None, place
                )
            except InvalidTag:
                raise Tampered(f"segment {first + n} does not decrypt") from None

    async def stream(
        self, stored: AsyncIterable[bytes], span: Span, size: int
    ) -> AsyncIterator[bytes]:
        """The wanted plaintext of ``span`` from ``stored``: the stored bytes
        ``span.stored_start``..``span.stored_end`` (in chunks of any sizes) of a file whose
        plaintext is ``size`` bytes long, opened as they come (:func:`whole_segments`).

        In the event loop, not a worker thread: measured (``make bench``), a download ran
        faster so. A thread's hand-off, and the GIL passed back and forth, cost more than
        opening a chunk (~0.1 ms); opening the next chunk in a thread while the part before
        went out ran slower still.

        The segments of several chunks are opened one after the other into one buffer, used
        again all along, and handed on as one part of about :data:`PART` bytes (a copy: bytes,
        as the server sends). So the server sends few parts, and no buffer is allocated and
        zeroed anew."""
        last_segment = max(0, -(-size // SEGMENT) - 1)
        index, rest = span.first, bytearray()
        out, filled = bytearray(PART), 0
        skip, wanted = span.skip, span.length
        step = SEGMENT + TAG

        def take() -> bytes:
            """The wanted bytes of what the buffer holds, copied out; the buffer is empty."""
            nonlocal skip, wanted, filled
            part = bytes(memoryview(out)[skip : min(skip + wanted, filled)])
            skip, wanted, filled = 0, wanted - len(part), 0
            return part

        async for runs in whole_segments(stored, step):
            segments = [segment for run in runs for segment in _cut(run, step, whole=False)]
            whole = sum(1 for segment in segments if len(segment) == step)
            count = max(0, min(whole, last_segment - index))
            if count:
                if len(out) < filled + count * SEGMENT:
                    out += bytes(filled + count * SEGMENT - len(out))
                self.open_segments(index, segments[:count], memoryview(out)[filled:])
                index, filled = index + count, filled + count * SEGMENT
                if filled >= PART and (part := take()):
                    yield part
            for segment in segments[count:]:
                rest += segment  # the last segment: opened below
        if filled and (part := take()):
            yield part
        if index <= span.last:
            if index != last_segment:
                raise Tampered("the stored file ends before its last segment")
            plaintext = self.open(index, bytes(rest), last=True)
            part = plaintext[skip : skip + wanted]
            skip, wanted = 0, wanted - len(part)
            rest.clear()
            if part:
                yield part
        if rest or wanted:
            raise Tampered("the stored file is longer or shorter than its segments")


async def whole_segments(
    chunks: AsyncIterable[Bytes], step: int
) -> AsyncIterator[list[memoryview]]:
    """``chunks`` (of any sizes) as runs of whole segments of ``step`` bytes, per chunk: the
    segment split between it and the one before put together (copied), and the segments that
    lie within it (a view of it: not copied). What is left at the end (a shorter last
    segment) comes last."""
    pending = bytearray()
    async for chunk in chunks:
        view, runs = memoryview(chunk), []
        if pending:
            fill = min(step - len(pending), len(view))
            pending += view[:fill]
            view = view[fill:]
            if len(pending) == step:
                runs.append(memoryview(pending))
                pending = bytearray()
        whole = len(view) // step * step
        if whole:
            runs.append(view[:whole])
        pending += view[whole:]
        if runs:
            yield runs
    if pending:
        yield [memoryview(pending)]


async def run_segments(
    work: Callable[[int, Bytes], bytearray], first: int, data: Bytes
) -> bytearray:
    """``work(first, data)`` (a run of segments sealed), in a worker thread when ``data`` is
    big: AES-GCM releases the GIL, so the event loop keeps receiving meanwhile (and a second
    core can help)."""
    if len(data) >= BATCH * SEGMENT:
        return await asyncio.to_thread(work, first, data)
    return work(first, data)


def split(buffer: bytearray, length: int) -> tuple[memoryview, bytearray]:
    """The first ``length`` bytes of ``buffer`` (a view: not copied) and a new buffer with
    the rest (copied: the bytes after the last whole segment, a small piece)."""
    return memoryview(buffer)[:length], buffer[length:]


def _cut(run: Bytes, step: int, *, whole: bool = True) -> list[memoryview]:
    """``run`` as views of its segments of ``step`` bytes (the last may be shorter unless
    ``whole``)."""
    view = memoryview(run)
    if whole and len(view) % step:
        raise ValueError("a run holds whole segments only")
    return [view[at : at + step] for at in range(0, len(view), step)]


def _places(
    segments: list[memoryview], target: memoryview, step_out: int
) -> list[tuple[int, memoryview, memoryview]]:
    """For each of ``segments``, which become ``step_out`` bytes each in ``target`` one after
    the other: its number in the run, its bytes and its place in ``target``."""
    return [
        (n, segment, target[n * step_out : (n + 1) * step_out])
        for n, segment in enumerate(segments)
    ]


def _parse_header(header: bytes) -> tuple[bytes, bytes]:
    if len(header) != HEADER or not header.startswith(MAGIC):
        raise Tampered("not an encrypted file of this format")
    return header[len(MAGIC) : len(MAGIC) + SALT], header[len(MAGIC) + SALT :]
