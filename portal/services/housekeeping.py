"""What the server throws away on its own, every few minutes (and ``sinetti cleanup`` now):
abandoned chunked uploads, expired drafts with their files, ended sessions and idle guards;
then the retention purge (:mod:`portal.services.purge`), whose orphan sweep lists the whole
storage and so runs only every :data:`SWEEP_EVERY` rounds."""

from __future__ import annotations

import asyncio
import dataclasses
import logging

from portal import sessions
from portal.config import Settings
from portal.services import atomic, chunked, compose, purge
from portal.storage.base import StorageBackend

log = logging.getLogger(__name__)

#: Rounds between two orphan sweeps (every hour with the servers' ten-minute rounds).
SWEEP_EVERY = 6


@dataclasses.dataclass(frozen=True)
class Cleaned:
    uploads: int
    drafts: int
    sessions: int
    guards: int


async def clean_up(settings: Settings, storage: StorageBackend) -> Cleaned:
    return Cleaned(
        uploads=await chunked.clean_up_abandoned(storage, settings.upload_abandon_hours),
        drafts=await compose.expire_drafts(settings, storage),
        sessions=await sessions.sweep(settings),
        guards=await atomic.sweep_guards(),
    )


async def run(settings: Settings, storage: StorageBackend, every_seconds: float) -> None:
    """Clean up every ``every_seconds``, forever (a background task of every server process).

    The first round comes one interval after start-up, not at once: a process that starts
    and stops soon (a test, a restart loop) is not stopped in the middle of a round's
    transactions. ``sinetti cleanup`` cleans up at once.
    """
    rounds = 0
    while True:
        await asyncio.sleep(every_seconds)
        rounds += 1
        try:
            await clean_up(settings, storage)
            await purge.purge(settings, storage, orphans=rounds % SWEEP_EVERY == 1)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("housekeeping failed (database or storage down?); will retry")
