"""A recipient's access to a message: find it by link, record the open, lock it.

The first successful open of each recipient is recorded once and, when the sender asked for
one, queues a read receipt in the same transaction. Locking (too many wrong codes) is recorded
once too and tells the sender by e-mail.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

from tortoise.transactions import in_transaction

from portal import events
from portal.context import portal
from portal.i18n import locale_context
from portal.mail.base import OutgoingMail
from portal.models import Attachment, Message, MessageStatus, Recipient
from portal.security import hash_token
from portal.services import audit, clock, message_fields, notifications, outbox
from portal.services.files import format_when


async def find(token: str) -> Recipient | None:
    """The recipient of a personal ``/m/`` link, with message and sender; None if unknown."""
    recipient = await Recipient.get_or_none(token_hash=hash_token(token)).prefetch_related(
        "message__sender"
    )
    if recipient is None or recipient.message.status != MessageStatus.SENT:
        return None
    await message_fields.open_rows(recipient, recipient.message)
    return recipient


def _when(moment: datetime | None, locale: str) -> str:
    with locale_context(locale):
        return format_when(moment or clock.now(), portal().settings.tz)


async def _record_once(
    recipient: Recipient,
    field: str,
    mail: Callable[[datetime], Awaitable[OutgoingMail]] | None,
    event: audit.Event,
    *,
    every_time: bool = False,
    client_ip: str | None = None,
) -> bool:
    """Set ``field`` (a time) on the recipient unless it is set; the first time, queue the
    sender's notice in the same transaction. True only for that first time. The audit
    ``event`` is recorded with it the first time (``every_time``: every time)."""
    current = clock.now()
    async with in_transaction():
        first = await Recipient.filter(id=recipient.id, **{f"{field}__isnull": True}).update(
            **{field: current}
        )
        if first and mail is not None:
            await outbox.enqueue_mail(await mail(current), message_ref=recipient.message_id)
        if first or every_time:
            await audit.record(
                event,
                message_id=recipient.message_id,
                actor=audit.recipient_actor(recipient.id),
                client_ip=client_ip,
                at=current,
                **({"first": bool(first)} if every_time else {}),
            )
    if first:
        setattr(recipient, field, current)
        outbox.wake()
    return bool(first)


async def record_open(recipient: Recipient, client_ip: str | None = None) -> bool:
    """Note a successful open; True (and a read receipt, if asked for) only the first time.
    Plugins hear of every open (``message_opened``), the audit trail records every one."""
    message = recipient.message

    async def receipt(opened: datetime) -> OutgoingMail:
        locale = message.locale
        return await notifications.read_receipt(
            message.sender.email,
            locale,
            recipient.email,
            _when(message.sent_at, locale),
            _when(opened, locale),
        )

    first = await _record_once(
        recipient,
        "opened_at",
        receipt if message.read_receipt else None,
        audit.Event.OPENED,
        every_time=True,
        client_ip=client_ip,
    )
    await events.emit("message_opened", recipient=recipient, first=first)
    return first


async def lock(recipient: Recipient) -> bool:
    """Lock the link after too many wrong answers; the sender is told once. True only the
    first time (the caller fires ``link_locked`` once its transaction committed). The audit
    trail's ``pin_locked`` is recorded with the lock (the client's address: see
    :func:`audit.client_address`)."""
    message = recipient.message

    async def notice(_locked: datetime) -> OutgoingMail:
        return await notifications.access_locked(
            message.sender.email,
            message.locale,
            recipient.email,
            _when(message.sent_at, message.locale),
        )

    return await _record_once(recipient, "locked_at", notice, audit.Event.PIN_LOCKED)


async def readable_message(recipient: Recipient) -> Message:
    """The message as its recipient reads it: recipients, attachments, sender, what it answers."""
    message = recipient.message
    await message.fetch_related("recipients", "attachments", "sender", "reply_to")
    return await message_fields.open_message(message)


async def attachment(recipient: Recipient, attachment_id: int) -> Attachment | None:
    """An attachment of the recipient's own message; None for any other."""
    found = await Attachment.get_or_none(id=attachment_id, message_id=recipient.message_id)
    await message_fields.open_rows(found)
    return found
