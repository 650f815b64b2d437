"""The signed receipt in a real browser: shown on the confirmation page (axe-clean, fi and en,
desktop and phone), downloaded, checked against the published key, and the same receipt
e-mailed to the sender through a real SMTP server."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import download, new_recipient
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from playwright.sync_api import Page, expect

from portal.services import receipts

pytestmark = pytest.mark.e2e

SUBJECT = "Oikaisuvaatimus 2026/301"
PDF_NAME = "oikaisuvaatimus.pdf"
PDF_BYTES = b"%PDF-1.7 " + bytes(range(256)) * 64


def test_confirmation_page_shows_a_receipt_that_verifies_and_matches_the_mailed_one(
    page: Page, mail, sign_in, page_in_languages
) -> None:
    sender = sign_in(page, "receipt")
    recipient = new_recipient("kirjaamo")
    page.get_by_label("Recipients", exact=True).fill(recipient)
    page.get_by_label("Subject", exact=True).fill(SUBJECT)
    page.get_by_label("Message", exact=True).fill("Hei,\n\nliitteenä oikaisuvaatimus.")
    page.get_by_label("Attachments", exact=True).set_input_files(
        [{"name": PDF_NAME, "mimeType": "application/pdf", "buffer": PDF_BYTES}]
    )
    page.get_by_role("button", name="Send", exact=True).click()
    page.wait_for_url(re.compile(r"/sent/[0-9a-f-]+$"))
    confirmation = page.url

    # The receipt section: what it proves, the key's fingerprint, a download.
    section = page.get_by_role("region", name="Signed receipt")
    expect(section).to_be_visible()
    expect(section).to_contain_text("anyone can check it with the portal's public key")
    fingerprint = section.locator(".checksum").inner_text()
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", fingerprint), fingerprint
    for lang in ("fi", "sv", "en"):
        page_in_languages(page, confirmation, lang, "the confirmation page", "receipt-01-sent")

    # The download is the signed receipt; the published key confirms it.
    saved = download(page, re.compile(r"^Download receipt\b"))
    assert saved.suggested_filename == "receipt.json"
    document = Path(saved.path()).read_bytes()
    published = page.request.get("/.well-known/sinetti-receipt-key")
    assert published.ok and published.headers["content-type"].startswith("text/plain")
    key = load_pem_public_key(published.body())
    assert receipts.fingerprint(key) == fingerprint
    receipt = receipts.verify(document, key)
    assert receipt["sender"] == sender
    assert receipt["recipients"] == [recipient]
    assert receipt["subject"] == SUBJECT
    assert [a["name"] for a in receipt["attachments"]] == [PDF_NAME]

    # The same receipt reached the sender's mailbox, once.
    (mailed,) = mail.wait_for_subject(sender, "Receipt of your confidential message")
    block = re.search(
        r"-----BEGIN SINETTI RECEIPT-----\r?\n(.*?)\r?\n-----END SINETTI RECEIPT-----",
        mailed.text(),
        re.S,
    )
    assert block, mailed.text()
    assert block.group(1).encode("utf-8") == document
    assert "liitteenä oikaisuvaatimus" not in mailed.text() + mailed.html()
