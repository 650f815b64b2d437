"""/sent: the history of each message (its audit trail in words), for its own sender only."""

from __future__ import annotations

import re
from html import unescape

from portal.i18n import locale_context
from portal.models import AuditEvent, Message
from portal.services.files import format_when

from ..helpers import (
    eventually,
    newest_link,
    open_message,
    page_text,
    row_where,
    send_message,
    sign_in_with,
)

SENDER = "liisa@example.com"
OTHER_SENDER = "pekka@example.com"
PLAIN = "ville@valtori.fi"
OTHER_RECIPIENT = "maija@example.fi"


async def status_page(client) -> str:
    response = await client.get("/sent?lang=en")
    assert response.status_code == 200
    return await page_text(response)


def history_of(html: str, subject: str) -> list[str]:
    """The history lines of the card of ``subject``: "<time>: <words>"."""
    card = re.search(rf"<li class=\"card\">.*?{re.escape(subject)}.*?</li>\s*</ol>", html, re.S)
    if card is None:
        return []
    return [
        " ".join(unescape(re.sub(r"<[^>]+>", "", line)).split())
        for line in re.findall(r"<li><time.*?</li>", card.group(0), re.S)
    ]


async def test_the_history_shows_the_messages_events_in_the_portals_time(portal_app, client):
    await sign_in_with(client, SENDER)
    await send_message(client, {"recipients": PLAIN, "subject": "Liisan viesti", "body": "Hei"})
    message = await row_where(client, Message, subject="Liisan viesti")
    await open_message(portal_app.test_client(), await newest_link(client, PLAIN, "m"))
    await eventually(lambda: AuditEvent.filter(event="notification_delivered").count())
    sent = await AuditEvent.get(event="sent", message_id=message.id)
    opened = await AuditEvent.get(event="opened")
    with locale_context("en"):
        tz = portal_app.app.extensions["sinetti"].settings.tz
        sent_at, opened_at = format_when(sent.at, tz), format_when(opened.at, tz)

    lines = history_of(await status_page(client), "Liisan viesti")

    assert "<summary>History</summary>" in await status_page(client)
    assert " ".join(f"{sent_at}: Sent to 1 recipient".split()) in lines
    assert " ".join(f"{opened_at}: Opened by {PLAIN}".split()) in lines
    assert any(line.endswith(f"Notification e-mail delivered to {PLAIN}") for line in lines)


async def test_a_sender_sees_the_history_of_their_own_messages_only(portal_app, client):
    await sign_in_with(client, SENDER)
    await send_message(client, {"recipients": PLAIN, "subject": "Liisan viesti", "body": "Hei"})
    other = portal_app.test_client()
    await sign_in_with(other, OTHER_SENDER)
    await send_message(
        other, {"recipients": OTHER_RECIPIENT, "subject": "Pekan viesti", "body": "Hei"}
    )
    await open_message(portal_app.test_client(), await newest_link(other, OTHER_RECIPIENT, "m"))

    mine = await status_page(client)
    theirs = await status_page(other)

    assert f"Opened by {OTHER_RECIPIENT}" in theirs
    assert OTHER_RECIPIENT not in mine and "Opened by" not in mine
    assert history_of(mine, "Liisan viesti") and not history_of(mine, "Pekan viesti")
    assert PLAIN not in theirs
