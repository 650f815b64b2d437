"""The scanner settings and the built-in ``none`` scanner: the default passes every file
without reading it, a scanner no plugin provides stops start-up like an unknown key provider,
and PORTAL_SCAN_FAIL_OPEN is a yes/no that defaults to no (fail closed)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from portal.app import create_app
from portal.config import ConfigError, load_settings
from portal.plugins import make_plugin_manager
from portal.scanning.base import NoScanner, Verdict
from portal.testing import builtin_plugins

SECRET = "s" * 40


def config(tmp_path, **more: object) -> dict[str, object]:
    return {"data_dir": str(tmp_path), "secret_key": SECRET, **more}


def test_the_default_is_no_scanner_and_fail_closed(tmp_path):
    settings = load_settings(environ={"PORTAL_DATA_DIR": str(tmp_path)})

    assert settings.scanner == "none"
    assert settings.scan_fail_open is False


def test_scanner_settings_are_read_from_the_environment(tmp_path):
    settings = load_settings(
        environ={
            "PORTAL_DATA_DIR": str(tmp_path),
            "PORTAL_SCANNER": "clamav",
            "PORTAL_SCAN_FAIL_OPEN": "true",
        }
    )

    assert (settings.scanner, settings.scan_fail_open) == ("clamav", True)


def test_a_scan_fail_open_that_is_no_yes_or_no_stops_start_up(tmp_path):
    with pytest.raises(ConfigError, match=r"^PORTAL_SCAN_FAIL_OPEN: expected true or false"):
        load_settings(environ={"PORTAL_DATA_DIR": str(tmp_path), "PORTAL_SCAN_FAIL_OPEN": "maybe"})


def test_a_scanner_no_plugin_provides_stops_create_app_listing_the_installed(tmp_path):
    with pytest.raises(ConfigError) as error:
        create_app(config(tmp_path, scanner="sophos"), plugins=builtin_plugins())

    assert str(error.value) == (
        "PORTAL_SCANNER=sophos: no installed plugin provides the scanner 'sophos' "
        "(installed: clamav, none)"
    )


def test_the_none_scanner_is_the_cores_own_and_there_without_any_plugin():
    pm = make_plugin_manager([])

    scanners = [cls for batch in pm.hook.register_scanners() for cls in batch]

    assert scanners == [NoScanner]


async def test_the_default_portal_passes_every_file_without_reading_it(tmp_path):
    scanner = (
        create_app(config(tmp_path), plugins=builtin_plugins())
        .extensions["sinetti"]
        .providers.scanner
    )

    async def must_not_be_read() -> AsyncIterator[bytes]:
        raise AssertionError("the none scanner read the file")
        yield b""  # pragma: no cover - makes this an async generator

    assert isinstance(scanner, NoScanner) and not scanner.inspects_files
    assert await scanner.scan(must_not_be_read()) == Verdict(clean=True, signature=None)
    await scanner.check()  # nothing to reach: never unavailable


def test_a_verdict_is_a_frozen_value():
    assert Verdict.infected("X") == Verdict(clean=False, signature="X")
    with pytest.raises(AttributeError):
        Verdict.ok().clean = False  # type: ignore[misc]
