"""Parse the Recipients field: addresses, allowed domains and the phone-verification suffix.

``ville.virkamies@valtori.fi.0400123456.sec`` means: deliver to ``ville.virkamies@valtori.fi``
and have the recipient verify with a PIN sent by SMS to +358 40 0123456.
"""

from __future__ import annotations

import dataclasses
import re

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from portal.i18n import _

SEPARATORS = re.compile(r"[,;\r\n]+")
DEFAULT_REGION = "FI"


@dataclasses.dataclass(frozen=True)
class ParsedRecipient:
    email: str
    #: E.164 (``+358400123456``) when the sender asked for phone verification.
    phone: str | None = None

    @property
    def masked_phone(self) -> str:
        return mask_phone(self.phone) if self.phone else ""


@dataclasses.dataclass
class RecipientsResult:
    recipients: list[ParsedRecipient]
    errors: list[str]


def mask_phone(phone: str) -> str:
    """Show only the last three digits: ``•••• 456``."""
    return "•••• " + phone[-3:]


def split_addresses(text: str) -> list[str]:
    return [part.strip() for part in SEPARATORS.split(text) if part.strip()]


def _split_phone(entry: str, suffix: str) -> tuple[str, str | None]:
    """``name@dom.fi.0400123456.sec`` → (``name@dom.fi``, ``0400123456``)."""
    if not entry.lower().endswith(suffix.lower()):
        return entry, None
    body = entry[: -len(suffix)]
    # The number follows the last dot of the domain. International numbers may carry '+',
    # spaces or dashes; a number never contains a dot.
    address, dot, number = body.rpartition(".")
    if not dot or "@" not in address:
        return body, ""
    return address, number


def parse_recipients(
    text: str,
    *,
    allowed_domains: tuple[str, ...],
    phone_suffix: str,
    max_recipients: int,
) -> RecipientsResult:
    """Parse the field; every problem becomes a translated message naming the address."""
    errors: list[str] = []
    parsed: list[ParsedRecipient] = []
    seen: set[str] = set()
    entries = split_addresses(text)
    if not entries:
        return RecipientsResult([], [_("Enter at least one recipient.")])
    if len(entries) > max_recipients:
        message = _("Enter at most %(count)d recipients.") % {"count": max_recipients}
        return RecipientsResult([], [message])

    for entry in entries:
        address, number = _split_phone(entry, phone_suffix)
        try:
            email = validate_email(address, check_deliverability=False).normalized
        except EmailNotValidError:
            errors.append(_("“%(address)s” is not a valid e-mail address.") % {"address": entry})
            continue
        domain = email.rsplit("@", 1)[1].lower()
        if not _domain_allowed(domain, allowed_domains):
            errors.append(
                _("“%(address)s” is not an address of an allowed domain.") % {"address": address}
            )
            continue
        phone = None
        if number is not None:
            phone = parse_phone(number)
            if phone is None:
                errors.append(
                    _("“%(number)s” in “%(address)s” is not a valid mobile phone number.")
                    % {"number": number, "address": entry}
                )
                continue
        key = email.lower()
        if key in seen:
            continue
        seen.add(key)
        parsed.append(ParsedRecipient(email=email, phone=phone))
    return RecipientsResult(parsed, errors)


def _domain_allowed(domain: str, allowed: tuple[str, ...]) -> bool:
    return any(domain == entry or domain.endswith("." + entry) for entry in allowed)


def parse_phone(number: str) -> str | None:
    """A Finnish or international mobile number in E.164, or None when it is not valid."""
    if not number or not re.fullmatch(r"[+\d][\d \-()]*", number):
        return None
    try:
        parsed = phonenumbers.parse(number, DEFAULT_REGION)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    kind = phonenumbers.number_type(parsed)
    if kind not in (
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
    ):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
