"""Where an outbound webhook may go: http(s) URLs whose host resolves only to public
addresses (unless the operator allows private ones), checked when the URL is saved and
again before each send, since DNS answers change.

The send connects to the address that was checked (the URL's host goes in the ``Host``
header and the TLS server name), so a name that resolves elsewhere between the check
and the connection (DNS rebinding) cannot redirect it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
RESOLVE_TIMEOUT_SECONDS = 5.0
MAX_URL_LENGTH = 2048


class AddressRefused(Exception):
    """The URL may not be called; the message says why (shown to its owner)."""


@dataclass(frozen=True, slots=True)
class Target:
    """A checked URL: what to connect to, and what to tell the server it is."""

    scheme: str
    host: str
    port: int
    address: str
    # The path and query, as given.
    target: str

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"

    @property
    def connect_url(self) -> str:
        address = f"[{self.address}]" if ":" in self.address else self.address
        return f"{self.scheme}://{address}:{self.port}{self.target}"


class Resolver:
    """Host name -> addresses, off the event loop (the loop's getaddrinfo), bounded in time."""

    async def resolve(self, host: str, port: int) -> list[str]:
        loop = asyncio.get_running_loop()
        infos = await asyncio.wait_for(
            loop.getaddrinfo(host, port, type=socket.SOCK_STREAM),
            timeout=RESOLVE_TIMEOUT_SECONDS,
        )
        return list(dict.fromkeys(str(info[4][0]) for info in infos))


def refused_kind(address: IPAddress) -> str | None:
    """Why an address is not public (loopback, private, ...), or None when it is."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    checks = (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        # 169.254.169.254 and the other cloud metadata services live here.
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("private", address.is_private),
        ("reserved", address.is_reserved),
    )
    for kind, yes in checks:
        if yes:
            return kind
    # Shared address space (100.64/10), documentation and benchmarking ranges, ...
    return None if address.is_global else "non-public"


def parse_url(url: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, path-and-query) of an http(s) URL, or AddressRefused."""
    if len(url) > MAX_URL_LENGTH:
        raise AddressRefused(f"must be at most {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise AddressRefused("is not a valid URL") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise AddressRefused("must be an http:// or https:// URL")
    if not parts.hostname:
        raise AddressRefused("has no host")
    if parts.username is not None or parts.password is not None:
        raise AddressRefused("must not carry a user name or password")
    if any(c.isspace() or ord(c) < 32 for c in url):
        raise AddressRefused("must not contain spaces or control characters")
    target = parts.path or "/"
    if parts.query:
        target += f"?{parts.query}"
    return scheme, parts.hostname, port or (443 if scheme == "https" else 80), target


async def check(url: str, *, resolver: Resolver, allow_private: bool) -> Target:
    """The URL's target at the first address it resolves to, if every address is allowed."""
    scheme, host, port, target = parse_url(url)
    try:
        literal: IPAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [str(literal)]
    else:
        try:
            addresses = await resolver.resolve(host, port)
        except (OSError, TimeoutError, UnicodeError):
            raise AddressRefused(f"host {host!r} does not resolve") from None
        if not addresses:
            raise AddressRefused(f"host {host!r} does not resolve")
    if not allow_private:
        # Every address must be public: a client could pick any of them.
        for address in addresses:
            kind = refused_kind(ipaddress.ip_address(address.split("%")[0]))
            if kind is not None:
                raise AddressRefused(f"resolves to a {kind} address ({address}), which is refused")
    return Target(scheme=scheme, host=host, port=port, address=addresses[0], target=target)
