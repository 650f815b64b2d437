"""The recipient side in a real browser, as a story.

A sender sends one message, with a read receipt and two attachments, to a plain recipient and
to a phone-verified (``.sec``) one. A mail scanner fetches both links and changes nothing. The
plain recipient opens the message, saves an attachment and the zip, and the sender gets a read
receipt. The ``.sec`` recipient gets a PIN by SMS (through the ``sms_gateway`` fixture), types
it wrong once and then right. Someone else with the same link types five wrong PINs and locks
it; the sender is told by e-mail. The plain recipient replies with a file, the sender reads the
reply from their own mail, and the sender's status page shows who opened and who is locked.

A second story covers Close: afterwards the link shows the landing page again and the
attachment and zip URLs answer 401.

Every recipient page is checked with axe and screenshotted in Finnish and English, at desktop
and phone size (test-artifacts/screenshots/recipient-*.png, close-*.png). Assertions on texts
are made in English (translations may lag behind).
"""

from __future__ import annotations

import io
import os
import re
import secrets
import time
import urllib.request
import zipfile
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from babel.dates import format_date
from conftest import download, new_recipient, reload_until
from playwright.sync_api import FilePayload, Page, Response, expect

from portal.testing import links_in

pytestmark = pytest.mark.e2e

HELSINKI = ZoneInfo("Europe/Helsinki")
SUBJECT = "Lausuntopyyntö 2026/204 – täydennys"
BODY = "Hei,\n\npyydämme lausuntoa oheisista asiakirjoista.\nVastatkaa tämän palvelun kautta."
SIGNATURE = "Maija Meikäläinen\nValtori"
PDF_NAME = "Lausuntopyyntö – liite 1 (ÅÄÖ).pdf"
PDF_BYTES = os.urandom(345_678)
CSV_NAME = "vastaanottajat.csv"
CSV_BYTES = "nimi;kunta\nÄänekoski;1\nÖrö;2\n".encode()
REPLY_BODY = "Kiitos viestistä.\n\nLausuntomme on liitteenä."
REPLY_NAME = "Lausunto – Äänekoski.pdf"
REPLY_BYTES = os.urandom(123_456)
MAX_TRIES = 5  # PORTAL_PIN_MAX_TRIES, default
QUIET_SECONDS = 2.5  # more than two rounds of the outbox worker (PORTAL_OUTBOX_POLL_SECONDS=1)


# -- helpers -----------------------------------------------------------------------------------


def mobile_number() -> str:
    """A Finnish mobile number (as a sender types it) that no other test uses."""
    return f"040{secrets.randbelow(10**7):07d}"


def token_of(link: str) -> str:
    return link.rstrip("/").rsplit("/", 1)[1]


def send_message(
    page: Page, recipients: str, *, read_receipt: bool, files: list[tuple[str, str, bytes]]
) -> str:
    """Fill in the compose page (in English) and send; return the confirmation page's URL."""
    page.goto("/compose?lang=en")
    page.get_by_label("Recipients", exact=True).fill(recipients)
    page.get_by_label("Subject", exact=True).fill(SUBJECT)
    if read_receipt:
        page.get_by_label("Request read receipt", exact=True).check()
    page.get_by_label("Message", exact=True).fill(BODY)
    page.get_by_label("Signature", exact=True).fill(SIGNATURE)
    page.get_by_label("Attachments", exact=True).set_input_files(
        [FilePayload(name=name, mimeType=kind, buffer=data) for name, kind, data in files]
    )
    page.get_by_role("button", name="Send", exact=True).click()
    page.wait_for_url(re.compile(r"/sent/[0-9a-f-]+$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Message sent")
    return page.url


def message_link(mail, address: str, subject_fragment: str = "") -> str:
    """The one ``/m/`` link in the newest mail to ``address`` (with ``subject_fragment``)."""
    found = mail.wait_for_subject(address, subject_fragment) if subject_fragment else None
    captured = (found or mail.wait_for(address))[-1]
    links = {link for link in links_in(captured.text()) if "/m/" in link}
    assert len(links) == 1, f"expected one /m/ link in the mail to {address}: {links}"
    return links.pop()


def scanner_fetch(url: str, method: str) -> tuple[int, str]:
    """What a mail scanner does: fetch the link with no cookies, no JavaScript."""
    request = urllib.request.Request(url, method=method, headers={"User-Agent": "LinkScanner/1"})
    with urllib.request.urlopen(request, timeout=10) as response:  # loopback only
        return response.status, response.read().decode("utf-8", errors="replace")


def subjects_to(mail, address: str) -> list[str]:
    return [str(m.message["Subject"]) for m in mail.to(address)]


def submit_code(page: Page, code: str) -> Response:
    """Type ``code`` on the PIN page (in any language) and submit it; return the answer."""
    page.locator("input[name=code]").fill(code)
    with page.expect_response(
        lambda r: r.request.method == "POST" and r.url.endswith("/code")
    ) as answer:
        page.locator("form[action$='/code'] button[type=submit]").click()
    page.wait_for_load_state()
    return answer.value


def press_open_message(page: Page) -> None:
    """The landing page's Open message button, in any language."""
    page.locator("form[action$='/open'] button[type=submit]").click()
    page.wait_for_load_state()


def wrong_pin(right: str) -> str:
    return "000000" if right != "000000" else "111111"


# -- the story ---------------------------------------------------------------------------------


def test_recipients_open_download_get_locked_and_reply_and_the_sender_sees_it_all(
    page: Page,
    new_context,
    mail,
    sms_gateway,
    portal_server,
    sign_in,
    page_in_languages,
    check_this_page,
) -> None:
    plain = new_recipient("anna")
    secure = new_recipient("ville")
    phone = mobile_number()
    masked = f"•••• {phone[-3:]}"

    # 1. The sender sends one message with a read receipt and two files to both recipients.
    sender = sign_in(page, "recipientflow")
    send_message(
        page,
        f"{plain}, {secure}.{phone}.sec",
        read_receipt=True,
        files=[(PDF_NAME, "application/pdf", PDF_BYTES), (CSV_NAME, "text/csv", CSV_BYTES)],
    )
    links = {address: message_link(mail, address) for address in (plain, secure)}

    # 2. A mail scanner GETs and HEADs both links (twice): nothing changes. No SMS is sent, no
    #    read receipt is written, no code is issued, and the landing page still offers Open.
    for link in links.values():
        for method in ("GET", "HEAD", "GET"):
            status, body = scanner_fetch(link, method)
            assert status == 200, f"{method} {link}: {status}"
            if method == "GET":
                assert f'action="/m/{token_of(link)}/open"' in body, "no Open message form"
    time.sleep(QUIET_SECONDS)
    assert sms_gateway.to(phone) == [], "a scanner's GET/HEAD sent an SMS"
    assert not [s for s in subjects_to(mail, sender) if "Read receipt" in s]
    for address in (plain, secure):
        assert portal_server.sql(
            "SELECT opened_at, failed_attempts, locked_at FROM recipient WHERE email = ?",
            (address,),
        ) == [(None, 0, None)], address
    assert portal_server.sql(
        "SELECT COUNT(*) FROM access_code JOIN recipient ON recipient.id = recipient_id "
        "WHERE recipient.email = ?",
        (secure,),
    ) == [(0,)]

    # 3. The plain recipient (their own browser) finds the landing page and opens the message.
    reader = new_context().new_page()
    for lang in ("fi", "en"):
        page_in_languages(reader, links[plain], lang, "the landing page", "recipient-01-landing")
    expect(reader.get_by_role("heading", level=1)).to_have_text(
        "A confidential message is waiting for you"
    )
    landing = reader.locator("main")
    expect(landing).to_contain_text(sender)
    expect(landing).to_contain_text(plain)
    expect(landing).not_to_contain_text(SUBJECT)
    reader.get_by_role("button", name="Open message", exact=True).click()
    expect(reader).to_have_url(links[plain])
    expect(reader.get_by_role("heading", level=1)).to_have_text(SUBJECT)
    for lang in ("fi", "sv", "en"):
        page_in_languages(reader, links[plain], lang, "the message", "recipient-02-message")
    message = reader.locator("main")
    for shown in (sender, plain, secure, *BODY.splitlines(), *SIGNATURE.splitlines()):
        if shown.strip():
            expect(message).to_contain_text(shown)
    expect(message).not_to_contain_text(phone[-7:])  # the other recipient's number is private

    # 4. It saves one attachment and the zip: exactly what was uploaded.
    saved = download(reader, PDF_NAME)
    assert saved.suggested_filename == PDF_NAME
    assert Path(saved.path()).read_bytes() == PDF_BYTES
    expect(
        reader.get_by_role("heading", name="Message with attachments (zip)", exact=True)
    ).to_be_visible()
    saved = download(reader, re.compile(r"^Save\b"))
    assert saved.suggested_filename.endswith(".zip"), saved.suggested_filename
    archive = zipfile.ZipFile(io.BytesIO(Path(saved.path()).read_bytes()))
    assert archive.testzip() is None
    assert sorted(archive.namelist()) == sorted(["message.txt", PDF_NAME, CSV_NAME])
    assert archive.read(PDF_NAME) == PDF_BYTES
    assert archive.read(CSV_NAME) == CSV_BYTES
    assert SUBJECT in archive.read("message.txt").decode("utf-8")

    # 5. The sender gets a read receipt (in English, the language they wrote in), without the
    #    message's content.
    receipts = mail.wait_for_subject(sender, "Read receipt")
    assert len(receipts) == 1, subjects_to(mail, sender)
    assert str(receipts[0].message["Subject"]) == "Read receipt"
    assert plain in receipts[0].text()
    assert SUBJECT not in receipts[0].text() + receipts[0].html()

    # 6. The .sec recipient (their own browser): Open message sends a PIN by SMS.
    official = new_context().new_page()
    for lang in ("fi", "en"):
        page_in_languages(
            official, links[secure], lang, "the landing page (PIN)", "recipient-03-landing-pin"
        )
    expect(official.locator("main")).to_contain_text(masked)
    official.get_by_role("button", name="Open message", exact=True).click()
    code_url = f"{links[secure]}/code"
    expect(official).to_have_url(code_url)
    expect(official.get_by_role("heading", level=1)).to_have_text("Enter the PIN code")
    # Until the SMS is delivered the page says the code is on its way; then it names the phone.
    sms = sms_gateway.wait_for(phone)
    reload_until(official, lambda: masked in official.locator("main").inner_text(), "naming it")
    expect(official.locator("main")).to_contain_text(masked)
    expect(official.get_by_label("PIN code", exact=True)).to_be_visible()
    expect(official.get_by_role("button", name="Open message", exact=True)).to_be_visible()
    expect(official.get_by_role("button", name="Send a new PIN", exact=True)).to_be_visible()

    assert len(sms) == 1, f"{len(sms)} SMS for one Open message"
    assert sms[0].headers.get("Authorization") == f"Bearer {sms_gateway.token}"
    assert sms[0].headers.get("Content-Type", "").startswith("application/json")
    assert sms[0].to == f"+358{phone[1:]}"
    pin = sms_gateway.pin(phone)
    assert "PIN" in sms[0].text and "10 minutes" in sms[0].text, sms[0].text  # English chosen

    # Showing the PIN page again (in both languages) sends nothing.
    for lang in ("fi", "en"):
        page_in_languages(official, code_url, lang, "the PIN page", "recipient-04-code")

    # 7. A wrong PIN (once in Finnish, once in English) shows the error; the right one opens.
    for lang in ("fi", "en"):
        official.goto(f"{code_url}?lang={lang}")
        answer = submit_code(official, wrong_pin(pin))
        assert answer.status == 400, answer.status
        expect(official.locator("#error-summary")).to_be_visible()
        expect(official.locator("input[name=code]")).to_have_attribute("aria-invalid", "true")
        check_this_page(official, "the PIN page with a wrong PIN", "recipient-05-wrong-code")
    expect(official.get_by_role("heading", level=1)).to_have_text("Enter the PIN code")
    expect(official.locator("#error-summary")).to_contain_text("There is a problem")
    expect(official.locator("#error-summary")).to_contain_text(
        f"The code is wrong. You have {MAX_TRIES - 2} tries left."
    )
    answer = submit_code(official, pin)
    expect(official).to_have_url(links[secure])
    expect(official.get_by_role("heading", level=1)).to_have_text(SUBJECT)
    expect(official.locator("main")).to_contain_text(BODY.splitlines()[0])
    assert len(sms_gateway.to(phone)) == 1, "showing or answering the PIN page sent an SMS"
    receipts = mail.wait_for_subject(sender, "Read receipt", count=2)
    assert secure in receipts[-1].text()

    # 8. Someone else with the same link (a fresh browser) gets a new PIN, types five wrong
    #    ones and locks the link; the sender is told by e-mail.
    stranger = new_context().new_page()
    stranger.goto(f"{links[secure]}?lang=en")
    stranger.get_by_role("button", name="Open message", exact=True).click()
    expect(stranger).to_have_url(code_url)
    sms_gateway.wait_for(phone, count=2)
    second_pin = sms_gateway.pin(phone)
    for attempt in range(1, MAX_TRIES + 1):
        answer = submit_code(stranger, wrong_pin(second_pin))
        left = MAX_TRIES - attempt
        if left:
            assert answer.status == 400, (attempt, answer.status)
            expect(stranger.locator("main")).to_contain_text(
                f"You have {left} {'try' if left == 1 else 'tries'} left."
            )
    assert answer.status == 403, answer.status
    expect(stranger.get_by_role("heading", level=1)).to_have_text("Access to the message is locked")
    check_this_page(stranger, "the locked page (after the fifth wrong PIN)", "recipient-06-locked")
    for lang in ("fi", "en"):
        page_in_languages(
            stranger, links[secure], lang, "the locked link", "recipient-06-locked-link", 403
        )
    expect(stranger.get_by_role("button", name="Open message")).to_have_count(0)
    locked = mail.wait_for_subject(sender, "could not open your message")
    assert len(locked) == 1, subjects_to(mail, sender)
    assert secure in locked[0].text()
    assert second_pin not in locked[0].text()

    # 9. The plain recipient replies with a file.
    reader.goto(f"{links[plain]}?lang=en")
    reader.get_by_role("link", name="Reply", exact=True).click()
    reply_url = f"{links[plain]}/reply"
    expect(reader).to_have_url(reply_url)
    expect(reader.get_by_role("heading", level=1)).to_have_text("Reply")
    for lang in ("fi", "en"):
        page_in_languages(reader, reply_url, lang, "the reply page", "recipient-07-reply")
    expect(reader.locator("main")).to_contain_text(sender)
    expect(reader.locator("main")).to_contain_text(f"Re: {SUBJECT}")
    reader.get_by_label("Message", exact=True).fill(REPLY_BODY)
    reader.get_by_label("Attachments", exact=True).set_input_files(
        [FilePayload(name=REPLY_NAME, mimeType="application/pdf", buffer=REPLY_BYTES)]
    )
    reader.get_by_role("button", name="Send reply", exact=True).click()
    reader.wait_for_url(f"{reply_url}/sent")
    expect(reader.get_by_role("heading", level=1)).to_have_text("Reply sent")
    expect(reader.locator("main")).to_contain_text(sender)
    for lang in ("fi", "en"):
        page_in_languages(
            reader, f"{reply_url}/sent", lang, "the reply-sent page", "recipient-08-reply-sent"
        )

    # 10. The sender gets a notification (no content) and opens the reply from it in their own
    #     browser: no PIN, a notice about what it answers, the file.
    reply_link = message_link(mail, sender, "Reply to your confidential message")
    notification = mail.wait_for_subject(sender, "Reply to your confidential message")[-1]
    for secret in (SUBJECT, *REPLY_BODY.splitlines(), REPLY_NAME):
        if secret.strip():
            assert secret not in f"{notification.text()}\n{notification.html()}", secret
    inbox = page.context.new_page()
    inbox.goto(f"{reply_link}?lang=en")
    expect(inbox.get_by_role("heading", level=1)).to_have_text(
        "A confidential message is waiting for you"
    )
    inbox.get_by_role("button", name="Open message", exact=True).click()
    expect(inbox).to_have_url(reply_link)
    expect(inbox.get_by_role("heading", level=1)).to_have_text(f"Re: {SUBJECT}")
    shown = inbox.locator("main")
    expect(shown).to_contain_text(f"This is a reply to your message “{SUBJECT}” sent on ")
    expect(shown).to_contain_text(plain)
    for line in REPLY_BODY.splitlines():
        if line.strip():
            expect(shown).to_contain_text(line)
    saved = download(inbox, REPLY_NAME)
    assert Path(saved.path()).read_bytes() == REPLY_BYTES
    for lang in ("fi", "en"):
        page_in_languages(inbox, reply_link, lang, "the reply, read", "recipient-09-reply-read")
    inbox.close()

    # 11. The sender's status page (their original tab): opened, and locked.
    today = format_date(datetime.now(HELSINKI), "long", locale="en")
    page.goto("/sent?lang=en")
    expect(page.get_by_role("heading", level=1)).to_have_text("Sent messages")
    expect(page.locator("main")).to_contain_text(SUBJECT)
    expect(page.locator("tr", has_text=plain).locator("td").nth(1)).to_have_text(
        re.compile(rf"^\s*Opened {re.escape(today)}")
    )
    # The .sec recipient opened with the right PIN before the link was locked: both show.
    expect(page.locator("tr", has_text=secure).locator("td").nth(1)).to_have_text(
        re.compile(rf"^\s*Opened {re.escape(today)}[\s\S]*Locked: too many wrong codes\s*$")
    )
    expect(page.locator("tr", has_text=secure)).to_contain_text(masked)
    for lang in ("fi", "sv", "en"):
        page_in_languages(page, "/sent", lang, "the status page", "recipient-10-status")
    # Its history, opened by keyboard: the story's events, named, with no content.
    history = page.locator("details.history")
    history.locator("summary").focus()
    page.keyboard.press("Enter")
    expect(history).to_have_attribute("open", "")
    expect(history).to_contain_text(f"Opened by {plain}")
    expect(history).to_contain_text(f"The link of {secure} was locked after too many wrong PINs")
    expect(history).not_to_contain_text("pyydämme lausuntoa")  # never the message text
    check_this_page(page, "the status page with its history open", "recipient-11-history")

    # Nothing more went out than the story asked for.
    assert len(mail.wait_for_subject(sender, "Read receipt")) == 2, subjects_to(mail, sender)
    assert len(sms_gateway.to(phone)) == 2
    assert all(r.authorized for r in sms_gateway.requests), "an SMS without the right token"


# -- Close -------------------------------------------------------------------------------------


def wait_for_status(page: Page, address: str, text: str, timeout: float = 15.0) -> None:
    """Reload the status page until the row of ``address`` shows ``text`` (the outbox worker
    marks the notification sent in the background)."""
    deadline = time.monotonic() + timeout
    while True:
        page.goto("/sent?lang=en")
        cell = page.locator("tr", has_text=address).locator("td").nth(1)
        if text in cell.inner_text():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{address}: {cell.inner_text()!r}, expected {text!r}")
        time.sleep(0.2)


def test_close_ends_the_access_of_this_browser(
    page: Page,
    new_context,
    mail,
    sign_in,
    page_in_languages,
    check_this_page,
    assert_accessible,
) -> None:
    reader_address = new_recipient("kaisa")
    absent_address = new_recipient("olli")
    sign_in(page, "closeflow")
    send_message(
        page,
        f"{reader_address}, {absent_address}",
        read_receipt=False,
        files=[(CSV_NAME, "text/csv", CSV_BYTES)],
    )
    link = message_link(mail, reader_address)
    message_link(mail, absent_address)  # notified, and never opens

    reader = new_context().new_page()
    for lang in ("fi", "en"):
        reader.goto(f"{link}?lang={lang}")
        press_open_message(reader)
        expect(reader).to_have_url(link)
        expect(reader.get_by_role("heading", level=1)).to_have_text(SUBJECT)
        file_url = reader.get_by_role("link", name=CSV_NAME, exact=True).get_attribute("href")
        assert file_url and reader.request.get(file_url).body() == CSV_BYTES
        reader.locator("form[action$='/close'] button[type=submit]").click()
        reader.wait_for_load_state()
        check_this_page(reader, "the closed page", "close-01-closed")

    expect(reader.get_by_role("heading", level=1)).to_have_text("The message is closed")
    reader.get_by_role("link", name="Open the message again", exact=True).click()
    expect(reader).to_have_url(link)
    expect(reader.get_by_role("heading", level=1)).to_have_text(
        "A confidential message is waiting for you"
    )
    expect(reader.locator("main")).to_contain_text("You opened this message on ")
    expect(reader.locator("main")).not_to_contain_text(CSV_NAME)
    assert_accessible(reader, "the landing page after Close")

    # The files are out of reach: the downloads answer 401 (in a browser, a page to open again).
    for url in (file_url, f"{link}/zip"):
        response = reader.request.get(url)
        assert response.status == 401, f"{url}: {response.status}"
        assert CSV_BYTES not in response.body()
    for lang in ("fi", "en"):
        page_in_languages(reader, file_url, lang, "the message is not open", "close-02-ended", 401)
    expect(reader.get_by_role("heading", level=1)).to_have_text("The message is not open")

    # The sender's status: one opened, one notified and not opened.
    wait_for_status(page, reader_address, "Opened ")
    wait_for_status(page, absent_address, "Notified, not opened yet")
