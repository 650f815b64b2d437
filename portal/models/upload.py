"""A file being uploaded in chunks to a draft: where it stands, so any server process (or the
same one after a restart) can continue it where the last chunk ended."""

from __future__ import annotations

import uuid

from tortoise import fields
from tortoise.models import Model

from portal.models.message import Message


class Upload(Model):
    id = fields.UUIDField(primary_key=True)
    message: fields.ForeignKeyRelation[Message] = fields.ForeignKeyField(
        "models.Message", related_name="uploads", on_delete=fields.CASCADE
    )
    filename = fields.TextField()  # sealed (portal.services.message_fields)
    content_type = fields.CharField(max_length=255, default="application/octet-stream")
    # A keyed hash of the browser's description of the file (name, size, modification time),
    # so choosing the same file again after a reload continues this upload instead of
    # starting over (portal.services.message_fields.lookup_hash).
    fingerprint = fields.CharField(max_length=400)
    size = fields.BigIntField()
    received = fields.BigIntField(default=0)
    chunk_size = fields.IntField()
    storage_key = fields.CharField(max_length=128, unique=True)
    # The storage backend's id of the upload and the tag of each stored part, in order.
    backend_upload_id = fields.CharField(max_length=1024)
    part_tags: fields.Field[list[str]] = fields.JSONField(default=list)
    # CRC-32 of the bytes received so far (the SHA-256 state lives in the process).
    crc32 = fields.BigIntField(default=0)
    # The segment header its parts are sealed with (the attachment keeps it); None: an upload
    # begun before encryption at rest, stored as it comes.
    crypto_header = fields.BinaryField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(db_index=True)

    message_id: uuid.UUID

    class Meta:
        table = "upload"
