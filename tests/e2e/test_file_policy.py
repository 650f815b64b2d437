"""The file-type policy on the compose page, in a real browser: the page says beforehand that
programs and scripts cannot be sent; a program chosen anyway is refused with its name and the
reason, by its name or by its first bytes, with the chunked uploader (JavaScript) and with the
plain form (no JavaScript); nothing of it is kept, a harmless file chosen with it still goes
up, and what the sender typed stays. tests/unit/views/test_file_policy.py covers the same at
the HTTP level."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from conftest import new_recipient
from playwright.sync_api import Page, Response, expect

pytestmark = pytest.mark.e2e

HINT = {
    "en": "Programs and scripts (such as .exe, .bat or .js files) cannot be sent.",
    "fi": "Ohjelmia ja komentosarjoja (kuten .exe-, .bat- tai .js-tiedostoja) ei voi lähettää.",
}
REASON = (
    "cannot be sent: programs and scripts (such as .exe, .bat or .js files) are not accepted, "
    "because they could harm the recipient's computer."
)
# Refused by its name, whatever its bytes.
PROGRAM_BY_NAME = {
    "name": "asennus.exe",
    "mimeType": "application/octet-stream",
    "buffer": b"hello",
}
# Refused by its bytes: a Windows program's first bytes under a document's name.
PROGRAM_BY_BYTES = {
    "name": "raportti.pdf",
    "mimeType": "application/pdf",
    "buffer": b"MZ\x90\x00" + b"\x00" * 600,
}
HARMLESS = {"name": "muistio.txt", "mimeType": "text/plain", "buffer": b"Muistio.\n" * 50}


def refused_text(name: str) -> str:
    return f"“{name}” {REASON}"


def rows(portal_server, table: str, address: str, extra: str = "") -> list[tuple]:
    """The sender's rows of ``attachment`` or ``upload``: (filename, storage_key)."""
    return portal_server.sql(
        f"SELECT {table}.filename, {table}.storage_key FROM {table} "
        f"JOIN message ON message.id = {table}.message_id "
        f"JOIN sender ON sender.id = message.sender_id WHERE sender.email = ?{extra}",
        (address.lower(),),
    )


def sent_messages(portal_server, address: str) -> int:
    return portal_server.sql(
        "SELECT COUNT(*) FROM message JOIN sender ON sender.id = message.sender_id "
        "WHERE sender.email = ? AND message.status = 'sent'",
        (address.lower(),),
    )[0][0]


# -- the hint, before anything is chosen --------------------------------------------------------


def test_the_compose_page_says_under_the_file_field_that_programs_cannot_be_sent(
    page: Page, sign_in
) -> None:
    sign_in(page, "policy.hint")  # the English page (sign_in registers in English)

    hint = page.locator("#attachments-hint")
    expect(hint).to_be_visible()
    expect(hint).to_contain_text(HINT["en"])
    # Screen readers hear it with the file field.
    expect(page.get_by_label("Attachments", exact=True)).to_have_attribute(
        "aria-describedby", re.compile(r"\battachments-hint\b")
    )


def test_the_finnish_compose_page_says_that_programs_cannot_be_sent(page: Page, sign_in) -> None:
    sign_in(page, "policy.hint.fi")
    page.goto("/compose?lang=fi")
    expect(page.locator("html")).to_have_attribute("lang", "fi")

    hint = page.locator("#attachments-hint")
    expect(hint).to_be_visible()
    expect(hint).to_contain_text(HINT["fi"])
    expect(page.get_by_label("Liitteet", exact=True)).to_have_attribute(
        "aria-describedby", re.compile(r"\battachments-hint\b")
    )


# -- with JavaScript: the chunked uploader ---------------------------------------------------


def test_the_uploader_shows_why_a_program_is_refused_by_name_or_bytes_and_uploads_the_rest(
    page: Page, sign_in, portal_server, check_this_page
) -> None:
    address = sign_in(page, "policy.js")
    files_before = set(portal_server.stored_files())
    answers: list[Response] = []
    page.on(
        "response",
        lambda r: urlsplit(r.url).path.startswith("/compose/uploads") and answers.append(r),
    )
    page.get_by_label("Subject", exact=True).fill("Hakemus")

    page.get_by_label("Attachments", exact=True).set_input_files(
        [PROGRAM_BY_NAME, PROGRAM_BY_BYTES, HARMLESS]
    )

    # The harmless file goes up and joins the attached files.
    kept = page.locator("#kept-attachments li[data-attachment-id]")
    expect(kept).to_have_count(1)
    expect(kept).to_contain_text("muistio.txt")
    # Each program stays in the upload list with the server's words: its name and why.
    uploads = page.locator("#uploads")
    expect(uploads).to_be_visible()
    for name in ("asennus.exe", "raportti.pdf"):
        item = uploads.locator("li").filter(has_text=name)
        expect(item).to_have_attribute("data-state", "failed")
        expect(item.locator(".upload-state")).to_have_text(refused_text(name))
    expect(page.locator("#uploads-status")).to_contain_text(
        f"raportti.pdf: {refused_text('raportti.pdf')}"
    )
    expect(page.get_by_label("Subject", exact=True)).to_have_value("Hakemus")

    # The server refused the .exe at its announcement, before a byte was sent, and the
    # "pdf" at its first chunk, both with 422.
    announced = {
        r.request.post_data_json["filename"]: r for r in answers if r.request.method == "POST"
    }
    assert set(announced) == {"asennus.exe", "raportti.pdf", "muistio.txt"}
    assert announced["asennus.exe"].status == 422
    assert announced["asennus.exe"].json()["reason"] == "file-type"
    assert announced["raportti.pdf"].ok
    pdf_upload = announced["raportti.pdf"].json()["id"]
    chunked_to = {
        urlsplit(r.url).path.rsplit("/", 1)[-1] for r in answers if r.request.method == "PUT"
    }
    assert chunked_to == {pdf_upload, announced["muistio.txt"].json()["id"]}  # none for the .exe
    pdf_chunks = [r for r in answers if r.request.method == "PUT" and pdf_upload in r.url]
    assert [r.status for r in pdf_chunks] == [422]
    assert pdf_chunks[0].json() == {
        "error": refused_text("raportti.pdf"),
        "reason": "file-type",
    }

    # Nothing of the refused files is kept: no upload, no attachment, no stored bytes; the
    # only new file in storage is the harmless one.
    assert rows(portal_server, "upload", address) == []
    attachments = rows(portal_server, "attachment", address)
    assert len(attachments) == 1  # the harmless one (its name is sealed in the database)
    new_files = set(portal_server.stored_files()) - files_before
    assert [path.name for path in new_files] == [attachments[0][1]]

    check_this_page(
        page, "the compose page refusing programs in the uploader", "sender-file-refused-js"
    )


# -- without JavaScript: the plain form -------------------------------------------------------


@pytest.fixture
def page_without_js(browser, browser_context_args):
    context = browser.new_context(**{**browser_context_args, "java_script_enabled": False})
    yield context.new_page()
    context.close()


def test_a_program_sent_with_the_form_without_javascript_is_refused_keeping_the_text(
    page_without_js, sign_in, portal_server, screenshot, phone_sized, assert_accessible
) -> None:
    page = page_without_js
    address = sign_in(page, "policy.nojs")
    files_before = portal_server.stored_files()
    recipient = new_recipient("kirjaamo")
    body = "Liitteenä asennusohjelma."
    page.get_by_label("Recipients", exact=True).fill(recipient)
    page.get_by_label("Subject", exact=True).fill("Hakemus")
    page.get_by_label("Message", exact=True).fill(body)
    page.get_by_label("Attachments", exact=True).set_input_files([PROGRAM_BY_NAME])

    with page.expect_response(lambda r: r.request.method == "POST") as sent:
        page.get_by_role("button", name="Send", exact=True).click()
    assert sent.value.status == 422
    assert sent.value.request.resource_type == "document"  # a real form post

    # At the top, linking to the file field, and beside the field: the name and why.
    summary = page.get_by_role("alert")
    expect(summary).to_contain_text("There is a problem")
    link = summary.get_by_role("link", name=re.compile(re.escape("asennus.exe")))
    expect(link).to_have_attribute("href", "#attachments")
    expect(link).to_have_text(refused_text("asennus.exe"))
    expect(page.locator("#attachments-error")).to_contain_text(refused_text("asennus.exe"))
    field = page.get_by_label("Attachments", exact=True)
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(field).to_have_attribute("aria-describedby", re.compile(r"\battachments-error\b"))
    expect(page).to_have_title(re.compile(r"^Error"))

    # What was typed stays; the message was not sent and nothing of the file was kept.
    expect(page.get_by_label("Recipients", exact=True)).to_have_value(recipient)
    expect(page.get_by_label("Subject", exact=True)).to_have_value("Hakemus")
    expect(page.get_by_label("Message", exact=True)).to_have_value(body)
    expect(page.locator("#kept-attachments li")).to_have_count(0)
    assert sent_messages(portal_server, address) == 0
    assert rows(portal_server, "attachment", address) == []
    assert portal_server.stored_files() == files_before

    screenshot(page, "sender-file-refused-nojs-en")
    with phone_sized(page):
        screenshot(page, "sender-file-refused-nojs-en-phone")
    check_markup_accessible(
        page,
        "the compose page refusing a program without JavaScript",
        assert_accessible,
        phone_sized,
    )


def check_markup_accessible(page: Page, what: str, assert_accessible, phone_sized) -> None:
    """axe-core on the markup of a page without JavaScript, at desktop and phone size.

    axe cannot run where scripts are off (its checks wait on timers, which never fire), so
    it runs on the same HTML in a browser with scripts on, at the page's own URL (its
    stylesheets load as they did) and with the page's scripts blocked: what is checked is what
    the browser without JavaScript shows."""
    html, url = page.content(), page.url
    browser = page.context.browser
    assert browser is not None
    context = browser.new_context(viewport=page.viewport_size, bypass_csp=True)
    try:
        copy = context.new_page()
        copy.route(re.compile(r"\.js(\?.*)?$"), lambda route: route.abort())
        copy.route(
            lambda address: address == url,
            lambda route: route.fulfill(status=200, content_type="text/html", body=html),
        )
        copy.goto(url)
        expect(copy.locator("#attachments-error")).to_be_visible()
        assert_accessible(copy, what)
        with phone_sized(copy):
            assert_accessible(copy, f"{what} (phone)")
    finally:
        context.close()
