"""Fixtures shared by the unit tests (the portal fixtures come from ``portal.testing``)."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

# Property tests check correctness, not speed: a slow or busy CI machine must not fail them.
settings.register_profile("sinetti", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("sinetti")


@pytest.fixture(autouse=True)
def no_portal_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's own ``PORTAL_*`` variables must never leak into a test."""
    for key in list(os.environ):
        if key.startswith("PORTAL_"):
            monkeypatch.delenv(key)


@pytest.fixture
def restore_umask() -> Any:
    """``sinetti``'s ``main`` sets the process's umask (0077): give the rest of the test run
    its own back."""
    previous = os.umask(0o022)
    os.umask(previous)
    yield
    os.umask(previous)


@pytest.fixture
def data_dir(portal_config: dict[str, Any]) -> Path:
    return Path(portal_config["data_dir"]).resolve()


@pytest.fixture
async def storage(tmp_path: Path) -> Any:
    """The real ``local`` storage backend in a temporary data directory."""
    from sinetti_storage_local import LocalStorage

    from .helpers import plain_settings

    backend = LocalStorage(plain_settings(tmp_path), {})
    await backend.open()
    return backend


class MovedClock:
    """``portal.services.clock.now``, moved forward by hand with :meth:`advance`."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from portal.services import clock

        self.offset = timedelta()
        real = clock.now
        monkeypatch.setattr(clock, "now", lambda: real() + self.offset)

    def advance(self, **delta: float) -> None:
        self.offset += timedelta(**delta)


@pytest.fixture
def moved_clock(monkeypatch: pytest.MonkeyPatch) -> MovedClock:
    return MovedClock(monkeypatch)
