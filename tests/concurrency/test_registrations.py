"""Registration caps under parallel requests: per address per day, per client IP per hour.

Every request is its own browser (its own session and CSRF token). The address cap is hit from
many client addresses at once (127.0.1.x), the client cap with many addresses from one client
address (127.0.2.1): loopback has all of 127/8, so the server sees real, different peers.
"""

from __future__ import annotations

import asyncio
import uuid

from portal.testing import new_address

from .helpers import BURST, Browser, Site, at_once, no_server_errors, statuses

ADDRESS_CAP = 3
CLIENT_CAP = 4
SETTINGS = {
    "PORTAL_REGISTRATIONS_PER_ADDRESS_PER_DAY": str(ADDRESS_CAP),
    "PORTAL_REGISTRATIONS_PER_IP_PER_HOUR": str(CLIENT_CAP),
}
SETTLE = 3.0  # seconds for the outbox (polled every second) to send anything still queued


async def _ready_browsers(site: Site, sources: list[str]) -> list[tuple[Browser, str]]:
    browsers = [site.browser(source) for source in sources]
    tokens = await asyncio.gather(*(browser.csrf("/") for browser in browsers))
    return list(zip(browsers, tokens, strict=True))


async def _close(ready: list[tuple[Browser, str]]) -> None:
    for browser, _token in ready:
        await browser.http.aclose()


async def test_parallel_registrations_of_one_address_stop_at_the_daily_cap(site: Site) -> None:
    address = new_address("burst")
    ready = await _ready_browsers(site, [f"127.0.1.{i}" for i in range(1, BURST + 1)])
    try:
        answers = await at_once(browser.register(address, token) for browser, token in ready)
    finally:
        await _close(ready)

    no_server_errors(answers)
    assert statuses(answers) == {200: ADDRESS_CAP, 429: BURST - ADDRESS_CAP}
    events = await site.db.value(
        "SELECT count(*) FROM registration_event WHERE email = ?", address.lower()
    )
    assert events == ADDRESS_CAP
    await asyncio.to_thread(site.mail.wait_for, address, ADDRESS_CAP)
    await asyncio.sleep(SETTLE)
    assert len(site.mail.to(address)) == ADDRESS_CAP, "one mail per counted registration"


async def test_parallel_registrations_from_one_client_stop_at_the_hourly_cap(site: Site) -> None:
    client = "127.0.2.1"
    addresses = [f"client.{i}.{uuid.uuid4().hex[:8]}@example.com" for i in range(BURST)]
    ready = await _ready_browsers(site, [client] * BURST)
    try:
        answers = await at_once(
            browser.register(address, token)
            for (browser, token), address in zip(ready, addresses, strict=True)
        )
    finally:
        await _close(ready)

    no_server_errors(answers)
    assert statuses(answers) == {200: CLIENT_CAP, 429: BURST - CLIENT_CAP}
    events = await site.db.rows("SELECT email FROM registration_event WHERE client_ip = ?", client)
    assert len(events) == CLIENT_CAP
    accepted = [a for a, got in zip(addresses, answers, strict=True) if got.status_code == 200]
    assert sorted(email for (email,) in events) == sorted(accepted)
    for address in accepted:
        await asyncio.to_thread(site.mail.wait_for, address)
    await asyncio.sleep(SETTLE)
    mailed = [address for address in addresses if site.mail.to(address)]
    assert sorted(mailed) == sorted(accepted), "a mail for each counted registration, no more"
