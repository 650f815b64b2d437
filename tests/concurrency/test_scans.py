"""The malware check across server processes, at a real ``sinetti serve --workers 2`` with a
real clamd (Debian's, on loopback, with the test signatures).

Several sessions of one sender send at once, one message with the EICAR test file among them.
Both worker processes look for messages waiting for their check at the same time; each message
must be checked and recorded by exactly one of them:

- every clean message is recorded ``scanned`` once, and each of its recipients gets exactly
  one notification;
- the infected one is recorded ``malware_found`` once, its recipient gets nothing, and its
  sender exactly one mail that says so;
- no notification is left held.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter

import pytest

from portal.testing import EICAR, EICAR_SIGNATURE, ClamdServer, new_recipient, poll

from .helpers import Browser, Site, no_server_errors

SETTINGS_FIXTURE = "clamd_settings"
SESSIONS = 6
CLEAN_EACH = 3  # clean messages each session sends
GRACE_SECONDS = 3  # after the last expected mail: time for a duplicate to show itself


@pytest.fixture(scope="module")
def clamd_settings(clamd_process: ClamdServer) -> dict[str, str]:
    return {"PORTAL_SCANNER": "clamav", "PORTAL_CLAMAV_ADDRESS": clamd_process.address}


async def _send(browser: Browser, files: list[tuple[str, bytes]]) -> tuple[str, str]:
    """(recipient, message id) of a message with ``files``."""
    recipient = new_recipient("scan")
    csrf = await browser.csrf("/compose")
    sent = await browser.compose(csrf, recipient, files=files)
    no_server_errors([sent])
    assert sent.status_code == 303, f"send: {sent.status_code}\n{sent.text[:800]}"
    return recipient, sent.headers["location"].rsplit("/sent/", 1)[1]


def _malware_mails(site: Site, address: str) -> list[object]:
    """The mails to the sender that name the EICAR finding (in any language)."""
    return [mail for mail in site.mail.to(address) if EICAR_SIGNATURE in mail.text()]


async def _events(site: Site, event: str) -> Counter[str]:
    rows = await site.db.rows("SELECT message_id FROM audit_event WHERE event = ?", event)
    return Counter(str(message_id) for (message_id,) in rows)


async def test_each_message_is_checked_once_and_only_clean_ones_notify_once(
    site: Site, sender: tuple[Browser, str, str], browsers: list[Browser]
) -> None:
    _browser, address, link = sender
    sessions = [site.browser() for _ in range(SESSIONS)]
    browsers.extend(sessions)
    for session in sessions:
        await session.sign_in(link)

    async def send_some(session: Browser) -> list[tuple[str, str]]:
        return [
            await _send(session, [("hakemus.pdf", b"%PDF-1.7 " + os.urandom(50_000))])
            for _ in range(CLEAN_EACH)
        ]

    infected_send = _send(sessions[0], [("lasku.txt", EICAR)])
    *batches, infected = await asyncio.gather(*(send_some(s) for s in sessions), infected_send)
    clean = [sent for batch in batches for sent in batch]

    for recipient, _message in clean:
        await asyncio.to_thread(site.mail.wait_for, recipient)
    await asyncio.to_thread(
        poll, lambda: _malware_mails(site, address), 1, 60, lambda _found: "no malware mail"
    )
    await asyncio.sleep(GRACE_SECONDS)

    scanned, found = await _events(site, "scanned"), await _events(site, "malware_found")
    assert {message: scanned[message] for _r, message in clean} == {m: 1 for _r, m in clean}
    assert found[infected[1]] == 1 and scanned[infected[1]] == 0
    assert [len(site.mail.to(recipient)) for recipient, _m in clean] == [1] * len(clean)
    assert site.mail.to(infected[0]) == []
    assert len(_malware_mails(site, address)) == 1
    held = await site.db.value("SELECT count(*) FROM outbox_item WHERE status = 'held'")
    assert int(held) == 0
    states = Counter(
        str(state) for (state,) in await site.db.rows("SELECT scan_state FROM message")
    )
    assert states["checking"] == 0 and states["infected"] == 1
