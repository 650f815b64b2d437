"""portal.db: what the portal relies on in tortoise's internals."""

from __future__ import annotations

from tortoise.backends.base import executor

from portal import db


def test_cached_statements_of_another_database_are_forgotten():
    # tortoise keys its statement cache by connection name only; SQLite's statements must
    # never reach PostgreSQL in a process that used both.
    executor.EXECUTOR_CACHE[("default", None, "sender")] = ([], "INSERT … ?", [], "", "", {})

    db.forget_cached_statements()

    assert executor.EXECUTOR_CACHE == {}
