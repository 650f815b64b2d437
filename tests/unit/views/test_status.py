"""/sent: the status of every sent message, per recipient, for its own sender only."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from portal.i18n import locale_context
from portal.models import AccessCode, OutboxItem, OutboxStatus, Recipient
from portal.services.files import format_when

from ..helpers import (
    csrf_of,
    eventually,
    newest_link,
    page_text,
    press_open,
    send_message,
    sign_in_with,
)

SENDER = "liisa@example.com"
PLAIN = "ville@valtori.fi"
PHONE_RECIPIENT = "maija@example.fi"
SUBJECT = "Hakemus 2024/17"


def states(html: str) -> dict[str, tuple[str, str]]:
    """Each recipient row of the page: address → (state, the words shown)."""
    found = {}
    for row in re.findall(r"<tr>\s*<td>.*?</tr>", html, re.S):
        email = re.search(r"<td>([^<\s]+)", row).group(1)
        cell = re.search(r'class="status status--([a-z-]+)">(.*?)</td>', row, re.S)
        found[email] = (cell.group(1), " ".join(cell.group(2).split()))
    return found


async def status_page(client) -> str:
    response = await client.get("/sent?lang=en")
    assert response.status_code == 200
    return await page_text(response)


async def send(client, subject: str = SUBJECT, recipients: str = PLAIN) -> str:
    return await send_message(client, {"recipients": recipients, "subject": subject, "body": "Hei"})


async def test_sent_list_without_a_session_is_401(client):
    response = await client.get("/sent")

    assert response.status_code == 401


async def test_sent_list_shows_only_the_signed_in_senders_messages(portal_app, client, sign_in):
    await sign_in(SENDER)
    mine = await send(client, "Liisan viesti")
    other = portal_app.test_client()
    await sign_in_with(other, "pekka@example.com")
    theirs = await send(other, "Pekan viesti")

    my_page = await status_page(client)
    their_page = await status_page(other)

    assert "Liisan viesti" in my_page and "Pekan viesti" not in my_page
    assert "Pekan viesti" in their_page and "Liisan viesti" not in their_page
    assert f'href="{mine}"' in my_page and f'href="{theirs}"' not in my_page
    for path in (mine, mine + "/zip"):
        response = await other.get(path)
        assert response.status_code == 404
        assert "Liisan viesti" not in await page_text(response)


async def test_sender_without_messages_is_told_so(client, sign_in):
    await sign_in(SENDER)

    html = await status_page(client)

    assert "You have not sent any messages yet." in html


class TestStates:
    @pytest.fixture
    async def sent(self, portal_app, client, sign_in, data_dir) -> dict[str, str]:
        """A message to two recipients whose notifications cannot be delivered yet (the dev
        mailbox cannot be written); the recipients' /m/ links."""
        data_dir.mkdir(parents=True, exist_ok=True)
        (data_dir / "devmailbox.jsonl").mkdir()
        await sign_in(SENDER)
        await client.get("/compose?lang=en")
        await send(client, recipients=f"{PLAIN}, {PHONE_RECIPIENT}.0400123456.sec")
        return {
            address: await newest_link(client, address, "m") for address in (PLAIN, PHONE_RECIPIENT)
        }

    @pytest.fixture
    def delivered(self, client, data_dir, moved_clock):
        """Let the outbox deliver (the mailbox writable, the retry due); wait for the page."""

        async def run() -> dict[str, tuple[str, str]]:
            (data_dir / "devmailbox.jsonl").rmdir()
            moved_clock.advance(minutes=5)

            async def notified() -> dict[str, tuple[str, str]] | None:
                shown = states(await status_page(client))
                return shown if shown[PLAIN][0] == shown[PHONE_RECIPIENT][0] == "notified" else None

            shown = await eventually(notified)
            assert shown, "the notifications were not delivered"
            return shown

        return run

    async def test_queued_then_notified_after_delivery(self, client, sent, delivered):
        queued = states(await status_page(client))
        assert queued == {
            PLAIN: ("queued", "Notification being sent"),
            PHONE_RECIPIENT: ("queued", "Notification being sent"),
        }
        tried = await eventually(lambda: OutboxItem.exists(to_address=PLAIN, attempts__gte=1))
        assert tried, "the worker did not try to deliver"
        assert states(await status_page(client))[PLAIN][0] == "queued"

        shown = await delivered()

        assert shown[PLAIN] == ("notified", "Notified, not opened yet")
        html = await status_page(client)
        assert "PIN to •••• 456" in html and "0400123456" not in html
        assert SUBJECT in html

    async def test_opened_shows_when(self, portal_app, client, sent, delivered):
        await delivered()
        browser = portal_app.test_client()
        assert (await press_open(browser, sent[PLAIN])).status_code == 303
        opened_at = (await Recipient.get(email=PLAIN)).opened_at
        with locale_context("en"):
            when = format_when(opened_at, portal_app.app.extensions["sinetti"].settings.tz)

        shown = states(await status_page(client))

        assert shown[PLAIN] == ("opened", " ".join(f"Opened {when}".split()))
        assert shown[PHONE_RECIPIENT][0] == "notified"

    async def test_locked_is_shown_for_that_recipient_only(
        self, portal_app, client, sent, delivered
    ):
        await delivered()
        link = sent[PHONE_RECIPIENT]
        browser = portal_app.test_client()
        csrf = await csrf_of(browser, link)
        await browser.post(f"{link}/open", form={"csrf_token": csrf})
        for _ in range(5):
            response = await browser.post(f"{link}/code", form={"csrf_token": csrf, "code": "x"})
        assert response.status_code == 403

        shown = states(await status_page(client))

        assert shown[PHONE_RECIPIENT] == ("locked", "Locked: too many wrong codes")
        assert shown[PLAIN][0] == "notified"

    async def test_a_recipient_locked_after_opening_still_shows_when_they_opened(
        self, portal_app, client, sent, delivered
    ):
        await delivered()
        opened_at = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
        await Recipient.filter(email=PHONE_RECIPIENT).update(
            opened_at=opened_at, locked_at=opened_at + timedelta(hours=1)
        )
        with locale_context("en"):
            when = format_when(opened_at, portal_app.app.extensions["sinetti"].settings.tz)

        shown = states(await status_page(client))

        state, words = shown[PHONE_RECIPIENT]
        assert state == "locked"
        assert words == " ".join(
            f'<span class="status--opened">Opened {when}</span><br>'
            "Locked: too many wrong codes".split()
        )

    async def test_notification_that_failed_for_good_is_shown(self, client, sent, delivered):
        await delivered()
        item = (await Recipient.get(email=PLAIN)).notification_id
        await OutboxItem.filter(id=item).update(status=OutboxStatus.FAILED)

        shown = states(await status_page(client))

        assert shown[PLAIN] == ("not-delivered", "Notification could not be delivered")

    async def test_pin_sms_that_failed_for_good_is_shown_for_that_recipient(
        self, portal_app, client, sent, delivered
    ):
        await delivered()
        browser = portal_app.test_client()
        await browser.post(
            f"{sent[PHONE_RECIPIENT]}/open",
            form={"csrf_token": await csrf_of(browser, sent[PHONE_RECIPIENT])},
        )
        code = await AccessCode.get(recipient__email=PHONE_RECIPIENT)
        assert code.delivery_id is not None, "opening the link did not send a PIN"

        async def settled() -> bool:  # the app's worker is done with the SMS (no race)
            item = await OutboxItem.get(id=code.delivery_id)
            return item.status != OutboxStatus.PENDING and item.claimed_until is None

        assert await eventually(settled, timeout=30)
        await OutboxItem.filter(id=code.delivery_id).update(status=OutboxStatus.FAILED)

        shown = states(await status_page(client))

        assert shown[PHONE_RECIPIENT] == (
            "notified",
            'Notified, not opened yet <br><span class="status--not-delivered">'
            "The PIN SMS could not be delivered</span>",
        )
        assert shown[PLAIN] == ("notified", "Notified, not opened yet")
