"""portal.services.compose: the form, its validation, drafts and cancelling."""

from __future__ import annotations

import dataclasses

from portal.i18n import locale_context
from portal.services.compose import MAX_SUBJECT, ComposeForm, validate

from ..helpers import plain_settings

SETTINGS = plain_settings("/nonexistent", allowed_recipient_domains="valtori.fi")


def check(**fields: str):
    with locale_context("en"):
        return validate(SETTINGS, ComposeForm.from_fields(fields))


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


def test_valid_form_has_no_errors_and_parsed_recipients():
    result = check(recipients="ville@valtori.fi.0400123456.sec", subject="S")

    assert result.errors == {}
    assert [(r.email, r.phone) for r in result.recipients] == [
        ("ville@valtori.fi", "+358400123456")
    ]


def test_every_problem_is_reported_under_its_field():
    result = check(recipients="ville@evil.com", subject="")

    assert set(result.errors) == {"recipients", "subject"}
    assert result.errors["subject"] == ["Enter a subject."]


def test_subject_of_exactly_255_characters_is_fine_and_256_is_not():
    assert "subject" not in check(recipients="v@valtori.fi", subject="x" * MAX_SUBJECT).errors
    assert "subject" in check(recipients="v@valtori.fi", subject="x" * (MAX_SUBJECT + 1)).errors


def test_recipient_limit_follows_the_setting():
    few = dataclasses.replace(SETTINGS, max_recipients=2)
    form = ComposeForm.from_fields(
        {"recipients": "a@valtori.fi, b@valtori.fi, c@valtori.fi", "subject": "S"}
    )

    with locale_context("en"):
        assert validate(few, form).errors["recipients"] == ["Enter at most 2 recipients."]
