"""portal.services.recipients: the Recipients field, allowed domains and the ``.sec`` suffix."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portal.i18n import locale_context
from portal.services.recipients import (
    RecipientsResult,
    domain_refusal,
    mask_phone,
    parse_phone,
    parse_recipients,
    routing_kind,
)

ALLOWED = ("valtori.fi", "example.fi")
SUFFIX = ".sec"
# The countries of the international numbers below (Sweden, Germany, Estonia) and Finland.
REGIONS = ("fi", "se", "de", "ee")


def parse(
    text: str,
    *,
    suffix: str = SUFFIX,
    max_recipients: int = 50,
    sms_regions: tuple[str, ...] = REGIONS,
):
    """The field parsed, then the built-in recipient policy (the allowed domains) applied."""
    with locale_context("en"):
        result = parse_recipients(
            text, phone_suffix=suffix, max_recipients=max_recipients, sms_regions=sms_regions
        )
        refusals = [domain_refusal(r.email, ALLOWED) for r in result.recipients]
    return RecipientsResult(
        [r for r, refusal in zip(result.recipients, refusals, strict=True) if refusal is None],
        result.errors + [refusal for refusal in refusals if refusal],
    )


label = st.from_regex(r"[a-z0-9]{1,6}(-[a-z0-9]{1,6})?", fullmatch=True)
atom = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_+-]{0,9}", fullmatch=True)
local_part = st.lists(atom, min_size=1, max_size=3).map(".".join)
allowed_domain = st.builds(
    lambda sub, domain: ".".join([*sub, domain]),
    st.lists(label, max_size=2),
    st.sampled_from(ALLOWED),
)
allowed_address = st.builds(lambda local, domain: f"{local}@{domain}", local_part, allowed_domain)
other_domain = st.builds(
    lambda name, tld: f"{name}.{tld}", label, st.sampled_from(["com", "se", "org", "fi"])
).filter(lambda domain: not any(domain == a or domain.endswith("." + a) for a in ALLOWED))

# Finnish mobile numbers: 040–046 and 050, 5 to 8 digits after the prefix.
fi_prefix = st.sampled_from(["40", "41", "42", "44", "45", "46", "50"])
fi_rest = st.from_regex(r"[0-9]{5,8}", fullmatch=True)
# International mobile numbers: (country code + prefix, digits after it).
international = st.sampled_from([("4670", 7), ("4673", 7), ("49151", 8), ("3725", 7)]).flatmap(
    lambda spec: st.from_regex(rf"[0-9]{{{spec[1]}}}", fullmatch=True).map(
        lambda digits: "+" + spec[0] + digits
    )
)


@given(allowed_address)
def test_any_valid_address_in_an_allowed_domain_round_trips(address):
    result = parse(address)

    assert result.errors == []
    assert [r.email for r in result.recipients] == [address]
    assert result.recipients[0].phone is None


@given(
    st.lists(allowed_address, min_size=1, max_size=8, unique_by=str.lower),
    st.lists(st.sampled_from([",", ";", "\n", "\r\n", ", ", " ;\n", ",,", "\n\n"]), min_size=8),
    st.booleans(),
)
def test_any_mix_of_separators_gives_the_same_recipients(addresses, separators, padded):
    text = "".join(a + s for a, s in zip(addresses, separators, strict=False)).rstrip(",;\r\n ")
    if padded:
        text = separators[0] + text + separators[-1]

    result = parse(text)

    assert result.errors == []
    assert [r.email for r in result.recipients] == addresses


def test_the_same_address_twice_is_one_recipient():
    result = parse("ville@valtori.fi, VILLE@valtori.fi\nville@valtori.fi")

    assert [r.email for r in result.recipients] == ["ville@valtori.fi"]


@given(
    allowed_address,
    fi_prefix,
    fi_rest,
    st.sampled_from(["0{p}{r}", "+358{p}{r}", "+358 {p} {r}", "00358{p}{r}", "0{p}-{r}"]),
)
def test_finnish_mobile_number_with_suffix_normalises_to_e164(address, prefix, rest, written):
    number = written.format(p=prefix, r=rest)

    result = parse(f"{address}.{number}{SUFFIX}")

    assert result.errors == []
    (recipient,) = result.recipients
    assert recipient.email == address
    assert recipient.phone == f"+358{prefix}{rest}"


@given(allowed_address, international)
def test_international_mobile_number_with_suffix_is_kept_in_e164(address, number):
    result = parse(f"{address}.{number}{SUFFIX}")

    assert result.errors == []
    assert result.recipients[0].email == address
    assert result.recipients[0].phone == number


def test_suffix_is_case_insensitive_and_configurable():
    assert parse("ville@valtori.fi.0400123456.SEC").recipients[0].phone == "+358400123456"

    result = parse("ville@valtori.fi.0400123456.pin", suffix=".pin")
    assert result.recipients[0].phone == "+358400123456"
    assert "0400123456" not in result.recipients[0].email


def test_address_without_suffix_has_no_phone():
    (recipient,) = parse("ville.virkamies@valtori.fi").recipients

    assert recipient.phone is None
    assert recipient.masked_phone == ""


@given(st.one_of(fi_prefix.flatmap(lambda p: fi_rest.map(lambda r: f"+358{p}{r}")), international))
def test_masking_shows_only_the_last_three_digits(phone):
    masked = mask_phone(phone)

    assert re.sub(r"\D", "", masked) == phone[-3:]
    assert masked.endswith(phone[-3:])
    assert phone[:-3].lstrip("+") not in masked


@given(local_part, other_domain)
def test_address_of_a_domain_not_allowed_is_named_in_the_error(local, domain):
    address = f"{local}@{domain}"

    result = parse(f"ville@valtori.fi, {address}")

    assert len(result.errors) == 1
    assert f"“{address}”" in result.errors[0]
    assert "allowed domain" in result.errors[0]


@pytest.mark.parametrize(
    "address",
    [
        "ville@evilvaltori.fi",
        "ville@valtori.fi.evil.com",
        "ville@valtori.fi.example.com",
        "ville@fi",
    ],
)
def test_lookalike_domains_are_not_allowed(address):
    result = parse(address)

    assert result.recipients == []
    assert len(result.errors) == 1
    assert address in result.errors[0]


def test_fifty_recipients_are_accepted_and_fifty_one_refused():
    addresses = [f"person{i}@valtori.fi" for i in range(51)]

    assert len(parse(",".join(addresses[:50])).recipients) == 50
    refused = parse(",".join(addresses))
    assert refused.recipients == []
    assert refused.errors == ["Enter at most 50 recipients."]


@pytest.mark.parametrize("text", ["", "  ", ",;\n"])
def test_empty_field_asks_for_a_recipient(text):
    result = parse(text)

    assert result.recipients == []
    assert result.errors == ["Enter at least one recipient."]


@pytest.mark.parametrize(
    "number",
    [
        "123",  # too short
        "0912345678",  # a Helsinki landline: no SMS
        "+3589123456",  # a Finnish landline written internationally
        "0412345678901",  # too long
        "04OO123456",  # letters
        "",  # suffix with no number
    ],
)
def test_invalid_mobile_number_is_a_clear_error(number):
    entry = f"ville@valtori.fi.{number}{SUFFIX}"

    result = parse(entry)

    assert result.recipients == []
    assert len(result.errors) == 1
    assert "ville@valtori.fi" in result.errors[0]


def test_invalid_address_is_named_in_the_error():
    result = parse("ville@valtori.fi; not an address")

    assert [r.email for r in result.recipients] == ["ville@valtori.fi"]
    assert result.errors == ["“not an address” is not a valid e-mail address."]


@pytest.mark.parametrize("number", ["0400123456", "+358 40 0123456", "00358400123456"])
def test_parse_phone_accepts_finnish_forms(number):
    assert parse_phone(number) == "+358400123456"


async def test_errors_are_in_the_users_language(portal_app):
    # The app's catalogs translate, in its context; Swedish is whatever the sv catalog says.
    async with portal_app.app.app_context():
        with locale_context("en"):
            english = domain_refusal("x@evil.com", ALLOWED)
        with locale_context("sv"):
            swedish = domain_refusal("x@evil.com", ALLOWED)

    assert "x@evil.com" in swedish
    assert swedish != english, "the Swedish catalog does not translate the domain error"


# -- source routing and the countries that may get a PIN (issue 8) -----------------------


@pytest.mark.parametrize(
    ("entry", "words"),
    [
        ("user%evil.example@valtori.fi", "“%” and “!”"),
        ("evil.example!user@valtori.fi", "“%” and “!”"),
        ("a%b%c@example.fi", "“%” and “!”"),
        ("ville!@valtori.fi.0400123456.sec", "“%” and “!”"),
        ('"ville virkamies"@valtori.fi', "quotation marks"),
        ('"user@evil.example"@valtori.fi', "quotation marks"),
        ("@relay.example:user@valtori.fi", "other mail servers"),
        ("@valtori.fi", "other mail servers"),
    ],
)
def test_source_routed_addresses_are_refused_by_name(entry, words):
    result = parse(f"ville@valtori.fi, {entry}")

    assert [r.email for r in result.recipients] == ["ville@valtori.fi"]
    assert len(result.errors) == 1
    assert f"“{entry}” cannot be used" in result.errors[0]
    assert words in result.errors[0]


def test_a_source_route_list_is_refused_part_by_part():
    result = parse("@a.example,@b.example:user@valtori.fi")

    assert result.recipients == []
    assert len(result.errors) == 2
    assert all("other mail servers" in error for error in result.errors)
    assert "“@a.example”" in result.errors[0]
    assert "“@b.example:user@valtori.fi”" in result.errors[1]


@given(local_part, st.sampled_from(["%", "!"]), local_part, allowed_domain)
def test_any_local_part_with_percent_or_bang_is_refused(before, char, after, domain):
    address = f"{before}{char}{after}@{domain}"

    result = parse(address)

    assert result.recipients == []
    assert result.errors and f"“{address}”" in result.errors[0]


@given(allowed_address, international)
def test_numbers_of_a_country_not_allowed_cannot_receive_a_pin(address, number):
    entry = f"{address}.{number}{SUFFIX}"

    result = parse(entry, sms_regions=("fi",))

    assert result.recipients == []
    assert result.errors == [
        f"“{number}” in “{entry}”: phone numbers of this country cannot receive a PIN."
    ]


@given(allowed_address, fi_prefix, fi_rest)
def test_finnish_numbers_are_accepted_with_the_default_region(address, prefix, rest):
    result = parse(f"{address}.0{prefix}{rest}{SUFFIX}", sms_regions=("fi",))

    assert result.errors == []
    assert result.recipients[0].phone == f"+358{prefix}{rest}"


@pytest.mark.parametrize("regions", [("SE",), ("se",), ("Se", "fi")])
def test_allowed_regions_are_compared_ignoring_case(regions):
    result = parse("ville@valtori.fi.+46701234567.sec", sms_regions=regions)

    assert result.errors == []
    assert result.recipients[0].phone == "+46701234567"


def test_a_region_sharing_a_country_code_is_not_let_in_by_its_neighbour():
    # +1 is shared by the United States and Canada: allowing the US is not allowing Canada.
    toronto_mobile = "+14165550123"
    assert parse_phone("+12015550123") is not None and parse_phone(toronto_mobile) is not None

    assert parse(f"ville@valtori.fi.{toronto_mobile}.sec", sms_regions=("us",)).errors
    assert not parse(f"ville@valtori.fi.{toronto_mobile}.sec", sms_regions=("ca",)).errors


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("liisa@example.com", None),
        ("liisa.laine+hakemus@example.com", None),
        ("liisa%evil.example@example.com", "percent"),
        ("evil!liisa@example.com", "percent"),
        ('"liisa"@example.com', "quoted"),
        ("@relay.example:liisa@example.com", "route"),
    ],
)
def test_routing_kind_tells_how_an_address_would_route_mail_onwards(address, kind):
    # Also for the registration form, whose address gets the personal link.
    assert routing_kind(address) == kind
