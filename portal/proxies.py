"""The client's address behind reverse proxies (``PORTAL_TRUSTED_PROXIES``).

``X-Forwarded-For`` and ``Forwarded`` are written by whoever sends the request, so they are
believed only as far as trusted proxies vouch for them. The direct peer is the one address
nobody can forge; if it is a trusted proxy, the right-most hop it reports is the address that
proxy saw, and so on, right to left, while the hops are trusted proxies. The first hop that is
not a trusted proxy is the client. Everything left of it was written by the client itself and
is never read.

A hop that is not an address (``unknown``, an obfuscated ``_name``, garbage) ends the walk:
the client is then the last trusted proxy reached, which is the peer itself when it is the
only one. So a malformed header can only make the portal count a request against a proxy,
never against an address of the client's choosing.

``X-Forwarded-For`` is read when present (nginx, HAProxy, Traefik, Caddy, cloud load
balancers append to it); ``Forwarded`` (RFC 7239) only when it is absent. A proxy that
writes only ``Forwarded`` must therefore drop an ``X-Forwarded-For`` arriving from outside.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(entries: Iterable[str]) -> list[Network]:
    """Addresses or networks (``10.0.0.0/8``, ``2001:db8::1``); ValueError names a bad one."""
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            raise ValueError(f"{entry!r} is not an IP address or network") from None
    return networks


def parse_address(raw: str) -> Address | None:
    """An address as proxies write it: ``192.0.2.1``, ``192.0.2.1:4711``, ``2001:db8::1``,
    ``[2001:db8::1]:4711`` or quoted (``Forwarded``); None for anything else."""
    value = raw.strip().strip('"').strip()
    if value.startswith("["):
        value, bracket, _port = value[1:].partition("]")
        if not bracket:
            return None
    elif value.count(":") == 1:
        value = value.split(":", 1)[0]  # IPv4 with a port
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # ::ffff:192.0.2.1 is 192.0.2.1 (dual-stack sockets)
    return address


def _forwarded_for(values: Sequence[str]) -> list[str]:
    """The ``for=`` of every element of ``Forwarded`` headers, in order ('' when missing)."""
    hops = []
    for value in values:
        for element in value.split(","):
            found = ""
            for pair in element.split(";"):
                name, _, content = pair.partition("=")
                if name.strip().lower() == "for":
                    found = content
            hops.append(found)
    return hops


def _hops(x_forwarded_for: Sequence[str], forwarded: Sequence[str]) -> list[str]:
    if x_forwarded_for:
        return [hop for value in x_forwarded_for for hop in value.split(",")]
    return _forwarded_for(forwarded)


def client_address(
    peer: str,
    x_forwarded_for: Sequence[str],
    forwarded: Sequence[str],
    trusted: Sequence[Network],
) -> str:
    """The client's address for a request from ``peer`` with these header values (each
    header may occur several times; the lists keep their order)."""
    current = parse_address(peer)
    if current is None or not _is_trusted(current, trusted):
        return peer
    for raw in reversed(_hops(x_forwarded_for, forwarded)):
        hop = parse_address(raw)
        if hop is None:
            break  # malformed: believe no further than the last trusted proxy
        if not _is_trusted(hop, trusted):
            return str(hop)
        current = hop
    return str(current)


def _is_trusted(address: Address, trusted: Sequence[Network]) -> bool:
    return any(address.version == network.version and address in network for network in trusted)
