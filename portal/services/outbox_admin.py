"""What operators do with the outbox: see how it is doing, queue failed items again, and forget
old ones.

:func:`report` is what ``sinetti outbox --json`` prints for monitoring: counts per status in
each lane and the age of the oldest item still waiting (an alert on that age catches an outage
of the mail server or the SMS gateway long before anything is lost). :func:`retry` puts failed
items back in the queue as if new (their attempts start from zero); it is a conditional UPDATE
per item, so a retry and a worker never both act on one item, and running it twice queues an
item once.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from tortoise.functions import Count
from tortoise.queryset import QuerySet

from portal.models import Channel, OutboxItem, OutboxStatus
from portal.services import clock


@dataclasses.dataclass(frozen=True)
class LaneReport:
    counts: dict[str, int]
    #: Seconds since the oldest pending item was queued; None when nothing is pending.
    oldest_pending_seconds: int | None

    def as_json(self) -> dict[str, Any]:
        return {**self.counts, "oldest_pending_seconds": self.oldest_pending_seconds}


async def report() -> dict[str, Any]:
    """Counts per status, per lane and in total, and the oldest pending item's age."""
    rows = (
        await OutboxItem.all()
        .annotate(count=Count("id"))
        .group_by("channel", "status")
        .values("channel", "status", "count")
    )
    counts = {channel: {status.value: 0 for status in OutboxStatus} for channel in Channel}
    for row in rows:
        counts[Channel(row["channel"])][OutboxStatus(row["status"]).value] = row["count"]
    current = clock.now()
    lanes = {
        channel: LaneReport(counts[channel], _age(await _oldest_pending(channel), current))
        for channel in Channel
    }
    ages = [lane.oldest_pending_seconds for lane in lanes.values()]
    known = [age for age in ages if age is not None]
    return {
        **{status.value: sum(counts[c][status.value] for c in Channel) for status in OutboxStatus},
        "oldest_pending_seconds": max(known) if known else None,
        "lanes": {channel.value: lane.as_json() for channel, lane in lanes.items()},
    }


async def _oldest_pending(channel: Channel) -> datetime | None:
    oldest = (
        await OutboxItem.filter(status=OutboxStatus.PENDING, channel=channel)
        .order_by("created_at")
        .first()
        .values_list("created_at", flat=True)
    )
    return oldest if isinstance(oldest, datetime) else None


def _age(moment: datetime | None, current: datetime) -> int | None:
    return None if moment is None else max(0, int((current - moment).total_seconds()))


async def retry(ids: Sequence[int] | None = None) -> list[int]:
    """Queue failed items again: those of ``ids``, or every failed one (``None``). Only items
    that still hold their (sealed) text can be; return the ids that were queued."""
    failed = OutboxItem.filter(status=OutboxStatus.FAILED).exclude(text="")
    if ids is not None:
        failed = failed.filter(id__in=list(ids))
    current = clock.now()
    retried: list[int] = []
    ids_found: list[int] = await failed.order_by("id").values_list("id", flat=True)  # type: ignore[assignment]
    for item_id in ids_found:
        queued = (
            await OutboxItem.filter(id=item_id, status=OutboxStatus.FAILED)
            .exclude(text="")
            .update(
                status=OutboxStatus.PENDING,
                attempts=0,
                next_attempt_at=current,
                claimed_until=None,
                claim_token=None,
            )
        )
        if queued:
            retried.append(item_id)
    return retried


async def failed_items(limit: int = 20) -> list[OutboxItem]:
    """The newest failed items, for ``sinetti outbox``."""
    return await OutboxItem.filter(status=OutboxStatus.FAILED).order_by("-id").limit(limit)


def ended(before: datetime) -> QuerySet[OutboxItem]:
    """Sent and failed items queued before ``before``."""
    return OutboxItem.filter(
        status__in=[OutboxStatus.SENT, OutboxStatus.FAILED], created_at__lt=before
    )


async def purge_ended(before: datetime) -> int:
    """Delete sent and failed items queued before ``before`` (for the retention purge): a
    failed item keeps its sealed text for a retry only until then."""
    return await ended(before).delete()
