"""The ``clamav`` scanner (plugins/scanner_clamav) against a real clamd on loopback, started by
the ``clamd_server`` fixture with a signature database of its own: EICAR and a marker of ours
are found, clean files pass however they are chunked, and every way clamd can be missing
(stopped, hung, a wrong address, a size limit) is ScannerUnavailable, never a verdict."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Iterable

import pytest
from sinetti_scanner_clamav import ClamavScanner
from sinetti_scanner_clamav.clamd import PIECE_BYTES

from portal.cli import main
from portal.config import ConfigError
from portal.plugins import load_providers, make_plugin_manager
from portal.scanning.base import ScannerUnavailable, Verdict
from portal.storage.base import StorageError
from portal.testing import (
    EICAR,
    EICAR_SIGNATURE,
    MARKER_SIGNATURE,
    TEST_MALWARE_MARKER,
    builtin_plugins,
    free_port,
    running_clamd_server,
)

from ..helpers import plain_settings

MB = 1024 * 1024


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


def pieces(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def scanner(tmp_path, address: str, **options: str) -> ClamavScanner:
    return ClamavScanner(plain_settings(tmp_path), {"address": address, **options})


async def scan(tmp_path, address: str, parts: Iterable[bytes], **options: str) -> Verdict:
    return await scanner(tmp_path, address, **options).scan(chunks(*parts))


# -- verdicts -------------------------------------------------------------------------------


async def test_the_eicar_test_file_is_found_and_its_signature_named(tmp_path, clamd_server):
    verdict = await scan(tmp_path, clamd_server.address, [EICAR])

    assert verdict == Verdict(clean=False, signature=EICAR_SIGNATURE)


async def test_the_custom_signature_is_found_inside_other_bytes(tmp_path, clamd_server):
    data = os.urandom(300_000) + TEST_MALWARE_MARKER + os.urandom(300_000)

    verdict = await scan(tmp_path, clamd_server.address, pieces(data, 64 * 1024))

    assert verdict == Verdict(clean=False, signature=MARKER_SIGNATURE)


async def test_a_clean_file_of_a_few_megabytes_in_small_chunks_passes(tmp_path, clamd_server):
    data = os.urandom(5 * MB + 123)

    verdict = await scan(tmp_path, clamd_server.address, pieces(data, 8 * 1024))

    assert verdict == Verdict(clean=True, signature=None)


async def test_a_signature_cut_across_the_callers_chunks_is_still_found(tmp_path, clamd_server):
    data = b"a" * 1000 + TEST_MALWARE_MARKER + b"b" * 1000
    cut = 1000 + len(TEST_MALWARE_MARKER) // 2

    verdict = await scan(tmp_path, clamd_server.address, [data[:cut], data[cut:]])

    assert verdict.signature == MARKER_SIGNATURE


async def test_a_signature_across_the_pieces_sent_to_clamd_is_still_found(tmp_path, clamd_server):
    # One chunk bigger than a piece: the client cuts it, here through the middle of EICAR.
    data = b"x" * (PIECE_BYTES - 30) + EICAR + b"y" * 1000

    verdict = await scan(tmp_path, clamd_server.address, [data])

    assert verdict.signature == EICAR_SIGNATURE


async def test_an_empty_file_is_clean(tmp_path, clamd_server):
    assert await scan(tmp_path, clamd_server.address, []) == Verdict.ok()


async def test_empty_chunks_do_not_end_the_stream_early(tmp_path, clamd_server):
    # A zero-length chunk ends an INSTREAM: an empty chunk of the caller's must not be sent.
    verdict = await scan(tmp_path, clamd_server.address, [b"", b"clean start ", b"", EICAR])

    assert verdict.signature == EICAR_SIGNATURE


async def test_a_unix_socket_address_scans(tmp_path, clamd_server):
    assert clamd_server.unix_address.startswith("unix:///")

    assert (await scan(tmp_path, clamd_server.unix_address, [EICAR])).signature == (EICAR_SIGNATURE)
    assert (await scan(tmp_path, clamd_server.unix_address, [b"hello"])).clean


async def test_a_host_name_address_scans(tmp_path, clamd_server):
    address = f"tcp://localhost:{clamd_server.port}"  # ::1 may come first: 127.0.0.1 answers

    assert (await scan(tmp_path, address, [EICAR])).signature == EICAR_SIGNATURE


async def test_many_scans_at_once_each_get_their_own_verdict(tmp_path, clamd_server):
    import asyncio

    clamav = scanner(tmp_path, clamd_server.address)
    files = [EICAR, b"clean", b"pre " + TEST_MALWARE_MARKER, os.urandom(100_000)] * 3

    verdicts = await asyncio.gather(*(clamav.scan(chunks(data)) for data in files))

    assert [v.signature for v in verdicts] == [EICAR_SIGNATURE, None, MARKER_SIGNATURE, None] * 3


# -- clamd missing: ScannerUnavailable, never a verdict ---------------------------------------


async def test_a_stopped_clamd_is_unavailable_and_scans_again_once_started(tmp_path, clamd_server):
    clamav = scanner(tmp_path, clamd_server.address)
    clamd_server.stop()

    with pytest.raises(
        ScannerUnavailable, match=r"clamd at tcp://127\.0\.0\.1:\d+: cannot connect"
    ):
        await clamav.scan(chunks(EICAR))
    with pytest.raises(ScannerUnavailable):
        await clamav.check()

    clamd_server.start()
    assert (await clamav.scan(chunks(EICAR))).signature == EICAR_SIGNATURE
    await clamav.check()


async def test_a_stopped_clamd_on_a_unix_socket_is_unavailable(tmp_path, clamd_server):
    clamav = scanner(tmp_path, clamd_server.unix_address)
    clamd_server.stop()

    with pytest.raises(ScannerUnavailable, match="clamd at unix:///"):
        await clamav.scan(chunks(b"hello"))


async def test_a_hung_clamd_is_unavailable_after_the_timeout(tmp_path, clamd_server):
    clamav = scanner(tmp_path, clamd_server.address, timeout_seconds="0.5")
    clamd_server.pause()
    try:
        with pytest.raises(ScannerUnavailable, match=r"within 0\.5 s"):
            await clamav.scan(chunks(b"hello"))
        with pytest.raises(ScannerUnavailable, match=r"no answer within 0\.5 s"):
            await clamav.check()
    finally:
        clamd_server.resume()

    assert (await clamav.scan(chunks(b"hello"))).clean


@pytest.mark.parametrize("where", ["tcp", "unix"])
async def test_a_wrong_address_is_unavailable_not_a_crash(tmp_path, where):
    address = f"tcp://127.0.0.1:{free_port()}" if where == "tcp" else f"unix://{tmp_path}/no.sock"
    clamav = scanner(tmp_path, address)

    with pytest.raises(ScannerUnavailable, match="cannot connect"):
        await clamav.scan(chunks(b"hello"))


async def test_a_file_over_clamds_stream_limit_is_unavailable_naming_the_setting(tmp_path):
    with running_clamd_server(tmp_path / "small", stream_max_length="1M") as small:
        clamav = scanner(tmp_path, small.address)

        with pytest.raises(ScannerUnavailable, match="StreamMaxLength") as error:
            await clamav.scan(chunks(*pieces(os.urandom(4 * MB), 256 * 1024)))

        assert "size limit exceeded" in str(error.value)
        assert (await clamav.scan(chunks(EICAR))).signature == EICAR_SIGNATURE  # still up


async def test_an_error_of_the_callers_chunks_passes_through_unchanged(tmp_path, clamd_server):
    async def broken() -> AsyncIterator[bytes]:
        yield b"first part"
        raise StorageError("the bucket went away")

    with pytest.raises(StorageError, match="the bucket went away"):
        await scanner(tmp_path, clamd_server.address).scan(broken())


# -- start-up and settings --------------------------------------------------------------------


async def test_start_up_without_clamd_warns_and_does_not_fail(tmp_path, caplog):
    address = f"tcp://127.0.0.1:{free_port()}"
    clamav = scanner(tmp_path, address)

    with caplog.at_level(logging.WARNING):
        await clamav.open()

    assert f"clamd at {address}: cannot connect" in caplog.text
    assert "wait to be scanned" in caplog.text


async def test_start_up_with_clamd_pings_it_quietly(tmp_path, clamd_server, caplog):
    with caplog.at_level(logging.WARNING):
        await scanner(tmp_path, clamd_server.address).open()

    assert caplog.text == ""


def test_the_default_address_is_clamds_default_port(tmp_path):
    clamav = ClamavScanner(plain_settings(tmp_path), {})

    assert str(clamav.clamd.address) == "tcp://127.0.0.1:3310"
    assert clamav.clamd.timeout == 60.0


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("tcp://clamav.internal", "tcp://clamav.internal:3310"),
        ("tcp://[::1]:3311", "tcp://[::1]:3311"),
        ("unix:///run/clamav/clamd.ctl", "unix:///run/clamav/clamd.ctl"),
    ],
)
def test_addresses_are_read(tmp_path, address, expected):
    assert str(scanner(tmp_path, address).clamd.address) == expected


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1:3310", "http://127.0.0.1:3310", "tcp://127.0.0.1:notaport", "unix://relative"],
)
def test_a_bad_address_stops_start_up_naming_the_variable(tmp_path, address):
    with pytest.raises(ConfigError, match=r"^PORTAL_CLAMAV_ADDRESS: expected tcp://host:port"):
        scanner(tmp_path, address)


@pytest.mark.parametrize("timeout", ["0", "-1", "soon"])
def test_a_bad_timeout_stops_start_up_naming_the_variable(tmp_path, timeout):
    with pytest.raises(ConfigError, match=r"^PORTAL_CLAMAV_TIMEOUT_SECONDS: expected a positive"):
        scanner(tmp_path, "tcp://127.0.0.1:3310", timeout_seconds=timeout)


def test_a_misspelled_clamav_setting_stops_start_up_even_when_not_selected(tmp_path):
    settings = plain_settings(tmp_path, plugin_options={"CLAMAV_ADRESS": "tcp://x:1"})

    with pytest.raises(
        ConfigError, match=r"^PORTAL_CLAMAV_ADRESS: unknown setting of the 'clamav'"
    ):
        load_providers(make_plugin_manager(builtin_plugins()), settings)


# -- in the portal --------------------------------------------------------------------------


@pytest.fixture
def portal_config(portal_config, clamd_server):
    return {**portal_config, **clamd_server.portal_config()}


async def test_the_portal_selects_opens_and_scans_with_clamav(portal_app):
    clamav = portal_app.app.extensions["sinetti"].providers.scanner

    assert isinstance(clamav, ClamavScanner) and clamav.inspects_files
    assert (await clamav.scan(chunks(EICAR))).signature == EICAR_SIGNATURE
    assert (await clamav.scan(chunks(b"a letter"))).clean


def test_sinetti_plugins_lists_the_clamav_scanner(capsys):
    assert main(["plugins"]) == 0

    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[1:]}
    assert rows["scanner-clamav"].split()[1] == "sinetti-scanner-clamav"
    assert rows["scanner-clamav"].endswith("scanner: clamav")
    assert "scanner: none" in rows["sinetti-core"]


def test_the_harness_fails_clearly_never_skips_when_clamd_is_missing(tmp_path, monkeypatch):
    import portal.testing

    monkeypatch.setattr(portal.testing.shutil, "which", lambda *args, **kwargs: None)

    with pytest.raises(RuntimeError, match=r"clamd is not installed: .*make unit"):
        portal.testing.ClamdServer(tmp_path).start()
