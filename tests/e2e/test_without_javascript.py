"""Every page works without JavaScript: registering and sending with scripts switched off,
through ordinary form posts and redirects."""

from __future__ import annotations

import re

import pytest
from conftest import continue_with_link, new_recipient
from playwright.sync_api import expect

pytestmark = pytest.mark.e2e


@pytest.fixture
def page_without_js(browser, browser_context_args):
    context = browser.new_context(**{**browser_context_args, "java_script_enabled": False})
    yield context.new_page()
    context.close()


def test_registration_and_sending_work_without_javascript(
    page_without_js, mail, new_address, screenshot
) -> None:
    page = page_without_js
    address = new_address("nojs")
    recipient = new_recipient("kirjaamo")
    content = b"%PDF-1.4\n" + bytes(range(256)) * 40

    page.goto("/?lang=en")
    page.get_by_label("Sender", exact=True).fill(address)
    with page.expect_response(lambda r: r.request.method == "POST") as registered:
        page.get_by_role("button", name="Continue", exact=True).click()
    assert registered.value.status == 200
    assert registered.value.request.resource_type == "document"  # a real form post, no htmx
    expect(page.get_by_role("heading", level=1)).to_have_text("Registration succeeded")

    continue_with_link(page, mail.personal_link(address))
    page.get_by_label("Recipients", exact=True).fill(recipient)
    page.get_by_label("Subject", exact=True).fill("Ilman JavaScriptiä")
    page.get_by_label("Message", exact=True).fill(
        "Lähetetty selaimella, jossa skriptit ovat pois päältä."
    )
    page.get_by_label("Attachments", exact=True).set_input_files(
        [{"name": "liite.pdf", "mimeType": "application/pdf", "buffer": content}]
    )
    screenshot(page, "nojs-compose-en")
    with page.expect_response(lambda r: r.request.method == "POST") as sent:
        page.get_by_role("button", name="Send", exact=True).click()
    assert sent.value.status == 303
    assert sent.value.request.resource_type == "document"
    page.wait_for_url(re.compile(r"/sent/[0-9a-f-]+$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Message sent")
    main = page.locator("main")
    expect(main).to_contain_text(recipient)
    expect(main).to_contain_text("liite.pdf")
    expect(main).to_contain_text("10.0 kB")
    screenshot(page, "nojs-sent-en")

    assert len(mail.wait_for(recipient)) == 1


def test_over_the_limit_upload_is_refused_without_javascript_keeping_the_text(
    page_without_js, sign_in, portal_server
) -> None:
    page = page_without_js
    sign_in(page, "toobig.nojs")
    files_before = portal_server.stored_files()
    page.get_by_label("Subject", exact=True).fill("Suuri aineisto")
    page.get_by_label("Attachments", exact=True).set_input_files(
        [{"name": "iso.bin", "mimeType": "application/octet-stream", "buffer": b"\0" * 6_000_000}]
    )
    with page.expect_response(lambda r: r.request.method == "POST") as sent:
        page.get_by_role("button", name="Attach the chosen files", exact=True).click()
    assert sent.value.status == 413
    expect(page.get_by_role("alert")).to_contain_text("too large")
    expect(page.locator("#attachments-error")).to_contain_text("too large")
    expect(page.get_by_label("Subject", exact=True)).to_have_value("Suuri aineisto")
    expect(page.locator("#kept-attachments li")).to_have_count(0)
    assert portal_server.stored_files() == files_before
