"""A sender's unsent drafts: the one place that decides whether a draft can still change and
how many bytes it (and all of its sender's drafts) may still take.

Every change of a draft — a file announced, a part finished into an attachment, a form body
received, an attachment removed, Send, Cancel, expiry — happens inside :func:`editing`, which
holds the sender's guard (see :mod:`portal.services.atomic`). Inside it the draft's state and
the bytes it holds are read and changed as one atomic step, so parallel requests (in any
number of server processes) can neither pass the limits together nor change a draft after it
was sent.

What a draft holds against the limits: its attachments, the announced size of its unfinished
chunked uploads and ``inflight_bytes``, reserved by multipart bodies being received right
now. Two limits apply: ``max_attachments_bytes`` per message and
``max_draft_bytes_per_sender`` over all unsent drafts of one sender.
"""

from __future__ import annotations

import contextlib
import dataclasses
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

from tortoise.expressions import F
from tortoise.functions import Sum

from portal.config import Settings
from portal.models import Attachment, Message, MessageStatus, Upload
from portal.services import atomic, clock, message_fields


class DraftClosed(Exception):
    """The draft was sent, cancelled or has expired meanwhile: it can no longer change."""

    def __init__(self, message_id: uuid.UUID | None = None, sent: bool = False) -> None:
        super().__init__("sent" if sent else "closed")
        self.message_id = message_id
        self.sent = sent


class NoRoom(Exception):
    """The bytes asked for do not fit: ``limit`` is ``message`` or ``sender``."""

    def __init__(self, limit: str) -> None:
        super().__init__(limit)
        self.limit = limit


def guard_of(sender_id: int) -> str:
    return f"sender:{sender_id}"


def parse_id(draft_id: str | None) -> uuid.UUID | None:
    if not draft_id:
        return None
    try:
        return uuid.UUID(draft_id)
    except ValueError:
        return None


async def find(sender_id: int, draft_id: str | None) -> Message | None:
    """The sender's draft ``draft_id`` as it is, for display (changes nothing)."""
    wanted = parse_id(draft_id)
    if wanted is None:
        return None
    draft = await Message.get_or_none(id=wanted, sender_id=sender_id, status=MessageStatus.DRAFT)
    await message_fields.open_rows(draft)
    return draft


@contextlib.asynccontextmanager
async def editing(
    sender_id: int,
    draft_id: str | None,
    locale: str = "",
    *,
    create: bool = True,
    reservation: Reservation | None = None,
) -> AsyncIterator[Message]:
    """Hold the sender's guard and yield their draft ``draft_id`` (made when it does not exist
    yet and ``create``). Raises :class:`DraftClosed` when it was sent or belongs to no draft
    of this sender; everything done inside commits together, and with it the release of
    ``reservation`` (the bytes it reserved are now the attached files' own)."""
    wanted = parse_id(draft_id) or uuid.uuid4()
    async with atomic.serialized(guard_of(sender_id)):
        draft = await Message.get_or_none(id=wanted)
        if draft is None and create:
            draft = await Message.create(id=wanted, sender_id=sender_id, locale=locale)
        if draft is None or draft.sender_id != sender_id:  # type: ignore[attr-defined]
            raise DraftClosed()
        if draft.status != MessageStatus.DRAFT:
            raise DraftClosed(draft.id, sent=True)
        await message_fields.open_rows(draft)  # what is saved again is sealed once, not twice
        yield draft
        if reservation is not None:
            await reservation.release_inside()


async def _held(message_ids: list[uuid.UUID]) -> int:
    if not message_ids:
        return 0
    total = 0
    for query in (
        Attachment.filter(message_id__in=message_ids).annotate(t=Sum("size")),
        Upload.filter(message_id__in=message_ids).annotate(t=Sum("size")),
        Message.filter(id__in=message_ids).annotate(t=Sum("inflight_bytes")),
    ):
        rows = await query.values("t")
        total += int(rows[0]["t"] or 0) if rows else 0
    return total


async def held_by(draft: Message | None) -> int:
    """Bytes ``draft`` holds against the message limit."""
    return await _held([draft.id]) if draft is not None else 0


async def _rooms(settings: Settings, sender_id: int, draft: Message | None) -> tuple[int, int]:
    """Bytes left under the message limit and under the sender's limit."""
    drafts = await Message.filter(sender_id=sender_id, status=MessageStatus.DRAFT).values_list(
        "id", flat=True
    )
    by_sender = await _held(list(drafts))  # type: ignore[arg-type]
    by_message = await held_by(draft)
    return (
        settings.max_attachments_bytes - by_message,
        settings.max_draft_bytes_per_sender - by_sender,
    )


async def room(settings: Settings, sender_id: int, draft: Message | None) -> int:
    """Bytes ``draft`` may still take under both limits (inside :func:`editing` to rely on
    it; outside, for display only)."""
    return min(await _rooms(settings, sender_id, draft))


async def ensure_room(settings: Settings, draft: Message, size: int) -> None:
    """Inside :func:`editing`: raise :class:`NoRoom` unless ``size`` more bytes fit."""
    by_message, by_sender = await _rooms(settings, draft.sender_id, draft)  # type: ignore[attr-defined]
    if size > by_message:
        raise NoRoom("message")
    if size > by_sender:
        raise NoRoom("sender")


@dataclasses.dataclass
class Reservation:
    """Bytes reserved on a draft for a body being received; released exactly once."""

    sender_id: int
    draft_id: uuid.UUID
    size: int
    #: The draft was made for this body: a refused body takes it away again if still empty.
    made_draft: bool = False
    released: bool = False

    async def release_inside(self) -> None:
        """Release while the caller holds the guard (with the files it attaches)."""
        if not self.released and self.size:
            await Message.filter(id=self.draft_id).update(
                inflight_bytes=F("inflight_bytes") - self.size
            )
        self.released = True

    async def release(self) -> None:
        """Release after a refused body; a draft made for it and still empty goes too."""
        if self.released:
            return
        async with atomic.serialized(guard_of(self.sender_id)):
            await self.release_inside()
            draft = await Message.get_or_none(id=self.draft_id, status=MessageStatus.DRAFT)
            if self.made_draft and draft is not None and not await held_by(draft):
                await draft.delete()


async def reserve(
    settings: Settings,
    sender_id: int,
    draft_id: str | None,
    locale: str,
    length: int | None,
    overhead: int,
) -> Reservation:
    """Reserve room for a body of ``length`` bytes (``overhead`` of it text fields and
    multipart framing) on the draft, made if need be; all the room left when the length is
    unknown. Raises :class:`NoRoom` when the body cannot fit, :class:`DraftClosed`."""
    made = await find(sender_id, draft_id) is None
    async with editing(sender_id, draft_id, locale) as draft:
        by_message, by_sender = await _rooms(settings, sender_id, draft)
        available = max(min(by_message, by_sender), 0)
        if length is not None and length - overhead > available:
            raise NoRoom("message" if length - overhead > by_message else "sender")
        size = available if length is None else min(length, available)
        if size:
            await Message.filter(id=draft.id).update(inflight_bytes=F("inflight_bytes") + size)
        return Reservation(sender_id, draft.id, size, made_draft=made)


def expired_before(settings: Settings) -> timedelta:
    return timedelta(hours=settings.draft_hours)


async def expired(settings: Settings) -> list[Message]:
    """Drafts started longer than ``draft_hours`` ago."""
    cutoff = clock.now() - expired_before(settings)
    return list(await Message.filter(status=MessageStatus.DRAFT, created_at__lt=cutoff))
