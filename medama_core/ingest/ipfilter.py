"""Find the client IP behind trusted proxies and decide whether it is blocked."""

from __future__ import annotations

import bisect
import functools
import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Final

__all__ = ["IPFilter", "LOOPBACK", "Network", "client_ip", "network_key", "parse_ip_or_cidr", "trusted_networks"]

# Block lists are kept as sorted, merged integer ranges per address family, so a
# lookup is one bisect whatever the number of entries (FireHOL level 1 alone has
# about 4,500 networks). Three sources feed them (spec §3.3):
#
# - the manual list: exact addresses and CIDRs, IPv4 and IPv6;
# - the "abusive" preset, FireHOL level 1. It lists the bogon ranges too
#   (0/8, 10/8, 100.64/10, 127/8, 169.254/16, 172.16/12, 192.168/16, 224/3).
#   Upstream blocks loopback and private clients with it, which silently drops
#   every hit of a local install or one behind a proxy; we take the local
#   ranges (LOCAL_NETWORKS) out of the preset, since no public attacker can
#   reach us from them. Only the manual list can block a local address;
# - the Tor preset, the Tor Project's list of exit addresses (IPv4 only).
#
# The client IP is the TCP peer unless the peer is inside a trusted proxy
# network; only then are forwarding headers read (upstream trusts them from
# anyone, so a spoofed X-Forwarded-For slips past every block, spec §10).

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# See data/README.md for versions and sources.
# What "loopback" stands for in -trustedproxies: a proxy on the same machine, over IPv4 or IPv6.
LOOPBACK: Final[tuple[Network, ...]] = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))

ABUSIVE_FILE: Final = "firehol_level1.txt"
TOR_FILE: Final = "tor_exit_nodes.txt"

# Longest valid entry: a full IPv6 address with an IPv4 tail (45 characters)
# plus "/128"; anything longer is not an address.
MAX_ENTRY_CHARS: Final = 64

# X-Forwarded-For lists one address per proxy hop; no real chain comes close to
# this, and it bounds the walk over a header an attacker may have stuffed.
MAX_FORWARDED_HOPS: Final = 32

# Single-address forwarding headers, read in this order after X-Forwarded-For
# (upstream core/iputils/utils.go); each is set by one proxy or CDN.
SINGLE_IP_HEADERS: Final = ("cf-connecting-ip", "x-real-ip", "x-client-ip", "fastly-client-ip")

# Rate limits apply per network rather than per address: an IPv4 /24 is the
# smallest block routed on the internet, and an IPv6 /48 is the usual
# allocation to one site (RFC 6177), so one client cannot dodge by rotating.
IPV4_KEY_PREFIX: Final = 24
IPV6_KEY_PREFIX: Final = 48


# Loopback, private (RFC 1918, RFC 6598 shared, RFC 4193 unique local) and link-local ranges:
# a hit from one of them comes from the operator's own network or proxy, never from the internet.
LOCAL_NETWORKS: Final = tuple(
    ipaddress.ip_network(n)
    for n in (
        "127.0.0.0/8",
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",
        "169.254.0.0/16",
        "::1/128",
        "fc00::/7",
        "fe80::/10",
    )
)


def _address(text: str) -> Address:
    """Parse an address, turning an IPv4-mapped IPv6 one (dual-stack sockets) into IPv4."""
    address = ipaddress.ip_address(text)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _network(text: str) -> Network:
    if "/" in text:
        return ipaddress.ip_network(text, strict=False)
    return ipaddress.ip_network(_address(text))


def parse_ip_or_cidr(text: str) -> str:
    """Validate and normalise one manual block-list entry.

    "10.1.2.3/8" becomes "10.0.0.0/8", "2001:DB8::1" becomes "2001:db8::1"
    and "1.2.3.4/32" becomes "1.2.3.4".

    Raises:
        ValueError: naming the entry, when it is neither an address nor a CIDR.
    """
    entry = text.strip()
    try:
        if len(entry) > MAX_ENTRY_CHARS or "%" in entry:
            raise ValueError(entry)
        network = _network(entry)
    except ValueError:
        raise ValueError(f"invalid IP address or CIDR: {text[:MAX_ENTRY_CHARS]!r}") from None
    if network.prefixlen == network.max_prefixlen:
        return str(network.network_address)
    return str(network)


@dataclass(frozen=True, slots=True)
class _Ranges:
    """Disjoint, sorted [start, end] integer ranges of one address family."""

    starts: tuple[int, ...]
    ends: tuple[int, ...]

    @classmethod
    def of(cls, spans: Iterable[tuple[int, int]]) -> _Ranges:
        """From inclusive (first, last) address integers, in any order, overlapping or not."""
        starts: list[int] = []
        ends: list[int] = []
        for start, end in sorted(spans):
            if ends and start <= ends[-1] + 1:
                ends[-1] = max(ends[-1], end)
            else:
                starts.append(start)
                ends.append(end)
        return cls(tuple(starts), tuple(ends))

    def __contains__(self, value: int) -> bool:
        i = bisect.bisect_right(self.starts, value) - 1
        return i >= 0 and value <= self.ends[i]


def _read_list(name: str) -> tuple[Network, ...]:
    """One address or CIDR a line; "#" starts a comment."""
    text = resources.files("medama_core.data").joinpath(name).read_text(encoding="utf-8")
    lines = (line.split("#", 1)[0].strip() for line in text.splitlines())
    return tuple(_network(line) for line in lines if line)


Span = tuple[int, int, int]  # IP version, first and last address as integers


def _span(network: Network) -> Span:
    return network.version, int(network.network_address), int(network.broadcast_address)


@functools.cache
def _preset(name: str) -> tuple[Span, ...]:
    """A preset list as integer spans: ~140 bytes an entry where ipaddress objects took ~600."""
    return tuple(_span(network) for network in _without_local(_read_list(name)))


def _without_local(networks: Iterable[Network]) -> list[Network]:
    """The networks with every LOCAL_NETWORKS range cut out of them."""
    result: list[Network] = []
    pending = list(networks)
    while pending:
        network = pending.pop()
        for local in LOCAL_NETWORKS:
            if local.version != network.version or not network.overlaps(local):
                continue
            if network.subnet_of(local):  # type: ignore[arg-type]
                break
            pending.extend(network.address_exclude(local))  # type: ignore[arg-type]
            break
        else:
            result.append(network)
    return result


class IPFilter:
    """The active block list: manual entries plus the presets switched on."""

    def __init__(self, manual: Iterable[str] = (), *, abusive: bool = False, tor: bool = False) -> None:
        spans = [_span(_network(parse_ip_or_cidr(entry))) for entry in manual]
        if abusive:
            spans.extend(_preset(ABUSIVE_FILE))
        if tor:
            spans.extend(_preset(TOR_FILE))
        self._v4 = _Ranges.of((start, end) for version, start, end in spans if version == 4)
        self._v6 = _Ranges.of((start, end) for version, start, end in spans if version == 6)

    def blocked(self, ip: str) -> bool:
        """Whether `ip` is on the list; text that is not an address is never blocked."""
        try:
            address = _address(ip)
        except ValueError:
            return False
        return int(address) in (self._v4 if address.version == 4 else self._v6)


def _host_address(text: str) -> Address | None:
    """An address written as "ip", "ip:port", "[v6]" or "[v6]:port"; None if it is not one."""
    text = text.strip()
    if len(text) > MAX_ENTRY_CHARS:
        return None
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:  # IPv4 with a port; bare IPv6 has two or more colons
        text = text.partition(":")[0]
    try:
        return _address(text)
    except ValueError:
        return None


def _trusted(address: Address, proxies: Sequence[Network]) -> bool:
    return any(address.version == proxy.version and address in proxy for proxy in proxies)


def _forwarded_for(header: str, proxies: Sequence[Network]) -> Address | None:
    """Walk X-Forwarded-For from the right, skipping our own proxies.

    Each proxy appends the address it received from, so the rightmost entry
    that is not a trusted proxy is the client; entries to its left are
    whatever the client chose to send.
    """
    hops = header.split(",")[-MAX_FORWARDED_HOPS:]
    address: Address | None = None
    for hop in reversed(hops):
        address = _host_address(hop)
        if address is None:
            return None
        if not _trusted(address, proxies):
            return address
    return address  # every hop is one of ours: the leftmost is the client


def peer_trusted(peer: str, trusted_proxies: Sequence[Network]) -> bool:
    """Whether the TCP peer is one of the trusted proxies, whose forwarding headers count."""
    address = _host_address(peer)
    return address is not None and _trusted(address, trusted_proxies)


def client_ip(peer: str, headers: Mapping[str, str], trusted_proxies: Sequence[Network]) -> str | None:
    """The client address for blocking and rate limiting (spec §3.4), or None.

    `headers` has lower-case names. Forwarding headers count only when the TCP
    peer is inside `trusted_proxies`; otherwise the peer address is the answer.
    """
    peer_address = _host_address(peer)
    if peer_address is None:
        return None
    if not _trusted(peer_address, trusted_proxies):
        return str(peer_address)
    forwarded = headers.get("x-forwarded-for", "")
    address = _forwarded_for(forwarded, trusted_proxies) if forwarded.strip() else None
    for name in SINGLE_IP_HEADERS:
        if address is not None:
            break
        address = _host_address(headers.get(name, ""))
    return str(address or peer_address)


# Distinct client addresses whose rate-limit bucket is remembered: each visitor sends several
# requests per page view, and parsing an address costs ~20 µs; ~150 bytes an entry.
NETWORK_KEY_CACHE: Final = 4096


@functools.lru_cache(maxsize=NETWORK_KEY_CACHE)
def network_key(ip: str) -> str:
    """The rate-limiting bucket of an address: its /24 (IPv4) or /48 (IPv6) network.

    Raises:
        ValueError: `ip` is not an address.
    """
    address = _address(ip)
    prefix = IPV4_KEY_PREFIX if address.version == 4 else IPV6_KEY_PREFIX
    return str(ipaddress.ip_network((address, prefix), strict=False))


@functools.cache
def trusted_networks(entries: tuple[str, ...]) -> tuple[Network, ...]:
    """The -trustedproxies networks, with "loopback" expanded to LOOPBACK (config.py checked each entry)."""
    networks: list[Network] = []
    for entry in entries:
        networks.extend(LOOPBACK if entry == "loopback" else (ipaddress.ip_network(entry, strict=False),))
    return tuple(networks)
