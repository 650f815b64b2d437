"""A message (a draft until sent), its recipients and its attachments."""

import uuid
from enum import StrEnum

from tortoise import fields
from tortoise.models import Model

from portal.models.outbox import OutboxItem


class MessageStatus(StrEnum):
    DRAFT = "draft"
    SENT = "sent"


class ScanState(StrEnum):
    """Where a sent message stands with the malware scanner (None: not scanned, no scanner)."""

    CHECKING = "checking"  # its files are being checked; the recipients are not told yet
    CLEAN = "clean"  # checked: the recipients' notifications were released
    INFECTED = "infected"  # a file holds malware: stopped, the recipients are never told


class Message(Model):
    id = fields.UUIDField(primary_key=True)
    sender: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Sender", related_name="messages", on_delete=fields.CASCADE
    )
    status = fields.CharEnumField(MessageStatus, max_length=16, default=MessageStatus.DRAFT)
    # Subject, text, signature, the Recipients field and the receipt are stored sealed with
    # the message's data key (portal.services.message_fields), as are a recipient's phone
    # number and a file's name: hence text columns longer than the plain values need.
    subject = fields.TextField(default="")
    body = fields.TextField(default="")
    signature = fields.TextField(default="")
    read_receipt = fields.BooleanField(default=False)
    recipients_text = fields.TextField(default="")
    locale = fields.CharField(max_length=8, default="fi")
    created_at = fields.DatetimeField(auto_now_add=True)
    sent_at = fields.DatetimeField(null=True)
    # Bytes of multipart form bodies being received into this draft right now: reserved
    # against the limit before the first byte is stored, released when the request ends.
    inflight_bytes = fields.BigIntField(default=0)
    # Set on a secure reply: the message it answers.
    reply_to: fields.ForeignKeyNullableRelation["Message"] = fields.ForeignKeyField(
        "models.Message", related_name="replies", null=True, on_delete=fields.SET_NULL
    )
    # The signed submission receipt (services/receipts.py), written when the message is sent.
    receipt = fields.TextField(null=True)
    # The malware check of a sent message (services/scanning.py): its state, the failed
    # attempts to reach the scanner and the last error, when to try next, and until when a
    # server process holds it.
    scan_state = fields.CharEnumField(ScanState, max_length=16, null=True)
    # (Database defaults: the columns are added to tables that hold messages already.)
    scan_attempts = fields.IntField(default=0, db_default=0)
    scan_error = fields.TextField(default="", db_default="")
    scan_next_at = fields.DatetimeField(null=True, db_index=True)
    scan_claimed_until = fields.DatetimeField(null=True)

    recipients: fields.ReverseRelation["Recipient"]
    attachments: fields.ReverseRelation["Attachment"]

    class Meta:
        table = "message"


class Recipient(Model):
    id = fields.IntField(primary_key=True)
    message: fields.ForeignKeyRelation[Message] = fields.ForeignKeyField(
        "models.Message", related_name="recipients", on_delete=fields.CASCADE
    )
    email = fields.CharField(max_length=320)
    # E.164 number when the sender asked for phone verification (the ``.sec`` suffix).
    phone = fields.CharField(max_length=128, null=True)
    verification = fields.CharField(max_length=64, default="none")
    token_hash = fields.CharField(max_length=64, unique=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    # The queued notification e-mail, for the sender's status page.
    notification: fields.ForeignKeyNullableRelation[OutboxItem] = fields.ForeignKeyField(
        "models.OutboxItem", related_name=False, null=True, on_delete=fields.SET_NULL
    )
    # The first successful open (the read receipt is sent once, when this is first set).
    opened_at = fields.DatetimeField(null=True)
    # Wrong answers to the verification since the last successful open.
    failed_attempts = fields.IntField(default=0)
    # Too many wrong answers: the link no longer opens the message.
    locked_at = fields.DatetimeField(null=True)

    access_codes: fields.ReverseRelation["AccessCode"]
    message_id: uuid.UUID
    notification_id: int | None

    class Meta:
        table = "recipient"


class AccessCode(Model):
    """A one-time code (an SMS PIN, say) that a verification provider issued to a recipient.

    Only an HMAC of the code is stored. Only the newest unused code of a recipient is valid.
    """

    id = fields.IntField(primary_key=True)
    recipient: fields.ForeignKeyRelation[Recipient] = fields.ForeignKeyField(
        "models.Recipient", related_name="access_codes", on_delete=fields.CASCADE
    )
    code_hash = fields.CharField(max_length=64)
    created_at = fields.DatetimeField(db_index=True)
    expires_at = fields.DatetimeField()
    used_at = fields.DatetimeField(null=True)
    # The outbox item carrying the code, so the page can say when delivery failed.
    delivery: fields.ForeignKeyNullableRelation[OutboxItem] = fields.ForeignKeyField(
        "models.OutboxItem", related_name=False, null=True, on_delete=fields.SET_NULL
    )

    recipient_id: int
    delivery_id: int | None

    class Meta:
        table = "access_code"


class Attachment(Model):
    id = fields.IntField(primary_key=True)
    message: fields.ForeignKeyRelation[Message] = fields.ForeignKeyField(
        "models.Message", related_name="attachments", on_delete=fields.CASCADE
    )
    # The name the sender's browser gave, for display and the zip only; never a path.
    filename = fields.TextField()
    content_type = fields.CharField(max_length=255, default="application/octet-stream")
    storage_key = fields.CharField(max_length=128, unique=True)
    size = fields.BigIntField()
    crc32 = fields.BigIntField()
    sha256 = fields.CharField(max_length=64)
    # The stored file's segment header (portal.crypto.segments): its salt and nonce prefix.
    # None: stored as it came (an empty file, or one stored before encryption at rest).
    crypto_header = fields.BinaryField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    # The scanner's name for the malware found in it (the file itself is deleted).
    malware = fields.CharField(max_length=255, null=True)
    # When the scanner found it clean while it was in a draft: Send does not check it again.
    scanned_at = fields.DatetimeField(null=True)
    # The chunked upload it came from: a browser that missed the last answer asks by this id.
    upload_id = fields.UUIDField(null=True, db_index=True)

    message_id: uuid.UUID

    class Meta:
        table = "attachment"
        ordering = ["id"]  # noqa: RUF012 - tortoise reads a list
