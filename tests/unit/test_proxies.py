"""Behind a reverse proxy: the client address from X-Forwarded-For / Forwarded, believed only
from PORTAL_TRUSTED_PROXIES (portal.proxies, portal.web.client_ip)."""

from __future__ import annotations

import pytest

from portal.app import create_app
from portal.config import ConfigError
from portal.proxies import client_address, parse_address, parse_networks
from portal.testing import builtin_plugins, csrf_from

from .helpers import page_text

TRUSTED = parse_networks(["10.0.0.0/8", "2001:db8:a::/48", "192.0.2.7"])


def client(peer: str, xff: list[str] | None = None, forwarded: list[str] | None = None) -> str:
    return client_address(peer, xff or [], forwarded or [], TRUSTED)


# -- the walk ------------------------------------------------------------------------------


def test_headers_from_an_untrusted_peer_are_ignored():
    assert client("198.51.100.9", ["203.0.113.1"]) == "198.51.100.9"
    assert client("198.51.100.9", forwarded=["for=203.0.113.1"]) == "198.51.100.9"


def test_without_trusted_proxies_every_header_is_ignored():
    assert client_address("10.0.0.1", ["203.0.113.1"], ["for=203.0.113.2"], []) == "10.0.0.1"


def test_one_trusted_proxy_reports_the_client():
    assert client("10.0.0.1", ["203.0.113.1"]) == "203.0.113.1"


def test_what_the_client_wrote_left_of_the_proxys_entry_is_not_believed():
    # The client sent "X-Forwarded-For: 1.2.3.4"; the proxy appended the address it saw.
    assert client("10.0.0.1", ["1.2.3.4, 203.0.113.1"]) == "203.0.113.1"


def test_chain_through_two_trusted_proxies():
    assert client("10.0.0.1", ["1.2.3.4, 203.0.113.1, 192.0.2.7"]) == "203.0.113.1"
    assert client("10.0.0.1", ["1.2.3.4, 203.0.113.1", "192.0.2.7"]) == "203.0.113.1"


def test_the_walk_stops_at_the_first_untrusted_hop_even_if_it_claims_more():
    # 198.51.100.9 is not a proxy of ours: whatever it says about 10.9.9.9 is its own story.
    assert client("10.0.0.1", ["10.9.9.9, 198.51.100.9"]) == "198.51.100.9"


def test_ipv6_peer_and_client():
    assert client("2001:db8:a::1", ["2001:DB8:B::77"]) == "2001:db8:b::77"
    assert client("2001:db8:a::1", forwarded=['for="[2001:db8:b::77]:4711"']) == "2001:db8:b::77"
    assert client("2001:db8:ffff::1", ["203.0.113.1"]) == "2001:db8:ffff::1"


def test_ipv4_mapped_peer_counts_as_its_ipv4_address():
    assert client("::ffff:10.0.0.1", ["203.0.113.1"]) == "203.0.113.1"


def test_forwarded_header_of_rfc_7239():
    assert client("10.0.0.1", forwarded=["for=203.0.113.1;proto=https"]) == "203.0.113.1"
    assert client("10.0.0.1", forwarded=['For="203.0.113.1:4711", for=192.0.2.7']) == (
        "203.0.113.1"
    )
    assert client("10.0.0.1", forwarded=["for=1.2.3.4", "for=203.0.113.1"]) == "203.0.113.1"


def test_x_forwarded_for_wins_over_forwarded_when_both_are_present():
    assert client("10.0.0.1", ["203.0.113.1"], ["for=1.2.3.4"]) == "203.0.113.1"


@pytest.mark.parametrize(
    "xff",
    [
        "garbage",
        "",
        "unknown",
        "203.0.113.1, not-an-address",
        "[2001:db8::1",
        "999.1.1.1",
        "203.0.113.1 203.0.113.2",
        "\x00",
    ],
)
def test_malformed_entry_stops_the_walk_at_the_trusted_peer(xff):
    assert client("10.0.0.1", [xff]) == "10.0.0.1"


def test_malformed_entry_left_of_a_trusted_hop_gives_that_trusted_hop():
    assert client("10.0.0.1", ["nonsense, 192.0.2.7"]) == "192.0.2.7"


@pytest.mark.parametrize("forwarded", ["for=_hidden", "for=unknown", "proto=https", "for="])
def test_obfuscated_or_missing_forwarded_for_falls_back_to_the_peer(forwarded):
    assert client("10.0.0.1", forwarded=[forwarded]) == "10.0.0.1"


def test_every_hop_trusted_gives_the_left_most():
    assert client("10.0.0.1", ["10.0.0.3, 10.0.0.2"]) == "10.0.0.3"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("203.0.113.1", "203.0.113.1"),
        (" 203.0.113.1:8080 ", "203.0.113.1"),
        ('"[2001:db8::1]:443"', "2001:db8::1"),
        ("2001:db8::1", "2001:db8::1"),
        ("[2001:db8::1]", "2001:db8::1"),
        ("localhost", None),
        ("203.0.113.1:80:80", None),
    ],
)
def test_addresses_as_proxies_write_them(raw, expected):
    parsed = parse_address(raw)
    assert (str(parsed) if parsed else None) == expected


# -- configuration -------------------------------------------------------------------------


def test_trusted_proxies_take_addresses_and_networks(portal_config):
    app = create_app(
        {**portal_config, "trusted_proxies": "10.0.0.0/8, 192.0.2.7 ; 2001:DB8::/32, 10.1.2.3/8"},
        plugins=builtin_plugins(),
    )

    assert app.extensions["sinetti"].settings.trusted_proxies == (
        "10.0.0.0/8",
        "192.0.2.7",
        "2001:db8::/32",
        "10.1.2.3/8",
    )


@pytest.mark.parametrize("entry", ["proxy.example.fi", "10.0.0.0/33", "10.0.0.1-10.0.0.9", "*"])
def test_bad_trusted_proxy_stops_start_up_naming_the_variable(portal_config, entry):
    with pytest.raises(ConfigError, match=r"^PORTAL_TRUSTED_PROXIES: .* is not an IP address"):
        create_app({**portal_config, "trusted_proxies": f"10.0.0.1, {entry}"})


# -- through the portal: the per-address registration limit --------------------------------


async def register(client, number: int, peer: str, xff: str | None = None) -> int:
    scope = {"client": (peer, 40000 + number)}
    headers = {"X-Forwarded-For": xff} if xff is not None else {}
    page = await client.get("/", scope_base=scope, headers=headers)
    response = await client.post(
        "/",
        form={"email": f"user{number}@example.com", "csrf_token": csrf_from(await page_text(page))},
        scope_base=scope,
        headers=headers,
    )
    return response.status_code


class TestBehindTrustedProxies:
    @pytest.fixture
    def portal_config(self, portal_config):
        return {
            **portal_config,
            "trusted_proxies": "10.0.0.0/8",
            "registrations_per_ip_per_hour": 2,
        }

    async def test_registration_limit_counts_per_client_not_per_proxy(self, client):
        statuses = [await register(client, n, "10.0.0.1", "203.0.113.5") for n in range(3)]
        others = [await register(client, n, "10.0.0.1", "203.0.113.6") for n in range(3, 5)]

        assert statuses == [200, 200, 429]
        assert others == [200, 200], "another client behind the same proxy has its own count"

    async def test_two_proxies_in_a_chain_count_the_client_they_report(self, client):
        statuses = [
            await register(client, n, "10.0.0.1", f"198.51.100.{n}, 203.0.113.5, 10.0.0.2")
            for n in range(3)
        ]

        assert statuses == [200, 200, 429], "the client's own left-most entries do not matter"

    async def test_spoofed_header_from_an_untrusted_peer_does_not_escape_the_limit(self, client):
        statuses = [await register(client, n, "198.51.100.20", f"203.0.113.{n}") for n in range(3)]

        assert statuses == [200, 200, 429]


class TestWithoutTrustedProxies:
    @pytest.fixture
    def portal_config(self, portal_config):
        return {**portal_config, "registrations_per_ip_per_hour": 2}

    async def test_forwarded_headers_are_ignored(self, client):
        statuses = [await register(client, n, "10.0.0.1", f"203.0.113.{n}") for n in range(3)]

        assert statuses == [200, 200, 429]
