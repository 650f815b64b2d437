"""Decisions that plugins may take over: who may receive a message, how a recipient proves
who they are, and how a sender signs in.

Each is a hook (:mod:`portal.hookspecs`) with a built-in answer that the core registers in
every portal (:mod:`portal.builtin_rules`), asked last: the allowed-domains rule, the ``.sec``
rule, the e-mailed personal link. A plugin's answer comes first; where it has no opinion it
returns None and the next one is asked.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

import pluggy
from email_validator import EmailNotValidError, validate_email

from portal.config import Settings
from portal.hookcalls import call, in_call_order, plugin_label
from portal.i18n import _
from portal.services.recipients import ParsedRecipient

log = logging.getLogger(__name__)

#: The built-in sign-in method: the personal link e-mailed after registration.
EMAIL_LINK = "email-link"


class Verdict(StrEnum):
    ACCEPT = "accept"
    REFUSE = "refuse"
    REWRITE = "rewrite"


@dataclasses.dataclass(frozen=True)
class RecipientDecision:
    """A recipient policy's answer for one address.

    ``accept()`` ends the checks: the address may receive the message (later policies, the
    built-in domain rule among them, are not asked). ``refuse(reason)`` ends them too: the
    sender sees ``reason`` (translated) under the Recipients field. ``rewrite(email)``
    replaces the address (a directory's canonical one) and asks the next policy about it.
    """

    verdict: Verdict
    reason: str = ""
    email: str = ""

    @classmethod
    def accept(cls) -> RecipientDecision:
        return cls(Verdict.ACCEPT)

    @classmethod
    def refuse(cls, reason: str) -> RecipientDecision:
        return cls(Verdict.REFUSE, reason=reason)

    @classmethod
    def rewrite(cls, email: str) -> RecipientDecision:
        return cls(Verdict.REWRITE, email=email)


@dataclasses.dataclass(frozen=True)
class SignInMethod:
    """A way for a sender to sign in, shown on the front page.

    ``url`` is where its button leads (a page of the plugin's blueprint, which proves who the
    sender is and then calls :func:`portal.api.sign_in_sender`); the built-in e-mailed link
    has none: its form is on the front page itself. ``label`` is shown on the button (a lazy
    translated string, so it follows the visitor's language).
    """

    name: str
    label: Any
    url: str = ""


async def check_recipients(
    pm: pluggy.PluginManager,
    settings: Settings,
    recipients: list[ParsedRecipient],
    sender_email: str,
) -> tuple[list[ParsedRecipient], list[str]]:
    """Ask the recipient policies about each address: (the accepted, possibly rewritten,
    recipients; the refusals, translated). A policy that fails refuses (fail closed)."""
    accepted: list[ParsedRecipient] = []
    errors: list[str] = []
    for recipient in recipients:
        email = recipient.email
        refusal = None
        for implementation in in_call_order(pm.hook.recipient_policy):
            try:
                decision = await call(
                    implementation, email=email, sender_email=sender_email, settings=settings
                )
            except Exception:
                log.exception("recipient policy of plugin %s failed", plugin_label(implementation))
                decision = RecipientDecision.refuse(
                    _("“%(address)s” cannot be checked just now. Try again in a while.")
                    % {"address": email}
                )
            if decision is None:
                continue
            if decision.verdict is Verdict.REWRITE:
                rewritten = _rewritten(decision.email, plugin_label(implementation))
                if rewritten is None:
                    refusal = _("“%(address)s” cannot be used.") % {"address": recipient.email}
                    break
                email = rewritten
                continue
            if decision.verdict is Verdict.REFUSE:
                refusal = decision.reason
            break
        if refusal:
            errors.append(refusal)
        elif all(email.lower() != other.email.lower() for other in accepted):
            accepted.append(dataclasses.replace(recipient, email=email))
    return accepted, errors


def _rewritten(email: str, plugin: str) -> str | None:
    """A rewritten address, normalised; None (and logged) when the plugin gave a bad one."""
    try:
        return str(validate_email(email, check_deliverability=False).normalized)
    except EmailNotValidError:
        log.error("recipient policy of plugin %s rewrote to an invalid address", plugin)
        return None


class VerificationUnavailable(Exception):
    """No verification provider fits the recipient; ``reason`` is translated."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def choose_verification(
    pm: pluggy.PluginManager,
    settings: Settings,
    available: Mapping[str, Any],
    recipient: ParsedRecipient,
) -> str:
    """The name of the verification provider for ``recipient`` (the first answer of the
    ``choose_verification`` hook); raises :class:`VerificationUnavailable` when the answer
    names no installed provider or one that needs a phone number the address lacks."""
    name = pm.hook.choose_verification(
        email=recipient.email, phone=recipient.phone, settings=settings
    )
    provider = available.get(name)
    if provider is None:
        log.error("choose_verification answered %r: no such verification provider", name)
        raise VerificationUnavailable(
            _("“%(address)s” cannot receive messages just now.") % {"address": recipient.email}
        )
    if provider.requires_phone and not recipient.phone:
        example = f"{recipient.email}.0401234567{settings.phone_suffix}"
        raise VerificationUnavailable(
            _(
                "“%(address)s” needs a mobile phone number for the PIN code: write it after "
                "the address, e.g. %(example)s."
            )
            % {"address": recipient.email, "example": example}
        )
    return str(name)


def sign_in_methods(pm: pluggy.PluginManager) -> dict[str, SignInMethod]:
    """Every sign-in method the plugins provide, by name."""
    return {method.name: method for batch in pm.hook.register_sign_in_methods() for method in batch}
