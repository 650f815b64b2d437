"""The audit trail: every event recorded by a real flow through the app, with who and from
where, and never any content, token, PIN or phone number in what is stored."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from tortoise import connections

from portal.models import AuditEvent, Message, Recipient
from portal.security import hash_token
from portal.services import audit, clock
from portal.testing import csrf_from, free_port

from ..helpers import (
    all_delivered,
    csrf_of,
    eventually,
    multipart,
    newest_link,
    newest_pin,
    open_message,
    page_text,
    press_open,
    token_of,
    wrong_code,
)

SENDER = "liisa@example.com"
PLAIN = "ville@valtori.fi"
PHONE_RECIPIENT = "maija@example.fi"
PHONE = "+358400123456"
SUBJECT = "Salainen hakemus 2026/117"
BODY = "Luottamuksellinen sisältö: henkilötunnus 010101-123A"
FILE_NAME = "terveystiedot.pdf"
FILE = b"%PDF-1.7 secret attachment " + bytes(range(256)) * 8
READER_IP = ("192.0.2.44", 4711)
GUESSER_IP = ("198.51.100.7", 4711)
SENDER_IP = ("203.0.113.9", 4711)


async def events(event: str | None = None, **filters: object) -> list[AuditEvent]:
    query = AuditEvent.filter(**filters)
    if event is not None:
        query = query.filter(event=event)
    return list(await query.order_by("id"))


def eventually_events(event: str, count: int = 1, **filters: object):
    async def found() -> list[AuditEvent]:
        got = await events(event, **filters)
        return got if len(got) >= count else []

    return eventually(found, timeout=30)


async def recipient_of(link: str) -> Recipient:
    return await Recipient.get(token_hash=hash_token(token_of(link)))


async def sign_in_from(client, address: str, scope: dict) -> str:
    """Register and press Continue on the personal link, both from the client ``scope``."""
    page = await client.get("/", scope_base=scope)
    response = await client.post(
        "/",
        form={"email": address, "csrf_token": csrf_from(await page_text(page))},
        scope_base=scope,
    )
    assert response.status_code == 200
    link = await newest_link(client, address, "s")
    page = await client.get(link, scope_base=scope)
    response = await client.post(
        link, form={"csrf_token": csrf_from(await page_text(page))}, scope_base=scope
    )
    assert response.status_code == 303
    return link


async def send(client) -> Message:
    """Send with the compose form from the sender's client address."""
    fields = [
        ("csrf_token", await csrf_of(client)),
        ("action", "send"),
        ("recipients", f"{PLAIN}, {PHONE_RECIPIENT}.0400123456.sec"),
        ("subject", SUBJECT),
        ("body", BODY),
        ("read_receipt", "1"),
    ]
    body, content_type = multipart(fields, [("attachments", FILE_NAME, FILE)])
    response = await client.post(
        "/compose",
        data=body,
        headers={"Content-Type": content_type},
        scope_base={"client": SENDER_IP},
    )
    assert response.status_code == 303, await page_text(response)
    return await Message.get(id=response.headers["Location"].rsplit("/", 1)[1])


@pytest.fixture
async def signed_in(client):
    await sign_in_from(client, SENDER, {"client": SENDER_IP})
    await client.get("/compose?lang=en")
    return client


@pytest.fixture
async def message(signed_in) -> Message:
    return await send(signed_in)


@pytest.fixture
def reader(portal_app):
    return portal_app.test_client()


# -- the sender ------------------------------------------------------------------------------


async def test_registration_and_the_links_use_are_recorded_with_the_client_address(signed_in):
    (registered,) = await events("registered")
    (used,) = await events("link_used")

    for event in (registered, used):
        assert event.actor == SENDER
        assert event.client_ip == SENDER_IP[0]
        assert event.message_id is None  # events of no message
        assert event.sender_id is not None
    assert registered.detail == {"new_sender": True}
    assert used.detail == {}


async def test_send_records_sent_with_counts_only(message):
    (sent,) = await events("sent")

    assert sent.message_id == message.id
    assert sent.sender_id == message.sender_id  # type: ignore[attr-defined]
    assert sent.actor == SENDER
    assert sent.client_ip == SENDER_IP[0]
    assert sent.detail == {"recipients": 2, "attachments": 1, "reply": False}


async def test_each_notification_of_the_message_is_recorded_delivered(message):
    plain = await Recipient.get(email=PLAIN)
    phone = await Recipient.get(email=PHONE_RECIPIENT)

    # Two recipients' notifications and the sender's signed receipt.
    delivered = await eventually_events("notification_delivered", 3, message_id=message.id)

    assert {event.detail.get("recipient") for event in delivered} == {plain.id, phone.id, None}
    for event in delivered:
        assert event.actor == "system"
        assert event.client_ip is None
        assert event.sender_id == message.sender_id  # type: ignore[attr-defined]
        assert event.detail["lane"] == "email"
    # The registration mail belongs to no message: it is not part of the trail.
    assert not await events("notification_delivered", message_id__isnull=True)


# -- the recipients --------------------------------------------------------------------------


async def test_every_open_is_recorded_by_recipient_and_client(portal_app, message, signed_in):
    link = await newest_link(signed_in, PLAIN, "m")
    plain = await recipient_of(link)
    for client_address in (READER_IP, GUESSER_IP):
        browser = portal_app.test_client()
        csrf = csrf_from(await page_text(await browser.get(link, scope_base={"client": READER_IP})))
        response = await browser.post(
            f"{link}/open", form={"csrf_token": csrf}, scope_base={"client": client_address}
        )
        assert response.status_code == 303

    opened = await events("opened")

    assert [event.actor for event in opened] == [f"recipient {plain.id}"] * 2
    assert [event.client_ip for event in opened] == [READER_IP[0], GUESSER_IP[0]]
    assert [event.detail for event in opened] == [{"first": True}, {"first": False}]
    assert all(event.message_id == message.id for event in opened)


async def test_pin_sent_wrong_pins_and_the_lock_are_recorded(reader, message, signed_in):
    link = await newest_link(signed_in, PHONE_RECIPIENT, "m")
    phone = await recipient_of(link)
    assert (await press_open(reader, link)).status_code == 303
    pin = await newest_pin(reader, PHONE)
    (pin_sent,) = await eventually_events("pin_sent")
    csrf = csrf_from(await page_text(await reader.get(f"{link}/code")))

    statuses = [
        (
            await reader.post(
                f"{link}/code",
                form={"csrf_token": csrf, "code": wrong_code(pin)},
                scope_base={"client": GUESSER_IP},
            )
        ).status_code
        for _ in range(5)
    ]

    assert statuses == [400, 400, 400, 400, 403]
    assert pin_sent.actor == "system" and pin_sent.message_id == message.id
    assert pin_sent.detail == {
        "lane": "sms",
        "outbox_item": pin_sent.detail["outbox_item"],
        "recipient": phone.id,
        "code": True,
    }
    failed = await events("pin_failed")
    assert [event.detail["tries_left"] for event in failed] == [4, 3, 2, 1, 0]
    (locked,) = await events("pin_locked")
    for event in [*failed, locked]:
        assert event.actor == f"recipient {phone.id}"
        assert event.client_ip == GUESSER_IP[0]
        assert event.message_id == message.id
    assert locked.id > failed[-1].id  # the lock came with the last wrong guess


async def test_a_complete_download_is_recorded_and_a_partial_one_is_not(reader, message, signed_in):
    link = await newest_link(signed_in, PLAIN, "m")
    plain = await recipient_of(link)
    await open_message(reader, link)
    attachment = (await message.attachments.all())[0]
    url = f"{link}/attachments/{attachment.id}"

    part = await reader.get(url, headers={"Range": "bytes=0-9"})
    assert part.status_code == 206
    await part.get_data()
    assert not await events("downloaded")
    whole = await reader.get(url, scope_base={"client": READER_IP})
    assert await whole.get_data() == FILE
    zipped = await reader.get(f"{link}/zip")
    await zipped.get_data()
    own_zip = await signed_in.get(f"/sent/{message.id}/zip")
    await own_zip.get_data()

    single, whole_zip, senders_zip = await eventually_events("downloaded", 3)
    assert single.actor == whole_zip.actor == f"recipient {plain.id}"
    assert single.client_ip == READER_IP[0]
    assert single.detail == {"attachment": attachment.id, "size": len(FILE)}
    assert whole_zip.detail == {"zip": True, "attachments": 1}
    assert senders_zip.actor == SENDER and senders_zip.detail == whole_zip.detail


async def test_a_reply_is_recorded_on_the_message_it_answers_and_as_sent(
    reader, message, signed_in
):
    link = await newest_link(signed_in, PLAIN, "m")
    plain = await recipient_of(link)
    await open_message(reader, link)
    csrf = csrf_from(await page_text(await reader.get(f"{link}/reply")))
    body, content_type = multipart([("csrf_token", csrf), ("body", BODY), ("action", "send")])

    response = await reader.post(
        f"{link}/reply",
        data=body,
        headers={"Content-Type": content_type},
        scope_base={"client": READER_IP},
    )

    assert response.status_code == 303
    reply = await Message.get(reply_to_id=message.id)
    (replied,) = await events("reply_sent")
    assert replied.message_id == message.id
    assert replied.sender_id == message.sender_id  # type: ignore[attr-defined]
    assert replied.actor == f"recipient {plain.id}"
    assert replied.client_ip == READER_IP[0]
    assert replied.detail == {"reply": str(reply.id)}
    (sent_reply,) = await events("sent", message_id=reply.id)
    assert sent_reply.actor == PLAIN
    assert sent_reply.detail == {"recipients": 1, "attachments": 0, "reply": True}


# -- what is never stored --------------------------------------------------------------------


async def test_no_content_token_pin_or_phone_number_is_ever_stored(
    portal_app, reader, message, signed_in
):
    plain_link = await newest_link(signed_in, PLAIN, "m")
    phone_link = await newest_link(signed_in, PHONE_RECIPIENT, "m")
    await open_message(reader, plain_link)
    attachment = (await message.attachments.all())[0]
    await (await reader.get(f"{plain_link}/attachments/{attachment.id}")).get_data()
    pin_reader = portal_app.test_client()
    await press_open(pin_reader, phone_link)
    pin = await newest_pin(pin_reader, PHONE)
    csrf = csrf_from(await page_text(await pin_reader.get(f"{phone_link}/code")))
    await pin_reader.post(f"{phone_link}/code", form={"csrf_token": csrf, "code": wrong_code(pin)})
    await pin_reader.post(f"{phone_link}/code", form={"csrf_token": csrf, "code": pin})
    await eventually_events("pin_sent")
    await eventually_events("notification_delivered", 4)  # with the read receipt

    rows = await connections.get("default").execute_query_dict("SELECT * FROM audit_event")
    stored = repr(rows)

    assert {row["event"] for row in rows} >= {
        "registered",
        "link_used",
        "sent",
        "notification_delivered",
        "opened",
        "pin_sent",
        "pin_failed",
        "downloaded",
    }
    secrets = [
        SUBJECT,
        "Salainen",
        "Luottamuksellinen",
        "010101",
        FILE_NAME,
        "terveystiedot",
        PHONE,
        "400123456",
        pin,
        wrong_code(pin),
        token_of(plain_link),
        token_of(phone_link),
        PLAIN,  # recipients are named by id
        PHONE_RECIPIENT,
    ]
    for secret in secrets:
        assert secret not in stored, secret


async def test_record_refuses_a_detail_that_could_be_text(database):
    with pytest.raises(ValueError, match="too long"):
        await audit.record("sent", actor="system", note="x" * (audit.MAX_DETAIL_TEXT + 1))
    with pytest.raises(ValueError, match="plain value"):
        await audit.record("sent", actor="system", files=["a.pdf"])  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        await audit.record("read_the_text", actor="system")

    assert await AuditEvent.all().count() == 0


# -- retention -------------------------------------------------------------------------------


async def test_the_trail_outlives_its_message_and_purge_records_with_its_sender(message):
    await all_delivered()  # the notifications' events come before the purge, as in real life
    sender_id = message.sender_id  # type: ignore[attr-defined]
    await message.delete()

    await audit.record("purged", message_id=message.id, sender_id=sender_id, actor="system")

    trail = await events(message_id=message.id)
    assert trail[0].event == "sent"
    assert trail[-1].event == "purged" and trail[-1].sender_id == sender_id


async def test_purge_before_deletes_only_older_events(database):
    now = clock.now()
    message_id = uuid.uuid4()
    old = await audit.record(
        "opened", message_id=message_id, sender_id=1, actor="recipient 1", at=now - timedelta(400)
    )
    kept = await audit.record(
        "opened", message_id=message_id, sender_id=1, actor="recipient 1", at=now - timedelta(364)
    )

    assert await audit.purge_before(now - timedelta(days=365)) == 1

    assert [event.id for event in await events()] == [kept.id]
    assert old.id != kept.id


async def test_events_of_sender_returns_only_that_senders_events(database):
    mine, theirs = uuid.uuid4(), uuid.uuid4()
    await audit.record("sent", message_id=mine, sender_id=1, actor="a@example.com")
    await audit.record("sent", message_id=theirs, sender_id=2, actor="b@example.com")

    found = await audit.events_of_sender(1, [mine, theirs])

    assert list(found) == [str(mine)]


# -- failed deliveries -----------------------------------------------------------------------


class TestFailedDeliveries:
    @pytest.fixture
    def portal_config(self, portal_config):
        closed = free_port()  # nothing listens here
        return {
            **portal_config,
            "mail": "smtp",
            "sms": "http",
            "outbox_max_attempts": 1,
            "plugin_options": {
                "SMTP_HOST": "127.0.0.1",
                "SMTP_PORT": str(closed),
                "SMTP_TIMEOUT": "5",
                "SMS_HTTP_URL": f"http://127.0.0.1:{closed}/sms",
            },
        }

    async def test_failed_notifications_and_pin_sms_are_recorded_per_lane(
        self, portal_app, message, signed_in
    ):
        link = await newest_link(signed_in, PHONE_RECIPIENT, "m")
        phone = await recipient_of(link)

        failed_mail = await eventually_events("notification_failed", 3, message_id=message.id)
        assert {event.detail["lane"] for event in failed_mail} == {"email"}
        assert {event.detail.get("recipient") for event in failed_mail} >= {phone.id, None}
        reader = portal_app.test_client()
        assert (await press_open(reader, link)).status_code == 303
        failed = await eventually_events("notification_failed", 4, message_id=message.id)

        (failed_pin,) = [event for event in failed if event.detail["lane"] == "sms"]
        assert failed_pin.detail["code"] is True
        assert failed_pin.detail["recipient"] == phone.id
        assert not await events("pin_sent")
