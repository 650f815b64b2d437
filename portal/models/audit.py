"""The audit trail: who did what to a message, and when (issue 10).

An event names its message by id only, deliberately not a foreign key: the trail outlives the
message (it is kept for ``PORTAL_AUDIT_RETENTION_DAYS``, the message for
``PORTAL_RETENTION_DAYS``), so deleting a message must neither delete nor block its events.
It holds no content: never the message text, subject or file names, never a token, PIN or
phone number; ``detail`` carries only small facts (an attachment's id and size, a lane, a
count). See :mod:`portal.services.audit`.
"""

from typing import Any

from tortoise import fields
from tortoise.models import Model


class AuditEvent(Model):
    id = fields.BigIntField(primary_key=True)
    at = fields.DatetimeField(db_index=True)
    # registered, link_used, sent, notification_delivered, … (services/audit.py: Event)
    event = fields.CharField(max_length=32)
    # The message it concerns (none for registration and sign-in); not a foreign key.
    message_id = fields.UUIDField(null=True, db_index=True)
    # The sender whose message (or registration) it is: their status page shows it.
    sender_id = fields.IntField(null=True)
    # Who did it: the sender's address, "recipient <id>" or "system".
    actor = fields.CharField(max_length=320)
    client_ip = fields.CharField(max_length=64, null=True)
    detail: fields.Field[dict[str, Any]] = fields.JSONField(default=dict)

    class Meta:
        table = "audit_event"
