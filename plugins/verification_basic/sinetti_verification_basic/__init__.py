"""Verification providers ``none`` (open with the link alone) and ``sms-pin`` (a PIN sent by
SMS to the number the sender gave with the phone suffix).

The PIN flow of ``sms-pin`` is the next milestone; until then it is registered, stored on
recipients, and marked ``preview`` so the recipient's page says what will happen.
"""

from __future__ import annotations

from pathlib import Path

from portal import hookimpl
from portal.i18n import _
from portal.verification.base import VerificationProvider

HERE = Path(__file__).resolve().parent


class NoVerification(VerificationProvider):
    name = "none"

    def describe(self) -> str:
        return _("The personal link opens the message.")


class SmsPinVerification(VerificationProvider):
    name = "sms-pin"
    requires_phone = True
    preview = True

    def describe(self) -> str:
        return _("A PIN code sent by SMS is needed to open the message.")


@hookimpl
def register_verification_providers() -> list[type[VerificationProvider]]:
    return [NoVerification, SmsPinVerification]


@hookimpl
def register_translation_dirs() -> list[Path]:
    return [HERE / "locales"]
