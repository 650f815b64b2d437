"""Resumable uploads in chunks: a file arrives in parts of ``CHUNK_SIZE`` over many requests.

The server, not the browser, decides where an upload stands: every chunk names the offset it
starts at, and only a chunk starting exactly where the stored bytes end is taken (else 409
with the right offset, so duplicates and chunks out of order are harmless). Each chunk is one
part of the storage backend's resumable upload (an S3 multipart upload, say), sealed in
segments at its fixed place with the segment header made when the file was announced
(:mod:`portal.services.stored_files`); its tag, the bytes received and the running CRC-32
are kept in the database, so any server process can continue. The SHA-256 state cannot be
stored, so each process keeps it for the uploads it serves; when an upload is continued
elsewhere (a restart, another worker), the SHA-256 is computed from the stored object (opened
again) once it is complete.

The message's limit holds while streaming: a file is announced with its size and refused when
it does not fit in what the draft has left; a chunk cannot carry more than it announced.
Uploads that stop for longer than ``upload_abandon_hours`` are cleaned up.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import AsyncIterable, AsyncIterator
from datetime import timedelta
from typing import Any

from portal.config import MB, Settings
from portal.context import portal
from portal.crypto import segments
from portal.models import Attachment, Message, Upload
from portal.services import (
    checksums,
    clock,
    compose,
    drafts,
    file_policy,
    message_fields,
    scanning,
    stored_files,
)
from portal.services.files import safe_filename
from portal.services.uploads import StoredFile, abort_stored, new_storage_key
from portal.storage.base import StorageBackend

log = logging.getLogger(__name__)

CHUNK_SIZE = 8 * MB


def _hashes() -> dict[uuid.UUID, tuple[int, Any]]:
    """SHA-256 of the bytes received so far, per upload this app served: (offset, hash)."""
    return portal().upload_hashes


class ChunkRefused(Exception):
    """A request of the upload protocol cannot be taken. ``reason`` says why: ``size`` (not a
    size), ``length`` (a chunk shorter than announced), ``offset`` (not where the upload
    stands), ``sent`` (the draft was sent or cancelled), ``gone`` (no such upload any more),
    ``too-large`` (over the message limit), ``quota`` (over the sender's limit); ``offset``
    is where the upload stands. The web layer decides what each means in HTTP."""

    def __init__(self, reason: str, offset: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.offset = offset


async def unfinished(draft: Message | None) -> list[Upload]:
    if draft is None:
        return []
    uploads = list(await Upload.filter(message_id=draft.id).order_by("created_at"))
    await message_fields.open_rows(uploads)
    return uploads


def _refused(closed_or_full: drafts.DraftClosed | drafts.NoRoom) -> ChunkRefused:
    if isinstance(closed_or_full, drafts.DraftClosed):
        return ChunkRefused("sent")
    return ChunkRefused("too-large" if closed_or_full.limit == "message" else "quota")


async def begin(
    settings: Settings,
    storage: StorageBackend,
    sender_id: int,
    draft_id: str | None,
    *,
    filename: str,
    size: int,
    content_type: str,
    fingerprint: str,
    locale: str,
) -> tuple[Message, Upload | Attachment]:
    """Announce a file. The same file announced again continues its unfinished upload.

    The announced size is reserved on the draft (made when there is none) in one atomic step
    with the check that it fits (see :mod:`portal.services.drafts`): the upload row *is* the
    reservation, released when it becomes an attachment or is aborted. Returns the draft and
    the upload, or the attachment at once for an empty file.
    """
    if size < 0:
        raise ChunkRefused("size")
    name = safe_filename(filename)
    file_policy.check_name(settings, name)
    content_type = content_type[:255] or "application/octet-stream"
    if size == 0:
        return await _store_empty(storage, sender_id, draft_id, name, content_type, locale)
    try:
        async with drafts.editing(sender_id, draft_id, locale) as draft:
            # Kept as a keyed hash: the browser's description names the file.
            fingerprint = await message_fields.lookup_hash(draft.id, fingerprint)
            existing = await Upload.get_or_none(message_id=draft.id, fingerprint=fingerprint)
            if existing is not None:
                await message_fields.open_rows(existing)
                return draft, existing
            await drafts.ensure_room(settings, draft, size)
            upload = await message_fields.create(
                Upload,
                message_id=draft.id,
                filename=name,
                content_type=content_type,
                fingerprint=fingerprint,
                size=size,
                chunk_size=CHUNK_SIZE,
                storage_key=new_storage_key(),
                crypto_header=segments.new_header(),
                backend_upload_id="",
                updated_at=clock.now(),
            )
    except (drafts.DraftClosed, drafts.NoRoom) as refused:
        raise _refused(refused) from None
    # The storage backend is asked only once the room is reserved (and outside the guard).
    try:
        upload.backend_upload_id = await storage.start_upload(upload.storage_key)
    except BaseException:
        await Upload.filter(id=upload.id).delete()
        raise
    if not await Upload.filter(id=upload.id).update(backend_upload_id=upload.backend_upload_id):
        await abort_stored(storage, upload)  # the draft was cancelled meanwhile
        raise ChunkRefused("sent")
    _hashes()[upload.id] = (0, hashlib.sha256())
    return draft, upload


async def _store_empty(
    storage: StorageBackend,
    sender_id: int,
    draft_id: str | None,
    name: str,
    content_type: str,
    locale: str,
) -> tuple[Message, Attachment]:
    key = new_storage_key()
    writer = await storage.writer(key)
    await writer.commit()
    empty = StoredFile(name, content_type, key, 0, 0, hashlib.sha256().hexdigest())
    try:
        async with drafts.editing(sender_id, draft_id, locale) as draft:
            return draft, await compose.attach(draft.id, empty)
    except drafts.DraftClosed:
        await storage.delete(key)
        raise ChunkRefused("sent") from None


def expected_length(upload: Upload, offset: int) -> int:
    return min(upload.chunk_size, upload.size - offset)


async def receive(
    storage: StorageBackend,
    sender_id: int,
    upload: Upload,
    offset: int,
    length: int | None,
    body: AsyncIterable[bytes],
) -> Upload | Attachment:
    """Take one chunk starting at ``offset``; the attachment once the last one arrived.

    The upload row belongs to an unsent draft (Send refuses a draft with unfinished uploads,
    and Cancel deletes them): a chunk for an upload that is gone is refused and what it
    stored thrown away.
    """
    if not upload.backend_upload_id:
        raise ChunkRefused("offset", 0)  # announced a moment ago, not started yet
    if offset != upload.received:
        raise ChunkRefused("offset", upload.received)
    expected = expected_length(upload, offset)
    if length is not None and length > expected:
        raise ChunkRefused("too-large", upload.received)
    number = offset // upload.chunk_size + 1
    head = file_policy.HeadCheck(upload.filename) if offset == 0 else None
    known = _hashes().get(upload.id)
    sha = known[1].copy() if known is not None and known[0] == offset else None
    crc = upload.crc32
    counted = 0

    async def counted_body() -> AsyncIterator[bytes]:
        nonlocal crc, counted
        async for data in body:
            counted += len(data)
            if counted > expected:
                raise ChunkRefused("too-large", upload.received)
            if head is not None:
                head.feed(data)
            crc = await checksums.update(data, crc, sha)
            yield data
        if head is not None:
            head.finish()  # a file shorter than the head

    try:
        tag = await stored_files.upload_part(storage, upload, number, offset, counted_body())
    except file_policy.FileRefused:
        await abort(storage, upload)  # nothing of a refused file is kept
        raise
    if counted != expected:
        raise ChunkRefused("length", upload.received)  # the part is sent again whole
    tags = [*upload.part_tags[: number - 1], tag]
    moved = await Upload.filter(id=upload.id, received=offset).update(
        received=offset + counted, crc32=crc, part_tags=tags, updated_at=clock.now()
    )
    if not moved:  # another request took this chunk meanwhile, or the upload was stopped
        current = await Upload.get_or_none(id=upload.id)
        if current is None:
            _hashes().pop(upload.id, None)
            await abort_stored(storage, upload)
            raise ChunkRefused("gone")
        raise ChunkRefused("offset", current.received)
    upload.received, upload.crc32, upload.part_tags = offset + counted, crc, tags
    if sha is not None:
        _hashes()[upload.id] = (upload.received, sha)
    else:
        _hashes().pop(upload.id, None)
    if upload.received == upload.size:
        return await _finish(storage, sender_id, upload)
    return upload


async def _finish(storage: StorageBackend, sender_id: int, upload: Upload) -> Attachment:
    await storage.complete_upload(upload.storage_key, upload.backend_upload_id, upload.part_tags)
    known = _hashes().pop(upload.id, None)
    if known is not None and known[0] == upload.size:
        sha256 = known[1].hexdigest()
    else:
        # Continued by another process: read what was stored once to compute it.
        digest = hashlib.sha256()
        async for data in await stored_files.read_upload(storage, upload):
            digest.update(data)
        sha256 = digest.hexdigest()
    await message_fields.open_rows(upload)
    stored = StoredFile(
        upload.filename,
        upload.content_type,
        upload.storage_key,
        upload.size,
        upload.crc32,
        sha256,
        upload.crypto_header,
    )
    # The upload row turns into the attachment in one step under the sender's guard: its
    # reservation becomes the attachment's bytes, and a draft cancelled meanwhile (the row is
    # gone) gets nothing; the stored object is then thrown away.
    attachment = None
    try:
        async with drafts.editing(sender_id, str(upload.message_id), create=False) as draft:
            if await Upload.filter(id=upload.id).delete():
                attachment = await compose.attach(draft.id, stored, upload.id)
    except drafts.DraftClosed:
        pass
    if attachment is not None:
        scanning.check_soon([attachment])  # while the sender goes on writing
        return attachment
    await storage.delete(upload.storage_key)
    raise ChunkRefused("gone")


async def abort(storage: StorageBackend, upload: Upload) -> None:
    """Stop an upload (its reserved size is free again) and throw away what it stored.

    The stored bytes go first, the row after: on a full disk, removing the bytes is what
    makes room for the database to delete the row (a chunk that arrives meanwhile finds the
    row and no stored upload, and is refused)."""
    _hashes().pop(upload.id, None)
    await abort_stored(storage, upload)
    await Upload.filter(id=upload.id).delete()


async def clean_up_abandoned(storage: StorageBackend, hours: int) -> int:
    """Abort every upload with no chunk for ``hours``; return how many."""
    cutoff = clock.now() - timedelta(hours=hours)
    stale = await Upload.filter(updated_at__lt=cutoff)
    for upload in stale:
        await abort(storage, upload)
    if stale:
        log.info("cleaned up %d abandoned upload(s)", len(stale))
    return len(stale)


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


async def find(sender_id: int, upload_id: str) -> Upload | None:
    """An unfinished upload into a draft of this sender; None for any other."""
    if not _is_uuid(upload_id):
        return None
    found = await Upload.get_or_none(id=upload_id, message__sender_id=sender_id)
    await message_fields.open_rows(found)
    return found


async def finished(sender_id: int, upload_id: str) -> Attachment | None:
    """The attachment an upload of this sender became (for a browser that missed the answer
    to its last chunk); None for any other."""
    if not _is_uuid(upload_id):
        return None
    found = await Attachment.get_or_none(upload_id=upload_id, message__sender_id=sender_id)
    await message_fields.open_rows(found)
    return found
