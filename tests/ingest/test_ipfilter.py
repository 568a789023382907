"""IP blocking (manual list and presets) and client IP extraction behind proxies."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from medama_core.ingest import ipfilter
from medama_core.ingest.ipfilter import IPFilter, Network, client_ip, network_key, parse_ip_or_cidr


@pytest.mark.parametrize(
    ("text", "normalised"),
    [
        ("1.2.3.4", "1.2.3.4"),
        (" 1.2.3.4 ", "1.2.3.4"),
        ("1.2.3.4/32", "1.2.3.4"),
        ("10.1.2.3/8", "10.0.0.0/8"),
        ("2001:DB8::1", "2001:db8::1"),
        ("2001:db8::/32", "2001:db8::/32"),
        ("::ffff:1.2.3.4", "1.2.3.4"),
    ],
    ids=["v4", "spaces", "v4-host-cidr", "v4-host-bits", "v6-upper", "v6-cidr", "v4-mapped"],
)
def test_parse_ip_or_cidr(text: str, normalised: str) -> None:
    assert parse_ip_or_cidr(text) == normalised


@pytest.mark.parametrize(
    "text",
    ["", "1.2.3", "1.2.3.4/33", "example.com", "1.2.3.4/8/8", "fe80::1%eth0", "::1/129", "9" * 100],
    ids=["empty", "short", "prefix-too-long", "hostname", "two-slashes", "zone-id", "v6-prefix", "too-long"],
)
def test_parse_ip_or_cidr_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="invalid IP address or CIDR"):
        parse_ip_or_cidr(text)


MANUAL = IPFilter(["203.0.113.7", "198.51.100.0/24", "2001:db8:1::/48", "2001:db8::5"])


@pytest.mark.parametrize(
    ("ip", "blocked"),
    [
        ("203.0.113.7", True),
        ("203.0.113.8", False),
        ("198.51.100.0", True),
        ("198.51.100.255", True),
        ("198.51.101.0", False),
        ("198.51.99.255", False),
        ("2001:db8:1:ffff::1", True),
        ("2001:db8:2::1", False),
        ("2001:db8::5", True),
        ("::ffff:203.0.113.7", True),
        ("127.0.0.1", False),
        ("not an ip", False),
    ],
    ids=lambda value: str(value),
)
def test_manual_list(ip: str, blocked: bool) -> None:
    assert MANUAL.blocked(ip) is blocked


def test_manual_list_rejects_bad_entry() -> None:
    with pytest.raises(ValueError, match="'10.0.0.300'"):
        IPFilter(["10.0.0.1", "10.0.0.300"])


@pytest.mark.parametrize("ip", ["127.0.0.1", "10.1.2.3", "192.168.1.10", "172.16.0.1", "::1"])
def test_private_and_loopback_not_blocked_with_presets_off(ip: str) -> None:
    assert not IPFilter().blocked(ip)
    assert not IPFilter(tor=True).blocked(ip)


@pytest.mark.parametrize("ip", ["127.0.0.1", "10.1.2.3", "192.168.1.10", "172.16.0.1", "100.64.0.1", "::1"])
def test_abusive_preset_never_blocks_local_clients(ip: str) -> None:
    """FireHOL level 1 lists the bogons; we cut the local ranges out so local installs keep counting."""
    assert not IPFilter(abusive=True).blocked(ip)
    assert IPFilter([ip], abusive=True).blocked(ip)  # the manual list still can


@pytest.mark.parametrize("ip", ["0.0.0.1", "224.0.0.1", "240.0.0.1"])
def test_abusive_preset_keeps_other_bogons(ip: str) -> None:
    assert IPFilter(abusive=True).blocked(ip)


def test_abusive_preset_toggle() -> None:
    listed = "1.10.16.1"  # inside 1.10.16.0/20 in the FireHOL snapshot
    assert IPFilter(abusive=True).blocked(listed)
    assert not IPFilter(abusive=False).blocked(listed)
    assert not IPFilter(abusive=True).blocked("8.8.8.8")


def test_tor_preset_toggle() -> None:
    exit_node = "171.25.193.25"  # first line of the Tor snapshot
    assert IPFilter(tor=True).blocked(exit_node)
    assert not IPFilter().blocked(exit_node)
    assert not IPFilter(tor=True).blocked("171.25.193.26")


PROXIES: list[Network] = [ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("fd00::/8")]


@pytest.mark.parametrize(
    ("peer", "headers", "expected"),
    [
        ("198.51.100.9", {}, "198.51.100.9"),
        ("198.51.100.9:5555", {}, "198.51.100.9"),
        ("[2001:db8::9]:443", {}, "2001:db8::9"),
        ("2001:db8::9", {}, "2001:db8::9"),
        ("::ffff:198.51.100.9", {}, "198.51.100.9"),
        # An untrusted peer cannot choose its address with headers.
        ("198.51.100.9", {"x-forwarded-for": "1.1.1.1"}, "198.51.100.9"),
        ("198.51.100.9", {"x-real-ip": "1.1.1.1", "cf-connecting-ip": "1.1.1.1"}, "198.51.100.9"),
        # A trusted proxy's headers are honoured.
        ("10.0.0.2", {"x-forwarded-for": "203.0.113.5"}, "203.0.113.5"),
        ("10.0.0.2", {"x-forwarded-for": "6.6.6.6, 203.0.113.5"}, "203.0.113.5"),
        ("10.0.0.2", {"x-forwarded-for": "6.6.6.6, 203.0.113.5, 10.0.0.3"}, "203.0.113.5"),
        ("10.0.0.2", {"x-forwarded-for": "10.0.0.4, 10.0.0.3"}, "10.0.0.4"),
        ("10.0.0.2", {"x-forwarded-for": "203.0.113.5:4711"}, "203.0.113.5"),
        ("10.0.0.2", {"x-forwarded-for": "garbage, 10.0.0.3", "x-real-ip": "203.0.113.6"}, "203.0.113.6"),
        ("10.0.0.2", {"cf-connecting-ip": "203.0.113.7"}, "203.0.113.7"),
        ("10.0.0.2", {"x-real-ip": "nope", "x-client-ip": "203.0.113.8"}, "203.0.113.8"),
        ("10.0.0.2", {"fastly-client-ip": "2001:db8::8"}, "2001:db8::8"),
        ("10.0.0.2", {}, "10.0.0.2"),
        ("[fd00::1]:80", {"x-forwarded-for": "2001:db8::7"}, "2001:db8::7"),
        ("not-an-ip", {"x-forwarded-for": "203.0.113.5"}, None),
        ("", {}, None),
    ],
    ids=[
        "peer", "peer-port", "peer-v6-port", "peer-v6", "peer-v4-mapped", "spoofed-xff", "spoofed-other",
        "xff", "xff-client-supplied-left", "xff-rightmost-untrusted", "xff-all-trusted", "xff-port",
        "xff-garbage-falls-through", "cf", "real-ip-bad-then-client-ip", "fastly-v6", "trusted-no-headers",
        "v6-proxy", "bad-peer", "empty-peer",
    ],
)  # fmt: skip
def test_client_ip(peer: str, headers: dict[str, str], expected: str | None) -> None:
    assert client_ip(peer, headers, PROXIES) == expected


def test_client_ip_without_trusted_proxies_ignores_headers() -> None:
    assert client_ip("10.0.0.2", {"x-forwarded-for": "203.0.113.5"}, []) == "10.0.0.2"


@pytest.mark.parametrize(
    ("ip", "key"),
    [
        ("203.0.113.77", "203.0.113.0/24"),
        ("2001:db8:aaaa:bbbb::1", "2001:db8:aaaa::/48"),
        ("::ffff:203.0.113.77", "203.0.113.0/24"),
    ],
    ids=["v4", "v6", "v4-mapped"],
)
def test_network_key(ip: str, key: str) -> None:
    assert network_key(ip) == key


def test_network_key_rejects_non_address() -> None:
    with pytest.raises(ValueError):
        network_key("example.com")


@given(st.text(max_size=80))
def test_parse_ip_or_cidr_returns_or_raises_value_error(text: str) -> None:
    try:
        normalised = parse_ip_or_cidr(text)
    except ValueError:
        return
    assert parse_ip_or_cidr(normalised) == normalised


@given(st.ip_addresses())
def test_blocked_matches_a_linear_scan(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> None:
    entries = ["0.0.0.0/8", "100.64.0.0/10", "100.64.0.0/11", "203.0.113.0/25", "2001:db8::/33", "::1"]
    networks = [ipaddress.ip_network(entry) for entry in entries]
    seen = address
    # An IPv4-mapped IPv6 address (::ffff:a.b.c.d) is the IPv4 client it carries, as everywhere in ingestion.
    if isinstance(seen, ipaddress.IPv6Address) and seen.ipv4_mapped is not None:
        seen = seen.ipv4_mapped
    expected = any(seen.version == n.version and seen in n for n in networks)
    assert IPFilter(entries).blocked(str(address)) is expected


@given(st.text(max_size=80), st.dictionaries(st.sampled_from(["x-forwarded-for", "x-real-ip"]), st.text(max_size=80)))
def test_client_ip_never_raises(peer: str, headers: dict[str, str]) -> None:
    result = client_ip(peer, headers, PROXIES)
    assert result is None or ipaddress.ip_address(result)


def test_trusted_networks_expand_loopback_once_for_every_caller() -> None:
    """-trustedproxies is read in one place (ingestion, login throttling, cookies and connection caps use it)."""
    found = ipfilter.trusted_networks(("loopback", "203.0.113.7/24", "2001:db8::1"))
    assert [str(net) for net in found] == ["127.0.0.0/8", "::1/128", "203.0.113.0/24", "2001:db8::1/128"]
    assert ipfilter.trusted_networks(()) == ()
    assert ipfilter.peer_trusted("::1", found) and ipfilter.peer_trusted("127.8.9.10", found)
    assert not ipfilter.peer_trusted("198.51.100.1", found)
