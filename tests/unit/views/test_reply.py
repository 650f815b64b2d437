"""The secure reply: from the open message its recipient answers the sender, with files."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest

from portal.models import Attachment, Channel, Message, MessageStatus, OutboxItem

from ..helpers import (
    csrf_of,
    file_names,
    multipart,
    newest_link,
    opened,
    page_text,
    post_compose,
    press_open,
    row_counts,
    row_where,
    rows_where,
    send_message,
    stored_files,
)

SENDER = "liisa@example.com"
READER = "ville@valtori.fi"
SUBJECT = "Hakemus 2024/17"
REPLY = "Kiitos viestistä.\nLiitteenä pyytämänne selvitys."
ANSWER = ("attachments", "selvitys.pdf", b"%PDF-1.7 reply " + bytes(range(256)) * 8)
LIMIT = 20_000


@pytest.fixture
def portal_config(portal_config):
    return {**portal_config, "max_attachments_bytes": LIMIT}


@pytest.fixture
async def signed_in(client, sign_in):
    """The original sender's browser, after sending a message to ``READER``."""
    await sign_in(SENDER)
    await client.get("/compose?lang=en")
    fields = {"recipients": READER, "subject": SUBJECT, "body": "Hei!"}
    await send_message(client, fields, [("attachments", "a.txt", b"original")])
    return client


@pytest.fixture
async def link(signed_in) -> str:
    return await newest_link(signed_in, READER, "m")


@pytest.fixture
async def reader(portal_app, link):
    """The recipient's browser (in English) with the message open."""
    browser = portal_app.test_client()
    assert (await press_open(browser, link)).status_code == 303
    return browser


async def post_reply(browser, link: str, fields: dict[str, str], files=(), csrf: str | None = None):
    token = csrf if csrf is not None else await csrf_of(browser, link)
    body, content_type = multipart([("csrf_token", token), *fields.items()], files)
    return await browser.post(f"{link}/reply", data=body, headers={"Content-Type": content_type})


@pytest.fixture
async def replied(reader, link) -> Message:
    response = await post_reply(reader, link, {"body": REPLY, "action": "send"}, [ANSWER])
    assert response.status_code == 303, await page_text(response)
    assert urlsplit(response.headers["Location"]).path == f"{link}/reply/sent"
    reply = await Message.get(reply_to_id__isnull=False).prefetch_related("sender", "recipients")
    return await opened(reader, reply)


async def drafts() -> list[Message]:
    return list(await Message.filter(status=MessageStatus.DRAFT).prefetch_related("sender"))


# -- a reply that is sent --------------------------------------------------------------------


async def test_reply_sent_page_names_the_original_sender(reader, link, replied):
    html = await page_text(await reader.get(f"{link}/reply/sent"))

    assert "Reply sent" in html and SENDER in html


async def test_reply_is_a_message_from_the_reader_to_the_original_sender(reader, replied):
    original = await row_where(reader, Message, subject=SUBJECT)

    assert replied.status is MessageStatus.SENT
    assert replied.reply_to_id == original.id
    assert replied.sender.email == READER
    assert replied.subject == f"Re: {SUBJECT}"
    assert [r.email for r in replied.recipients] == [SENDER]
    assert replied.recipients[0].verification == "none"
    assert await drafts() == []


async def test_original_sender_is_notified_with_a_link_saying_it_is_a_reply(signed_in, replied):
    notification = await OutboxItem.get(id=replied.recipients[0].notification_id)

    assert notification.channel == Channel.EMAIL and notification.to_address == SENDER
    assert "Reply to your confidential message" in notification.subject
    assert SUBJECT not in notification.subject
    assert (await newest_link(signed_in, SENDER, "m")).startswith("/m/")


async def test_original_sender_opens_the_reply_and_sees_what_it_answers(signed_in, replied):
    reply_link = await newest_link(signed_in, SENDER, "m")

    opened = await press_open(signed_in, reply_link)
    assert opened.status_code == 303
    html = await page_text(await signed_in.get(reply_link))

    assert f"Re: {SUBJECT}" in html
    assert f"This is a reply to your message “{SUBJECT}”" in html
    assert READER in html
    assert REPLY in html
    assert "selvitys.pdf" in html
    attachment = await Attachment.get(message_id=replied.id)
    download = await signed_in.get(f"{reply_link}/attachments/{attachment.id}")
    assert download.status_code == 200
    assert bytes(await download.get_data()) == ANSWER[2]


async def test_reply_form_shows_the_recipient_and_subject(reader, link):
    html = await page_text(await reader.get(f"{link}/reply"))

    assert f"Re: {SUBJECT}" in html and SENDER in html
    assert re.search(rf'action="{link}/reply\?draft=[0-9a-f-]{{36}}"', html)  # names its draft
    assert 'enctype="multipart/form-data"' in html


# -- refused replies -------------------------------------------------------------------------


async def test_empty_body_is_400_and_the_file_is_kept_on_the_reply_draft(reader, link, data_dir):
    files_before = len(stored_files(data_dir))

    response = await post_reply(reader, link, {"body": " \r\n ", "action": "send"}, [ANSWER])

    html = await page_text(response)
    assert response.status_code == 400
    assert 'class="error-summary"' in html and "Write a reply." in html
    assert "selvitys.pdf" in html
    (draft,) = await drafts()
    assert draft.sender.email == READER
    assert await file_names(reader, message_id=draft.id) == ["selvitys.pdf"]
    assert len(stored_files(data_dir)) == files_before + 1
    assert "selvitys.pdf" in await page_text(await reader.get(f"{link}/reply"))
    assert not await OutboxItem.filter(to_address=SENDER, subject__contains="Reply").exists()


async def test_reply_after_an_error_sends_the_file_kept_before(reader, link):
    await post_reply(reader, link, {"body": "", "action": "send"}, [ANSWER])

    response = await post_reply(reader, link, {"body": REPLY, "action": "send"})

    assert response.status_code == 303
    reply = await opened(reader, await Message.get(reply_to_id__isnull=False))
    assert reply.status is MessageStatus.SENT and reply.body == REPLY
    assert await file_names(reader, message_id=reply.id) == ["selvitys.pdf"]


async def test_over_limit_upload_is_refused_413_with_nothing_stored(reader, link, data_dir):
    before = await row_counts()
    files_before = stored_files(data_dir)
    too_big = [("attachments", "iso.bin", b"x" * (LIMIT + 1))]

    response = await post_reply(reader, link, {"body": REPLY, "action": "send"}, too_big)

    assert response.status_code == 413
    assert "too large" in await page_text(response)
    assert await row_counts() == before
    assert stored_files(data_dir) == files_before


async def test_reply_without_the_csrf_token_is_refused_and_stores_nothing(reader, link, data_dir):
    before = await row_counts()
    files_before = stored_files(data_dir)

    response = await post_reply(reader, link, {"body": REPLY}, [ANSWER], csrf="forged")

    assert response.status_code == 400
    assert await row_counts() == before
    assert stored_files(data_dir) == files_before


async def test_replying_needs_the_message_open_in_this_session(portal_app, link, data_dir):
    stranger = portal_app.test_client()
    csrf = await csrf_of(stranger, link)  # a valid token of its own session
    before = await row_counts()
    files_before = stored_files(data_dir)

    assert (await stranger.get(f"{link}/reply")).status_code == 401
    response = await post_reply(stranger, link, {"body": REPLY}, [ANSWER], csrf=csrf)

    assert response.status_code == 401
    assert await row_counts() == before
    assert stored_files(data_dir) == files_before


async def test_replying_after_close_is_401(reader, link):
    csrf = await csrf_of(reader, link)
    await reader.post(f"{link}/close", form={"csrf_token": csrf})

    response = await post_reply(reader, link, {"body": REPLY}, csrf=csrf)

    assert response.status_code == 401
    assert not await Message.filter(reply_to_id__isnull=False).exists()


# -- the reply draft -------------------------------------------------------------------------


async def test_cancel_reply_discards_the_draft_and_its_files(reader, link, data_dir):
    files_before = stored_files(data_dir)
    attached = await post_reply(reader, link, {"body": "luonnos", "action": "attach"}, [ANSWER])
    assert attached.status_code == 200
    assert len(await drafts()) == 1
    assert len(stored_files(data_dir)) == len(files_before) + 1

    response = await reader.post(
        f"{link}/reply/cancel", form={"csrf_token": await csrf_of(reader, link)}
    )

    assert response.status_code == 303
    assert urlsplit(response.headers["Location"]).path == link
    assert await drafts() == []
    assert await rows_where(reader, Attachment, filename="selvitys.pdf") == []
    assert stored_files(data_dir) == files_before
    html = await page_text(await reader.get(f"{link}/reply"))
    assert "selvitys.pdf" not in html and "luonnos" not in html


async def test_removing_a_file_from_the_reply_draft_deletes_it(reader, link, data_dir):
    files_before = stored_files(data_dir)
    await post_reply(reader, link, {"body": "luonnos", "action": "attach"}, [ANSWER])
    attachment = await row_where(reader, Attachment, filename="selvitys.pdf")

    response = await reader.post(
        f"{link}/reply/attachments/{attachment.id}/remove",
        form={"csrf_token": await csrf_of(reader, link)},
    )

    assert response.status_code == 303
    assert not await Attachment.exists(id=attachment.id)
    assert stored_files(data_dir) == files_before
    assert "luonnos" in await page_text(await reader.get(f"{link}/reply"))


async def test_reply_draft_of_one_message_does_not_follow_to_another(signed_in, reader, link):
    await post_reply(reader, link, {"body": "luonnos", "action": "attach"}, [ANSWER])
    await post_compose(signed_in, {"recipients": READER, "subject": "Toinen", "action": "send"})
    other_link = await newest_link(signed_in, READER, "m")
    assert other_link != link
    await press_open(reader, other_link)

    html = await page_text(await reader.get(f"{other_link}/reply"))

    assert "Re: Toinen" in html
    assert "selvitys.pdf" not in html and "luonnos" not in html
