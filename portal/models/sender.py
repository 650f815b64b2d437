"""Senders, their personal links and the registration log used for rate limits."""

from tortoise import fields
from tortoise.models import Model


class Sender(Model):
    id = fields.IntField(primary_key=True)
    email = fields.CharField(max_length=320, unique=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "sender"


class SenderLink(Model):
    """A personal link. Only the SHA-256 of its token is stored."""

    id = fields.IntField(primary_key=True)
    sender: fields.ForeignKeyRelation[Sender] = fields.ForeignKeyField(
        "models.Sender", related_name="links", on_delete=fields.CASCADE
    )
    token_hash = fields.CharField(max_length=64, unique=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    last_used_at = fields.DatetimeField()

    class Meta:
        table = "sender_link"


class RegistrationEvent(Model):
    """One registration e-mail sent, counted for the per-address and per-client limits."""

    id = fields.IntField(primary_key=True)
    email = fields.CharField(max_length=320, db_index=True)
    client_ip = fields.CharField(max_length=64, db_index=True)
    created_at = fields.DatetimeField(auto_now_add=True, db_index=True)

    class Meta:
        table = "registration_event"
