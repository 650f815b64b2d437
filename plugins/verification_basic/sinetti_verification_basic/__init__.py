"""Verification providers ``none`` (open with the link alone) and ``sms-pin`` (a PIN sent by
SMS to the number the sender gave with the phone suffix).

The PIN flow of ``sms-pin`` is the next milestone; until then it is registered, stored on
recipients, and its description tells the recipient what opening will ask of them.
"""

from __future__ import annotations

from pathlib import Path

from portal import hookimpl
from portal.i18n import _
from portal.models import Recipient
from portal.services.recipients import mask_phone
from portal.verification.base import VerificationProvider

HERE = Path(__file__).resolve().parent


class NoVerification(VerificationProvider):
    name = "none"

    def describe(self, recipient: Recipient) -> str:
        return _("The personal link opens the message.")


class SmsPinVerification(VerificationProvider):
    name = "sms-pin"
    requires_phone = True

    def describe(self, recipient: Recipient) -> str:
        return _(
            "Opening it requires a PIN code that will be sent by SMS to the phone number %(phone)s."
        ) % {"phone": mask_phone(recipient.phone or "")}


@hookimpl
def register_verification_providers() -> list[type[VerificationProvider]]:
    return [NoVerification, SmsPinVerification]


@hookimpl
def register_translation_dirs() -> list[Path]:
    return [HERE / "locales"]
