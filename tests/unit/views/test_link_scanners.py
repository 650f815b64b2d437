"""Mail scanners fetch every link: GET and HEAD never send, delete or use up anything."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from portal.models import Message

from ..helpers import newest_link, post_compose, row_counts, stored_files

SENDER = "liisa@example.com"


async def snapshot(data_dir) -> dict:
    return {
        "rows": await row_counts(),
        "messages": sorted(await Message.all().values_list("id", "status")),
        "files": stored_files(data_dir),
    }


@pytest.fixture
async def sent(client, sign_in) -> dict[str, str]:
    """A message sent to a recipient who opens with the link and one who needs an SMS PIN."""
    personal = await sign_in(SENDER)
    response = await post_compose(
        client,
        {
            "recipients": "ville@valtori.fi, maija@example.fi.0400123456.sec",
            "subject": "S",
            "body": "B",
            "action": "send",
        },
        [("attachments", "a.txt", b"sent file")],
    )
    return {
        "personal": personal,
        "confirmation": urlsplit(response.headers["Location"]).path,
        "plain": await newest_link(client, "ville@valtori.fi", "m"),
        "phone": await newest_link(client, "maija@example.fi", "m"),
    }


RECIPIENT_PAGES = ("", "/code", "/attachments/1", "/zip", "/reply", "/reply/sent")


@pytest.fixture
async def links(client, sent) -> list[str]:
    """Every kind of page a link can point to, with a sent message and an open draft."""
    await post_compose(
        client,
        {"recipients": "", "subject": "draft", "action": "attach"},
        [("attachments", "draft.txt", b"draft file")],
    )
    return [
        "/",
        "/?email=liisa@example.com",
        sent["personal"],
        "/s/" + "x" * 43,
        *(sent["plain"] + page for page in RECIPIENT_PAGES),
        *(sent["phone"] + page for page in RECIPIENT_PAGES),
        "/m/" + "x" * 43,
        "/compose",
        "/compose/cancel",
        "/compose/attachments/1/remove",
        "/sent",
        sent["confirmation"],
        sent["confirmation"] + "/zip",
        "/help",
        "/dev/mailbox",
        "/theme.css",
        "/theme/seal.svg",
        "/static/portal.css",
        "/no/such/page",
    ]


@pytest.mark.parametrize("method", ["GET", "HEAD"])
async def test_no_link_changes_anything_when_fetched(portal_app, client, links, data_dir, method):
    before = await snapshot(data_dir)
    scanner = portal_app.test_client()

    for link in links:
        for who in (scanner, client):
            response = await who.open(link, method=method)
            assert response.status_code < 500, (link, response.status_code)

    assert await snapshot(data_dir) == before
    assert (await client.get("/compose")).status_code == 200, "the sender's session survived"
    assert "draft.txt" in await (await client.get("/compose")).get_data(as_text=True)


@pytest.mark.parametrize("path", ["/compose/cancel", "/compose/attachments/1/remove"])
async def test_state_changing_urls_refuse_get(client, path):
    response = await client.get(path)

    assert response.status_code == 405


@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize("action", ["/open", "/close", "/code/resend"])
async def test_recipient_actions_refuse_get_and_head(portal_app, sent, data_dir, action, method):
    before = await snapshot(data_dir)

    for recipient in (sent["plain"], sent["phone"]):
        response = await portal_app.test_client().open(recipient + action, method=method)
        assert response.status_code == 405, (recipient + action, method)

    assert await snapshot(data_dir) == before
