"""portal.db: what the portal relies on in tortoise's internals."""

from __future__ import annotations

import pytest
from tortoise.backends.base import executor

from portal import db


def test_cached_statements_of_another_database_are_forgotten():
    # tortoise keys its statement cache by connection name only; SQLite's statements must
    # never reach PostgreSQL in a process that used both.
    executor.EXECUTOR_CACHE[("default", None, "sender")] = ([], "INSERT … ?", [], "", "", {})

    db.forget_cached_statements()

    assert executor.EXECUTOR_CACHE == {}


async def test_a_provider_failing_to_close_still_closes_the_database_for_the_next_app(
    portal_config, monkeypatch
):
    from quart.testing.app import LifespanError

    from portal.app import create_app
    from portal.config import load_settings
    from portal.testing import builtin_plugins

    await db.migrate(load_settings(override=portal_config))
    first = create_app(portal_config, plugins=builtin_plugins())

    async def broken_close() -> None:
        raise RuntimeError("the storage would not close")

    with pytest.raises(LifespanError, match="would not close"):
        async with first.test_app():
            storage = first.extensions["sinetti"].providers.storage
            monkeypatch.setattr(storage, "close", broken_close)

    second = create_app(portal_config, plugins=builtin_plugins())
    async with second.test_app() as started:  # refused to start while the first held the db
        response = await started.test_client().get("/")
        assert response.status_code == 200
