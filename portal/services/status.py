"""What a sender sees about their sent messages: per recipient, notified, opened or locked,
and which notification (the e-mail, the newest PIN SMS) could not be delivered."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from enum import StrEnum

from tortoise.exceptions import DoesNotExist

from portal.models import (
    AccessCode,
    Attachment,
    Message,
    MessageStatus,
    OutboxItem,
    OutboxStatus,
    Recipient,
    ScanState,
)
from portal.services import message_fields


class State(StrEnum):
    HELD = "held"  # the notification waits for the malware check of the message
    STOPPED = "stopped"  # malware was found: the recipient is never notified
    QUEUED = "queued"  # the notification e-mail is waiting to be delivered
    NOTIFIED = "notified"
    NOT_DELIVERED = "not-delivered"  # the notification e-mail failed for good
    OPENED = "opened"
    LOCKED = "locked"


@dataclasses.dataclass(frozen=True)
class RecipientStatus:
    email: str
    phone: str | None
    state: State
    #: When the recipient first opened it (also shown for a link locked later).
    opened_at: datetime | None
    #: The newest PIN SMS to the recipient failed for good (``sinetti outbox retry`` may help).
    pin_not_delivered: bool = False


@dataclasses.dataclass(frozen=True)
class SentMessage:
    message: Message
    recipients: list[RecipientStatus]
    attachments: list[Attachment]  # opened (a template would query the relation again)


def state_of(
    recipient: Recipient,
    notification: OutboxItem | None,
    pin: OutboxItem | None = None,
    *,
    stopped: bool = False,
) -> RecipientStatus:
    if stopped:
        state = State.STOPPED
    elif recipient.locked_at is not None:
        state = State.LOCKED
    elif recipient.opened_at is not None:
        state = State.OPENED
    elif notification is not None and notification.status == OutboxStatus.SENT:
        state = State.NOTIFIED
    elif notification is not None and notification.status == OutboxStatus.FAILED:
        state = State.NOT_DELIVERED
    elif notification is not None and notification.status == OutboxStatus.HELD:
        state = State.HELD
    else:
        state = State.QUEUED
    pin_failed = pin is not None and pin.status == OutboxStatus.FAILED
    return RecipientStatus(recipient.email, recipient.phone, state, recipient.opened_at, pin_failed)


async def _opened(message: Message) -> bool:
    """Open the message; False when its key is gone: purged since it was listed."""
    try:
        await message_fields.open_message(message)
    except DoesNotExist:
        return False
    return True


async def sent_messages(sender_id: int) -> list[SentMessage]:
    """Every message this sender sent, newest first, with each recipient's state."""
    messages = (
        await Message.filter(sender_id=sender_id, status=MessageStatus.SENT)
        .order_by("-sent_at")
        .prefetch_related("recipients", "attachments")
    )
    messages = [message for message in messages if await _opened(message)]
    item_ids = [r.notification_id for m in messages for r in m.recipients if r.notification_id]
    pins = await _newest_pin_deliveries([r.id for m in messages for r in m.recipients if r.phone])
    item_ids += pins.values()
    items = {item.id: item for item in await OutboxItem.filter(id__in=item_ids)}
    return [
        SentMessage(
            message,
            [
                state_of(
                    r,
                    items.get(r.notification_id or 0),
                    items.get(pins.get(r.id, 0)),
                    stopped=message.scan_state == ScanState.INFECTED,
                )
                for r in sorted(message.recipients, key=lambda r: r.id)
            ],
            list(message.attachments),
        )
        for message in messages
    ]


async def _newest_pin_deliveries(recipient_ids: list[int]) -> dict[int, int]:
    """recipient id → the outbox item of the newest code sent to them (if any)."""
    newest: dict[int, int] = {}
    codes = (
        await AccessCode.filter(recipient_id__in=recipient_ids, delivery_id__isnull=False)
        .order_by("id")
        .values_list("recipient_id", "delivery_id")
    )
    for recipient_id, delivery_id in codes:
        newest[recipient_id] = delivery_id  # later (newer) codes overwrite earlier ones
    return newest
