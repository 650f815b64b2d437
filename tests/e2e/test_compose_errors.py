"""Errors on the compose page: a recipient outside the allowed domains, attachments over the
limit. The error is shown in a summary at the top linking to the field and beside the field;
what the sender typed is kept; an over-limit upload keeps nothing of itself."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.e2e

OUTSIDER = "someone@gmail.com"


def is_compose_post(response) -> bool:
    return response.request.method == "POST" and response.url.endswith("/compose")


def attachment_rows(portal_server, address: str) -> int:
    return portal_server.sql(
        "SELECT COUNT(*) FROM attachment JOIN message ON message.id = attachment.message_id "
        "JOIN sender ON sender.id = message.sender_id WHERE sender.email = ?",
        (address.lower(),),
    )[0][0]


def test_recipient_outside_allowed_domains_is_shown_at_top_and_beside_field_keeping_input(
    page: Page, sign_in, assert_accessible, screenshot, phone_sized
) -> None:
    sign_in(page, "domain")
    recipients = f"anna@example.fi, {OUTSIDER}"
    subject = "Lausunto – luonnos"
    body = "Ensimmäinen rivi.\nToinen rivi."
    signature = "Matti Meikäläinen"
    page.get_by_label("Recipients", exact=True).fill(recipients)
    page.get_by_label("Subject", exact=True).fill(subject)
    page.get_by_label("Message", exact=True).fill(body)
    page.get_by_label("Signature", exact=True).fill(signature)
    page.get_by_label("Attachments", exact=True).set_input_files(
        [{"name": "luonnos.txt", "mimeType": "text/plain", "buffer": b"luonnos\n" * 100}]
    )

    with page.expect_response(is_compose_post) as sent:
        page.get_by_role("button", name="Send", exact=True).click()
    assert sent.value.status == 400

    summary = page.get_by_role("alert")
    expect(summary).to_contain_text("There is a problem")
    link = summary.get_by_role("link", name=re.compile(re.escape(OUTSIDER)))
    expect(link).to_have_attribute("href", "#recipients")
    field = page.get_by_label("Recipients", exact=True)
    expect(field).to_have_attribute("id", "recipients")

    # The summary is at the top of the page, above the heading.
    summary_box, heading_box = (
        summary.bounding_box(),
        page.get_by_role("heading", level=1).bounding_box(),
    )
    assert summary_box and heading_box and summary_box["y"] < heading_box["y"]
    expect(page).to_have_title(re.compile(r"^Error"))

    # Beside the field, tied to it for screen readers.
    beside = page.locator("#recipients-error")
    expect(beside).to_contain_text(OUTSIDER)
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(field).to_have_attribute("aria-describedby", re.compile(r"\brecipients-error\b"))

    # Nothing typed is lost, the attached file included.
    expect(field).to_have_value(recipients)
    expect(page.get_by_label("Subject", exact=True)).to_have_value(subject)
    expect(page.get_by_label("Message", exact=True)).to_have_value(body)
    expect(page.get_by_label("Signature", exact=True)).to_have_value(signature)
    expect(page.locator("#kept-attachments")).to_contain_text("luonnos.txt")

    assert_accessible(page, "the compose page with a recipient error")
    screenshot(page, "errors-recipient-domain-en")
    with phone_sized(page):
        screenshot(page, "errors-recipient-domain-en-phone")

    # The summary's link takes the sender to the field.
    link.click()
    expect(field).to_be_focused()


SIX_MB_FILE = {
    "name": "iso-aineisto.bin",
    "mimeType": "application/octet-stream",
    "buffer": b"\0" * (6 * 1024 * 1024),
}


def test_over_the_limit_files_are_refused_by_the_browser_before_uploading(
    page: Page, sign_in, portal_server, assert_accessible, screenshot
) -> None:
    address = sign_in(page, "toobig.js")
    files_before = portal_server.stored_files()
    posts: list[str] = []
    page.on("request", lambda request: request.method == "POST" and posts.append(request.url))
    page.get_by_label("Subject", exact=True).fill("Suuri aineisto")
    page.get_by_label("Attachments", exact=True).set_input_files([SIX_MB_FILE])
    page.get_by_role("button", name="Attach the chosen files", exact=True).click()

    warning = page.locator("#attachments-too-large")
    expect(warning).to_be_visible()
    expect(warning).to_contain_text("too large")
    expect(warning).to_contain_text(re.compile(r"\b5(\.0)?\sMB"))  # names the 5 MiB limit
    expect(page.get_by_label("Attachments", exact=True)).to_be_focused()
    expect(page.get_by_label("Subject", exact=True)).to_have_value("Suuri aineisto")
    assert_accessible(page, "the compose page warning about too large files")
    screenshot(page, "errors-too-large-browser-en")

    page.get_by_role("button", name="Send", exact=True).click()
    expect(warning).to_be_visible()
    assert posts == [], f"the over-limit files were posted anyway: {posts}"
    assert attachment_rows(portal_server, address) == 0
    assert portal_server.stored_files() == files_before


def test_over_the_limit_upload_is_refused_by_the_server_and_nothing_of_it_is_kept(
    page: Page, sign_in, portal_server, assert_accessible, screenshot
) -> None:
    address = sign_in(page, "toobig.server")
    files_before = portal_server.stored_files()
    page.get_by_label("Subject", exact=True).fill("Suuri aineisto")
    page.get_by_label("Message", exact=True).fill("Liitteenä koko aineisto.")
    page.get_by_label("Attachments", exact=True).set_input_files([SIX_MB_FILE])
    # The server must refuse by itself: switch off the browser-side check, as for a browser
    # whose script did not load (test_without_javascript.py posts without any script).
    page.get_by_label("Attachments", exact=True).evaluate(
        "input => input.removeAttribute('data-max-bytes')"
    )

    with page.expect_response(is_compose_post) as sent:
        page.get_by_role("button", name="Attach the chosen files", exact=True).click()
    assert sent.value.status == 413

    summary = page.get_by_role("alert")
    expect(summary).to_contain_text("too large")
    expect(summary).to_contain_text(re.compile(r"\b5(\.0)?\sMB"))  # names the 5 MiB limit
    expect(summary.get_by_role("link")).to_have_attribute("href", "#attachments")
    expect(page.locator("#attachments-error")).to_contain_text("too large")
    expect(page.locator("#kept-attachments")).not_to_contain_text("iso-aineisto.bin")
    # What was typed is not lost with the refused upload.
    expect(page.get_by_label("Subject", exact=True)).to_have_value("Suuri aineisto")
    expect(page.get_by_label("Message", exact=True)).to_have_value("Liitteenä koko aineisto.")
    assert_accessible(page, "the compose page with an over-limit upload")
    screenshot(page, "errors-too-large-server-en")

    # The draft has no attachment afterwards, and nothing was left in storage.
    page.goto("/compose")
    expect(page.get_by_role("heading", level=1)).to_have_text("New confidential message")
    expect(page.locator("#kept-attachments li")).to_have_count(0)
    assert attachment_rows(portal_server, address) == 0
    assert portal_server.stored_files() == files_before
