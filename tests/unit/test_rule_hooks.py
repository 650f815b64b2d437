"""The rule hooks (portal.rules): recipient policy, verification choice and sign-in methods,
as an agency's plugin would use them, with the built-in rules as the fallback."""

from __future__ import annotations

import asyncio

import pytest
from quart import Blueprint, redirect

from portal.api import (
    Outcome,
    Recipient,
    RecipientDecision,
    SignInMethod,
    VerificationProvider,
    csrf_token,
    hookimpl,
    sign_in_sender,
)
from portal.config import ConfigError
from portal.models import Recipient as RecipientRow
from portal.models import Sender
from portal.testing import builtin_plugins, csrf_from

from .helpers import page_text, post_compose, send_message


class StrongId(VerificationProvider):
    name = "strong-id"

    def describe(self, recipient: Recipient) -> str:
        return "Identify with your bank credentials."

    async def start(self, recipient: Recipient, locale: str) -> Outcome:
        return Outcome.verified()


class PhoneOnly(VerificationProvider):
    name = "phone-only"
    requires_phone = True

    def describe(self, recipient: Recipient) -> str:
        return "A code to your phone."

    async def start(self, recipient: Recipient, locale: str) -> Outcome:
        return Outcome.verified()


directory_pages = Blueprint("directory", __name__)


@directory_pages.get("/directory/sign-in")
async def directory_sign_in_page() -> str:
    return (
        '<form method="post"><input type="hidden" name="csrf_token" '
        f'value="{csrf_token()}"><button>Sign in</button></form>'
    )


@directory_pages.post("/directory/sign-in")
async def directory_sign_in() -> object:
    await sign_in_sender("Official.Person@Example.com")  # the directory proved who it is
    return redirect("/compose", 303)


class AgencyDirectory:
    """An agency's directory: its own rules, asked before the portal's."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, str]] = []

    @hookimpl
    async def recipient_policy(self, email: str, sender_email: str):
        await asyncio.sleep(0)  # a directory look-up: a coroutine is awaited
        self.asked.append((email, sender_email))
        if email == "left.the.agency@valtori.fi":
            return RecipientDecision.refuse(f"“{email}” no longer works here.")
        if email == "alias@valtori.fi":
            return RecipientDecision.rewrite("ville.virkamies@valtori.fi")
        if email.endswith("@partner.example"):
            return RecipientDecision.accept()  # outside the allowed domains, yet allowed
        return None

    @hookimpl
    def choose_verification(self, email: str):
        if email.endswith("@strong.valtori.fi"):
            return "strong-id"
        if email.startswith("phone."):
            return "phone-only"
        return None

    @hookimpl
    def register_verification_providers(self):
        return [StrongId, PhoneOnly]

    @hookimpl
    def register_sign_in_methods(self):
        return [
            SignInMethod("directory", "Sign in with the agency directory", "/directory/sign-in")
        ]

    @hookimpl
    def register_blueprints(self):
        return [directory_pages]


class BrokenDirectory:
    @hookimpl
    def recipient_policy(self, email: str):
        if email.startswith("broken"):
            raise ConnectionError("the directory is down")
        return None


@pytest.fixture
def directory() -> AgencyDirectory:
    return AgencyDirectory()


@pytest.fixture
def portal_plugins(directory):
    return [*builtin_plugins(), directory, BrokenDirectory()]


@pytest.fixture
def portal_config(portal_config):
    return {**portal_config, "sign_in": "email-link,directory"}


async def refused(client, recipients: str) -> str:
    """Press Send (the page in English) with ``recipients``: the page, after checking that
    nothing was sent (400)."""
    await client.get("/compose?lang=en")
    response = await post_compose(
        client, {"recipients": recipients, "subject": "S", "action": "send"}
    )
    assert response.status_code == 400
    return await page_text(response)


async def recipients_of(message_path: str) -> list[tuple[str, str]]:
    message_id = message_path.rsplit("/", 1)[1]
    rows = await RecipientRow.filter(message_id=message_id).order_by("email")
    return [(row.email, row.verification) for row in rows]


async def test_hook_recipient_policy_may_refuse_rewrite_or_accept_outside_the_domains(
    directory, client, sign_in
):
    await sign_in("liisa@example.com")

    refused = await post_compose(
        client,
        {"recipients": "left.the.agency@valtori.fi", "subject": "S", "action": "send"},
    )
    sent = await send_message(
        client, {"recipients": "alias@valtori.fi, someone@partner.example", "subject": "S"}
    )

    assert refused.status_code == 400
    assert "no longer works here" in await page_text(refused)
    assert await recipients_of(sent) == [
        ("someone@partner.example", "none"),
        ("ville.virkamies@valtori.fi", "none"),
    ]
    assert ("alias@valtori.fi", "liisa@example.com") in directory.asked


async def test_hook_recipient_policy_without_an_opinion_leaves_the_domain_rule(client, sign_in):
    await sign_in("liisa@example.com")

    page = await refused(client, "x@elsewhere.example")

    assert "is not an address of an allowed domain" in page


async def test_a_failing_recipient_policy_refuses_the_address_and_nothing_is_sent(
    client, sign_in, caplog
):
    await sign_in("liisa@example.com")

    page = await refused(client, "broken@valtori.fi")

    assert "cannot be checked just now" in page
    assert await RecipientRow.all().count() == 0
    assert "recipient policy of plugin BrokenDirectory failed" in caplog.text


async def test_hook_choose_verification_picks_a_provider_per_recipient(client, sign_in):
    await sign_in("liisa@example.com")

    sent = await send_message(
        client,
        {
            "recipients": "anna@strong.valtori.fi, ville@valtori.fi.0400123456.sec, "
            "eero@valtori.fi",
            "subject": "S",
        },
    )

    assert await recipients_of(sent) == [
        ("anna@strong.valtori.fi", "strong-id"),
        ("eero@valtori.fi", "none"),  # the built-in rule: no phone, PORTAL_VERIFICATION
        ("ville@valtori.fi", "sms-pin"),  # the built-in rule: .sec, PORTAL_PHONE_VERIFICATION
    ]


async def test_a_provider_that_requires_a_phone_refuses_an_address_without_one(client, sign_in):
    await sign_in("liisa@example.com")

    page = await refused(client, "phone.person@valtori.fi")

    assert "needs a mobile phone number" in page
    assert "phone.person@valtori.fi.0401234567.sec" in page


async def test_hook_register_sign_in_methods_offers_the_method_and_signs_the_sender_in(client):
    front = await page_text(await client.get("/?lang=en"))

    assert 'href="/directory/sign-in"' in front
    assert "Sign in with the agency directory" in front
    assert 'name="email"' in front  # the e-mailed link is offered too

    csrf = csrf_from(await page_text(await client.get("/directory/sign-in")))
    response = await client.post("/directory/sign-in", form={"csrf_token": csrf})

    assert response.status_code == 303
    compose = await page_text(await client.get("/compose"))
    assert "official.person@example.com" in compose
    assert await Sender.filter(email="official.person@example.com").count() == 1


async def test_sign_in_through_a_plugin_still_needs_the_csrf_token(client):
    response = await client.post("/directory/sign-in", form={})

    assert response.status_code == 400
    assert await Sender.all().count() == 0


class TestWithoutTheEmailedLink:
    @pytest.fixture
    def portal_config(self, portal_config):
        return {**portal_config, "sign_in": "directory"}

    async def test_the_front_page_offers_only_the_configured_methods(self, client):
        front = await page_text(await client.get("/?lang=en"))

        assert 'href="/directory/sign-in"' in front
        assert 'name="email"' not in front

    async def test_registration_and_personal_links_are_gone(self, client):
        csrf = csrf_from(await page_text(await client.get("/directory/sign-in")))
        register = await client.post("/", form={"email": "a@example.com", "csrf_token": csrf})
        link = await client.get("/s/" + "a" * 43)

        assert (register.status_code, link.status_code) == (404, 404)


def test_an_unknown_sign_in_method_stops_start_up(portal_config):
    from portal.app import create_app

    with pytest.raises(ConfigError, match=r"PORTAL_SIGN_IN=nonexistent: .*sign-in method"):
        create_app({**portal_config, "sign_in": "nonexistent"}, plugins=builtin_plugins())
