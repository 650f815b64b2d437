"""Signed receipts end to end through the app: made on Send inside its transaction, published
key, confirmation page, download (owner only), zip, the e-mail to the sender, replies."""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from portal.models import Message, MessageStatus, OutboxItem
from portal.services import notifications, receipts

from ..helpers import (
    csrf_of,
    eventually,
    multipart,
    newest_link,
    opened,
    page_text,
    post_compose,
    press_open,
    send_message,
    sign_in_with,
)

SENDER = "liisa@example.com"
FILES = [
    ("attachments", "hakemus.pdf", b"%PDF-1.7 " + bytes(range(256)) * 40),
    ("attachments", "receipt.json", b'{"an attachment": "with the receipt\'s name"}'),
]
FIELDS = {
    "recipients": "ville@valtori.fi, maija@example.fi.0400123456.sec",
    "subject": "Valitus päätöksestä 2026/117",
    "body": "Hei,\n\nliitteenä valitus.",
}
RECEIPT_SUBJECT = "Receipt of your confidential message"


@pytest.fixture
async def sent(client, sign_in) -> str:
    """The confirmation path of a message sent by ``client`` (in English)."""
    await sign_in(SENDER)
    await client.get("/compose?lang=en")
    return await send_message(client, FIELDS, FILES)


def message_id(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[1]


async def published_key(client):
    response = await client.get("/.well-known/sinetti-receipt-key")
    assert response.status_code == 200
    return load_pem_public_key(await response.get_data())


async def stored_receipt(client, path: str) -> str:
    """The signed receipt kept on the message (sealed in the database: opened here)."""
    message = await opened(client, await Message.get(id=message_id(path)))
    assert message.receipt is not None
    return message.receipt


def mailbox_receipts(client) -> list[dict]:
    from sinetti_devbox import read_mailbox

    data_dir = client.app.extensions["sinetti"].settings.data_dir
    return [entry for entry in read_mailbox(data_dir) if entry["subject"] == RECEIPT_SUBJECT]


# -- the published key --------------------------------------------------------------------------


async def test_the_public_key_is_published_as_pem_to_anyone(portal_app):
    stranger = portal_app.test_client()

    response = await stranger.get("/.well-known/sinetti-receipt-key")

    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    text = await page_text(response)
    assert text.startswith("-----BEGIN PUBLIC KEY-----\n")
    assert "PRIVATE" not in text
    own = portal_app.app.extensions["sinetti"].signing_key.public_key()
    assert receipts.fingerprint(load_pem_public_key(text.encode())) == receipts.fingerprint(own)


async def test_the_key_is_kept_across_restarts_of_the_portal(portal_config, portal_plugins):
    from portal.app import create_app

    first = create_app(portal_config, plugins=portal_plugins).extensions["sinetti"]
    second = create_app(portal_config, plugins=portal_plugins).extensions["sinetti"]

    assert receipts.fingerprint(first.signing_key.public_key()) == receipts.fingerprint(
        second.signing_key.public_key()
    )


# -- made on Send -----------------------------------------------------------------------------


async def test_send_signs_a_receipt_of_exactly_what_was_stored(client, sent):
    message = await opened(client, await Message.get(id=message_id(sent)))

    receipt = receipts.verify(message.receipt, await published_key(client))

    assert receipt["format"] == "sinetti-receipt/1"
    assert receipt["portal"] == "http://portal.test"
    assert receipt["message_id"] == str(message.id)
    assert receipt["in_reply_to"] is None
    assert receipt["sender"] == SENDER
    assert receipt["recipients"] == ["ville@valtori.fi", "maija@example.fi"]
    assert receipt["subject"] == FIELDS["subject"]
    assert receipt["sent_at"] == message.sent_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert receipt["attachments"] == [
        {"name": name, "size": len(content), "sha256": hashlib.sha256(content).hexdigest()}
        for _field, name, content in FILES
    ]


async def test_the_receipt_has_no_phone_number_and_no_message_text(client, sent):
    document = await stored_receipt(client, sent)

    assert "0400123456" not in document and "123456" not in document
    assert "456" not in json.dumps(json.loads(document)["receipt"]["recipients"])
    assert "liitteenä valitus" not in document


async def test_a_failure_while_issuing_the_receipt_sends_nothing(client, sign_in, monkeypatch):
    """The receipt and its mail are written in Send's transaction: no receipt, no message."""
    await sign_in(SENDER)
    await client.get("/compose?lang=en")

    async def broken(*args, **kwargs):
        raise RuntimeError("the mail could not be written")

    monkeypatch.setattr(notifications, "submission_receipt", broken)
    response = await post_compose(client, {"action": "send", **FIELDS}, FILES[:1])

    assert response.status_code == 500

    assert not await Message.filter(status=MessageStatus.SENT).exists()
    assert not await Message.filter(receipt__isnull=False).exists()
    assert not await OutboxItem.filter(to_address="ville@valtori.fi").exists()


async def test_the_receipt_is_mailed_to_the_sender_once_and_the_mailed_copy_verifies(client, sent):
    queued = await OutboxItem.filter(to_address=SENDER, subject=RECEIPT_SUBJECT)
    assert len(queued) == 1

    async def delivered_receipts() -> list[dict]:
        return mailbox_receipts(client)

    delivered = await eventually(delivered_receipts)
    assert len(delivered) == 1
    text = delivered[0]["text"]
    block = re.search(
        r"-----BEGIN SINETTI RECEIPT-----\n(.*)\n-----END SINETTI RECEIPT-----", text, re.S
    )
    assert block, text
    assert block.group(1) == await stored_receipt(client, sent)
    assert receipts.verify(block.group(1), await published_key(client))
    assert "http://portal.test/.well-known/sinetti-receipt-key" in text
    assert "liitteenä valitus" not in text
    assert len(await OutboxItem.filter(to_address=SENDER, subject=RECEIPT_SUBJECT)) == 1


async def test_the_receipt_mail_is_in_the_senders_language(portal_app, client, sign_in):
    await sign_in(SENDER)
    await client.get("/compose?lang=fi")
    await send_message(client, FIELDS)

    from portal.i18n import _, locale_context

    async with portal_app.app.app_context():
        with locale_context("fi"):
            finnish = _("Receipt of your confidential message")
    assert await OutboxItem.filter(to_address=SENDER, subject=finnish).count() == 1


# -- the confirmation page and the download --------------------------------------------------


async def test_confirmation_page_shows_the_receipt_with_its_fingerprint_and_download(client, sent):
    page = await page_text(await client.get(sent))
    fingerprint = json.loads(await stored_receipt(client, sent))["receipt"]["key_fingerprint"]

    assert "Signed receipt" in page
    assert fingerprint in page
    assert f'href="{sent}/receipt.json"' in page
    assert 'href="/.well-known/sinetti-receipt-key"' in page


async def test_receipt_download_is_the_receipt_exactly_as_signed(client, sent):
    response = await client.get(sent + "/receipt.json")

    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.headers["Content-Disposition"].startswith('attachment; filename="receipt.json"')
    body = await response.get_data()
    assert body == (await stored_receipt(client, sent)).encode("utf-8")
    assert receipts.verify(body, await published_key(client))["subject"] == FIELDS["subject"]


async def test_another_sender_gets_404_for_the_receipt(portal_app, sent):
    other = portal_app.test_client()
    await sign_in_with(other, "someone@example.com")

    response = await other.get(sent + "/receipt.json")

    assert response.status_code == 404
    assert "sinetti-receipt" not in await page_text(response)


async def test_without_a_session_the_receipt_is_refused(portal_app, sent):
    response = await portal_app.test_client().get(sent + "/receipt.json")

    assert response.status_code == 401
    assert "sinetti-receipt" not in await page_text(response)


@pytest.mark.parametrize("wrong", ["not-a-uuid", "6f1b6c44-0d5e-4a36-9a55-2d1d9b1c1a11"])
async def test_an_unknown_message_has_no_receipt(client, sent, wrong):
    response = await client.get(f"/sent/{wrong}/receipt.json")

    assert response.status_code == 404


async def test_a_message_sent_before_receipts_existed_has_no_receipt_section(client, sent):
    await Message.filter(id=message_id(sent)).update(receipt=None)

    assert (await client.get(sent + "/receipt.json")).status_code == 404
    page = await client.get(sent)
    assert page.status_code == 200
    assert "Signed receipt" not in await page_text(page)
    assert f'href="{sent}/receipt.json"' not in await page_text(page)
    zipped = await client.get(sent + "/zip")
    with zipfile.ZipFile(io.BytesIO(await zipped.get_data())) as archive:
        assert "receipt.txt" not in archive.namelist()
        assert archive.read("receipt.json") == FILES[1][2]  # the attachment keeps its name


# -- the zip ------------------------------------------------------------------------------------


async def test_the_senders_zip_holds_the_receipt_as_signed_and_a_readable_copy(client, sent):
    response = await client.get(sent + "/zip")
    with zipfile.ZipFile(io.BytesIO(await response.get_data())) as archive:
        names = archive.namelist()
        signed = archive.read("receipt.json")
        readable = archive.read("receipt.txt").decode("utf-8")
        renamed = archive.read("receipt (2).json")

    assert names[-2:] == ["receipt.json", "receipt.txt"]
    assert signed == (await stored_receipt(client, sent)).encode("utf-8")
    assert renamed == FILES[1][2]  # the attachment that had the name keeps its bytes
    receipt = receipts.verify(signed, await published_key(client))
    assert "Signed receipt" in readable
    assert f"Subject: {FIELDS['subject']}" in readable
    assert "ville@valtori.fi, maija@example.fi" in readable
    assert receipt["sent_at"] in readable
    assert receipt["key_fingerprint"] in readable
    assert hashlib.sha256(FILES[0][2]).hexdigest() in readable
    assert "0400123456" not in readable


async def test_the_readable_receipt_is_in_the_senders_language(portal_app, client, sent):
    await client.get("/?lang=fi")

    response = await client.get(sent + "/zip")
    with zipfile.ZipFile(io.BytesIO(await response.get_data())) as archive:
        readable = archive.read("receipt.txt").decode("utf-8")

    from portal.i18n import _, locale_context

    async with portal_app.app.app_context():
        with locale_context("fi"):
            heading = _("Signed receipt")
    assert readable.startswith(heading + "\n")
    sent_at = datetime.strptime(
        json.loads(await stored_receipt(client, sent))["receipt"]["sent_at"], "%Y-%m-%dT%H:%M:%SZ"
    )
    assert str(sent_at.year) in readable


# -- replies ----------------------------------------------------------------------------------


async def test_a_reply_gets_its_own_receipt_naming_the_message_it_answers(portal_app, client, sent):
    link = await newest_link(client, "ville@valtori.fi", "m")
    reader = portal_app.test_client()
    assert (await press_open(reader, link)).status_code == 303
    body, content_type = multipart(
        [("csrf_token", await csrf_of(reader, link)), ("body", "Kiitos."), ("action", "send")]
    )
    response = await reader.post(f"{link}/reply", data=body, headers={"Content-Type": content_type})
    assert response.status_code == 303, await page_text(response)

    reply = await opened(client, await Message.get(reply_to_id=message_id(sent)))
    receipt = receipts.verify(reply.receipt, await published_key(client))
    assert receipt["in_reply_to"] == message_id(sent)
    assert receipt["sender"] == "ville@valtori.fi"
    assert receipt["recipients"] == [SENDER]
    assert receipt["message_id"] == str(reply.id)
    mails = await OutboxItem.filter(to_address="ville@valtori.fi", subject=RECEIPT_SUBJECT)
    assert len(mails) == 1
