"""The outbox's background worker: one delivery lane per channel, several deliveries at a time.

E-mail and SMS are delivered by separate loops (*lanes*) of the same process, so a mail
server that accepts connections and never answers holds up only the e-mail lane: a PIN SMS
queued behind a hung notification is still delivered at once. In each lane up to
``concurrency`` deliveries run at the same time, each under the delivery timeout; a lane claims
new items whenever a slot frees, the app wakes it (something was queued) or ``poll_seconds``
passed. Claiming and recording are :mod:`portal.services.outbox`'s (conditional UPDATEs), so
any number of processes may run their lanes on one database.

The app has one wake-up event (``portal().outbox_wake``, set by :func:`outbox.wake` after a
commit); the worker passes each wake-up on to an event of every lane, so no lane can clear
a wake-up another lane has not seen yet.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Coroutine
from datetime import timedelta

from portal.context import portal
from portal.mail.base import MailTransport
from portal.models import Channel, OutboxItem
from portal.services import outbox
from portal.sms.base import SmsGateway

log = logging.getLogger(__name__)

#: Deliveries in flight at once in each lane of a process unless the settings say otherwise.
CONCURRENCY = 4


async def run_worker(
    mail: MailTransport,
    sms: SmsGateway,
    poll_seconds: float,
    max_attempts: int,
    *,
    timeout_seconds: float = outbox.DELIVERY_TIMEOUT_SECONDS,
    concurrency: int = CONCURRENCY,
    retry_seconds: float = outbox.RETRY_SECONDS,
    claim_margin_seconds: float = outbox.CLAIM_MARGIN_SECONDS,
) -> None:
    """Deliver forever, e-mail and SMS in lanes of their own (a task of the app's, started in
    its app context). Cancelling it cancels the deliveries in flight; their claims expire
    ``claim_margin_seconds`` after the timeout. A failed attempt waits ``retry_seconds``,
    doubling with each attempt (:func:`outbox.backoff`)."""
    wake_event = portal().outbox_wake
    lanes = {channel: asyncio.Event() for channel in Channel}
    deliver_one = functools.partial(
        outbox.deliver,
        mail=mail,
        sms=sms,
        max_attempts=max_attempts,
        timeout_seconds=timeout_seconds,
        retry_seconds=retry_seconds,
    )
    async with asyncio.TaskGroup() as group:
        for channel, lane_wake in lanes.items():
            group.create_task(
                _run_lane(
                    channel,
                    lane_wake,
                    deliver_one,
                    poll_seconds=poll_seconds,
                    concurrency=concurrency,
                    claim_for=outbox.claim_time(timeout_seconds, claim_margin_seconds),
                ),
                name=f"outbox lane {channel.value}",
            )
        group.create_task(_pass_on_wake_ups(wake_event, list(lanes.values())))


async def _pass_on_wake_ups(wake_event: asyncio.Event, lanes: list[asyncio.Event]) -> None:
    while True:
        await wake_event.wait()
        wake_event.clear()
        for lane in lanes:
            lane.set()


async def _run_lane(
    channel: Channel,
    wake: asyncio.Event,
    deliver_one: Callable[[OutboxItem], Coroutine[object, object, int]],
    *,
    poll_seconds: float,
    concurrency: int,
    claim_for: timedelta,
) -> None:
    running: set[asyncio.Task[int]] = set()
    try:
        while True:
            wake.clear()  # before claiming: a wake-up during the claim is seen next round
            free = concurrency - len(running)
            if free > 0:
                try:
                    for item in await outbox.claim_due([channel], free, claim_for):
                        running.add(asyncio.create_task(deliver_one(item)))
                except Exception:
                    log.exception(
                        "outbox %s lane: claiming failed (database down?); will retry", channel
                    )
            woken = asyncio.create_task(wake.wait())
            try:
                done, _ = await asyncio.wait(
                    {*running, woken}, timeout=poll_seconds, return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                woken.cancel()
            for task in done & running:
                running.discard(task)
                if not task.cancelled() and task.exception() is not None:
                    log.error(
                        "outbox %s lane: a delivery failed unexpectedly; its claim expires",
                        channel,
                        exc_info=task.exception(),
                    )
    finally:
        for task in running:
            task.cancel()
        if running:
            await asyncio.gather(*running, return_exceptions=True)
