"""Guards of the guards: every query scoped by sender, draft or recipient is tried with two of
them, so that a test fails when the scope is dropped; the registration windows are tried at
their edges."""

from __future__ import annotations

import pytest

from portal.models import Attachment, Recipient, Upload
from portal.testing import csrf_from

from .helpers import (
    csrf_of,
    delivered_sms,
    newest_link,
    newest_pin,
    page_text,
    post_compose,
    press_open,
    row_where,
    rows_where,
    send_message,
    sign_in_with,
)

SENDER = "liisa@example.com"
OTHER = "pekka@example.com"
READER_A, PHONE_A = "ville@valtori.fi", "+358400123456"
READER_B, PHONE_B = "anna@valtori.fi", "+358401234567"
CHUNK = 8 * 1024 * 1024


@pytest.fixture
def portal_config(portal_config):
    return {**portal_config, "plugin_options": {"PIN_DAILY_LIMIT": "1"}}


async def announce(client, fingerprint: str, size: int = 10) -> dict:
    response = await client.post(
        "/compose/uploads",
        json={"filename": "f.bin", "size": size, "type": "", "fingerprint": fingerprint},
        headers={"X-CSRF-Token": await csrf_of(client)},
    )
    assert response.status_code == 201, await response.get_data(as_text=True)
    return await response.get_json()


async def put(client, upload_id: str, data: bytes, offset: int = 0):
    return await client.put(
        f"/compose/uploads/{upload_id}",
        data=data,
        headers={"X-CSRF-Token": await csrf_of(client), "Upload-Offset": str(offset)},
    )


@pytest.fixture
async def two_pin_links(client, sign_in) -> tuple[str, str]:
    """One message to two phone-verified recipients: their two links."""
    await sign_in(SENDER)
    recipients = f"{READER_A}.0400123456.sec, {READER_B}.0401234567.sec"
    await send_message(client, {"recipients": recipients, "subject": "S", "body": "B"})
    return await newest_link(client, READER_A, "m"), await newest_link(client, READER_B, "m")


async def answer(browser, link: str, code: str):
    csrf = await csrf_of(browser, f"{link}/code?lang=en")
    return await browser.post(f"{link}/code", form={"code": code, "csrf_token": csrf})


async def test_a_right_pin_uses_only_its_own_recipients_code(portal_app, client, two_pin_links):
    link_a, link_b = two_pin_links
    reader_a, reader_b = portal_app.test_client(), portal_app.test_client()
    await press_open(reader_a, link_a)
    await press_open(reader_b, link_b)
    pin_a, pin_b = await newest_pin(client, PHONE_A), await newest_pin(client, PHONE_B)

    assert (await answer(reader_a, link_a, pin_a)).status_code == 303
    assert (await answer(reader_b, link_b, pin_b)).status_code == 303

    opened = {r.email: r.opened_at for r in await Recipient.all()}
    assert opened[READER_A] is not None and opened[READER_B] is not None


async def test_the_daily_pin_cap_counts_each_recipients_codes_alone(
    portal_app, client, two_pin_links
):
    link_a, link_b = two_pin_links
    await press_open(portal_app.test_client(), link_a)  # A's one code of the day

    opened_b = await press_open(portal_app.test_client(), link_b)

    assert opened_b.status_code == 303  # to the code page, not "too many codes"
    assert opened_b.headers["Location"].endswith("/code")
    await newest_pin(client, PHONE_B)
    assert len(delivered_sms(client, PHONE_B)) == 1


async def test_a_chunk_moves_only_its_own_upload(client, sign_in):
    await sign_in(SENDER)
    first, second = await announce(client, "a|1"), await announce(client, "b|1")

    assert (await put(client, first["id"], b"0123456789")).status_code == 200

    assert not await Upload.exists(id=first["id"])  # finished: it is an attachment now
    assert (await Upload.get(id=second["id"])).received == 0


async def test_an_upload_finished_by_one_sender_is_unknown_to_another(portal_app, client, sign_in):
    await sign_in(SENDER)
    finished = await announce(client, "a|1")
    assert (await put(client, finished["id"], b"0123456789")).status_code == 200
    other = portal_app.test_client()
    await sign_in_with(other, OTHER)

    answer = await other.get(f"/compose/uploads/{finished['id']}")

    assert answer.status_code == 404
    assert (await client.get(f"/compose/uploads/{finished['id']}")).status_code == 200


async def test_the_same_file_announced_in_two_senders_drafts_is_two_uploads(
    portal_app, client, sign_in
):
    await sign_in(SENDER)
    other = portal_app.test_client()
    await sign_in_with(other, OTHER)

    mine = await announce(client, "same|1", size=CHUNK + 1)
    theirs = await announce(other, "same|1", size=CHUNK + 1)

    assert mine["id"] != theirs["id"]
    assert await Upload.all().count() == 2


async def test_one_sender_cannot_remove_another_senders_attachment(portal_app, client, sign_in):
    await sign_in(SENDER)
    fields = {"recipients": READER_A, "subject": "S", "action": "attach"}
    await post_compose(client, fields, [("attachments", "mine.txt", b"mine")])
    other = portal_app.test_client()
    await sign_in_with(other, OTHER)
    await post_compose(other, fields, [("attachments", "theirs.txt", b"theirs")])
    mine = await row_where(client, Attachment, filename="mine.txt")

    await other.post(
        f"/compose/attachments/{mine.id}/remove", form={"csrf_token": await csrf_of(other)}
    )

    assert await Attachment.exists(id=mine.id)
    assert await rows_where(client, Attachment, filename="theirs.txt")


async def register(client, address: str, ip: str = "203.0.113.5"):
    page = await client.get("/?lang=en")
    return await client.post(
        "/",
        form={"email": address, "csrf_token": csrf_from(await page_text(page))},
        scope_base={"client": (ip, 1234)},
    )


class TestRegistrationWindows:
    @pytest.fixture
    def portal_config(self, portal_config):
        return {
            **portal_config,
            "registrations_per_address_per_day": 2,
            "registrations_per_ip_per_hour": 3,
        }

    async def test_the_address_window_is_exactly_one_day(self, client, moved_clock):
        for _ in range(2):
            assert (await register(client, SENDER)).status_code == 200

        moved_clock.advance(hours=23, minutes=59)
        assert (await register(client, SENDER, ip="203.0.113.6")).status_code == 429
        moved_clock.advance(minutes=2)
        assert (await register(client, SENDER, ip="203.0.113.7")).status_code == 200

    async def test_the_client_window_is_exactly_one_hour(self, client, moved_clock):
        for number in range(3):
            assert (await register(client, f"p{number}@example.com")).status_code == 200

        moved_clock.advance(minutes=59)
        assert (await register(client, "p3@example.com")).status_code == 429
        moved_clock.advance(minutes=2)
        assert (await register(client, "p4@example.com")).status_code == 200


async def test_a_session_without_a_csrf_token_accepts_no_token(portal_app):
    stranger = portal_app.test_client()  # never fetched a page: its session has no token

    for token in ("", "None", "null", "x" * 43):
        response = await stranger.post(
            "/", form={"email": SENDER, "csrf_token": token}, headers={"X-CSRF-Token": token}
        )
        assert response.status_code == 400, token
