"""The sender's view of the audit trail: each event of their own messages as a sentence.

The trail names recipients by id (``recipient 42``); the sender knows their recipients, so
the history shows their addresses instead (the message's own recipients only). Only
:func:`portal.services.audit.events_of_sender` is asked, which returns the events of the
sender's own messages whatever ids are passed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime

from portal.i18n import _, ngettext
from portal.models import AuditEvent, Message
from portal.services import audit
from portal.services.audit import Event
from portal.services.files import format_size


@dataclasses.dataclass(frozen=True)
class Entry:
    at: datetime
    event: str
    text: str  # translated, in the current locale


def _recipient(event: AuditEvent) -> int | None:
    """The recipient an event concerns: its actor, or (for deliveries) its detail."""
    found = audit.recipient_of(event.actor)
    if found is None and isinstance(event.detail.get("recipient"), int):
        found = int(event.detail["recipient"])
    return found


def describe(event: AuditEvent, addresses: dict[int, str]) -> str:
    """One event in words; ``addresses``: the message's recipients by id."""
    recipient = _recipient(event)
    who = addresses.get(recipient, _("a recipient")) if recipient is not None else event.actor
    detail = event.detail
    sms = detail.get("lane") == "sms"
    match event.event:
        case Event.SENT:
            count = int(detail.get("recipients") or 0)
            return ngettext(
                "Sent to %(count)d recipient", "Sent to %(count)d recipients", count
            ) % {"count": count}
        case Event.NOTIFICATION_DELIVERED if recipient is None:
            return _("An e-mail to you was delivered")
        case Event.NOTIFICATION_DELIVERED:
            if sms:
                return _("SMS delivered to %(who)s") % {"who": who}
            return _("Notification e-mail delivered to %(who)s") % {"who": who}
        case Event.NOTIFICATION_FAILED if recipient is None:
            return _("An e-mail to you could not be delivered")
        case Event.NOTIFICATION_FAILED:
            if detail.get("code") and sms:
                return _("The PIN SMS to %(who)s could not be delivered") % {"who": who}
            if detail.get("code"):
                return _("The code to %(who)s could not be delivered") % {"who": who}
            if sms:
                return _("The SMS to %(who)s could not be delivered") % {"who": who}
            return _("The notification e-mail to %(who)s could not be delivered") % {"who": who}
        case Event.PIN_SENT:
            if sms:
                return _("PIN SMS delivered to %(who)s") % {"who": who}
            return _("One-time code delivered to %(who)s") % {"who": who}
        case Event.OPENED:
            return _("Opened by %(who)s") % {"who": who}
        case Event.PIN_FAILED:
            return _("A wrong PIN was entered on the link of %(who)s") % {"who": who}
        case Event.PIN_LOCKED:
            return _("The link of %(who)s was locked after too many wrong PINs") % {"who": who}
        case Event.DOWNLOADED if detail.get("zip"):
            return _("%(who)s downloaded the message as a zip file") % {"who": who}
        case Event.DOWNLOADED:
            size = format_size(int(detail.get("size") or 0))
            return _("%(who)s downloaded an attachment (%(size)s)") % {"who": who, "size": size}
        case Event.REPLY_SENT:
            return _("%(who)s replied") % {"who": who}
        case Event.PURGED:
            return _("The message and its files were deleted")
        case Event.SCANNED if detail.get("skipped"):
            return _("The malware check could not be made; the recipients were notified")
        case Event.SCANNED:
            return _("The attachments were checked for malware: nothing was found")
        case Event.MALWARE_FOUND:
            return _("Malware was found in the attachments: the message was stopped")
    return event.event  # an event this page has no words for (yet)


async def of_messages(sender_id: int, messages: Sequence[Message]) -> dict[str, list[Entry]]:
    """message id (as text) → its history, oldest first; ``messages`` with their
    recipients fetched."""
    events = await audit.events_of_sender(sender_id, [message.id for message in messages])
    history: dict[str, list[Entry]] = {}
    for message in messages:
        addresses = {recipient.id: recipient.email for recipient in message.recipients}
        history[str(message.id)] = [
            Entry(event.at, event.event, describe(event, addresses))
            for event in events.get(str(message.id), [])
        ]
    return history
