"""The core's own answers to the rule hooks of :mod:`portal.rules`, registered in every
portal and asked after every plugin (``trylast``): a plugin decides first, these decide what
no plugin decided. Also the core's own trivial providers (the ``email-link`` sign-in, the
``none`` scanner), so the defaults work whatever plugins are installed."""

from __future__ import annotations

from portal.config import Settings
from portal.hookspecs import hookimpl
from portal.i18n import L_
from portal.rules import EMAIL_LINK, RecipientDecision, SignInMethod
from portal.scanning.base import NoScanner, Scanner
from portal.services.recipients import domain_refusal


@hookimpl(trylast=True)
def recipient_policy(email: str, settings: Settings) -> RecipientDecision:
    """Allowed domains: an address in ``PORTAL_ALLOWED_RECIPIENT_DOMAINS`` or a subdomain."""
    refusal = domain_refusal(email, settings.allowed_recipient_domains)
    return RecipientDecision.refuse(refusal) if refusal else RecipientDecision.accept()


@hookimpl(trylast=True)
def choose_verification(phone: str | None, settings: Settings) -> str:
    """The ``.sec`` rule: a recipient given with a phone number verifies with
    ``PORTAL_PHONE_VERIFICATION``, any other with ``PORTAL_VERIFICATION``."""
    return settings.phone_verification if phone else settings.verification


@hookimpl
def register_sign_in_methods() -> list[SignInMethod]:
    return [SignInMethod(EMAIL_LINK, L_("Send me a personal link"))]


@hookimpl
def register_scanners() -> list[type[Scanner]]:
    return [NoScanner]
