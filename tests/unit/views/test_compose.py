"""Compose, send, attach, remove and cancel, through the test client."""

from __future__ import annotations

import hashlib
import re
import uuid

import pytest

from portal.models import Attachment, Message, MessageStatus, OutboxItem, Recipient
from portal.services import notifications
from portal.testing import continue_with_link

from ..helpers import (
    csrf_of,
    file_names,
    multipart,
    newest_link,
    opened,
    page_text,
    post_compose,
    row_counts,
    row_where,
    sign_in_with,
    stored_files,
)

LIMIT = 50_000
SENDER = "liisa@example.com"
PLAIN = "ville.virkamies@valtori.fi"
PHONE_VERIFIED = "maija.meikalainen@example.fi"


@pytest.fixture
def portal_config(portal_config):
    return {**portal_config, "max_attachments_bytes": LIMIT}


@pytest.fixture
async def signed_in(client, sign_in):
    await sign_in(SENDER)
    return client


def message_fields(**changes: str) -> dict[str, str]:
    fields = {
        "recipients": f"{PLAIN},\n{PHONE_VERIFIED}.0400123456.sec",
        "subject": "Hakemus 2024/17",
        "body": "Hei,\nliitteenä hakemus.",
        "signature": "Liisa Laine\n040 765 4321",
        "read_receipt": "1",
        "action": "send",
    }
    fields.update(changes)
    return fields


FILES = [
    ("attachments", "hakemus.pdf", b"%PDF-1.7\n" + bytes(range(256)) * 40),
    ("attachments", "liite.txt", "Päivämäärä: 1.2.2024\n".encode()),
]


async def send(client, files=FILES, **changes: str):
    return await post_compose(client, message_fields(**changes), files)


def sent_id(response) -> str:
    match = re.fullmatch(r".*/sent/([0-9a-f-]{36})", response.headers["Location"])
    assert match, response.headers["Location"]
    return match.group(1)


async def test_compose_needs_a_personal_link_session(client):
    response = await client.get("/compose?lang=en")

    assert response.status_code == 401
    assert "Your session has ended" in await page_text(response)


async def test_posting_without_a_session_stores_nothing(client, data_dir):
    csrf = await csrf_of(client, "/")
    body, content_type = multipart([("csrf_token", csrf), *message_fields().items()], FILES)

    response = await client.post("/compose", data=body, headers={"Content-Type": content_type})

    assert response.status_code == 401
    assert stored_files(data_dir) == []
    assert await Message.all().count() == 0


async def test_compose_page_has_every_field_and_names_the_allowed_domains(signed_in):
    html = await page_text(await signed_in.get("/compose?lang=en"))

    for field in ("recipients", "subject", "read_receipt", "body", "signature", "attachments"):
        assert f'<label for="{field}">' in html
    assert "Allowed domains: example.fi, valtori.fi" in html
    assert ".0401234567.sec" in html
    assert ">Send</button>" in html
    assert ">Cancel</button>" in html
    assert 'href="/help"' in html


async def test_successful_send_stores_everything_and_redirects_to_the_confirmation(
    signed_in, data_dir
):
    response = await send(signed_in)

    assert response.status_code == 303
    message = await Message.get(id=sent_id(response)).prefetch_related("sender")
    await opened(signed_in, message)
    assert message.status is MessageStatus.SENT
    assert message.sender.email == SENDER
    assert message.subject == "Hakemus 2024/17"
    assert message.body == "Hei,\nliitteenä hakemus."
    assert message.signature == "Liisa Laine\n040 765 4321"
    assert message.read_receipt is True
    assert message.sent_at is not None

    recipients = {r.email: r for r in await Recipient.filter(message=message)}
    await opened(signed_in, *recipients.values())
    assert set(recipients) == {PLAIN, PHONE_VERIFIED}
    assert (recipients[PLAIN].phone, recipients[PLAIN].verification) == (None, "none")
    assert recipients[PHONE_VERIFIED].phone == "+358400123456"
    assert recipients[PHONE_VERIFIED].verification == "sms-pin"

    attachments = await opened(signed_in, *await Attachment.filter(message=message).order_by("id"))
    assert [(a.filename, a.size) for a in attachments] == [
        (name, len(content)) for _field, name, content in FILES
    ]
    assert [a.sha256 for a in attachments] == [
        hashlib.sha256(content).hexdigest() for _f, _n, content in FILES
    ]
    assert len(stored_files(data_dir)) == 2

    for address in (PLAIN, PHONE_VERIFIED):
        assert await OutboxItem.filter(to_address=address).count() == 1


async def test_send_without_attachments_is_fine(signed_in):
    response = await send(signed_in, files=[])

    assert response.status_code == 303
    assert await Attachment.all().count() == 0
    assert await Recipient.all().count() == 2


async def test_validation_errors_give_400_with_a_summary_and_keep_everything_typed(
    signed_in, data_dir
):
    response = await post_compose(
        signed_in,
        message_fields(recipients="ville@evil.example.com\nkalle@valtori.fi", subject=""),
        FILES[:1],
        headers={"Accept-Language": "en"},
    )
    html = await page_text(response)

    assert response.status_code == 400
    start = html.index('class="error-summary"')
    summary = html[start : html.index("</ul>", start)]
    assert 'href="#recipients"' in summary
    assert 'href="#subject"' in summary
    assert "ville@evil.example.com" in summary
    assert 'id="recipients-error"' in html
    assert 'id="subject-error"' in html
    assert ">ville@evil.example.com\nkalle@valtori.fi</textarea>" in html
    assert ">Hei,\nliitteenä hakemus.</textarea>" in html
    assert ">Liisa Laine\n040 765 4321</textarea>" in html
    assert 'name="read_receipt" value="1" checked' in html
    assert "hakemus.pdf" in html  # the uploaded file is kept on the draft
    assert len(stored_files(data_dir)) == 1
    assert await Recipient.all().count() == 0
    assert await OutboxItem.exclude(to_address=SENDER).count() == 0
    assert (await Message.get()).status is MessageStatus.DRAFT


async def test_fixing_the_errors_sends_with_the_files_kept_from_before(signed_in):
    await post_compose(signed_in, message_fields(subject=""), FILES[:1])

    response = await post_compose(signed_in, message_fields(), FILES[1:])

    assert response.status_code == 303
    message = await Message.get(id=sent_id(response))
    names = await file_names(signed_in, message=message)
    assert sorted(names) == ["hakemus.pdf", "liite.txt"]
    assert await Message.all().count() == 1


async def test_subject_longer_than_255_characters_is_refused(signed_in):
    response = await send(signed_in, subject="x" * 256)

    assert response.status_code == 400
    assert 'href="#subject"' in await page_text(response)
    assert await Recipient.all().count() == 0


async def test_send_is_all_or_nothing(signed_in, data_dir, monkeypatch):
    real = notifications.message_notification
    calls = 0

    async def fail_on_second(*args, **kwargs):
        nonlocal calls
        calls += 1
        if calls == 2:
            raise RuntimeError("template broke half way")
        return await real(*args, **kwargs)

    monkeypatch.setattr(notifications, "message_notification", fail_on_second)
    before = await row_counts()

    response = await send(signed_in)

    assert response.status_code == 500
    assert calls == 2
    assert await row_counts() == before
    assert stored_files(data_dir) == []


async def test_all_or_nothing_keeps_the_draft_and_its_earlier_files(
    signed_in, data_dir, monkeypatch
):
    await post_compose(signed_in, message_fields(action="attach"), FILES[:1])

    async def broken(*args, **kwargs):
        raise RuntimeError("no")

    monkeypatch.setattr(notifications, "message_notification", broken)
    response = await send(signed_in, files=FILES[1:])

    assert response.status_code == 500
    draft = await Message.get()
    assert draft.status is MessageStatus.DRAFT
    assert await file_names(signed_in, message=draft) == ["hakemus.pdf"]
    assert len(stored_files(data_dir)) == 1
    assert await Recipient.all().count() == 0


async def test_message_and_signature_are_shown_as_text_never_as_html(signed_in):
    response = await send(
        signed_in, body="<script>alert(1)</script>\n<b>bold</b>", signature="<i>Liisa</i>"
    )
    html = await page_text(await signed_in.get(response.headers["Location"]))

    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;\n&lt;b&gt;bold&lt;/b&gt;" in html
    assert "&lt;i&gt;Liisa&lt;/i&gt;" in html


async def test_attach_keeps_the_files_on_the_draft_without_sending(signed_in, data_dir):
    response = await post_compose(signed_in, message_fields(action="attach"), FILES)
    html = await page_text(response)

    assert response.status_code == 200
    assert "hakemus.pdf" in html and "liite.txt" in html
    assert await Attachment.all().count() == 2
    assert len(stored_files(data_dir)) == 2
    assert await Recipient.all().count() == 0


async def test_opening_the_personal_link_again_keeps_the_draft(signed_in):
    await post_compose(signed_in, message_fields(action="attach"), FILES[:1])

    link = await newest_link(signed_in, SENDER, "s")
    await continue_with_link(signed_in, link)

    html = await page_text(await signed_in.get("/compose"))
    assert "hakemus.pdf" in html
    assert "Hakemus 2024/17" in html


async def test_another_senders_link_in_the_same_browser_does_not_get_the_draft(
    portal_app, signed_in
):
    await post_compose(signed_in, message_fields(action="attach"), FILES[:1])
    link = await sign_in_with(portal_app.test_client(), "someone@example.com")

    await continue_with_link(signed_in, link)

    html = await page_text(await signed_in.get("/compose"))
    assert "someone@example.com" in html
    assert "hakemus.pdf" not in html
    assert "Hakemus 2024/17" not in html


async def test_removing_an_attachment_deletes_it_and_its_file(signed_in, data_dir):
    await post_compose(signed_in, message_fields(action="attach"), FILES)
    kept = await row_where(signed_in, Attachment, filename="hakemus.pdf")
    csrf = await csrf_of(signed_in)

    response = await signed_in.post(
        f"/compose/attachments/{kept.id}/remove", form={"csrf_token": csrf}
    )

    assert response.status_code == 303
    assert await file_names(signed_in) == ["liite.txt"]
    assert len(stored_files(data_dir)) == 1
    assert kept.storage_key not in {path.name for path in stored_files(data_dir)}


async def test_another_senders_attachment_cannot_be_removed(portal_app, signed_in):
    await post_compose(signed_in, message_fields(action="attach"), FILES[:1])
    attachment = await Attachment.get()
    other = portal_app.test_client()
    await sign_in_with(other, "someone@example.com")

    await other.post(
        f"/compose/attachments/{attachment.id}/remove", form={"csrf_token": await csrf_of(other)}
    )

    assert await Attachment.filter(id=attachment.id).exists()


async def test_over_limit_upload_is_refused_with_413_and_nothing_stored(signed_in, data_dir):
    response = await post_compose(
        signed_in,
        message_fields(),
        [("attachments", "big.bin", b"x" * (LIMIT + 1))],
        headers={"Accept-Language": "en"},
    )
    html = await page_text(response)

    assert response.status_code == 413
    assert "The attachments are too large" in html
    assert "Nothing of this upload was kept" in html
    assert 'href="#attachments"' in html
    assert stored_files(data_dir) == []
    assert await Attachment.all().count() == 0
    assert await Recipient.all().count() == 0


async def test_over_limit_upload_keeps_what_was_typed(signed_in):
    response = await post_compose(
        signed_in, message_fields(), [("attachments", "big.bin", b"x" * (LIMIT + 1))]
    )
    html = await page_text(response)

    assert response.status_code == 413
    assert 'value="Hakemus 2024/17"' in html
    assert ">Hei,\nliitteenä hakemus.</textarea>" in html


async def test_body_announced_over_the_limit_is_refused_before_storing(
    portal_app, signed_in, data_dir, monkeypatch
):
    storage = portal_app.app.extensions["sinetti"].providers.storage
    opened: list[str] = []
    monkeypatch.setattr(storage, "writer", lambda key: opened.append(key))
    csrf = await csrf_of(signed_in)
    body, content_type = multipart(
        [("csrf_token", csrf), *message_fields().items()], [("attachments", "a.bin", b"x")]
    )

    response = await signed_in.post(
        "/compose",
        data=body,
        headers={"Content-Type": content_type, "Content-Length": str(LIMIT + 5 * 1024 * 1024)},
    )

    assert response.status_code == 413
    assert opened == []
    assert stored_files(data_dir) == []


async def test_storage_failure_is_a_503_and_nothing_is_sent(
    portal_app, signed_in, data_dir, monkeypatch
):
    from portal.storage.base import StorageError

    storage = portal_app.app.extensions["sinetti"].providers.storage

    async def broken(key: str):
        raise StorageError("disk full")

    monkeypatch.setattr(storage, "writer", broken)

    response = await post_compose(
        signed_in, message_fields(), FILES, headers={"Accept-Language": "en"}
    )

    assert response.status_code == 503
    assert "could not be stored" in await page_text(response)
    assert await Recipient.all().count() == 0
    assert stored_files(data_dir) == []


async def test_limit_counts_the_files_already_on_the_draft(signed_in, data_dir):
    first = [("attachments", "first.bin", b"1" * (LIMIT // 2 + 1))]
    second = [("attachments", "second.bin", b"2" * (LIMIT // 2 + 1))]
    await post_compose(signed_in, message_fields(action="attach"), first)

    response = await post_compose(signed_in, message_fields(action="attach"), second)

    assert response.status_code == 413
    assert await file_names(signed_in) == ["first.bin"]
    assert len(stored_files(data_dir)) == 1


async def test_form_that_is_not_multipart_is_refused_clearly(signed_in):
    csrf = await csrf_of(signed_in)

    response = await signed_in.post(
        "/compose?lang=en", form={"csrf_token": csrf, **message_fields()}
    )

    assert response.status_code == 400
    assert "The form could not be read" in await page_text(response)
    assert await Recipient.all().count() == 0


async def test_upload_without_csrf_token_is_refused_and_nothing_stored(signed_in, data_dir):
    response = await post_compose(signed_in, message_fields(), FILES, csrf="forged")

    assert response.status_code == 400
    assert stored_files(data_dir) == []
    assert await Message.all().count() == 0


async def test_cancel_deletes_the_draft_and_files_and_ends_the_session(signed_in, data_dir):
    await post_compose(signed_in, message_fields(action="attach"), FILES)
    assert len(stored_files(data_dir)) == 2
    csrf = await csrf_of(signed_in)

    response = await signed_in.post("/compose/cancel?lang=en", form={"csrf_token": csrf})

    assert response.status_code == 200
    assert "Sending cancelled" in await page_text(response)
    assert await Message.all().count() == 0
    assert await Attachment.all().count() == 0
    assert stored_files(data_dir) == []
    assert (await signed_in.get("/compose")).status_code == 401


async def test_cancel_needs_the_csrf_token(signed_in):
    await post_compose(signed_in, message_fields(action="attach"), FILES)

    response = await signed_in.post("/compose/cancel", form={})

    assert response.status_code == 400
    assert await Message.all().count() == 1
    assert (await signed_in.get("/compose")).status_code == 200


async def test_cancel_after_sending_keeps_the_sent_message(signed_in, data_dir):
    await send(signed_in)
    csrf = await csrf_of(signed_in)

    await signed_in.post("/compose/cancel", form={"csrf_token": csrf})

    assert (await Message.get()).status is MessageStatus.SENT
    assert len(stored_files(data_dir)) == 2


async def test_recipient_link_from_the_notification_leads_to_the_waiting_page(signed_in):
    await send(signed_in)

    for address in (PLAIN, PHONE_VERIFIED):
        link = await newest_link(signed_in, address, "m")
        response = await signed_in.get(link + "?lang=en")
        html = await page_text(response)
        assert response.status_code == 200
        assert "A confidential message is waiting for you" in html
        assert SENDER in html and address in html


async def test_phone_verified_recipient_page_masks_the_number(signed_in):
    await send(signed_in)
    link = await newest_link(signed_in, PHONE_VERIFIED, "m")

    html = await page_text(await signed_in.get(link + "?lang=en"))

    assert "•••• 456" in html
    assert "0400123456" not in html and "400123456" not in html
    assert "PIN code that will be sent by SMS" in html


async def test_each_recipient_gets_a_link_of_their_own(signed_in):
    await send(signed_in)

    links = {await newest_link(signed_in, a, "m") for a in (PLAIN, PHONE_VERIFIED)}

    assert len(links) == 2


async def test_unknown_recipient_link_is_404(client):
    response = await client.get("/m/" + "B" * 43)

    assert response.status_code == 404


async def test_confirmation_page_shows_what_was_sent(signed_in):
    response = await send(signed_in)
    html = await page_text(await signed_in.get(response.headers["Location"] + "?lang=en"))

    assert "Message sent" in html
    for text in (SENDER, PLAIN, PHONE_VERIFIED, "Hakemus 2024/17", "liitteenä hakemus"):
        assert text in html
    assert "Liisa Laine" in html
    assert "hakemus.pdf" in html and "liite.txt" in html
    assert "10.0\u00a0kB" in html  # 10 249 bytes
    assert "•••• 456" in html
    assert "0400123456" not in html and "+358400123456" not in html
    assert "Message with attachments (zip)" in html
    assert f'href="/sent/{sent_id(response)}/zip"' in html


async def test_new_message_after_sending_starts_empty(signed_in):
    await send(signed_in)

    html = await page_text(await signed_in.get("/compose"))

    assert "Hakemus 2024/17" not in html
    assert "hakemus.pdf" not in html


async def test_help_page_explains_the_phone_suffix_and_limits(client):
    html = await page_text(await client.get("/help?lang=en"))

    assert ".sec" in html
    assert "example.fi, valtori.fi" in html
    assert "48.8\u00a0kB" in html


async def test_unknown_message_ids_are_404_not_500(signed_in):
    for path in (f"/sent/{uuid.uuid4()}", "/sent/not-a-uuid", "/sent/not-a-uuid/zip"):
        assert (await signed_in.get(path)).status_code == 404
