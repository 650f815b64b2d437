"""The start page, registration and the personal link, through the test client."""

from __future__ import annotations

import re

import pytest

from portal.models import OutboxItem, SenderLink
from portal.testing import continue_with_link, csrf_from

from ..helpers import newest_link, page_text, row_counts, sign_in_with


@pytest.fixture
def portal_config(portal_config):
    return {**portal_config, "registrations_per_ip_per_hour": 4}


async def register(client, address: str, lang: str = "en", ip: str | None = None):
    page = await client.get(f"/?lang={lang}")
    csrf = csrf_from(await page_text(page))
    scope = {"client": (ip, 40000)} if ip else None
    return await client.post("/", form={"email": address, "csrf_token": csrf}, scope_base=scope)


def without_tokens(html: str) -> str:
    return re.sub(r"[A-Za-z0-9_-]{40,}", "TOKEN", html)


async def test_start_page_asks_for_the_sender_and_continue(client):
    html = await page_text(await client.get("/?lang=en"))

    assert '<label for="email">Sender</label>' in html
    assert 'name="csrf_token"' in html
    assert ">Continue</button>" in html


async def test_registration_page_says_what_happens_next(client):
    response = await register(client, "liisa@example.com")
    html = await page_text(response)

    assert response.status_code == 200
    assert "Registration succeeded" in html
    assert "liisa@example.com" in html
    assert "The session is closed. You can close the browser now." in html
    assert "clear the browser" in html
    assert "30 days" in html


async def test_registration_queues_one_mail_with_the_personal_link(client):
    await register(client, "liisa@example.com")

    (item,) = await OutboxItem.all()
    assert item.to_address == "liisa@example.com"
    assert (await newest_link(client, "liisa@example.com")).startswith("/s/")


async def test_same_page_for_a_new_and_an_already_registered_address(portal_app):
    first = await register(portal_app.test_client(), "liisa@example.com")
    again = await register(portal_app.test_client(), "liisa@example.com")

    assert first.status_code == again.status_code == 200
    assert without_tokens(await page_text(first)) == without_tokens(await page_text(again))
    assert sorted(first.headers.keys()) == sorted(again.headers.keys())


async def test_registering_ends_the_current_session(client):
    await sign_in_with(client, "liisa@example.com")
    assert (await client.get("/compose")).status_code == 200

    await register(client, "liisa@example.com")

    assert (await client.get("/compose")).status_code == 401


async def test_invalid_address_gives_an_error_summary_and_keeps_what_was_typed(client):
    response = await register(client, "liisa at example")
    html = await page_text(response)

    assert response.status_code == 400
    assert 'class="error-summary"' in html
    assert 'href="#email"' in html
    assert 'value="liisa at example"' in html
    assert 'aria-invalid="true"' in html
    assert await OutboxItem.all().count() == 0


async def test_sixth_registration_of_an_address_in_a_day_is_refused_clearly(portal_app):
    for number in range(5):
        client = portal_app.test_client()
        assert (
            await register(client, "liisa@example.com", ip=f"192.0.2.{number}")
        ).status_code == 200

    response = await register(portal_app.test_client(), "liisa@example.com", ip="192.0.2.77")

    assert response.status_code == 429
    assert "Too many registration e-mails have been sent to this address" in await page_text(
        response
    )
    assert await OutboxItem.all().count() == 5


async def test_too_many_registrations_from_one_client_are_refused_clearly(client):
    for number in range(4):
        assert (
            await register(client, f"p{number}@example.com", ip="203.0.113.9")
        ).status_code == 200

    response = await register(client, "p5@example.com", ip="203.0.113.9")

    assert response.status_code == 429
    assert "Too many registrations from your network" in await page_text(response)
    assert (await register(client, "p5@example.com", ip="203.0.113.10")).status_code == 200


async def test_personal_link_asks_before_it_signs_in_and_continue_leads_to_compose(client):
    await register(client, "liisa@example.com")
    link = await newest_link(client, "liisa@example.com")

    page = await client.get(link + "?lang=en")
    html = await page_text(page)

    assert page.status_code == 200
    assert "Continue as l•••@example.com?" in html
    assert "liisa@example.com" not in html
    assert (await client.get("/compose")).status_code == 401  # GET signed nobody in
    response = await client.post(link, form={"csrf_token": csrf_from(html)})
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/compose")
    assert "liisa@example.com" in await page_text(await client.get("/compose"))


async def test_opening_the_personal_link_changes_nothing(portal_app):
    registering = portal_app.test_client()
    await register(registering, "liisa@example.com")
    link = await newest_link(registering, "liisa@example.com")
    used_before = await SenderLink.all().values_list("last_used_at", flat=True)

    scanner = portal_app.test_client()
    assert (await scanner.get(link)).status_code == 200
    assert (await scanner.head(link)).status_code == 200

    assert await SenderLink.all().values_list("last_used_at", flat=True) == used_before
    assert (await scanner.get("/compose")).status_code == 401
    await continue_with_link(portal_app.test_client(), link)  # still valid for its owner


async def test_continue_without_the_sessions_csrf_token_signs_nobody_in(portal_app):
    registering = portal_app.test_client()
    await register(registering, "liisa@example.com")
    link = await newest_link(registering, "liisa@example.com")
    attacker, victim = portal_app.test_client(), portal_app.test_client()
    attackers_token = csrf_from(await page_text(await attacker.get(link)))

    forged = await victim.post(link, form={"csrf_token": attackers_token})
    bare = await victim.post(link, form={})

    assert forged.status_code == 400
    assert bare.status_code == 400
    assert (await victim.get("/compose")).status_code == 401


async def test_expired_link_gives_410_and_offers_registration(client, moved_clock):
    await register(client, "liisa@example.com")
    link = await newest_link(client, "liisa@example.com")
    moved_clock.advance(days=30, minutes=1)

    response = await client.get(link + "?lang=en")
    html = await page_text(response)

    assert response.status_code == 410
    assert "The link has expired" in html
    assert '<a class="button" href="/">Register again</a>' in html
    assert (await client.get("/compose")).status_code == 401


async def test_unknown_link_gives_404(client):
    response = await client.get("/s/" + "A" * 43 + "?lang=en")

    assert response.status_code == 404
    assert "The link is not valid" in await page_text(response)


async def test_registration_is_not_possible_with_get(client):
    before = await row_counts()

    response = await client.get("/?email=liisa@example.com")

    assert response.status_code == 200
    assert await row_counts() == before


async def test_session_ends_after_the_idle_time_and_says_so(client, sign_in, moved_clock):
    await sign_in("idle@example.com")
    assert (await client.get("/compose")).status_code == 200
    moved_clock.advance(minutes=61)

    response = await client.get("/compose?lang=en")

    assert response.status_code == 401
    assert "Your session has ended" in await page_text(response)


async def test_session_stays_open_while_it_is_used(client, sign_in, moved_clock):
    await sign_in("busy@example.com")
    for _ in range(3):
        moved_clock.advance(minutes=50)
        assert (await client.get("/compose?lang=en")).status_code == 200


async def test_a_method_the_page_does_not_take_is_405_not_a_csrf_error(client):
    response = await client.put("/compose", data=b"x")

    assert response.status_code == 405
