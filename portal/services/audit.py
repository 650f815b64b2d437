"""The audit trail: record what happened to a message, export it, forget it after its time.

An event is written by the service that owns the change it describes, *inside that change's
transaction* wherever there is one: it is stored exactly when the change is committed (a hook
fired afterwards could be lost to a crash between the two, and one fired before could
describe a change that was rolled back).

What an event holds is chosen so that the trail can be kept longer than the messages
(``PORTAL_AUDIT_RETENTION_DAYS``) and shown to the sender: a time, what happened, the message
and the sender by id, who did it (the sender's address, ``recipient <id>`` or ``system``),
the client's address where a person acted, and a few small facts in ``detail``. Never the
message text, subject or file names, never a token, PIN or phone number: :func:`record`
refuses a detail that is not a short plain value, and the callers pass only ids, sizes,
counts and lanes.

The client's address comes from the view (services do not read requests). Where a plugin
sits between the view and the service (a verification provider checking a PIN), the view
runs the provider inside :func:`client_address`, which the events recorded meanwhile pick up.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextvars import ContextVar
from datetime import UTC, datetime
from enum import StrEnum

from tortoise.queryset import QuerySet

from portal.models import AccessCode, AuditEvent, Message, OutboxItem, Recipient
from portal.services import clock

SYSTEM = "system"
#: A detail value longer than this is refused: it could be text, a token or a file name.
MAX_DETAIL_TEXT = 40
#: Events read per query by :func:`lines` (the export never holds the whole trail).
EXPORT_BATCH = 500

Detail = int | float | bool | str | None

# The client's address of the request being served, for events recorded behind a plugin
# (see the module's docstring); each request (asyncio task) has its own value.
_client: ContextVar[str | None] = ContextVar("audit_client_ip", default=None)


class Event(StrEnum):
    REGISTERED = "registered"
    LINK_USED = "link_used"
    SENT = "sent"
    NOTIFICATION_DELIVERED = "notification_delivered"
    NOTIFICATION_FAILED = "notification_failed"
    OPENED = "opened"
    PIN_SENT = "pin_sent"  # the gateway accepted the SMS (or mail) carrying a one-time code
    PIN_FAILED = "pin_failed"  # a wrong code was typed
    PIN_LOCKED = "pin_locked"  # too many wrong codes: the recipient's link is locked
    DOWNLOADED = "downloaded"  # the last byte of an attachment or a zip went out
    REPLY_SENT = "reply_sent"  # a recipient answered the message (the reply is a message)
    PURGED = "purged"  # the message and its files were deleted (retention)
    SCANNED = "scanned"  # the malware check found the files clean: the recipients are told
    MALWARE_FOUND = "malware_found"  # the check found malware: stopped, nobody is told


def recipient_actor(recipient_id: int) -> str:
    """How a recipient is named in the trail: by id, not address (``recipient 42``)."""
    return f"recipient {recipient_id}"


def recipient_of(actor: str) -> int | None:
    """The recipient id of an actor written by :func:`recipient_actor`; None for any other."""
    kind, _space, number = actor.partition(" ")
    return int(number) if kind == "recipient" and number.isdigit() else None


@contextlib.contextmanager
def client_address(client_ip: str) -> Iterator[None]:
    """Events recorded inside (in this request's task) name ``client_ip`` unless they were
    given one."""
    token = _client.set(client_ip)
    try:
        yield
    finally:
        _client.reset(token)


def _checked(detail: dict[str, Detail]) -> dict[str, Detail]:
    for key, value in detail.items():
        if isinstance(value, str) and len(value) > MAX_DETAIL_TEXT:
            raise ValueError(f"audit detail {key!r} is too long to be a plain fact")
        if value is not None and not isinstance(value, int | float | bool | str):
            raise ValueError(f"audit detail {key!r} must be a plain value")
    return detail


async def _sender_of(message_id: uuid.UUID | str) -> int | None:
    found = await Message.filter(id=message_id).values_list("sender_id", flat=True)
    return int(found[0]) if found else None  # type: ignore[call-overload]


async def record(
    event: Event | str,
    *,
    message_id: uuid.UUID | str | None = None,
    sender_id: int | None = None,
    actor: str,
    client_ip: str | None = None,
    at: datetime | None = None,
    **detail: Detail,
) -> AuditEvent:
    """Store one event (call it inside the transaction of the change it describes).

    ``sender_id`` defaults to the sender of ``message_id`` (pass it when the message may be
    gone, as the purge does); ``client_ip`` to the one of :func:`client_address`. Raises
    ValueError for an unknown event or a detail that is not a short plain value."""
    return await _store(Event(event), message_id, sender_id, actor, client_ip, at, detail)


async def _store(
    event: Event,
    message_id: uuid.UUID | str | None,
    sender_id: int | None,
    actor: str,
    client_ip: str | None,
    at: datetime | None,
    detail: dict[str, Detail],
) -> AuditEvent:
    if sender_id is None and message_id is not None:
        sender_id = await _sender_of(message_id)
    return await AuditEvent.create(
        at=(at or clock.now()).astimezone(UTC),
        event=event.value,
        message_id=message_id,
        sender_id=sender_id,
        actor=actor,
        client_ip=client_ip if client_ip is not None else _client.get(),
        detail=_checked(detail),
    )


async def record_delivery(item: OutboxItem, delivered: bool) -> AuditEvent | None:
    """The outcome of an outbox item that belongs to a message (``message_ref``): a code's
    delivery is ``pin_sent``, any other ``notification_delivered``; one that failed for good
    is ``notification_failed``. Items of no message (registration mails) are not recorded."""
    if item.message_ref is None:
        return None
    detail: dict[str, Detail] = {"lane": str(item.channel), "outbox_item": item.id}
    code = await AccessCode.filter(delivery_id=item.id).first()
    if code is not None:
        detail["recipient"] = code.recipient_id
        detail["code"] = True
    else:
        notified = await Recipient.filter(notification_id=item.id).values_list("id", flat=True)
        if notified:
            detail["recipient"] = int(notified[0])  # type: ignore[call-overload]
    if not delivered:
        event = Event.NOTIFICATION_FAILED
    elif code is not None:
        event = Event.PIN_SENT
    else:
        event = Event.NOTIFICATION_DELIVERED
    return await _store(event, item.message_ref, None, SYSTEM, None, None, detail)


async def events_of_sender(
    sender_id: int, message_ids: Sequence[uuid.UUID | str]
) -> dict[str, list[AuditEvent]]:
    """message id (as text) → the events of that message, oldest first; only events of
    ``sender_id``'s own messages, whatever ids are asked for."""
    if not message_ids:
        return {}
    events: dict[str, list[AuditEvent]] = {}
    for event in await AuditEvent.filter(
        sender_id=sender_id, message_id__in=list(message_ids)
    ).order_by("id"):
        events.setdefault(str(event.message_id), []).append(event)
    return events


def as_json(event: AuditEvent) -> str:
    """One event as one line of JSON (UTC times)."""
    return json.dumps(
        {
            "id": event.id,
            "at": event.at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "event": event.event,
            "message_id": str(event.message_id) if event.message_id is not None else None,
            "sender_id": event.sender_id,
            "actor": event.actor,
            "client_ip": event.client_ip,
            "detail": event.detail,
        },
        ensure_ascii=False,
        sort_keys=True,
    )


async def lines(
    message_id: uuid.UUID | str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> AsyncIterator[str]:
    """The events as JSON Lines (no newline), in id order: of one message, at or after
    ``since``, before ``until``. Read in batches: the trail never sits in memory whole."""
    query = AuditEvent.all()
    if message_id is not None:
        query = query.filter(message_id=message_id)
    # In UTC, as stored: SQLite compares the times as text.
    if since is not None:
        query = query.filter(at__gte=since.astimezone(UTC))
    if until is not None:
        query = query.filter(at__lt=until.astimezone(UTC))
    after = 0
    while True:
        batch = await query.filter(id__gt=after).order_by("id").limit(EXPORT_BATCH)
        for event in batch:
            yield as_json(event)
        if len(batch) < EXPORT_BATCH:
            return
        after = batch[-1].id


async def export(
    write: Callable[[str], object],
    message_id: uuid.UUID | str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> int:
    """Write the events (see :func:`lines`) with ``write``, a line each; return how many."""
    count = 0
    async for line in lines(message_id, since, until):
        write(line + "\n")
        count += 1
    return count


def due(before: datetime) -> QuerySet[AuditEvent]:
    """The events older than ``before``: past their retention when ``before`` is now minus
    ``audit_retention_days``."""
    return AuditEvent.filter(at__lt=before.astimezone(UTC))


async def purge_before(before: datetime) -> int:
    """Delete the events older than ``before`` (:func:`due`); return how many."""
    return await due(before).delete()
