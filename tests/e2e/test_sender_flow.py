"""The whole sender flow in a real browser: register, open the personal link from the mail,
compose with two recipients (one phone-verified) and two attachments, send, read the
confirmation, save the zip and compare it byte for byte, check the notification e-mails and
open a recipient's link."""

from __future__ import annotations

import io
import os
import re
import struct
import zipfile
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from babel.dates import format_date
from conftest import continue_with_link, new_recipient
from playwright.sync_api import Page, expect

from portal.testing import links_in

pytestmark = pytest.mark.e2e

HELSINKI = ZoneInfo("Europe/Helsinki")
# Unique per run of the test, so the session-wide mail catcher holds only this test's mail.
PHONE_RECIPIENT = new_recipient("ville.virkamies")
PLAIN_RECIPIENT = new_recipient("anna", "example.fi")
SUBJECT = "Hakemus 2026/117 – liitteet"
BODY = "Hei,\n\nliitteenä pyydetyt asiakirjat.\nToinen rivi: säilyy rivinvaihtoineen."
SIGNATURE = "Maija Meikäläinen\n040 765 4321"
PDF_NAME = "Päätös – liite 1 (ÅÄÖ).pdf"
CSV_NAME = "tiedot.csv"
PDF_BYTES = os.urandom(1_234_567)  # shown as 1.2 MB
CSV_BYTES = (b"nimi;summa\n" + b"rivi;12345\n" * 240)[:2_500]  # shown as 2.4 kB


def summary_of(page: Page) -> dict[str, str]:
    """The confirmation page's summary list as {term: description}, spaces normalised."""
    result = {}
    for term in page.locator("dl dt").all():
        description = term.locator("xpath=following-sibling::dd[1]").inner_text()
        result[term.inner_text().strip()] = description.replace("\xa0", " ").strip()
    return result


def zip64_members(archive: zipfile.ZipFile) -> list[str]:
    """Names of members carrying a zip64 extra field (header id 0x0001)."""
    found = []
    for info in archive.infolist():
        extra, offset = info.extra, 0
        while offset + 4 <= len(extra):
            header_id, size = struct.unpack_from("<HH", extra, offset)
            if header_id == 0x0001:
                found.append(info.filename)
            offset += 4 + size
    return found


def test_sender_registers_sends_two_attachments_and_saves_exactly_what_was_sent(
    page: Page,
    mail,
    new_context,
    base_url,
    new_address,
    assert_accessible,
    screenshot,
    phone_sized,
    page_in_languages,
) -> None:
    sender = new_address("flow")

    # 1. The start page, in English and Finnish, desktop and phone.
    for lang in ("fi", "en"):
        page_in_languages(page, "/", lang, "the start page", "flow-01-start")

    # 2. Sender + Continue: the registration page.
    page.get_by_label("Sender", exact=True).fill(sender)
    page.get_by_role("button", name="Continue", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Registration succeeded")
    main = page.locator("main")
    expect(main).to_contain_text(sender)
    expect(main).to_contain_text("The session is closed. You can close the browser now.")
    expect(main).to_contain_text("clear the browser's cache")
    assert_accessible(page, "the registration page")
    screenshot(page, "flow-02-registered-en")

    # 3. The personal link from the registration mail, written in the sender's language.
    registration = mail.wait_for(sender)
    assert len(registration) == 1, f"expected one registration mail, got {len(registration)}"
    assert 'lang="en"' in registration[0].html()
    link = mail.personal_link(sender)
    assert link.startswith(f"{base_url}/s/"), link
    path = "/" + link.split("/", 3)[3]
    for lang in ("fi", "sv"):  # opening the link changes nothing: it can be shown again
        page_in_languages(page, path, lang, "the personal link page", "flow-02b-continue")
    page.goto(link + "?lang=en")
    expect(page.locator("main")).to_contain_text("Continue as")
    continue_with_link(page, link)

    # 4. The compose page, in English and Finnish, desktop and phone.
    expect(page.get_by_role("heading", level=1)).to_have_text("New confidential message")
    expect(page.locator("main")).to_contain_text(sender)
    for lang in ("fi", "en"):
        page_in_languages(page, "/compose", lang, "the compose page", "flow-03-compose")

    page.get_by_label("Recipients", exact=True).fill(
        f"{PHONE_RECIPIENT}.0400123456.sec, {PLAIN_RECIPIENT}"
    )
    page.get_by_label("Subject", exact=True).fill(SUBJECT)
    page.get_by_label("Request read receipt", exact=True).check()
    page.get_by_label("Message", exact=True).fill(BODY)
    page.get_by_label("Signature", exact=True).fill(SIGNATURE)
    page.get_by_label("Attachments", exact=True).set_input_files(
        [
            {"name": PDF_NAME, "mimeType": "application/pdf", "buffer": PDF_BYTES},
            {"name": CSV_NAME, "mimeType": "text/csv", "buffer": CSV_BYTES},
        ]
    )
    assert_accessible(page, "the filled-in compose page")
    screenshot(page, "flow-04-compose-filled-en")

    # 5. Send: the confirmation page.
    before = format_date(datetime.now(HELSINKI), "long", locale="en")
    deleted_on = {format_date(datetime.now(HELSINKI) + timedelta(days=30), "long", locale="en")}
    page.get_by_role("button", name="Send", exact=True).click()
    page.wait_for_url(re.compile(r"/sent/[0-9a-f-]+$"))
    after = format_date(datetime.now(HELSINKI), "long", locale="en")
    deleted_on.add(format_date(datetime.now(HELSINKI) + timedelta(days=30), "long", locale="en"))
    confirmation_url = page.url
    expect(page.get_by_role("heading", level=1)).to_have_text("Message sent")

    shown = summary_of(page)
    assert shown["Sender"] == sender
    recipients = shown["Recipients"]
    assert PHONE_RECIPIENT in recipients and PLAIN_RECIPIENT in recipients
    assert ".sec" not in recipients and "0400123456" not in recipients, recipients
    assert "•••• 456" in recipients, recipients
    assert shown["Subject"] == SUBJECT
    assert before in shown["Date"] or after in shown["Date"], shown["Date"]
    assert shown["Read receipt"] == "Requested"
    assert shown["Message"] == BODY
    assert shown["Signature"] == SIGNATURE
    attachments = " ".join(shown["Attachments"].split())
    assert f"{PDF_NAME} 1.2 MB" in attachments, attachments
    assert f"{CSV_NAME} 2.4 kB" in attachments, attachments
    notice = page.locator("main .panel--notice").inner_text()  # PORTAL_RETENTION_DAYS: 30
    assert any(f"will be deleted on {day}." in notice for day in deleted_on), notice
    for lang in ("fi", "en"):
        page_in_languages(page, confirmation_url, lang, "the confirmation page", "flow-05-sent")

    # 6. Save: the zip holds exactly what was sent.
    with page.expect_download() as download_info:
        page.get_by_role("link", name=re.compile(r"^Save\b")).click()
    download = download_info.value
    assert download.suggested_filename.endswith(".zip"), download.suggested_filename
    archive = zipfile.ZipFile(io.BytesIO(Path(download.path()).read_bytes()))
    assert archive.testzip() is None
    assert sorted(archive.namelist()) == sorted(
        ["message.txt", PDF_NAME, CSV_NAME, "receipt.json", "receipt.txt"]  # + the signed receipt
    )
    assert archive.read(PDF_NAME) == PDF_BYTES
    assert archive.read(CSV_NAME) == CSV_BYTES
    assert archive.getinfo(PDF_NAME).flag_bits & 0x800, "the non-ASCII name is not flagged UTF-8"
    assert zip64_members(archive) == [], "zip64 used for a small archive (macOS cannot open it)"
    text = archive.read("message.txt").decode("utf-8")
    for expected in (
        sender,
        PHONE_RECIPIENT,
        PLAIN_RECIPIENT,
        SUBJECT,
        BODY,
        SIGNATURE,
        PDF_NAME,
        CSV_NAME,
    ):
        assert expected in text, f"{expected!r} missing from message.txt:\n{text}"

    # 7. One notification per recipient: a personal link, no content, fi/sv/en, text + HTML.
    links = {}
    for recipient in (PHONE_RECIPIENT, PLAIN_RECIPIENT):
        notifications = mail.wait_for(recipient)
        assert len(notifications) == 1, f"{len(notifications)} notifications to {recipient}"
        captured = notifications[0]
        assert captured.recipients == [recipient]
        assert captured.message["To"] == recipient
        plain, html = captured.text(), captured.html()
        assert plain.strip() and html.strip(), "a notification lacks its text or its HTML part"
        found = {link for link in links_in(plain) if "/m/" in link}
        assert len(found) == 1, f"expected one message link in the mail to {recipient}: {found}"
        links[recipient] = found.pop()
        assert links[recipient] in html
        everything = f"{captured.message['Subject']}\n{plain}\n{html}"
        for secret in (SUBJECT, *BODY.splitlines(), *SIGNATURE.splitlines(), PDF_NAME, CSV_NAME):
            if secret.strip():
                assert secret not in everything, (
                    f"the notification to {recipient} reveals {secret!r}"
                )
        assert sender in plain
        positions = [
            plain.find(title)
            for title in (
                "Salassa pidettävä viesti",
                "Sekretessbelagt meddelande",
                "Confidential message",
            )
        ]
        assert -1 not in positions and positions == sorted(positions), (
            f"the notification is not in Finnish, Swedish and English, in that order:\n{plain}"
        )
        for lang in ("fi", "sv", "en"):
            assert f'lang="{lang}"' in html
    assert links[PHONE_RECIPIENT] != links[PLAIN_RECIPIENT]

    # 8. The official opens their link (another browser): the message is waiting. Opening it
    #    twice shows the same page: a GET uses nothing up (mail scanners fetch every link).
    official = new_context().new_page()
    for attempt in (1, 2):
        response = official.goto(links[PHONE_RECIPIENT] + "?lang=en")
        assert response is not None and response.status == 200, f"attempt {attempt}"
        expect(official.get_by_role("heading", level=1)).to_have_text(
            "A confidential message is waiting for you"
        )
    waiting = official.locator("main")
    expect(waiting).to_contain_text(sender)
    expect(waiting).to_contain_text(PHONE_RECIPIENT)
    expect(waiting).to_contain_text("456")
    expect(waiting).not_to_contain_text(SUBJECT)
    assert_accessible(official, "the recipient's waiting page")
    screenshot(official, "flow-06-waiting-en")
    with phone_sized(official):
        screenshot(official, "flow-06-waiting-en-phone")
