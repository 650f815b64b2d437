"""Atomic steps: a check and the write it allows, decided by the database in one go.

Two mechanisms, chosen per rule:

- A one-way change of a single row is one **conditional UPDATE** (``… SET status = 'sent'
  WHERE id = ? AND status = 'draft'``): the database applies it to a row only while the
  condition holds (PostgreSQL re-checks the condition on the newest row version after waiting
  for a concurrent writer; SQLite runs one writer at a time), so exactly one of many parallel
  requests sees "1 row changed". Callers act on that count, never on an earlier read.
- A rule that must read several rows before it writes (count the codes of the last day, sum
  the bytes of a sender's drafts) runs inside :func:`serialized`: a transaction whose *first*
  statement writes the guard row of what it protects. On PostgreSQL that write holds the row
  lock until commit, so a second transaction for the same key waits at the same statement and
  then reads what the first committed (READ COMMITTED takes a new snapshot per statement). On
  SQLite the first write takes the database's write lock (other processes wait up to
  ``busy_timeout``) and, being the first statement, the transaction reads the newest data.
  Nothing slow (storage, the network) may happen inside: the lock is held until the end.

A background task's transaction that records something already done (a mail delivered, a
message purged) runs :func:`to_the_end`: stopping the server cancels the task, and a
transaction cancelled half-way would lose the record (the mail would go again) and, on
asyncpg, can leave its connection in use so that closing the pool waits for ever.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Coroutine
from datetime import timedelta
from typing import Any, TypeVar

from tortoise.expressions import F
from tortoise.transactions import in_transaction

from portal.models import Guard
from portal.services import clock

GUARD_KEEP = timedelta(days=2)

T = TypeVar("T")


@contextlib.asynccontextmanager
async def serialized(*keys: str) -> AsyncIterator[None]:
    """A transaction that holds the guards ``keys`` (taken in sorted order: no deadlock)."""
    async with in_transaction():
        for key in sorted(set(keys)):
            await _take(key)
        yield


async def _take(key: str) -> None:
    current = clock.now()
    # The row may not exist yet (or was just swept): insert it, ignoring a concurrent insert
    # of the same key, then lock it by writing. The loop ends once the UPDATE found the row.
    while True:
        await Guard.bulk_create([Guard(key=key, touched_at=current)], ignore_conflicts=True)
        if await Guard.filter(key=key).update(uses=F("uses") + 1, touched_at=current):
            return


async def sweep_guards() -> int:
    """Delete guard rows nobody took for two days (they hold no state, only a lock)."""
    return await Guard.filter(touched_at__lt=clock.now() - GUARD_KEEP).delete()


async def to_the_end(step: Coroutine[Any, Any, T]) -> T:
    """Run ``step`` (a short database step) to its end even if the caller is cancelled
    meanwhile; the cancellation reaches the caller once the step has ended."""
    task = asyncio.ensure_future(step)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        if not task.done():
            with contextlib.suppress(Exception):
                await task
        raise
