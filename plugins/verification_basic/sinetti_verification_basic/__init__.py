"""Verification providers ``none`` (open with the link alone) and ``sms-pin`` (a PIN sent by
SMS to the number the sender gave with the phone suffix).

``sms-pin`` settings (all optional): ``PORTAL_PIN_LENGTH`` (6 digits),
``PORTAL_PIN_VALID_MINUTES`` (10), ``PORTAL_PIN_MAX_TRIES`` (5 wrong PINs lock the link),
``PORTAL_PIN_RESEND_SECONDS`` (60 between new PINs), ``PORTAL_PIN_DAILY_LIMIT`` (10 PINs per
recipient in 24 hours). The SMS goes through the configured SMS gateway (``PORTAL_SMS``).
"""

from __future__ import annotations

from pathlib import Path

from portal.api import (
    CodeVerificationProvider,
    OutboxItem,
    Outcome,
    Prompt,
    Recipient,
    TranslationDomain,
    VerificationProvider,
    hookimpl,
    locale_context,
    mask_phone,
    organisation_name,
    queue_sms,
)

HERE = Path(__file__).resolve().parent
TRANSLATIONS = TranslationDomain("verification-basic", HERE / "locales")
_ = TRANSLATIONS.gettext
ngettext = TRANSLATIONS.ngettext


class NoVerification(VerificationProvider):
    name = "none"

    def describe(self, recipient: Recipient) -> str:
        return _("The personal link opens the message.")

    async def start(self, recipient: Recipient, locale: str) -> Outcome:
        return Outcome.verified()


class SmsPinVerification(CodeVerificationProvider):
    name = "sms-pin"
    requires_phone = True
    settings_prefix = "PIN_"

    def _phone(self, recipient: Recipient) -> str:
        return mask_phone(recipient.phone or "")

    def describe(self, recipient: Recipient) -> str:
        return _(
            "Opening it requires a PIN code that will be sent by SMS to the phone number %(phone)s."
        ) % {"phone": self._phone(recipient)}

    async def deliver(self, recipient: Recipient, code: str, locale: str) -> OutboxItem:
        minutes = int(self.policy.valid.total_seconds() // 60)
        with locale_context(locale):
            organisation = organisation_name(locale)
            text = _(
                "%(organisation)s: your PIN code is %(pin)s. It is valid for %(minutes)d minutes."
            ) % {"organisation": organisation, "pin": code, "minutes": minutes}
        return await queue_sms(recipient.phone or "", text)

    def prompt(self, recipient: Recipient) -> Prompt:
        minutes = int(self.policy.valid.total_seconds() // 60)
        return Prompt(
            heading=_("Enter the PIN code"),
            instructions=_(
                "We sent a PIN code by SMS to the phone number %(phone)s. "
                "It is valid for %(minutes)d minutes."
            )
            % {"phone": self._phone(recipient), "minutes": minutes},
            label=_("PIN code"),
            hint=ngettext("%(count)d digit", "%(count)d digits", self.policy.length)
            % {"count": self.policy.length},
            resend_label=_("Send a new PIN"),
        )

    def delivery_failed(self, recipient: Recipient) -> str:
        return _(
            "The SMS could not be sent to the phone number %(phone)s. Ask for a new PIN in a "
            "while, or contact the sender."
        ) % {"phone": self._phone(recipient)}


@hookimpl
def register_verification_providers() -> list[type[VerificationProvider]]:
    return [NoVerification, SmsPinVerification]


@hookimpl
def register_translation_domains() -> list[TranslationDomain]:
    return [TRANSLATIONS]
