"""Who a request comes from when reverse proxies stand in front (GPUGO_TRUSTED_PROXIES).

``X-Forwarded-For`` (or, without one, the standard ``Forwarded`` header's ``for=``) is
written by whoever sends the request, so it is believed only from a trusted peer, and
only as far as the chain of trusted hops reaches: each proxy appends the address it
saw, so the client is the right-most address that is not a trusted proxy. Addresses to
the left of it are the client's own claims.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from starlette.types import Scope

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def _address(text: str) -> Address | None:
    """An X-Forwarded-For entry (``1.2.3.4``, ``1.2.3.4:80``, ``[::1]:80``, ``::1``)."""
    text = text.strip()
    if text.startswith("["):
        text = text[1 : text.find("]")] if "]" in text else ""
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    # A dual-stack socket reports IPv4 clients as ::ffff:a.b.c.d: one client, one key.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def forwarded_for(header: str) -> str:
    """The ``for=`` of each element of an RFC 7239 ``Forwarded`` header, as an
    X-Forwarded-For chain (``for=192.0.2.1, for="[2001:db8::1]:80"`` -> two entries).

    An element without ``for=`` or with an obfuscated one (``_hidden``, ``unknown``)
    gives an entry that is not an address: the walk stops at the proxy that wrote it.
    """
    entries = []
    for element in header.split(","):
        found = "-"
        for pair in element.split(";"):
            name, _, value = pair.strip().partition("=")
            if name.strip().lower() == "for":
                found = value.strip().strip('"') or "-"
        entries.append(found)
    return ",".join(entries)


class TrustedProxies:
    def __init__(self, networks: Sequence[Network]) -> None:
        self.networks = tuple(networks)

    def __bool__(self) -> bool:
        return bool(self.networks)

    def _trusted(self, address: Address) -> bool:
        return any(address in network for network in self.networks)

    def client(self, peer: str, forwarded_for: str) -> str:
        """The client behind ``peer``: the right-most untrusted hop of the header.

        An entry that is not an IP address ends the walk at the trusted hop that wrote
        it: that proxy is as far as anything can be believed.
        """
        hop = _address(peer)
        if hop is None or not self._trusted(hop):
            return peer
        for entry in reversed(forwarded_for.split(",")):
            previous = _address(entry)
            if previous is None:
                break
            hop = previous
            if not self._trusted(hop):
                break
        return str(hop)

    def apply(self, scope: Scope) -> None:
        """Make ``scope["client"]`` the forwarded client when the peer is a trusted proxy.

        Done once, in front of everything, so REST, GraphQL, ``/s/`` and the logs agree.
        """
        client = scope.get("client")
        if not client:
            return
        values = [value for name, value in scope["headers"] if name == b"x-forwarded-for"]
        if values:
            chain = b",".join(values).decode("latin-1")
        else:
            forwarded = [value for name, value in scope["headers"] if name == b"forwarded"]
            if not forwarded:
                return
            chain = forwarded_for(b",".join(forwarded).decode("latin-1"))
        host = self.client(client[0], chain)
        if host != client[0]:
            scope["client"] = (host, 0)
