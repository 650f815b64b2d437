"""Parse the Recipients field: addresses and the phone-verification suffix.

``ville.virkamies@valtori.fi.0400123456.sec`` means: deliver to ``ville.virkamies@valtori.fi``
and have the recipient verify with a PIN sent by SMS to +358 40 0123456.

Addresses that route mail onwards are refused, although RFC 5321 still describes them: a
``%`` or ``!`` in the local part (``user%other.example@valtori.fi``, ``host!user@…``), quoted
local parts and ``@relay:`` source routes. A mail server of an allowed domain may honour them
and deliver the notification somewhere else. Phone numbers must belong to one of the regions
the agency pays SMS for (``PORTAL_SMS_ALLOWED_REGIONS``): premium and far-away numbers cost
money and are the classic route of SMS toll fraud.
"""

from __future__ import annotations

import dataclasses
import re

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from portal.i18n import _

SEPARATORS = re.compile(r"[,;\r\n]+")
DEFAULT_REGION = "FI"
ROUTING_CHARACTERS = ("%", "!")


@dataclasses.dataclass(frozen=True)
class ParsedRecipient:
    email: str
    #: E.164 (``+358400123456``) when the sender asked for phone verification.
    phone: str | None = None
    #: The verification provider chosen for this recipient (see :mod:`portal.rules`); empty
    #: until chosen, and then the portal's default (a reply to the original sender).
    verification: str = ""

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
    phone_suffix: str,
    max_recipients: int,
    sms_regions: tuple[str, ...],
) -> RecipientsResult:
    """Parse the field; every problem becomes a translated message naming the address.

    ``sms_regions``: ISO 3166 codes (any case) whose mobile numbers may get a PIN.
    """
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
        routed = _routing_error(address, entry)
        if routed:
            errors.append(routed)
            continue
        try:
            email = validate_email(address, check_deliverability=False).normalized
        except EmailNotValidError:
            errors.append(_("“%(address)s” is not a valid e-mail address.") % {"address": entry})
            continue
        phone = None
        if number is not None:
            mobile = _parse_mobile(number)
            if mobile is None:
                errors.append(
                    _("“%(number)s” in “%(address)s” is not a valid mobile phone number.")
                    % {"number": number, "address": entry}
                )
                continue
            if not _region_allowed(mobile, sms_regions):
                errors.append(
                    _(
                        "“%(number)s” in “%(address)s”: phone numbers of this country cannot "
                        "receive a PIN."
                    )
                    % {"number": number, "address": entry}
                )
                continue
            phone = _e164(mobile)
        key = email.lower()
        if key in seen:
            continue
        seen.add(key)
        parsed.append(ParsedRecipient(email=email, phone=phone))
    return RecipientsResult(parsed, errors)


def routing_kind(address: str) -> str | None:
    """How ``address`` would route mail onwards: ``"route"`` (``@relay:user@…``), ``"quoted"``
    (a quoted local part), ``"percent"`` (``%`` or ``!`` before the @), or None."""
    if address.startswith("@"):
        return "route"
    if '"' in address:
        return "quoted"
    local = address.rpartition("@")[0]
    if any(char in local for char in ROUTING_CHARACTERS):
        return "percent"
    return None


def _routing_error(address: str, entry: str) -> str | None:
    """The error for an address that would route mail onwards, or None for an ordinary one."""
    kind = routing_kind(address)
    if kind == "route":
        return _(
            "“%(address)s” cannot be used: an address cannot name other mail servers to pass "
            "through."
        ) % {"address": entry}
    if kind == "quoted":
        return _("“%(address)s” cannot be used: write the address without quotation marks.") % {
            "address": entry
        }
    if kind == "percent":
        return _(
            "“%(address)s” cannot be used: “%%” and “!” before the @ sign can send mail on to "
            "another address."
        ) % {"address": entry}
    return None


def domain_refusal(email: str, allowed: tuple[str, ...]) -> str | None:
    """Why ``email`` may not receive messages under the allowed-domains rule (a domain in
    ``allowed`` or a subdomain of one), translated; None when it may."""
    domain = email.rsplit("@", 1)[1].lower()
    if any(domain == entry or domain.endswith("." + entry) for entry in allowed):
        return None
    return _("“%(address)s” is not an address of an allowed domain.") % {"address": email}


def _region_allowed(number: phonenumbers.PhoneNumber, regions: tuple[str, ...]) -> bool:
    """Valid in one of ``regions``: asked per region, so a country code that several regions
    share (+358: Finland and Åland, +1: the US and Canada) admits only the listed ones."""
    return any(phonenumbers.is_valid_number_for_region(number, r.upper()) for r in regions)


def _parse_mobile(number: str) -> phonenumbers.PhoneNumber | None:
    """A Finnish or international mobile number, or None when it is not valid."""
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
    return parsed


def _e164(number: phonenumbers.PhoneNumber) -> str:
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def parse_phone(number: str) -> str | None:
    """A Finnish or international mobile number in E.164, or None when it is not valid
    (whatever its country: :func:`parse_recipients` checks the allowed regions)."""
    mobile = _parse_mobile(number)
    return _e164(mobile) if mobile is not None else None
