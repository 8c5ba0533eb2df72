"""Where the responders may send HTTP requests: the egress policy.

Notify URIs (``slack:``, ``teams:``, ``webhook:``) come from the coverage file and the
operations API, webhook URLs and platform base URLs from the settings. Without a policy
such a URL could make the service call its own API on loopback, a cloud metadata
address (169.254.169.254) or any host of the private network. Every outbound HTTP
request of the responders goes through :func:`responders.base.post`, which asks
:class:`Egress` where it may connect first:

- **By default only ``https``, to public addresses.** The host is resolved and every
  address it resolves to must be a public unicast address: not loopback, private,
  link-local, site-local, multicast, reserved, unspecified or shared (100.64.0.0/10). An IPv6
  address that carries an IPv4 address (IPv4-mapped ``::ffff:a.b.c.d``, IPv4-compatible,
  6to4) is judged by the IPv4 address too. One refused address refuses the host.
- **The allow-list** (``egress_allow``, ``OFFHOURS_RESPONDERS__EGRESS_ALLOW``) names the
  local or internal destinations that are allowed anyway: host names
  (``pager.internal``), IP addresses (``10.1.2.3``, ``::1``) and CIDR blocks
  (``10.20.0.0/16``, ``fd00::/8``), each optionally with a port (``127.0.0.1:8781``,
  ``[::1]:8443``, ``pager.internal:8443``); an entry without a port allows every port.
  Only an allow-listed destination may be plain ``http``.
- **The request goes to the addresses that were checked.** :class:`EgressResolver` (an
  :class:`aiohttp.abc.AbstractResolver` wrapping the default resolver) resolves and
  checks; :func:`~responders.base.post` then connects to exactly those addresses, with
  the host name kept for the ``Host`` header and for TLS (SNI and certificate check).
  A DNS answer that changes between the check and the connection (DNS rebinding)
  therefore cannot steer a request elsewhere.
- Redirects are never followed (:func:`~responders.base.post`).

A refused destination raises :class:`EgressRefused`, whose text names the host and the
reason, never the URL (URLs carry tokens).
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from yarl import URL

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

DNS_TTL = 10.0
"""Seconds a checked DNS answer is reused (aiohttp's own default DNS cache time)."""


class EgressRefused(Exception):
    """A destination the egress policy refuses; the text names the host, never the URL."""


@dataclass(frozen=True, slots=True)
class AllowEntry:
    """One allow-list entry: a host name or a network, and optionally one port."""

    host: str | None = None
    network: IPNetwork | None = None
    port: int | None = None

    @classmethod
    def parse(cls, text: str) -> AllowEntry:
        """``host``, ``host:port``, ``IP``, ``IP:port``, ``[IPv6]:port`` or ``CIDR``.

        Raises ``ValueError`` naming the entry when it is none of these.
        """
        entry = text.strip()
        try:
            return cls(network=ipaddress.ip_network(entry, strict=False))
        except ValueError:
            pass
        host, port = entry, None
        if entry.startswith("["):
            inside, bracket, rest = entry[1:].partition("]")
            if not bracket or (rest and not rest.startswith(":")):
                raise ValueError(f"egress_allow entry {text!r}: not host[:port], IP[:port] or CIDR")
            host, port = inside, rest[1:] or None
        elif entry.count(":") == 1:
            host, port = entry.split(":")
        number = _port(port, text) if port is not None else None
        try:
            return cls(network=ipaddress.ip_network(host), port=number)
        except ValueError:
            pass
        name = host.lower().rstrip(".")
        try:  # an international name as URLs carry it (punycode)
            name = name.encode("idna").decode("ascii")
        except UnicodeError:
            raise ValueError(f"egress_allow entry {text!r}: not host[:port], IP[:port] or CIDR") from None
        labels = name.split(".")
        if not name or not all(
            label and len(label) <= 63 and all(ch.isalnum() or ch == "-" for ch in label)
            for label in labels
        ):
            raise ValueError(f"egress_allow entry {text!r}: not host[:port], IP[:port] or CIDR")
        return cls(host=name, port=number)

    def allows_host(self, host: str, port: int | None) -> bool:
        """True when this entry names ``host`` (and ``port``, if it has one)."""
        return self.host is not None and self.host == host and self.port in (None, port)

    def allows_address(self, address: IPAddress, port: int | None) -> bool:
        """True when ``address`` (and ``port``, if the entry has one) is inside this entry."""
        return (
            self.network is not None
            and address.version == self.network.version
            and address in self.network
            and self.port in (None, port)
        )


def _port(text: str, entry: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError(f"egress_allow entry {entry!r}: port {text!r} is not 1-65535")
    return int(text)


def parse_allow(entries: Iterable[str]) -> tuple[AllowEntry, ...]:
    """Every entry parsed; ``ValueError`` names the first one that is not valid."""
    return tuple(AllowEntry.parse(entry) for entry in entries)


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, 6to4, IPv4-compatible), if any."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if int(address) >> 32 == 0 and int(address) > 1:  # ::a.b.c.d (deprecated, IPv4-compatible)
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def not_public(address: IPAddress) -> str | None:
    """What makes ``address`` not a public unicast address (``loopback``, …), or None."""
    embedded = _embedded_ipv4(address)
    mapped = isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None
    # An IPv4-mapped address is the IPv4 address it maps (::ffff:0:0/96 itself counts as
    # private); the other IPv6 forms must pass as IPv6 addresses too.
    for candidate in (embedded,) if mapped else (embedded, address):
        if candidate is None:
            continue
        for kind in ("loopback", "unspecified", "link_local", "site_local", "multicast", "reserved", "private"):
            if getattr(candidate, f"is_{kind}", False):
                return kind.replace("_", "-")
        if not candidate.is_global:
            return "non-public"
    return None


def shown(address: IPAddress) -> str:
    """``address`` as people write it (an IPv4-mapped one as ``::ffff:a.b.c.d``)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return f"::ffff:{address.ipv4_mapped}"
    return str(address)


def _address(host: str) -> IPAddress | None:
    """``host`` as an IP address (an IPv6 zone id dropped), or None for a name."""
    try:
        return ipaddress.ip_address(host.partition("%")[0])
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class EgressPolicy:
    """The allow-list and the rule for everything else (public addresses over https)."""

    allow: tuple[AllowEntry, ...] = ()

    @classmethod
    def from_entries(cls, entries: Iterable[str]) -> EgressPolicy:
        return cls(parse_allow(entries))

    def host_listed(self, host: str, port: int | None) -> bool:
        """True when an entry names this host (by name or, for an IP literal, its address)."""
        address = _address(host)
        if address is not None:
            return self.address_listed(address, port)
        return any(entry.allows_host(host.lower().rstrip("."), port) for entry in self.allow)

    def address_listed(self, address: IPAddress, port: int | None) -> bool:
        return any(entry.allows_address(address, port) for entry in self.allow)

    def refusal(self, host: str, address: IPAddress, port: int | None) -> str | None:
        """Why ``host`` may not be reached at ``address``, or None when it may."""
        if self.address_listed(address, port):
            return None
        kind = not_public(address)
        if kind is None:
            return None
        if _address(host) == address:
            return f"{host} is a {kind} address not in egress_allow"
        return f"{host} resolves to {shown(address)}, a {kind} address not in egress_allow"


class EgressResolver(AbstractResolver):
    """The default resolver, keeping an answer only when the policy allows every address.

    A host named in the allow-list resolves as usual. For any other host each address
    must be allow-listed or public, or :class:`EgressRefused` is raised (one bad address
    refuses the host: a name that points at both the Internet and the private network is
    not trusted). Checked answers are reused for :data:`DNS_TTL` seconds (``clock`` is
    monotonic seconds, injected for tests).
    """

    def __init__(
        self,
        policy: EgressPolicy,
        resolver: AbstractResolver | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        ttl: float = DNS_TTL,
    ) -> None:
        self.policy = policy
        self._resolver = resolver
        self._clock = clock
        self._ttl = ttl
        self._cache: dict[tuple[str, int, int], tuple[float, list[ResolveResult]]] = {}

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_UNSPEC
    ) -> list[ResolveResult]:
        key = (host, port, int(family))
        cached = self._cache.get(key)
        now = self._clock()
        if cached is not None and cached[0] > now:
            return list(cached[1])
        results = await self._lookup(host, port, family)
        if not self.policy.host_listed(host, port):
            for result in results:
                address = _address(result["host"])
                why = (
                    f"{host} resolves to {result['host']}, not an IP address"
                    if address is None
                    else self.policy.refusal(host, address, port)
                )
                if why is not None:
                    raise EgressRefused(why)
        if not results:
            raise OSError(f"{host}: no address")
        if len(self._cache) > 1024:
            self._cache.clear()
        self._cache[key] = (now + self._ttl, results)
        return list(results)

    async def _lookup(
        self, host: str, port: int, family: socket.AddressFamily
    ) -> list[ResolveResult]:
        if _address(host) is not None:
            return [
                ResolveResult(
                    hostname=host, host=host, port=port,
                    family=socket.AF_INET6 if ":" in host else socket.AF_INET,
                    proto=0, flags=socket.AI_NUMERICHOST,
                )
            ]
        if self._resolver is not None:
            return await self._resolver.resolve(host, port, family)
        # The default resolver binds the running loop: one per lookup, so this object
        # (and its cache) can serve every loop.
        return await DefaultResolver().resolve(host, port, family)

    async def close(self) -> None:
        if self._resolver is not None:
            await self._resolver.close()


@dataclass(frozen=True, slots=True)
class Route:
    """Where one request goes: the URL to connect to, and the name it stands for.

    ``url`` has the checked address in place of the host name (the connection is
    pinned to it); ``host_header`` and ``server_hostname`` keep the name for HTTP and
    TLS. For a URL whose host is an IP address, ``url`` is the URL itself.
    """

    url: URL
    host_header: str | None
    server_hostname: str | None


class Egress:
    """The egress policy in use: the allow-list and the checking resolver."""

    def __init__(self, policy: EgressPolicy, resolver: EgressResolver | None = None) -> None:
        self.policy = policy
        self.resolver = resolver or EgressResolver(policy)

    async def routes(self, url: str) -> list[Route]:
        """The routes ``url`` may take, in the resolver's order (first choice first).

        Raises :class:`EgressRefused` for a destination the policy refuses, ``OSError``
        when the host does not resolve.
        """
        target = URL(url)
        host = target.raw_host
        if not target.is_absolute() or not host:
            raise EgressRefused("a URL without a host")
        scheme, port = target.scheme, target.port
        if scheme not in ("https", "http"):
            raise EgressRefused(f"{host}: scheme {scheme!r} (only https, or http to egress_allow)")
        results = await self.resolver.resolve(host, port or 0)
        if scheme == "http" and not (
            self.policy.host_listed(host, port)
            or all(
                (address := _address(result["host"])) is not None
                and self.policy.address_listed(address, port)
                for result in results
            )
        ):
            raise EgressRefused(f"{host}: plain http is allowed only to egress_allow")
        if _address(host) is not None:
            return [Route(target, None, None)]
        host_header = target.host_port_subcomponent
        tls_name = host if scheme == "https" else None
        return [
            Route(target.with_host(result["host"].partition("%")[0]), host_header, tls_name)
            for result in results
        ]


@lru_cache(maxsize=32)
def egress_for(allow: tuple[str, ...]) -> Egress:
    """The one :class:`Egress` of an allow-list (shared, so its DNS cache is too)."""
    return Egress(EgressPolicy.from_entries(allow))

