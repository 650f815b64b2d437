"""The database models, one module per aggregate."""

from portal.models.audit import AuditEvent
from portal.models.guard import Guard
from portal.models.keys import MessageKey
from portal.models.message import (
    AccessCode,
    Attachment,
    Message,
    MessageStatus,
    Recipient,
    ScanState,
)
from portal.models.outbox import Channel, OutboxItem, OutboxStatus
from portal.models.sender import RegistrationEvent, Sender, SenderLink
from portal.models.session import WebSession
from portal.models.upload import Upload

__all__ = [
    "AccessCode",
    "Attachment",
    "AuditEvent",
    "Channel",
    "Guard",
    "Message",
    "MessageKey",
    "MessageStatus",
    "OutboxItem",
    "OutboxStatus",
    "Recipient",
    "RegistrationEvent",
    "ScanState",
    "Sender",
    "SenderLink",
    "Upload",
    "WebSession",
]
