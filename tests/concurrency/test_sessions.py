"""Ending a session is one-way across processes: once Cancel has answered, no request with the
cookie of that session gets in, however many arrive at once and at whichever worker."""

from __future__ import annotations

from .helpers import BURST, Browser, Site, at_once, no_server_errors, statuses


async def test_after_cancel_no_parallel_request_with_the_old_cookie_gets_in(
    site: Site, sender: tuple[Browser, str, str], browsers: list[Browser]
) -> None:
    browser, _address, _link = sender
    copy = site.browser()
    browsers.append(copy)
    copy.copy_cookies_from(browser)
    assert (await copy.http.get("/compose")).status_code == 200  # the copy works before
    csrf = await browser.csrf("/compose")

    racing = await at_once(
        [browser.http.post("/compose/cancel", data={"csrf_token": csrf})]
        + [copy.http.get("/compose") for _ in range(BURST)]
    )
    no_server_errors(racing)
    assert racing[0].status_code == 200  # cancelled
    after = await at_once(copy.http.get("/compose") for _ in range(BURST))

    assert statuses(after) == {401: BURST}, statuses(after)
    assert (
        await site.db.value(
            "SELECT COUNT(*) FROM web_session WHERE CAST(data AS TEXT) LIKE '%sender_id%'"
        )
        == 0
    )
