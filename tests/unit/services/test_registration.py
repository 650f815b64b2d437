"""portal.services.registration: personal links, their hashes, limits and the sliding window."""

from __future__ import annotations

import base64
import hashlib

import pytest
from tortoise import Tortoise

from portal.models import OutboxItem, RegistrationEvent, Sender, SenderLink
from portal.security import new_token
from portal.services import registration
from portal.services.registration import LinkInvalid, RegistrationRefused
from portal.testing import links_in

from ..helpers import mail_content, row_counts

Reason = RegistrationRefused.Reason


@pytest.fixture
def portal_config(portal_config):
    return {**portal_config, "registrations_per_ip_per_hour": 8}


async def register(app, email: str, ip: str = "192.0.2.1", locale: str = "en"):
    settings = app.extensions["sinetti"].settings
    async with app.app_context():
        return await registration.register(settings, email, ip, locale)


async def authenticate(app, token: str) -> Sender:
    return await registration.authenticate(app.extensions["sinetti"].settings, token)


async def token_mailed_to(app, email: str) -> str:
    item = await OutboxItem.filter(to_address=email).order_by("-id").first()
    assert item is not None
    text, _html = await mail_content(app, item)
    (link,) = set(links_in(text))
    return link.rsplit("/", 1)[1]


async def test_only_the_hash_of_the_token_is_stored(portal_app):
    await register(portal_app.app, "liisa@example.com")
    token = await token_mailed_to(portal_app.app, "liisa@example.com")

    link = await SenderLink.get()
    rows = await Tortoise.get_connection("default").execute_query_dict("SELECT * FROM sender_link")

    assert link.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert len(rows) == 1
    assert all(token not in str(value) for value in rows[0].values())


async def test_personal_link_carries_256_bits_of_randomness(portal_app):
    await register(portal_app.app, "liisa@example.com")
    first = await token_mailed_to(portal_app.app, "liisa@example.com")
    await register(portal_app.app, "liisa@example.com")
    second = await token_mailed_to(portal_app.app, "liisa@example.com")

    raw = base64.urlsafe_b64decode(first + "=" * (-len(first) % 4))
    assert len(raw) * 8 >= 256
    assert first != second


def test_new_tokens_are_unique_and_256_bit():
    tokens = {new_token() for _ in range(1000)}

    assert len(tokens) == 1000
    assert all(len(base64.urlsafe_b64decode(t + "=" * (-len(t) % 4))) == 32 for t in tokens)


async def test_a_new_address_creates_a_sender_and_an_existing_one_does_not(portal_app):
    first = await register(portal_app.app, "Liisa@Example.com")
    second = await register(portal_app.app, "liisa@example.com")

    assert (first.new_sender, second.new_sender) == (True, False)
    assert await Sender.all().values_list("email", flat=True) == ["liisa@example.com"]
    assert await SenderLink.all().count() == 2


async def test_five_mails_per_address_a_day_then_refused(portal_app, moved_clock):
    for _ in range(5):
        await register(portal_app.app, "liisa@example.com")

    with pytest.raises(RegistrationRefused) as refused:
        await register(portal_app.app, "LIISA@example.com", ip="192.0.2.99")

    assert refused.value.reason is Reason.ADDRESS_LIMIT
    assert await OutboxItem.filter(to_address="liisa@example.com").count() == 5

    moved_clock.advance(hours=24, minutes=1)
    await register(portal_app.app, "liisa@example.com")
    assert await OutboxItem.all().count() == 6


async def test_per_client_limit_refuses_the_next_address_from_that_client(portal_app):
    for number in range(8):
        await register(portal_app.app, f"person{number}@example.com", ip="198.51.100.7")

    with pytest.raises(RegistrationRefused) as refused:
        await register(portal_app.app, "someone.else@example.com", ip="198.51.100.7")

    assert refused.value.reason is Reason.CLIENT_LIMIT
    await register(portal_app.app, "someone.else@example.com", ip="198.51.100.8")
    assert await RegistrationEvent.filter(client_ip="198.51.100.7").count() == 8


@pytest.mark.parametrize(
    "address", ["", "liisa", "liisa@", "@example.com", "liisa@@example.com", "liisa@localhost"]
)
async def test_invalid_address_is_refused_and_nothing_stored(portal_app, address):
    with pytest.raises(RegistrationRefused) as refused:
        await register(portal_app.app, address)

    assert refused.value.reason is Reason.INVALID_ADDRESS
    assert set((await row_counts()).values()) == {0}


async def test_link_slides_thirty_days_from_its_last_use(portal_app, moved_clock):
    await register(portal_app.app, "liisa@example.com")
    token = await token_mailed_to(portal_app.app, "liisa@example.com")

    for _ in range(3):  # used every 29 days: valid for 87 days and counting
        moved_clock.advance(days=29)
        assert (await authenticate(portal_app.app, token)).email == "liisa@example.com"

    moved_clock.advance(days=30, minutes=1)
    with pytest.raises(LinkInvalid) as invalid:
        await authenticate(portal_app.app, token)
    assert invalid.value.expired is True


async def test_unused_link_expires_after_thirty_days(portal_app, moved_clock):
    await register(portal_app.app, "liisa@example.com")
    token = await token_mailed_to(portal_app.app, "liisa@example.com")

    moved_clock.advance(days=29, hours=23)
    await authenticate(portal_app.app, token)
    moved_clock.advance(days=30, seconds=1)

    with pytest.raises(LinkInvalid, match="expired"):
        await authenticate(portal_app.app, token)


async def test_unknown_link_is_not_expired_but_unknown(portal_app):
    with pytest.raises(LinkInvalid) as invalid:
        await authenticate(portal_app.app, new_token())

    assert invalid.value.expired is False


async def test_registration_mail_is_in_the_senders_language(portal_app):
    await register(portal_app.app, "liisa@example.com", locale="sv")

    item = await OutboxItem.get(to_address="liisa@example.com")
    text, html = await mail_content(portal_app.app, item)
    assert '<html lang="sv">' in html
    assert "http://portal.test/s/" in text
    assert "http://portal.test/s/" in html
