"""A third-party verification provider, written as an agency would write one: nothing in
``portal/`` knows about it. It sends the one-time code by e-mail and gets the hashing, expiry,
tries, lock and resend rules from :class:`CodeVerificationProvider`."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest

from portal import hookimpl
from portal.i18n import _, locale_context
from portal.mail.base import OutgoingMail
from portal.models import AccessCode, Channel, OutboxItem, Recipient
from portal.services import outbox
from portal.testing import builtin_plugins
from portal.verification.codes import CodeVerificationProvider, Prompt

from ..helpers import (
    csrf_of,
    eventually,
    newest_link,
    page_text,
    press_open,
    send_message,
    wrong_code,
)

SENDER = "liisa@example.com"
READER = "ville@valtori.fi"
CODE_SUBJECT = "Your code for the confidential message"


class EmailCodeVerification(CodeVerificationProvider):
    """Opens with a code e-mailed to the recipient's own address."""

    name = "email-code"
    settings_prefix = "EMAIL_CODE_"

    def describe(self, recipient: Recipient) -> str:
        return _("Opening it requires a code that will be e-mailed to %(email)s.") % {
            "email": recipient.email
        }

    async def deliver(self, recipient: Recipient, code: str, locale: str) -> OutboxItem:
        with locale_context(locale):
            text = _("Your code is %(code)s.") % {"code": code}
            return await outbox.enqueue_mail(OutgoingMail(recipient.email, _(CODE_SUBJECT), text))

    def prompt(self, recipient: Recipient) -> Prompt:
        return Prompt(
            heading=_("Enter the code from your e-mail"),
            instructions=_("We e-mailed a code to %(email)s.") % {"email": recipient.email},
            label=_("Code"),
            resend_label=_("Send a new code"),
        )

    def delivery_failed(self, recipient: Recipient) -> str:
        return _("The code could not be e-mailed. Contact the sender.")


class EmailCodePlugin:
    @hookimpl
    def register_verification_providers(self) -> list[type[CodeVerificationProvider]]:
        return [EmailCodeVerification]


@pytest.fixture
def portal_plugins():
    return [*builtin_plugins(), EmailCodePlugin()]


@pytest.fixture
def portal_config(portal_config):
    return {
        **portal_config,
        "verification": "email-code",
        "plugin_options": {"EMAIL_CODE_LENGTH": "8"},
    }


@pytest.fixture
async def link(client, sign_in) -> str:
    await sign_in(SENDER)
    await send_message(client, {"recipients": READER, "subject": "Salainen", "body": "Sisältö"})
    return await newest_link(client, READER, "m")


@pytest.fixture
def reader(portal_app):
    return portal_app.test_client()


async def mailed_code(portal_app) -> str:
    """The code in the newest code mail to the reader (from the outbox or the dev mailbox)."""
    from sinetti_devbox import read_mailbox

    data_dir = portal_app.app.extensions["sinetti"].settings.data_dir

    async def find() -> str:
        texts = [
            entry["text"]
            for entry in read_mailbox(data_dir)
            if entry["to"] == READER and entry["subject"] == CODE_SUBJECT
        ]
        return texts[-1] if texts else ""

    text = await eventually(find)
    match = re.search(r"\b(\d{8})\b", text)
    assert match, f"no 8-digit code in {text!r}"
    return match.group(1)


async def test_the_plugins_provider_is_chosen_for_recipients_without_a_phone(portal_app, link):
    recipient = await Recipient.get(email=READER)
    provider = portal_app.app.extensions["sinetti"].providers.verification["email-code"]

    assert recipient.verification == "email-code"
    assert isinstance(provider, EmailCodeVerification)
    assert provider.policy.length == 8  # PORTAL_EMAIL_CODE_LENGTH, under its own prefix


async def test_landing_page_says_what_the_provider_asks(reader, link):
    html = await page_text(await reader.get(link + "?lang=en"))

    assert f"Opening it requires a code that will be e-mailed to {READER}." in html


async def test_code_is_e_mailed_and_only_its_hash_is_kept(portal_app, reader, link):
    response = await press_open(reader, link)

    assert response.status_code == 303
    assert urlsplit(response.headers["Location"]).path == f"{link}/code"
    code = await mailed_code(portal_app)
    item = await OutboxItem.get(subject=CODE_SUBJECT)
    assert item.channel == Channel.EMAIL and item.to_address == READER
    assert not await OutboxItem.filter(channel=Channel.SMS).exists()
    assert code not in (await AccessCode.get()).code_hash
    html = await page_text(await reader.get(f"{link}/code"))
    assert "Enter the code from your e-mail" in html


async def test_wrong_code_is_refused_and_the_right_one_opens(portal_app, reader, link):
    csrf = await csrf_of(reader, link + "?lang=en")
    await reader.post(f"{link}/open", form={"csrf_token": csrf})
    code = await mailed_code(portal_app)

    refused = await reader.post(f"{link}/code", form={"csrf_token": csrf, "code": wrong_code(code)})

    assert refused.status_code == 400
    assert "4 tries left" in await page_text(refused)
    assert (await reader.get(link)).status_code == 200
    assert "Sisältö" not in await page_text(await reader.get(link))

    opened = await reader.post(f"{link}/code", form={"csrf_token": csrf, "code": code})

    assert opened.status_code == 303
    assert urlsplit(opened.headers["Location"]).path == link
    html = await page_text(await reader.get(link))
    assert "Salainen" in html and "Sisältö" in html
    recipient = await Recipient.get(email=READER)
    assert recipient.opened_at is not None and recipient.failed_attempts == 0


async def test_phone_recipients_still_get_the_sms_pin(portal_app, client, link):
    await send_message(client, {"recipients": "maija@example.fi.0400123456.sec", "subject": "S"})

    assert (await Recipient.get(email="maija@example.fi")).verification == "sms-pin"
