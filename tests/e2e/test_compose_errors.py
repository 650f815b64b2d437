"""Errors on the compose page: a recipient outside the allowed domains, attachments over the
limit. The error is shown in a summary at the top linking to the field and beside the field;
what the sender typed is kept; an over-limit upload keeps nothing of itself."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.e2e

OUTSIDER = "someone@gmail.com"


def is_compose_post(response) -> bool:
    return response.request.method == "POST" and urlsplit(response.url).path == "/compose"


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
    # Chosen files are uploaded at once; these are refused before a byte is sent.
    page.get_by_label("Attachments", exact=True).set_input_files([SIX_MB_FILE])

    warning = page.locator("#attachments-too-large")
    expect(warning).to_be_visible()
    expect(warning).to_contain_text("too large")
    expect(warning).to_contain_text(re.compile(r"\b5(\.0)?\sMB"))  # names the 5 MiB limit
    expect(page.get_by_label("Attachments", exact=True)).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#uploads")).to_be_hidden()
    expect(page.get_by_label("Subject", exact=True)).to_have_value("Suuri aineisto")
    assert_accessible(page, "the compose page warning about too large files")
    screenshot(page, "errors-too-large-browser-en")

    page.get_by_role("button", name="Send", exact=True).click()
    expect(warning).to_be_visible()
    expect(page.get_by_label("Attachments", exact=True)).to_be_focused()
    assert posts == [], f"the over-limit files were posted anyway: {posts}"
    assert attachment_rows(portal_server, address) == 0
    assert portal_server.stored_files() == files_before


def test_over_the_limit_upload_is_refused_by_the_server_and_nothing_of_it_is_kept(
    page: Page, sign_in, portal_server, assert_accessible, screenshot
) -> None:
    # The server must refuse by itself: no chunked uploads (as for a browser whose script did
    # not load), and no browser-side check (removed below) either.
    page.route("**/uploader.js*", lambda route: route.abort())
    address = sign_in(page, "toobig.server")
    files_before = portal_server.stored_files()
    page.get_by_label("Subject", exact=True).fill("Suuri aineisto")
    page.get_by_label("Message", exact=True).fill("Liitteenä koko aineisto.")
    page.get_by_label("Attachments", exact=True).set_input_files([SIX_MB_FILE])
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


def test_a_file_that_no_longer_fits_is_refused_by_the_server_beside_it(
    page: Page, sign_in, portal_server, assert_accessible, screenshot
) -> None:
    """Two tabs of one session: the second still thinks there is room for 5 MB, but the
    first has used most of it. The server refuses the announced file; the page says why."""
    address = sign_in(page, "toobig.chunked")
    other = page.context.new_page()
    other.goto("/compose")
    three_mb = b"\1" * (3 * 1024 * 1024)
    page.get_by_label("Attachments", exact=True).set_input_files(
        [{"name": "eka.bin", "mimeType": "application/octet-stream", "buffer": three_mb}]
    )
    expect(page.locator("#kept-attachments li[data-attachment-id]")).to_contain_text("eka.bin")
    files_before = portal_server.stored_files()

    requests: list[str] = []
    other.on("request", lambda r: "/compose/uploads" in r.url and requests.append(r.method))
    other.get_by_label("Attachments", exact=True).set_input_files(
        [{"name": "toka.bin", "mimeType": "application/octet-stream", "buffer": three_mb}]
    )
    refused = other.locator("#uploads li").filter(has_text="toka.bin")
    expect(refused).to_contain_text(
        "The file is too large: the attachments of a message can be at most 5 MB together."
    )
    expect(refused).to_have_attribute("data-state", "failed")
    expect(other.locator("#uploads-status")).to_contain_text("toka.bin: The file is too large")
    # The page now lists what the other tab attached.
    expect(other.locator("#kept-attachments li[data-attachment-id]")).to_contain_text("eka.bin")
    assert requests == ["POST"], requests  # announced, refused, nothing sent
    assert attachment_rows(portal_server, address) == 1
    assert portal_server.stored_files() == files_before
    assert_accessible(other, "the compose page with a file the server refused")
    screenshot(other, "errors-too-large-chunked-en")

    other.get_by_role("button", name="Remove toka.bin", exact=True).click()
    expect(refused).to_have_count(0)
    expect(other.locator("#uploads")).to_be_hidden()
    assert requests == ["POST"], "nothing to delete on the server"


def test_send_waits_for_the_upload_and_gives_up_when_it_fails(page: Page, sign_in) -> None:
    sign_in(page, "send.waits")
    page.get_by_label("Recipients", exact=True).fill("kirjaamo@valtori.fi")
    page.get_by_label("Subject", exact=True).fill("Odottaa liitettä")
    held = []

    def hold_chunks(route) -> None:
        if route.request.method == "PUT":
            held.append(route)
        else:
            route.continue_()

    page.route("**/compose/uploads/*", hold_chunks)
    posts: list[str] = []
    page.on(
        "request",
        lambda r: r.method == "POST" and r.url.endswith("/compose") and posts.append(r.url),
    )
    attachment = {"name": "liite.pdf", "mimeType": "application/pdf", "buffer": b"%PDF" * 25_000}
    page.get_by_label("Attachments", exact=True).set_input_files([attachment])
    page.wait_for_function("() => document.querySelector('#uploads progress') !== null")
    while not held:
        page.wait_for_timeout(20)

    # Send while the chunk is on its way: the page waits and says so.
    page.get_by_role("button", name="Send", exact=True).click()
    waiting = page.locator("#send-waiting")
    expect(waiting).to_have_text("Sending will start when the files have been uploaded.")
    expect(page.get_by_role("button", name="Send", exact=True)).to_be_focused()

    # The server has lost the upload: sending is called off, and the page says why.
    held[0].fulfill(
        status=404,
        content_type="application/json",
        body='{"error": "This upload no longer exists. Choose the file again."}',
    )
    expect(waiting).to_have_text(
        "The message was not sent: a file could not be uploaded. Remove it or choose it again, "
        "then send."
    )
    expect(page.locator("#uploads li")).to_contain_text(
        "This upload no longer exists. Choose the file again."
    )
    page.wait_for_timeout(300)
    assert posts == [], "the message was sent without its file"
    expect(page).to_have_url(re.compile(r"/compose$"))

    # Removed and chosen again, the file goes up; Send sends.
    page.unroute("**/compose/uploads/*")
    page.get_by_role("button", name="Remove liite.pdf", exact=True).click()
    expect(page.locator("#uploads")).to_be_hidden()
    page.get_by_label("Attachments", exact=True).set_input_files([attachment])
    page.get_by_role("button", name="Send", exact=True).click()
    page.wait_for_url(re.compile(r"/sent/[0-9a-f-]+$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Message sent")
    expect(page.locator("main")).to_contain_text("liite.pdf")
