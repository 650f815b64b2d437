"""Verification providers ``none`` and ``sms-pin`` (plugins/verification_basic)."""

from __future__ import annotations

import sinetti_verification_basic as basic

from portal.i18n import locale_context
from portal.models import Recipient


def test_both_providers_are_registered():
    registered = {cls.name: cls for cls in basic.register_verification_providers()}

    assert set(registered) == {"none", "sms-pin"}
    assert registered["sms-pin"].requires_phone is True
    assert registered["none"].requires_phone is False


async def test_descriptions_tell_the_recipient_what_opening_takes_in_their_language(portal_app):
    none = basic.NoVerification(None, {})  # type: ignore[arg-type]
    pin = basic.SmsPinVerification(None, {})  # type: ignore[arg-type]
    recipient = Recipient(email="ville@valtori.fi", phone="+358400123456")

    async with portal_app.app.app_context():  # the app's catalogs translate
        with locale_context("en"):
            english = pin.describe(recipient)
            assert "link" in none.describe(recipient)
            assert "SMS" in english
            assert "•••• 456" in english and "400123456" not in english
        for locale in ("fi", "sv"):
            with locale_context(locale):
                described = pin.describe(recipient)
                assert described != english, f"the {locale} catalog of the plugin lacks it"
                assert "•••• 456" in described
