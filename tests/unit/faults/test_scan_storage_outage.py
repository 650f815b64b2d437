"""Storage that goes away in the middle of a malware check: the message waits, visibly, and
is checked whole once storage is back; nobody is notified of a half-checked message.

Everything is real: the S3 server (moto on loopback) behind a TCP proxy whose connections
are cut, and clamd (Debian's clamav-daemon) on loopback with a signature database of the
tests. The scanner is watched, not replaced: the proxy is cut after clamd has been given the
first piece of the file, so the cut falls in the middle of the check.
"""

from __future__ import annotations

import os
from datetime import timedelta

import pytest

from portal.models import Message, MessageStatus, OutboxItem, OutboxStatus, ScanState
from portal.services import scanning
from portal.testing import builtin_plugins

from ..helpers import eventually, scan_settled, send_message

RECIPIENT = "ville@valtori.fi"
OUTAGE_SECONDS = 600  # longer than the test: the proxy is restored by hand
#: Bigger than what the S3 client and the sockets hold between them: most of the file is
#: still to be read from S3 when the connection is cut.
CONTENT = os.urandom(24 * 1024 * 1024)


@pytest.fixture
def portal_config(portal_config, s3_server, proxy, clamd_server):
    bucket = s3_server.create_bucket()
    return {
        **portal_config,
        **s3_server.portal_config(bucket),
        **clamd_server.portal_config(),
        "s3_endpoint_url": proxy.url,
    }


@pytest.fixture
def portal_plugins():
    return builtin_plugins()


@pytest.fixture
def cut_during_first_check(portal_app, proxy, monkeypatch):
    """Cut storage off once the first check has handed clamd its first piece; the pieces
    clamd got in each check, in order."""
    scanner = portal_app.app.extensions["sinetti"].providers.scanner
    scan = scanner.scan
    pieces: list[int] = []

    async def watched(chunks):
        check = len(pieces)
        pieces.append(0)

        async def passed_on():
            async for chunk in chunks:
                yield chunk
                pieces[check] += 1
                if check == 0 and pieces[check] == 1:
                    proxy.cut(OUTAGE_SECONDS)

        return await scan(passed_on())

    monkeypatch.setattr(scanner, "scan", watched)
    return pieces


async def test_storage_cut_mid_check_makes_the_message_wait_then_it_is_checked_whole(
    client, sign_in, proxy, cut_during_first_check, monkeypatch
):
    monkeypatch.setattr(scanning, "FIRST_PAUSE", timedelta(seconds=1))
    await sign_in("liisa@example.com")
    await send_message(
        client,
        {"recipients": RECIPIENT, "subject": "Hakemus"},
        [("attachments", "aineisto.bin", CONTENT)],
    )
    message = await Message.get(status=MessageStatus.SENT)

    async def failed_once() -> Message | None:
        fresh = await Message.get(id=message.id)
        return fresh if fresh.scan_attempts >= 1 else None

    waiting = await eventually(failed_once, timeout=60)
    assert waiting.scan_state == ScanState.CHECKING
    assert "S3 read" in waiting.scan_error
    assert [item.status for item in await OutboxItem.filter(to_address=RECIPIENT)] == [
        OutboxStatus.HELD
    ]

    proxy.cut(0)  # storage is back

    assert await scan_settled(message.id) == ScanState.CLEAN
    [released] = await OutboxItem.filter(to_address=RECIPIENT)
    assert released.status in (OutboxStatus.PENDING, OutboxStatus.SENT)
    # The first check broke off partway (what the S3 client had already received still came
    # through); the one that passed read the file whole (in pieces of about 1 MiB).
    first, last = cut_during_first_check[0], cut_during_first_check[-1]
    assert 1 <= first < last
    assert last >= len(CONTENT) // (1024 * 1024)
