"""Guards of portal.services.registration that mutation testing found unguarded: an address with
bytes that were not UTF-8 is refused on its own (not only together with a routing form), the
personal link is still valid at the exact end of its window, a registration holds the guards of
both its address and its client, the ``sender_registered`` event names the address and whether
the sender is new, :func:`registration.sender_for` (the sign-in of other methods) finds or makes
one sender per address, and the masked address keeps only the domain after the last ``@``."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from portal import events
from portal.models import Guard, Sender, SenderLink
from portal.services import registration
from portal.services.registration import LinkInvalid, RegistrationRefused

TOKEN = "a-personal-link-token-known-to-the-test"


@pytest.fixture
def settings(portal_app) -> Any:
    return portal_app.app.extensions["sinetti"].settings


@pytest.fixture
def register(portal_app, settings, monkeypatch) -> Any:
    """``registration.register`` from one client; the first link's token is :data:`TOKEN`."""
    tokens = itertools.chain([TOKEN], (f"{TOKEN}-{n}" for n in itertools.count(2)))
    monkeypatch.setattr(registration, "new_token", lambda: next(tokens))

    async def run(email: str, client_ip: str = "192.0.2.1") -> registration.Registration:
        async with portal_app.app.app_context():
            return await registration.register(settings, email, client_ip, "en")

    return run


async def uses_of(key: str) -> int:
    guard = await Guard.get_or_none(key=key)
    return guard.uses if guard is not None else 0


# -- the address -------------------------------------------------------------------------------


def test_an_address_with_bytes_that_were_not_utf8_is_refused_without_a_routing_form():
    with pytest.raises(RegistrationRefused) as refused:
        registration.normalise_address("li\ufffdsa@example.com")  # otherwise a valid address

    assert refused.value.reason is RegistrationRefused.Reason.INVALID_ADDRESS


def test_a_routing_form_is_refused_without_bytes_that_were_not_utf8():
    with pytest.raises(RegistrationRefused) as refused:
        registration.normalise_address("liisa%example.org@example.com")

    assert refused.value.reason is RegistrationRefused.Reason.INVALID_ADDRESS


def test_the_masked_address_keeps_only_the_domain_after_the_last_at_sign():
    assert registration.masked_address("liisa@example.com") == "l•••@example.com"
    # A quoted local part may hold an "@": none of it may show after the mask.
    assert registration.masked_address('"li@isa"@example.com') == '"•••@example.com'


# -- the personal link's window ----------------------------------------------------------------


async def test_a_personal_link_is_valid_at_the_exact_end_of_its_window(register, settings, frozen):
    await register("liisa@example.com")
    frozen.advance(days=settings.link_valid_days)  # now == last use + link_valid_days

    owner = await registration.link_owner(settings, TOKEN)

    assert owner.email == "liisa@example.com"
    frozen.advance(microseconds=1)
    with pytest.raises(LinkInvalid) as invalid:
        await registration.link_owner(settings, TOKEN)
    assert invalid.value.expired is True


# -- registering -------------------------------------------------------------------------------


async def test_a_registration_holds_the_guards_of_its_address_and_its_client(register):
    address_key = "registration-address:liisa@example.com"
    client_key = "registration-ip:192.0.2.1"
    before = await uses_of(address_key), await uses_of(client_key)

    await register("Liisa@Example.com")

    # Parallel registrations of one address from many clients (or of many addresses from one
    # client) wait for each other only if both guards are taken; SQLite serialises every
    # writer anyway, so the guard rows are what a unit test can see.
    assert (await uses_of(address_key), await uses_of(client_key)) == (
        before[0] + 1,
        before[1] + 1,
    )


async def test_the_registered_event_names_the_address_and_whether_the_sender_is_new(
    register, monkeypatch
):
    fired: list[tuple[str, dict[str, Any]]] = []

    async def recording(name: str, **kwargs: Any) -> None:
        fired.append((name, kwargs))

    monkeypatch.setattr(events, "emit", recording)

    await register("Liisa@example.com")
    await register("liisa@example.com", client_ip="192.0.2.2")

    assert fired == [
        ("sender_registered", {"email": "Liisa@example.com", "new_sender": True}),
        ("sender_registered", {"email": "liisa@example.com", "new_sender": False}),
    ]


# -- signing in by another method --------------------------------------------------------------


async def test_sender_for_makes_one_sender_per_address_whatever_its_case(portal_app):
    first = await registration.sender_for("Liisa@Example.com")
    second = await registration.sender_for("liisa@example.com")

    assert first.email == "liisa@example.com"
    assert second.id == first.id
    assert await Sender.all().values_list("email", flat=True) == ["liisa@example.com"]


async def test_sender_for_finds_the_sender_of_a_registered_address(register):
    await register("liisa@example.com")
    registered = await Sender.get(email="liisa@example.com")

    found = await registration.sender_for("LIISA@example.com")

    assert found.id == registered.id
    assert await SenderLink.filter(sender_id=registered.id).count() == 1  # no link made


async def test_sender_for_holds_the_guard_of_the_address(portal_app):
    key = "registration-address:liisa@example.com"
    before = await uses_of(key)

    await registration.sender_for("Liisa@example.com")

    assert await uses_of(key) == before + 1


@pytest.mark.parametrize("address", ["liisa", "li\ufffdsa@example.com", "a%b@example.com"])
async def test_sender_for_refuses_an_unusable_address_and_makes_no_sender(portal_app, address):
    with pytest.raises(RegistrationRefused):
        await registration.sender_for(address)

    assert not await Sender.exists()
