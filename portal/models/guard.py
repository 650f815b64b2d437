"""Guard rows: the database's own lock for a check followed by a write.

A rule such as "at most 5 wrong PINs" or "at most 400 MB on a draft" reads some rows and then
writes. Two requests doing that at once (in two server processes) would both pass the check.
:func:`portal.services.atomic.serialized` makes such a step atomic by first writing to the
guard row of what it protects (``recipient:42``, ``sender:7``, ``registration-ip:…``): the
write takes that row's lock (PostgreSQL) or the database's write lock (SQLite) until the
transaction ends, so every other request that wants the same guard waits for it.
"""

from tortoise import fields
from tortoise.models import Model


class Guard(Model):
    key = fields.CharField(max_length=200, primary_key=True)
    uses = fields.BigIntField(default=0)
    touched_at = fields.DatetimeField(db_index=True)

    class Meta:
        table = "guard"
