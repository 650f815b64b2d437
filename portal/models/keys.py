"""A message's data key, as it is stored: wrapped by a key-encryption key (issue 11).

One row per message (and per reply, which is a message), deleted with it: once the row is
gone the message's stored files and encrypted fields can never be read again, wherever copies
of them went (crypto-shredding). ``kek_id`` says which key-encryption key opens it;
``sinetti keys rotate`` re-wraps the rows whose KEK is not the provider's current one.
"""

import uuid

from tortoise import fields
from tortoise.models import Model


class MessageKey(Model):
    message: fields.OneToOneRelation = fields.OneToOneField(
        "models.Message", related_name="key", on_delete=fields.CASCADE, primary_key=True
    )
    message_id: uuid.UUID
    kek_id = fields.CharField(max_length=128, db_index=True)
    wrapped = fields.BinaryField()
    created_at = fields.DatetimeField()
    rewrapped_at = fields.DatetimeField(null=True)

    class Meta:
        table = "message_key"
