"""Each message's data key: made with the message, unwrapped when it is read, re-wrapped when
the key-encryption key changes.

The key provider (``PORTAL_KEYS``) holds the key-encryption keys; this module stores what it
wraps (:class:`portal.models.MessageKey`) and never the data key itself. The wrapping is
bound to the message's id, so a wrapped key copied to another message's row does not open.
"""

from __future__ import annotations

import dataclasses
import uuid

from tortoise.exceptions import DoesNotExist

from portal.context import portal
from portal.keys.base import KeyProvider, WrappedKey
from portal.models import MessageKey
from portal.services import clock

ROTATE_BATCH = 200


def _context(message_id: uuid.UUID) -> bytes:
    return f"message:{message_id}".encode("ascii")


def _provider() -> KeyProvider:
    return portal().providers.keys


async def ensure(message_id: uuid.UUID) -> bytes:
    """The data key of the message, made now if it has none (its plain bytes, kept only in
    memory). Parallel first calls (two files of a new draft at once) agree: the insert of a
    second key is ignored, and every caller uses the key the row holds."""
    known = await _stored(message_id)
    if known is not None:
        return known
    made = await _provider().new_key(_context(message_id))
    row = MessageKey(
        message_id=message_id,
        kek_id=made.wrapped.kek_id,
        wrapped=made.wrapped.blob,
        created_at=clock.now(),
    )
    await MessageKey.bulk_create([row], ignore_conflicts=True)
    found = await _stored(message_id)
    assert found is not None  # the row exists now: ours or the first caller's
    return found


async def data_key(message_id: uuid.UUID) -> bytes:
    """The data key of the message (raises ``DoesNotExist`` once it was purged)."""
    found = await _stored(message_id)
    if found is None:
        raise DoesNotExist(MessageKey)
    return found


def forget(message_id: uuid.UUID) -> None:
    """Drop the message's key from this process's memory (it was purged)."""
    portal().data_keys.forget(message_id)


async def _stored(message_id: uuid.UUID) -> bytes | None:
    cache = portal().data_keys
    cached = cache.get(message_id)
    if cached is not None:
        return cached
    row = await MessageKey.get_or_none(message_id=message_id)
    if row is None:
        return None
    wrapped = WrappedKey(row.kek_id, bytes(row.wrapped))
    plain = await _provider().unwrap(wrapped, _context(row.message_id))
    cache.put(message_id, plain)
    return plain


@dataclasses.dataclass
class Rotated:
    rewrapped: int = 0
    left: int = 0


async def rotate(batch: int = ROTATE_BATCH, limit: int | None = None) -> Rotated:
    """Re-wrap every key whose KEK is not the current one, ``batch`` rows at a time (at most
    ``limit`` rows; None: all). Each row changes by one conditional UPDATE, only while it
    still holds what was read: an interrupted rotation resumes where it stopped, and two at
    once re-wrap each key once. The stored files and fields are not touched."""
    provider = _provider()
    done = Rotated()
    while limit is None or done.rewrapped < limit:
        # Asked again each batch: another process may have made a new key current meanwhile
        # (a rotation that kept the old one would re-wrap the new keys back for ever).
        current = provider.current_kek_id
        size = batch if limit is None else min(batch, limit - done.rewrapped)
        rows = await MessageKey.exclude(kek_id=current).order_by("message_id").limit(size)
        if not rows:
            break
        for row in rows:
            old = WrappedKey(row.kek_id, bytes(row.wrapped))
            new = await provider.rewrap(old, _context(row.message_id))
            done.rewrapped += await MessageKey.filter(
                message_id=row.message_id, kek_id=old.kek_id, wrapped=old.blob
            ).update(kek_id=new.kek_id, wrapped=new.blob, rewrapped_at=clock.now())
    done.left = await MessageKey.exclude(kek_id=provider.current_kek_id).count()
    return done


async def counts_by_kek() -> list[tuple[str, int]]:
    """(KEK id, how many data keys it wraps), most first."""
    from tortoise.functions import Count

    rows = (
        await MessageKey.annotate(count=Count("message_id"))
        .group_by("kek_id")
        .order_by("-count")
        .values_list("kek_id", "count")
    )
    return [(str(kek_id), int(count)) for kek_id, count in rows]
