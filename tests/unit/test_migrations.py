"""Migrations apply to a database that holds data, not only to an empty one: rows written at
an earlier migration survive the later ones, and the columns added for them get sensible
values (a NOT NULL column without a database default cannot be added to a table with rows)."""

from __future__ import annotations

from tortoise.context import TortoiseContext
from tortoise.migrations.api import migrate

from portal.db import tortoise_config

from .helpers import plain_settings

MESSAGE = "6f1b6c44-0d5e-4a36-9a55-2d1d9b1c1a11"


async def test_the_malware_scan_columns_are_added_to_a_database_that_holds_messages(
    tmp_path, portal_database
):
    config = tortoise_config(plain_settings(tmp_path, database_url=portal_database))
    async with TortoiseContext() as ctx:
        await ctx.init(config=config)
        await migrate(config=config, target="models.0009_crypto_headers")
        db = ctx.connections.get("default")
        await db.execute_script(
            "INSERT INTO sender (email, created_at) VALUES ('a@example.com', '2026-11-01');"
            "INSERT INTO message (id, sender_id, status, subject, body, signature, read_receipt,"
            " recipients_text, locale, created_at, inflight_bytes) VALUES"
            f" ('{MESSAGE}', 1, 'sent', 'S', 'B', '', false, '', 'fi', '2026-11-01', 0);"
        )

        await migrate(config=config)

        rows = await db.execute_query_dict(
            "SELECT scan_state, scan_attempts, scan_error, subject FROM message"
        )
    assert rows == [{"scan_state": None, "scan_attempts": 0, "scan_error": "", "subject": "S"}]
