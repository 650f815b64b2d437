"""The outbox: every e-mail and SMS is written here in the same transaction as the change that
caused it, then delivered by a background task with retries.

The channel is also the item's *lane*: e-mail and SMS are delivered by separate loops, so a
slow mail server never holds up a PIN. ``claimed_until`` and ``claim_token`` say which worker
delivers an item right now (and until when at most); ``mail_message_id`` is the e-mail's
``Message-ID``, fixed when it was queued, so a second delivery after a crash is recognisably the
same mail."""

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model


class Channel(StrEnum):
    EMAIL = "email"
    SMS = "sms"


class OutboxStatus(StrEnum):
    HELD = "held"  # waits for its message's malware check: released (pending) or dropped
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


class OutboxItem(Model):
    id = fields.IntField(primary_key=True)
    channel = fields.CharEnumField(Channel, max_length=8)
    to_address = fields.CharField(max_length=320)
    subject = fields.CharField(max_length=255, default="")
    text = fields.TextField()
    html = fields.TextField(null=True)
    status = fields.CharEnumField(OutboxStatus, max_length=16, default=OutboxStatus.PENDING)
    attempts = fields.IntField(default=0)
    next_attempt_at = fields.DatetimeField(db_index=True)
    claimed_until = fields.DatetimeField(null=True)
    # Random per claim: only the worker that claimed the item may record how delivery went.
    claim_token = fields.CharField(max_length=32, null=True)
    # The Message-ID header of an e-mail ("<…@domain>"); empty for an SMS.
    mail_message_id = fields.CharField(max_length=255, default="")
    # The message this item notifies about (for the audit trail's delivered and failed
    # events); not a foreign key: the outcome of an item may be recorded after a purge.
    message_ref = fields.UUIDField(null=True)
    last_error = fields.TextField(default="")
    created_at = fields.DatetimeField(auto_now_add=True)
    sent_at = fields.DatetimeField(null=True)

    class Meta:
        table = "outbox_item"
