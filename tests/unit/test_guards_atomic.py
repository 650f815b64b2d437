"""Guards of portal.services.atomic that mutation testing found unguarded: taking a guard marks
it as used now, so the sweep of guard rows nobody took for two days never deletes one that is
in use (however long ago it was made)."""

from __future__ import annotations

import asyncio

import pytest

from portal.models import Guard
from portal.services import atomic

KEY = "sender:1"


async def test_taking_a_guard_keeps_it_from_the_sweep_however_old_its_row(portal_app, moved_clock):
    async with atomic.serialized(KEY):
        pass
    moved_clock.advance(days=3)  # the row is older than GUARD_KEEP now

    async with atomic.serialized(KEY):
        pass
    await atomic.sweep_guards()

    assert (await Guard.get(key=KEY)).uses == 2  # kept: the same row, taken twice


async def test_a_guard_nobody_took_for_two_days_is_swept(portal_app, moved_clock):
    async with atomic.serialized(KEY):
        pass
    moved_clock.advance(days=2, seconds=1)

    swept = await atomic.sweep_guards()

    assert swept >= 1
    assert not await Guard.exists(key=KEY)


async def test_a_step_that_fails_after_its_caller_was_cancelled_lets_the_cancellation_through():
    """A caller cancelled while its step runs waits for the step, and then is cancelled,
    whatever the step ended with: its failure is not the caller's (a stopping server would
    otherwise see the database's error, or none at all, instead of its own cancellation)."""
    started, release = asyncio.Event(), asyncio.Event()

    async def step() -> None:
        started.set()
        await release.wait()
        raise RuntimeError("the database went away")

    caller = asyncio.create_task(atomic.to_the_end(step()))
    await started.wait()
    caller.cancel()
    await asyncio.sleep(0)
    release.set()

    with pytest.raises(asyncio.CancelledError):
        await caller
