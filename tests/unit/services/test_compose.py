"""portal.services.compose: the form, its validation, drafts and cancelling."""

from __future__ import annotations

import dataclasses

from portal.i18n import locale_context
from portal.services.compose import MAX_SUBJECT, ComposeForm, validate

from ..helpers import plain_settings

SETTINGS = plain_settings("/nonexistent", allowed_recipient_domains="valtori.fi")


async def check(app, settings=SETTINGS, **fields: str):
    """Validate in ``app``'s context: its plugins' recipient policies and verification
    choice (the built-in ones here) apply, with ``settings``."""
    async with app.app_context():
        with locale_context("en"):
            return await validate(settings, ComposeForm.from_fields(fields), "liisa@example.com")


def test_form_normalises_line_breaks_and_trims_the_subject():
    form = ComposeForm.from_fields(
        {
            "subject": "  Hakemus \t",
            "body": "a\r\nb\r\n",
            "signature": "x\r\ny",
            "read_receipt": "on",
        }
    )

    assert form.subject == "Hakemus"
    assert form.body == "a\nb\n"
    assert form.signature == "x\ny"
    assert form.read_receipt is True
    assert ComposeForm.from_fields({}).read_receipt is False


async def test_valid_form_has_no_errors_and_parsed_recipients(portal_app):
    result = await check(
        portal_app.app, recipients="ville@valtori.fi.0400123456.sec, anna@valtori.fi", subject="S"
    )

    assert result.errors == {}
    assert [(r.email, r.phone, r.verification) for r in result.recipients] == [
        ("ville@valtori.fi", "+358400123456", "sms-pin"),
        ("anna@valtori.fi", None, "none"),
    ]


async def test_every_problem_is_reported_under_its_field(portal_app):
    result = await check(portal_app.app, recipients="ville@evil.com", subject="")

    assert set(result.errors) == {"recipients", "subject"}
    assert result.errors["subject"] == ["Enter a subject."]


async def test_subject_of_exactly_255_characters_is_fine_and_256_is_not(portal_app):
    fine = await check(portal_app.app, recipients="v@valtori.fi", subject="x" * MAX_SUBJECT)
    long = await check(portal_app.app, recipients="v@valtori.fi", subject="x" * (MAX_SUBJECT + 1))

    assert "subject" not in fine.errors
    assert "subject" in long.errors


async def test_recipient_limit_follows_the_setting(portal_app):
    few = dataclasses.replace(SETTINGS, max_recipients=2)
    result = await check(
        portal_app.app, few, recipients="a@valtori.fi, b@valtori.fi, c@valtori.fi", subject="S"
    )

    assert result.errors["recipients"] == ["Enter at most 2 recipients."]
