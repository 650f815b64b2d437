"""A message (a draft until sent), its recipients and its attachments."""

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model


class MessageStatus(StrEnum):
    DRAFT = "draft"
    SENT = "sent"


class Message(Model):
    id = fields.UUIDField(primary_key=True)
    sender: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Sender", related_name="messages", on_delete=fields.CASCADE
    )
    status = fields.CharEnumField(MessageStatus, max_length=16, default=MessageStatus.DRAFT)
    subject = fields.CharField(max_length=255, default="")
    body = fields.TextField(default="")
    signature = fields.TextField(default="")
    read_receipt = fields.BooleanField(default=False)
    recipients_text = fields.TextField(default="")
    locale = fields.CharField(max_length=8, default="fi")
    created_at = fields.DatetimeField(auto_now_add=True)
    sent_at = fields.DatetimeField(null=True)

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
    phone = fields.CharField(max_length=20, null=True)
    verification = fields.CharField(max_length=64, default="none")
    token_hash = fields.CharField(max_length=64, unique=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "recipient"


class Attachment(Model):
    id = fields.IntField(primary_key=True)
    message: fields.ForeignKeyRelation[Message] = fields.ForeignKeyField(
        "models.Message", related_name="attachments", on_delete=fields.CASCADE
    )
    # The name the sender's browser gave, for display and the zip only; never a path.
    filename = fields.CharField(max_length=255)
    content_type = fields.CharField(max_length=255, default="application/octet-stream")
    storage_key = fields.CharField(max_length=128, unique=True)
    size = fields.BigIntField()
    crc32 = fields.BigIntField()
    sha256 = fields.CharField(max_length=64)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "attachment"
        ordering = ["id"]  # noqa: RUF012 - tortoise reads a list
