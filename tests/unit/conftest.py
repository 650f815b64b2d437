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
def proxy(s3_server: Any) -> Any:
    """A TCP proxy in front of the session's S3 server (moto), whose connections a test cuts
    as storage that goes away (``proxy.cut(seconds)``, ``proxy.cut(0)`` to restore)."""
    from portal.testing import CuttableProxy

    proxy = CuttableProxy(int(s3_server.endpoint_url.rsplit(":", 1)[1]))
    yield proxy
    proxy.close()


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


@pytest.fixture
def frozen(monkeypatch: pytest.MonkeyPatch) -> Any:
    """``clock.now`` standing still until ``frozen.advance(**timedelta)``: exact instants
    (an expiry, the end of a window) can be tested."""
    from portal.services import clock

    class FrozenClock:
        def __init__(self) -> None:
            self.now = clock.now()
            monkeypatch.setattr(clock, "now", lambda: self.now)

        def advance(self, **delta: float) -> None:
            self.now += timedelta(**delta)

    return FrozenClock()


@pytest.fixture
def migrated_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A data directory in ``PORTAL_DATA_DIR`` with the database migrated (for the CLI)."""
    from portal.cli import main

    monkeypatch.setenv("PORTAL_DATA_DIR", str(tmp_path))
    assert main(["migrate"]) == 0
    return tmp_path
