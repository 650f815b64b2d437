"""Browser sessions kept by the server: the cookie carries only a random id.

Only the SHA-256 of the id is stored, so a copy of the table signs nobody in. Ending a session
deletes its row: a copy of the cookie made before is worth nothing afterwards.
"""

from typing import Any

from tortoise import fields
from tortoise.models import Model


class WebSession(Model):
    id_hash = fields.CharField(max_length=64, primary_key=True)
    data: fields.Field[dict[str, Any]] = fields.JSONField(default=dict)
    created_at = fields.DatetimeField(db_index=True)
    seen_at = fields.DatetimeField(db_index=True)

    class Meta:
        table = "web_session"
