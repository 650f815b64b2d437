"""Database set-up: the tortoise configuration, connect/close and migrations."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import asyncpg
from tortoise import Tortoise, connections
from tortoise.backends.base import executor
from tortoise.context import TortoiseContext, set_global_context
from tortoise.exceptions import DBConnectionError, OperationalError
from tortoise.migrations.api import migrate as run_migrations

from portal.config import Settings

SQLITE_BUSY_TIMEOUT_MS = 30_000
#: What the database raises when it cannot take a write just now: its disk is full, it was
#: locked beyond the busy timeout, it is down. A request answers 503 (and keeps what the
#: person typed); trying again later works. A commit raises the driver's own error, not
#: tortoise's: SQLite's ``OperationalError``, asyncpg's ``PostgresError`` (``DiskFullError``,
#: a lost connection) and its connection errors.
UNAVAILABLE = (
    OperationalError,
    DBConnectionError,
    sqlite3.OperationalError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    ConnectionError,
)


def tortoise_config(settings: Settings) -> dict[str, Any]:
    url: str | dict[str, Any] = settings.database_url
    if settings.database_url.startswith("sqlite://"):
        path = Path(settings.database_url.removeprefix("sqlite://"))
        path.parent.mkdir(parents=True, exist_ok=True)
        url = {
            "engine": "tortoise.backends.sqlite",
            "credentials": {
                "file_path": str(path),
                # Several server processes share the file: a writer waits for the write lock
                # (atomic steps take it first, see services/atomic.py) instead of failing.
                "busy_timeout": SQLITE_BUSY_TIMEOUT_MS,
                # Deleted rows (personal links, sessions, messages) are overwritten with
                # zeros, not left readable in free pages of the file.
                "secure_delete": "ON",
            },
        }
    return {
        "connections": {"default": url},
        "apps": {
            "models": {
                "models": ["portal.models"],
                "default_connection": "default",
                "migrations": "portal.migrations",
            }
        },
        "use_tz": True,
        "timezone": "UTC",
    }


def forget_cached_statements() -> None:
    """tortoise caches each model's INSERT and UPDATE statements per connection *name*
    (``default``), not per database: a process that worked with SQLite and then with
    PostgreSQL (a test run; ``sinetti`` commands in one process) sent SQLite's statements to
    PostgreSQL ("syntax error at or near ','"). Forgotten whenever we connect; they are made
    again on first use. ``tests/unit/test_db.py`` fails if tortoise renames the cache."""
    executor.EXECUTOR_CACHE.clear()


async def connect(settings: Settings) -> None:
    """Connect for the whole process.

    tortoise 1.x keeps connections per asyncio task; Quart's ``before_serving`` runs in another
    task than the requests, so the context is made global (tortoise's own Quart integration
    leaves every request with "No TortoiseContext is currently active").
    """
    forget_cached_statements()
    ctx = await Tortoise.init(config=tortoise_config(settings))
    set_global_context(ctx)
    # Open the connection now, not lazily on the first query: that query is often the outbox
    # worker's, and a shutdown cancelling it mid-connect left an unclosed connection (and its
    # thread) behind. A database that is down also stops start-up here.
    await connections.get("default").execute_query("SELECT 1")


async def close() -> None:
    await Tortoise.close_connections()


async def migrate(settings: Settings) -> None:
    """Apply every pending migration (in a context of its own, closed afterwards)."""
    config = tortoise_config(settings)
    forget_cached_statements()
    async with TortoiseContext() as ctx:
        await ctx.init(config=config)
        await run_migrations(config=config)


def __getattr__(name: str) -> Any:
    """``portal.db.TORTOISE_ORM``: the configuration the ``tortoise`` CLI asks for
    (``tortoise -c portal.db.TORTOISE_ORM makemigrations``)."""
    if name == "TORTOISE_ORM":
        from portal.config import load_settings

        return tortoise_config(load_settings())
    raise AttributeError(name)
