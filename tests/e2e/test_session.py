"""Ending and expiry: Cancel deletes the draft and ends the session; a personal link unused
for 30 days has expired."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from conftest import continue_with_link
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.e2e


def test_cancel_deletes_the_draft_and_its_files_and_ends_the_session(
    page: Page, sign_in, portal_server, assert_accessible, screenshot
) -> None:
    address = sign_in(page, "cancel")
    files_before = portal_server.stored_files()
    page.get_by_label("Subject", exact=True).fill("Ei lähetetä")
    page.get_by_label("Message", exact=True).fill("Tämä peruutetaan.")
    page.get_by_label("Attachments", exact=True).set_input_files(
        [
            {
                "name": "peruttava.pdf",
                "mimeType": "application/pdf",
                "buffer": b"%PDF-1.4\n" + b"x" * 5000,
            }
        ]
    )
    # Chosen, the file is uploaded at once (uploader.js) and listed as attached.
    expect(page.locator("#kept-attachments li[data-attachment-id]")).to_contain_text(
        "peruttava.pdf"
    )
    assert len(portal_server.stored_files()) == len(files_before) + 1
    drafts = (
        "SELECT COUNT(*) FROM message JOIN sender ON sender.id = message.sender_id "
        "WHERE sender.email = ?"
    )
    assert portal_server.sql(drafts, (address,))[0][0] == 1

    with page.expect_response(
        lambda r: r.request.method == "POST" and r.url.endswith("/compose/cancel")
    ) as done:
        page.get_by_role("button", name="Cancel", exact=True).click()
    assert done.value.status == 200
    expect(page.get_by_role("heading", level=1)).to_have_text("Sending cancelled")
    expect(page.locator("main")).to_contain_text("your session has ended")
    assert_accessible(page, "the cancelled page")
    screenshot(page, "session-cancelled-en")

    assert portal_server.stored_files() == files_before
    assert portal_server.sql(drafts, (address,))[0][0] == 0

    response = page.goto("/compose")
    assert response is not None and response.status == 401
    expect(page.get_by_role("heading", level=1)).to_have_text("Your session has ended")
    expect(page.get_by_label("Subject", exact=True)).to_have_count(0)
    assert_accessible(page, "the session-ended page")
    screenshot(page, "session-ended-en")


def _link_row(portal_server, address: str) -> tuple[int, str]:
    rows = portal_server.sql(
        "SELECT sender_link.id, last_used_at FROM sender_link "
        "JOIN sender ON sender.id = sender_link.sender_id WHERE sender.email = ?",
        (address,),
    )
    assert len(rows) == 1, rows
    return rows[0]


def _move_last_use(portal_server, address: str, days_ago: float) -> None:
    """Pretend the sender's link was last used ``days_ago`` days ago.

    The portal runs in a separate process, so its clock (portal.services.clock) cannot be moved
    from here: editing the link's last use in the server's SQLite database is the only way to
    age a link in this end-to-end test.
    """
    link_id, stored = _link_row(portal_server, address)
    moved = datetime.now(UTC) - timedelta(days=days_ago)
    value = moved.isoformat(sep="T" if "T" in stored else " ")
    portal_server.sql("UPDATE sender_link SET last_used_at = ? WHERE id = ?", (value, link_id))


def test_link_unused_for_30_days_has_expired_and_offers_to_register_again(
    page: Page, new_address, register, portal_server, assert_accessible, screenshot
) -> None:
    address = new_address("expired")
    link = register(page, address)

    # Used 29 days ago: still valid. Opening it changes nothing; Continue signs in and slides
    # the window forward to now.
    _move_last_use(portal_server, address, days_ago=29)
    page.goto(link)
    opened_only = datetime.fromisoformat(_link_row(portal_server, address)[1])
    assert datetime.now(UTC) - opened_only > timedelta(days=28), opened_only
    continue_with_link(page, link)
    last_use = datetime.fromisoformat(_link_row(portal_server, address)[1])
    assert datetime.now(UTC) - last_use < timedelta(minutes=5), last_use
    page.context.clear_cookies()

    # Unused for 31 days: expired.
    _move_last_use(portal_server, address, days_ago=31)
    response = page.goto(link + "?lang=en")
    assert response is not None and response.status == 410
    expect(page.get_by_role("heading", level=1)).to_have_text("The link has expired")
    expect(page.locator("main")).to_contain_text("30 days")
    assert_accessible(page, "the expired-link page")
    screenshot(page, "session-link-expired-en")

    page.get_by_role("link", name="Register again", exact=True).click()
    expect(page).to_have_url(re.compile(r"/$"))
    expect(page.get_by_label("Sender", exact=True)).to_be_visible()
