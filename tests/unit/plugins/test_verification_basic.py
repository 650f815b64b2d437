"""Verification providers ``none`` and ``sms-pin`` (plugins/verification_basic)."""

from __future__ import annotations

import sinetti_verification_basic as basic

from portal.i18n import locale_context


def test_both_providers_are_registered():
    registered = {cls.name: cls for cls in basic.register_verification_providers()}

    assert set(registered) == {"none", "sms-pin"}
    assert registered["sms-pin"].requires_phone is True
    assert registered["none"].requires_phone is False


def test_sms_pin_says_it_is_a_preview_until_the_pin_flow_exists():
    assert basic.SmsPinVerification.preview is True
    assert basic.NoVerification.preview is False


def test_descriptions_tell_the_recipient_what_opening_takes_in_their_language(portal_app):
    none = basic.NoVerification(None, {})  # type: ignore[arg-type]
    pin = basic.SmsPinVerification(None, {})  # type: ignore[arg-type]

    with locale_context("en"):
        english = pin.describe()
        assert "link" in none.describe()
        assert "SMS" in english
    for locale in ("fi", "sv"):
        with locale_context(locale):
            assert pin.describe() != english, f"the {locale} catalog of the plugin lacks it"
