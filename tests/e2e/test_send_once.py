"""A message is sent once: the same draft open in two tabs, Send pressed in both, makes one
message; the second tab says it was already sent and offers the way on."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from conftest import new_recipient
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.e2e


def sent_messages(portal_server, address: str) -> int:
    return portal_server.sql(
        "SELECT COUNT(*) FROM message JOIN sender ON sender.id = message.sender_id "
        "WHERE sender.email = ? AND message.status = 'sent'",
        (address.lower(),),
    )[0][0]


def test_send_pressed_in_two_tabs_of_one_draft_sends_one_message(
    page: Page, sign_in, portal_server, check_this_page
) -> None:
    address = sign_in(page, "twotabs")
    other = page.context.new_page()
    other.goto("/compose?lang=en")
    for tab in (page, other):  # the same session, so the same planned draft
        tab.get_by_label("Recipients", exact=True).fill(new_recipient("twotabs"))
        tab.get_by_label("Subject", exact=True).fill("Sama luonnos kahdessa välilehdessä")
    assert page.locator("form#compose").get_attribute("action") == other.locator(
        "form#compose"
    ).get_attribute("action")

    page.get_by_role("button", name="Send", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Message sent")
    with other.expect_response(
        lambda r: r.request.method == "POST" and urlsplit(r.url).path == "/compose"
    ) as second:
        other.get_by_role("button", name="Send", exact=True).click()

    assert second.value.status == 409
    expect(other.get_by_role("heading", level=1)).to_have_text("This message has already been sent")
    assert sent_messages(portal_server, address) == 1
    check_this_page(other, "the already-sent page", "send-once-already-sent")
    other.get_by_role("link", name="Write a new message").click()
    expect(other.get_by_role("heading", level=1)).to_have_text("New confidential message")
