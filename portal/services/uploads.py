"""Stream a multipart/form-data body: text fields into memory, files into storage.

Files are written to the storage backend as they arrive (python-multipart's streaming parser)
under random keys, sealed with the draft's data key (:mod:`portal.crypto.storage`); their
SHA-256 and CRC-32 (of the plaintext) are computed on the way. The byte budget is checked
as bytes arrive; crossing it, a CSRF failure or a broken body removes everything this request
stored and raises.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import secrets
from collections.abc import AsyncIterable, Callable
from typing import Any

from python_multipart.multipart import MultipartParser, parse_options_header

from portal.config import Settings
from portal.crypto import storage as sealed
from portal.models import Upload
from portal.security import CSRF_FIELD
from portal.services import checksums, file_policy
from portal.storage.base import StorageBackend, StorageError

log = logging.getLogger(__name__)

MAX_FIELD_BYTES = 1024 * 1024
MAX_PARTS = 1000


class UploadRejected(Exception):
    """The body cannot be accepted. ``reason``: ``too-large`` (the message limit), ``quota``
    (the sender's limit for unsent drafts), ``csrf``, ``malformed`` or ``file-type`` (a file
    the policy refuses: ``refused_file`` says which and why)."""

    def __init__(self, reason: str, refused_file: file_policy.FileRefused | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.refused_file = refused_file
        #: The text fields read before the body was refused, so the form can show them again.
        self.fields: dict[str, str] = {}


class StorageFailed(StorageError):
    """Storing a file of the body failed (a full disk, storage down); ``fields`` are the text
    fields read before, so the form can show them again."""

    def __init__(self, message: str, fields: dict[str, str]) -> None:
        super().__init__(message)
        self.fields = fields


@dataclasses.dataclass(frozen=True)
class StoredFile:
    filename: str
    content_type: str
    storage_key: str
    size: int
    crc32: int
    sha256: str
    #: The segment header of the stored file (None: stored as it came, see stored_files).
    crypto_header: bytes | None = None


@dataclasses.dataclass
class ParsedForm:
    fields: dict[str, str]
    files: list[StoredFile]


def new_storage_key() -> str:
    return secrets.token_hex(20)


def _text(raw: bytes) -> str:
    """A field's bytes as text: invalid UTF-8 refuses the form (never silently replaced)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise UploadRejected("malformed") from None


class _Part:
    def __init__(self) -> None:
        self.headers: dict[bytes, bytes] = {}
        self.name = ""
        self.filename: str | None = None
        self.content_type = "application/octet-stream"
        self.buffer = bytearray()
        self.writer: sealed.SealingWriter | None = None
        self.key = ""
        self.size = 0
        self.crc = 0
        self.sha = hashlib.sha256()
        self.head: file_policy.HeadCheck | None = None


class _Streamer:
    def __init__(
        self,
        settings: Settings,
        storage: StorageBackend,
        data_key: bytes | None,
        budget: int,
        csrf_ok: Callable[[str], bool],
    ) -> None:
        self.settings = settings
        self.storage = storage
        self.data_key = data_key
        self.budget = budget
        self.csrf_ok = csrf_ok
        self.csrf_checked = False
        self.events: list[tuple[str, Any]] = []
        self.part: _Part | None = None
        self.header_field = bytearray()
        self.header_value = bytearray()
        self.fields: dict[str, str] = {}
        self.files: list[StoredFile] = []
        self.received = 0
        self.parts = 0

    # -- synchronous parser callbacks: record only ------------------------------------
    def callbacks(self) -> dict[str, Callable[..., None]]:
        def data_of(kind: str) -> Callable[[bytes, int, int], None]:
            return lambda data, start, end: self.events.append((kind, data[start:end]))

        return {
            "on_part_begin": lambda: self.events.append(("begin", None)),
            "on_header_field": data_of("hfield"),
            "on_header_value": data_of("hvalue"),
            "on_header_end": lambda: self.events.append(("hend", None)),
            "on_headers_finished": lambda: self.events.append(("hdone", None)),
            "on_part_data": data_of("data"),
            "on_part_end": lambda: self.events.append(("end", None)),
        }

    # -- asynchronous processing --------------------------------------------------------
    async def drain(self) -> None:
        events, self.events = self.events, []
        for kind, value in events:
            await self._handle(kind, value)

    async def _handle(self, kind: str, value: Any) -> None:
        if kind == "begin":
            self.parts += 1
            if self.parts > MAX_PARTS:
                raise UploadRejected("malformed")
            self.part = _Part()
        elif self.part is None:
            raise UploadRejected("malformed")
        elif kind == "hfield":
            self.header_field += value
        elif kind == "hvalue":
            self.header_value += value
        elif kind == "hend":
            self.part.headers[bytes(self.header_field).lower()] = bytes(self.header_value)
            self.header_field.clear()
            self.header_value.clear()
        elif kind == "hdone":
            await self._start_part(self.part)
        elif kind == "data":
            await self._part_data(self.part, value)
        elif kind == "end":
            await self._end_part(self.part)
            self.part = None

    async def _start_part(self, part: _Part) -> None:
        _disposition, options = parse_options_header(part.headers.get(b"content-disposition", b""))
        part.name = _text(options.get(b"name", b""))
        if b"filename" in options:
            part.filename = _text(options[b"filename"])
            part.content_type = (
                part.headers.get(b"content-type", b"application/octet-stream")
                .decode("latin-1")
                .split(";")[0]
                .strip()[:255]
                or "application/octet-stream"
            )
            if part.filename:
                file_policy.check_name(self.settings, part.filename)
                part.head = file_policy.HeadCheck(part.filename)

    async def _part_data(self, part: _Part, data: bytes) -> None:
        if part.filename is None:
            if len(part.buffer) + len(data) > MAX_FIELD_BYTES:
                raise UploadRejected("malformed")
            part.buffer += data
            return
        if not self.csrf_checked:
            # A file before a valid CSRF token: stop before storing a single byte.
            raise UploadRejected("csrf")
        if not data:
            return
        self.received += len(data)
        if self.received > self.budget:
            raise UploadRejected("too-large")
        if part.head is not None:
            part.head.feed(data)  # a program is refused before its first segment is stored
        writer = part.writer or await self._open(part)
        part.size += len(data)
        part.crc = await checksums.update(data, part.crc, part.sha)
        await writer.write(data)

    async def _end_part(self, part: _Part) -> None:
        if part.filename is None:
            value = _text(bytes(part.buffer))
            if part.name == CSRF_FIELD:
                if not self.csrf_ok(value):
                    raise UploadRejected("csrf")
                self.csrf_checked = True
            self.fields[part.name] = value
            return
        if part.writer is None:
            if not part.filename:
                return  # the empty part of a file input with no file chosen
            if not self.csrf_checked:
                raise UploadRejected("csrf")
            # A chosen file with no bytes (an empty file) is still an attachment.
            await self._open(part)
        if part.head is not None:
            part.head.finish()  # a file shorter than the head
        writer, part.writer = part.writer, None
        assert writer is not None
        try:
            await writer.commit()
        except BaseException:
            await writer.abort()
            raise
        self.files.append(
            StoredFile(
                filename=part.filename,
                content_type=part.content_type,
                storage_key=part.key,
                size=part.size,
                crc32=part.crc,
                sha256=part.sha.hexdigest(),
                crypto_header=writer.header,
            )
        )

    async def _open(self, part: _Part) -> sealed.SealingWriter:
        if self.data_key is None:
            raise UploadRejected("too-large")  # nothing is kept: no room for a file
        part.key = new_storage_key()
        part.writer = await sealed.writer(self.storage, part.key, self.data_key)
        return part.writer

    async def cleanup(self) -> None:
        if self.part is not None and self.part.writer is not None:
            await self.part.writer.abort()
        await delete_files(self.storage, self.files)
        self.files = []


async def delete_files(storage: StorageBackend, files: list[StoredFile]) -> None:
    for stored in files:
        await storage.delete(stored.storage_key)


async def abort_stored(storage: StorageBackend, upload: Upload) -> None:
    """Throw away what an unfinished chunked upload stored (its row is already gone)."""
    try:
        await storage.abort_upload(upload.storage_key, upload.backend_upload_id)
    except Exception:
        log.exception("could not abort the stored parts of upload %s", upload.id)


def boundary_of(content_type: str) -> bytes:
    mimetype, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if mimetype != b"multipart/form-data" or not boundary or len(boundary) > 200:
        raise UploadRejected("malformed")
    return boundary


async def stream_form(
    body: AsyncIterable[bytes],
    content_type: str,
    storage: StorageBackend,
    data_key: bytes | None,
    budget: int,
    csrf_ok: Callable[[str], bool],
    *,
    settings: Settings,
) -> ParsedForm:
    """Parse ``body``; files are sealed with ``data_key`` (None: the fields only, a file is
    refused), count against ``budget`` bytes and must pass the file policy of ``settings``.
    See the module docstring."""
    streamer = _Streamer(settings, storage, data_key, budget, csrf_ok)
    parser = MultipartParser(boundary_of(content_type), streamer.callbacks())  # type: ignore[arg-type]
    try:
        async for chunk in body:
            try:
                parser.write(chunk)
            except Exception:
                raise UploadRejected("malformed") from None
            await streamer.drain()
        parser.finalize()
        await streamer.drain()
        if streamer.part is not None or not streamer.csrf_checked:
            raise UploadRejected("malformed" if streamer.csrf_checked else "csrf")
    except BaseException as exc:
        await streamer.cleanup()
        typed = {k: v for k, v in streamer.fields.items() if k != CSRF_FIELD}
        if isinstance(exc, file_policy.FileRefused):
            rejected = UploadRejected("file-type", exc)
            rejected.fields = typed
            raise rejected from None
        if isinstance(exc, UploadRejected):
            exc.fields = typed
        elif isinstance(exc, StorageError):
            raise StorageFailed(str(exc), typed) from exc
        raise
    return ParsedForm(streamer.fields, streamer.files)
