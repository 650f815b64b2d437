"""The recipient's pages through the test client: landing, Open message, PIN, reading,
downloads, close, idle timeout and lock."""

from __future__ import annotations

import dataclasses
import io
import zipfile
from urllib.parse import urlsplit

import pytest

from portal.i18n import locale_context
from portal.models import AccessCode, Attachment, Channel, OutboxItem, OutboxStatus, Recipient
from portal.security import hash_token
from portal.services.files import format_size
from portal.testing import csrf_from

from ..helpers import (
    all_sms_delivered,
    delivered_sms,
    eventually,
    newest_link,
    newest_pin,
    open_message,
    page_text,
    press_open,
    queued_mails_to,
    row_counts,
    send_message,
    token_of,
    wrong_code,
)

SENDER = "liisa@example.com"
PLAIN = "ville@valtori.fi"
PHONE_RECIPIENT = "maija@example.fi"
PHONE = "+358400123456"
SUBJECT = "Hakemus 2024/17"
BODY = "Hei,\nliitteenä hakemus ja selvitys."
SIGNATURE = "Liisa Laine, Esimerkkivirasto"
PDF = b"%PDF-1.7\n" + bytes(range(256)) * 40
TEXT = "Päivämäärä: 1.2.2024\n".encode()
FILES = [("attachments", "hakemus.pdf", PDF), ("attachments", "Äöå liite.txt", TEXT)]
OTHER_FILE = b"message B: its own attachment"


@dataclasses.dataclass
class Sent:
    plain: str  # the /m/ link of a recipient who opens with the link alone
    phone: str  # the /m/ link of a recipient who needs an SMS PIN
    attachments: list[Attachment]


async def send(client, files=FILES, **changes: str) -> str:
    """Send the message to PLAIN and PHONE_RECIPIENT; its id."""
    fields = {
        "recipients": f"{PLAIN}, {PHONE_RECIPIENT}.0400123456.sec",
        "subject": SUBJECT,
        "body": BODY,
        "signature": SIGNATURE,
        "read_receipt": "1",
        **changes,
    }
    return (await send_message(client, fields, files)).rsplit("/", 1)[1]


@pytest.fixture
async def signed_in(client, sign_in):
    await sign_in(SENDER)
    await client.get("/compose?lang=en")  # the sender's language: the message's notices
    return client


@pytest.fixture
async def sent(signed_in) -> Sent:
    message_id = await send(signed_in)
    return Sent(
        plain=await newest_link(signed_in, PLAIN, "m"),
        phone=await newest_link(signed_in, PHONE_RECIPIENT, "m"),
        attachments=list(await Attachment.filter(message_id=message_id).order_by("id")),
    )


@pytest.fixture
def reader(portal_app):
    """The recipient's browser, in English."""
    return portal_app.test_client()


async def csrf(reader, link: str) -> str:
    return csrf_from(await page_text(await reader.get(link + "?lang=en")))


async def recipient_of(link: str) -> Recipient:
    return await Recipient.get(token_hash=hash_token(token_of(link)))


# -- before opening --------------------------------------------------------------------------


async def test_landing_page_names_the_sender_and_has_open_message(reader, sent):
    response = await reader.get(sent.plain + "?lang=en")

    html = await page_text(response)
    assert response.status_code == 200
    assert SENDER in html and PLAIN in html
    assert f'action="{sent.plain}/open"' in html
    assert "Open message" in html
    assert SUBJECT not in html and "liitteenä" not in html and "hakemus.pdf" not in html


RECIPIENT_URLS = {
    "": 200,
    "/code": 303,  # nothing to answer yet: back to the landing page
    "/attachments/1": 401,
    "/zip": 401,
    "/reply": 401,
    "/reply/sent": 401,
}


@pytest.mark.parametrize("method", ["GET", "HEAD"])
async def test_fetching_an_unopened_message_changes_no_row_and_sends_no_sms(
    portal_app, sent, method
):
    before = await row_counts()

    for link in (sent.plain, sent.phone):
        for suffix, status in RECIPIENT_URLS.items():
            for who in (portal_app.test_client(), portal_app.test_client()):
                response = await who.open(link + suffix, method=method)
                assert response.status_code == status, (link + suffix, response.status_code)

    assert await row_counts() == before
    assert await AccessCode.all().count() == 0
    assert not await OutboxItem.filter(channel=Channel.SMS).exists()
    assert (await recipient_of(sent.plain)).opened_at is None


@pytest.mark.parametrize("method", ["GET", "HEAD"])
async def test_fetching_pages_of_an_open_message_changes_no_row(reader, sent, method):
    await open_message(reader, sent.plain)
    before = await row_counts()

    for suffix in ("", f"/attachments/{sent.attachments[0].id}", "/zip", "/reply"):
        response = await reader.open(sent.plain + suffix, method=method)
        assert response.status_code == 200, (suffix, response.status_code)

    assert await row_counts() == before


async def test_open_without_the_csrf_token_is_400_and_opens_nothing(reader, sent):
    await reader.get(sent.plain)  # the session has a token; the form does not send it

    for link in (sent.plain, sent.phone):
        response = await reader.post(f"{link}/open", form={})
        assert response.status_code == 400

    assert (await recipient_of(sent.plain)).opened_at is None
    assert await AccessCode.all().count() == 0
    assert "Open message" in await page_text(await reader.get(sent.plain + "?lang=en"))


async def test_unknown_link_is_404(reader):
    unknown = "/m/" + "B" * 43
    token = await csrf(reader, "/")

    assert (await reader.get(unknown)).status_code == 404
    assert (await reader.get(unknown + "/code")).status_code == 404
    assert (await reader.post(unknown + "/open", form={"csrf_token": token})).status_code == 404


# -- reading ---------------------------------------------------------------------------------


async def test_none_recipient_opens_with_a_303_to_the_message(reader, sent):
    response = await press_open(reader, sent.plain)

    assert response.status_code == 303
    assert urlsplit(response.headers["Location"]).path == sent.plain
    assert (await recipient_of(sent.plain)).opened_at is not None


async def test_message_view_shows_everything_that_was_sent(reader, sent):
    html = await open_message(reader, sent.plain)

    assert SUBJECT in html
    assert "Hei,\nliitteenä hakemus ja selvitys." in html
    assert SIGNATURE in html
    assert SENDER in html
    assert PLAIN in html and PHONE_RECIPIENT in html
    assert "0400123456" not in html and "400123456" not in html
    with locale_context("en"):
        sizes = [format_size(len(PDF)), format_size(len(TEXT))]
    for name, size in zip(["hakemus.pdf", "Äöå liite.txt"], sizes, strict=True):
        assert name in html
        assert size in html
    for attachment in sent.attachments:
        assert f'href="{sent.plain}/attachments/{attachment.id}"' in html
    assert f'href="{sent.plain}/zip"' in html


async def test_attachment_downloads_as_an_attachment_with_the_exact_bytes(reader, sent):
    await open_message(reader, sent.plain)
    pdf, text = sent.attachments

    response = await reader.get(f"{sent.plain}/attachments/{text.id}")

    assert response.status_code == 200
    assert response.headers["Content-Disposition"] == (
        "attachment; filename=\"___ liite.txt\"; filename*=UTF-8''%C3%84%C3%B6%C3%A5%20liite.txt"
    )
    assert response.mimetype == "application/octet-stream"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "no-store"
    assert bytes(await response.get_data()) == TEXT
    whole = await reader.get(f"{sent.plain}/attachments/{pdf.id}")
    assert bytes(await whole.get_data()) == PDF
    assert whole.headers["Content-Length"] == str(len(PDF))


async def test_zip_download_holds_the_same_bytes(reader, sent):
    await open_message(reader, sent.plain)

    response = await reader.get(f"{sent.plain}/zip")

    assert response.status_code == 200
    assert response.mimetype == "application/zip"
    assert response.headers["Content-Disposition"].startswith("attachment; ")
    with zipfile.ZipFile(io.BytesIO(bytes(await response.get_data()))) as archive:
        assert archive.testzip() is None
        assert archive.read("hakemus.pdf") == PDF
        assert archive.read("Äöå liite.txt") == TEXT
        assert len(archive.namelist()) == 3  # and the message text


async def test_first_open_queues_one_read_receipt_to_the_sender(portal_app, sent):
    before = len(await queued_mails_to(SENDER))

    await open_message(portal_app.test_client(), sent.plain)
    opened_at = (await recipient_of(sent.plain)).opened_at
    await open_message(portal_app.test_client(), sent.plain)  # another reader, later

    mails = await queued_mails_to(SENDER)
    assert len(mails) == before + 1
    assert mails[-1].subject == "Read receipt"
    assert (await recipient_of(sent.plain)).opened_at == opened_at

    async def receipt_text() -> str:
        from sinetti_devbox import read_mailbox

        entries = read_mailbox(portal_app.app.extensions["sinetti"].settings.data_dir)
        return next((e["text"] for e in entries if e.get("subject") == "Read receipt"), "")

    text = await eventually(receipt_text)
    assert PLAIN in text and SUBJECT not in text


async def test_no_read_receipt_when_the_sender_did_not_ask(reader, signed_in):
    await send(signed_in, read_receipt="")
    link = await newest_link(signed_in, PLAIN, "m")
    before = len(await queued_mails_to(SENDER))

    await open_message(reader, link)

    assert (await recipient_of(link)).opened_at is not None
    assert len(await queued_mails_to(SENDER)) == before


async def test_another_browser_without_the_session_gets_401(portal_app, reader, sent):
    await open_message(reader, sent.plain)
    stranger = portal_app.test_client()

    for suffix in (f"/attachments/{sent.attachments[0].id}", "/zip", "/reply", "/reply/sent"):
        response = await stranger.get(sent.plain + suffix)
        assert response.status_code == 401, suffix
        assert b"%PDF" not in await response.get_data()
        # One press opens it again: the page's button posts straight to Open message.
        assert f'action="{sent.plain}/open"' in await page_text(response)
    html = await page_text(await stranger.get(sent.plain + "?lang=en"))
    assert SUBJECT not in html and "Open message" in html


async def test_session_of_one_message_reaches_no_other(reader, signed_in, sent):
    other_id = await send(
        signed_in, files=[("attachments", "toinen.txt", OTHER_FILE)], subject="Toinen viesti"
    )
    other_link = await newest_link(signed_in, PLAIN, "m")
    assert other_link != sent.plain
    other_file = await Attachment.get(message_id=other_id)
    await open_message(reader, sent.plain)

    cross = await reader.get(f"{sent.plain}/attachments/{other_file.id}")
    assert cross.status_code == 404
    assert OTHER_FILE not in await cross.get_data()
    landing = await page_text(await reader.get(other_link + "?lang=en"))
    assert "Toinen viesti" not in landing and f'action="{other_link}/open"' in landing
    assert (await reader.get(f"{other_link}/attachments/{other_file.id}")).status_code == 401
    assert (await recipient_of(other_link)).opened_at is None


async def test_close_ends_access_in_this_browser(reader, sent):
    await open_message(reader, sent.plain)
    download = f"{sent.plain}/attachments/{sent.attachments[0].id}"
    assert (await reader.get(download)).status_code == 200

    response = await reader.post(
        f"{sent.plain}/close", form={"csrf_token": await csrf(reader, sent.plain)}
    )

    assert response.status_code == 200
    assert "The message is closed" in await page_text(response)
    assert (await reader.get(download)).status_code == 401
    assert SUBJECT not in await page_text(await reader.get(sent.plain))


async def test_close_needs_the_csrf_token(reader, sent):
    await open_message(reader, sent.plain)

    assert (await reader.post(f"{sent.plain}/close", form={})).status_code == 400
    assert (await reader.get(f"{sent.plain}/zip")).status_code == 200


async def test_idle_session_ends_access(portal_app, reader, sent, moved_clock):
    idle = portal_app.app.extensions["sinetti"].settings.session_idle_minutes
    await open_message(reader, sent.plain)
    download = f"{sent.plain}/attachments/{sent.attachments[0].id}"

    moved_clock.advance(minutes=idle - 1)
    assert (await reader.get(download)).status_code == 200  # used: the idle time starts over
    moved_clock.advance(minutes=idle - 1)
    assert (await reader.get(download)).status_code == 200
    moved_clock.advance(minutes=idle + 1)

    assert (await reader.get(download)).status_code == 401
    assert SUBJECT not in await page_text(await reader.get(sent.plain))


# -- SMS PIN ---------------------------------------------------------------------------------


async def test_sms_pin_full_flow(reader, sent):
    landing = await page_text(await reader.get(sent.phone + "?lang=en"))
    assert "•••• 456" in landing and "0400123456" not in landing

    opened = await press_open(reader, sent.phone)
    assert opened.status_code == 303
    assert urlsplit(opened.headers["Location"]).path == f"{sent.phone}/code"
    await all_sms_delivered()  # until then the page says the code is on its way
    code_page = await reader.get(f"{sent.phone}/code")
    assert code_page.status_code == 200
    html = await page_text(code_page)
    assert "Enter the PIN code" in html and "•••• 456" in html
    assert 'autocomplete="one-time-code"' in html and 'inputmode="numeric"' in html
    assert (await reader.get(f"{sent.phone}/code")).status_code == 200  # reloading sends none
    pin = await newest_pin(reader, PHONE)
    assert await OutboxItem.filter(channel=Channel.SMS).count() == 1

    answered = await reader.post(
        f"{sent.phone}/code", form={"csrf_token": csrf_from(html), "code": pin}
    )

    assert answered.status_code == 303
    assert urlsplit(answered.headers["Location"]).path == sent.phone
    message = await page_text(await reader.get(sent.phone))
    assert SUBJECT in message and "liitteenä" in message
    assert (await recipient_of(sent.phone)).opened_at is not None
    assert (await recipient_of(sent.plain)).opened_at is None


async def pin_requested(reader, link: str) -> tuple[str, str]:
    """Press Open message for a PIN recipient; (the PIN, the session's CSRF token)."""
    response = await press_open(reader, link)
    assert response.status_code == 303
    return await newest_pin(reader, PHONE), await csrf(reader, link)


async def test_wrong_pin_is_a_400_page_with_an_error_summary(reader, sent):
    pin, token = await pin_requested(reader, sent.phone)

    response = await reader.post(
        f"{sent.phone}/code", form={"csrf_token": token, "code": wrong_code(pin)}
    )

    html = await page_text(response)
    assert response.status_code == 400
    assert 'class="error-summary"' in html and 'href="#code"' in html
    assert "4 tries left" in html
    assert 'aria-invalid="true"' in html
    assert SUBJECT not in html


async def test_locked_recipient_gets_403_on_landing_and_open(reader, sent):
    pin, token = await pin_requested(reader, sent.phone)
    statuses = []
    for _ in range(5):
        response = await reader.post(
            f"{sent.phone}/code", form={"csrf_token": token, "code": wrong_code(pin)}
        )
        statuses.append(response.status_code)
    assert statuses == [400, 400, 400, 400, 403]
    assert "locked" in (await page_text(response)).lower()

    landing = await reader.get(sent.phone)
    assert landing.status_code == 403
    assert SENDER in await page_text(landing)
    assert (await reader.post(f"{sent.phone}/open", form={"csrf_token": token})).status_code == 403
    right = await reader.post(f"{sent.phone}/code", form={"csrf_token": token, "code": pin})
    assert right.status_code == 403
    assert (await recipient_of(sent.phone)).opened_at is None
    other_browser_landing = await reader.app.test_client().get(sent.phone)
    assert other_browser_landing.status_code == 403


async def test_a_lock_by_someone_else_does_not_close_a_browser_that_already_reads(
    reader, sent, portal_app
):
    pin, token = await pin_requested(reader, sent.phone)
    opened = await reader.post(f"{sent.phone}/code", form={"csrf_token": token, "code": pin})
    assert opened.status_code == 303
    guesser = portal_app.test_client()
    guess_pin, guess_token = await pin_requested(guesser, sent.phone)
    for _ in range(5):
        await guesser.post(
            f"{sent.phone}/code", form={"csrf_token": guess_token, "code": wrong_code(guess_pin)}
        )
    assert (await recipient_of(sent.phone)).locked_at is not None

    reading = await reader.get(sent.phone)

    assert reading.status_code == 200
    assert SUBJECT in await page_text(reading)
    assert (await guesser.get(sent.phone)).status_code == 403
    assert (await portal_app.test_client().get(sent.phone)).status_code == 403


async def test_resend_too_soon_is_429_and_later_sends_a_new_pin(reader, sent, moved_clock):
    _pin, token = await pin_requested(reader, sent.phone)

    soon = await reader.post(f"{sent.phone}/code/resend", form={"csrf_token": token})
    assert soon.status_code == 429
    assert "seconds" in await page_text(soon)
    moved_clock.advance(seconds=61)
    later = await reader.post(f"{sent.phone}/code/resend", form={"csrf_token": token})

    assert later.status_code == 200
    assert "A new code has been sent." in await page_text(later)
    assert await newest_pin(reader, PHONE, count=2)


async def test_failed_sms_delivery_shows_the_providers_error(reader, sent):
    await pin_requested(reader, sent.phone)
    code = await AccessCode.get()

    async def delivered() -> bool:
        item = await OutboxItem.get(id=code.delivery_id)
        return item.status == OutboxStatus.SENT

    assert await eventually(delivered)
    await OutboxItem.filter(id=code.delivery_id).update(status=OutboxStatus.FAILED)

    response = await reader.get(f"{sent.phone}/code")

    html = await page_text(response)
    assert response.status_code == 200
    assert 'class="error-summary"' in html
    assert "The SMS could not be sent to the phone number •••• 456" in html


async def test_delayed_sms_delivery_is_noted_on_the_code_page(reader, sent, moved_clock):
    await pin_requested(reader, sent.phone)
    code = await AccessCode.get()
    assert await eventually(lambda: OutboxItem.exists(id=code.delivery_id, status="sent"))
    await OutboxItem.filter(id=code.delivery_id).update(  # as after one failed attempt
        status=OutboxStatus.PENDING,
        attempts=1,
        next_attempt_at=code.expires_at,
        last_error="SmsDeliveryError: gateway down",
    )

    html = await page_text(await reader.get(f"{sent.phone}/code"))

    assert "Sending is delayed" in html
    assert 'class="error-summary"' not in html


class TestDailyLimitOfOne:
    @pytest.fixture
    def portal_config(self, portal_config):
        return {**portal_config, "plugin_options": {"PIN_DAILY_LIMIT": "1"}}

    async def test_refused_resend_is_a_429_page_naming_the_sender(self, reader, sent, moved_clock):
        _pin, token = await pin_requested(reader, sent.phone)
        moved_clock.advance(seconds=61)

        response = await reader.post(f"{sent.phone}/code/resend", form={"csrf_token": token})

        html = await page_text(response)
        assert response.status_code == 429
        assert "Too many codes" in html and SENDER in html
        assert len(delivered_sms(reader, PHONE)) == 1
        assert await OutboxItem.filter(channel=Channel.SMS).count() == 1
