"""A recipient's access to a message: find it by link, record the open, lock it.

The first successful open of each recipient is recorded once and, when the sender asked for
one, queues a read receipt in the same transaction. Locking (too many wrong codes) is recorded
once too and tells the sender by e-mail.
"""

from __future__ import annotations

from datetime import datetime

from tortoise.transactions import in_transaction

from portal.context import portal
from portal.i18n import locale_context
from portal.models import Attachment, Message, MessageStatus, Recipient
from portal.security import hash_token
from portal.services import clock, notifications, outbox
from portal.services.files import format_when


async def find(token: str) -> Recipient | None:
    """The recipient of a personal ``/m/`` link, with message and sender; None if unknown."""
    recipient = await Recipient.get_or_none(token_hash=hash_token(token)).prefetch_related(
        "message__sender"
    )
    if recipient is None or recipient.message.status != MessageStatus.SENT:
        return None
    return recipient


def _when(moment: datetime | None, locale: str) -> str:
    with locale_context(locale):
        return format_when(moment or clock.now(), portal().settings.tz)


async def record_open(recipient: Recipient) -> bool:
    """Note a successful open; True (and a read receipt, if asked for) only the first time."""
    current = clock.now()
    message = recipient.message
    async with in_transaction():
        first = await Recipient.filter(id=recipient.id, opened_at__isnull=True).update(
            opened_at=current
        )
        if first and message.read_receipt:
            locale = message.locale
            mail = await notifications.read_receipt(
                message.sender.email,
                locale,
                recipient.email,
                _when(message.sent_at, locale),
                _when(current, locale),
            )
            await outbox.enqueue_mail(mail)
    if first:
        recipient.opened_at = current
        outbox.wake()
    return bool(first)


async def lock(recipient: Recipient) -> None:
    """Lock the link after too many wrong answers; the sender is told once."""
    message = recipient.message
    async with in_transaction():
        locked = await Recipient.filter(id=recipient.id, locked_at__isnull=True).update(
            locked_at=clock.now()
        )
        if locked:
            mail = await notifications.access_locked(
                message.sender.email,
                message.locale,
                recipient.email,
                _when(message.sent_at, message.locale),
            )
            await outbox.enqueue_mail(mail)
    recipient.locked_at = recipient.locked_at or clock.now()
    outbox.wake()


async def readable_message(recipient: Recipient) -> Message:
    """The message as its recipient reads it: recipients, attachments, sender, what it answers."""
    message = recipient.message
    await message.fetch_related("recipients", "attachments", "sender", "reply_to")
    return message


async def attachment(recipient: Recipient, attachment_id: int) -> Attachment | None:
    """An attachment of the recipient's own message; None for any other."""
    return await Attachment.get_or_none(id=attachment_id, message_id=recipient.message_id)
