"""Which registered site a hit counts for (CONTRACT 6): `www.` and the bare name are one site unless both exist."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from medama_core.hostnames import HOSTNAME_MAX, InvalidHostname, normalise, site_for
from tests.api.test_events import hit, load, prepare, rows
from tests.helpers import Client, LiveServer, live_server


@pytest.mark.parametrize(
    ("host", "sites", "expected"),
    [
        ("example.com", {"example.com"}, "example.com"),
        ("www.example.com", {"example.com"}, "example.com"),
        ("example.com", {"www.example.com"}, "www.example.com"),
        ("www.example.com", {"example.com", "www.example.com"}, "www.example.com"),
        ("example.com", {"example.com", "www.example.com"}, "example.com"),
        ("blog.example.com", {"example.com"}, None),
        ("example.com", {"blog.example.com"}, None),
        ("www.www.example.com", {"example.com"}, None),
        ("www.example.com", {"www.www.example.com"}, None),  # one www. is added or removed, no more
        ("wwwexample.com", {"example.com"}, None),
    ],
)
def test_site_for(host: str, sites: set[str], expected: str | None) -> None:
    assert site_for(host, sites) == expected


@given(st.text(max_size=40), st.sets(st.text(max_size=40), max_size=5))
def test_site_for_answers_a_registered_site_the_host_or_its_www_twin(host: str, sites: set[str]) -> None:
    found = site_for(host, sites)
    assert found is None or found in sites
    assert found is None or found == host or {found, host} == {f"www.{found.removeprefix('www.')}", host}
    if host in sites:
        assert found == host


@given(st.text(max_size=300))
def test_normalise_any_text_is_a_lower_case_host_or_invalid(text: str) -> None:
    try:
        hostname = normalise(text)
    except InvalidHostname:
        return
    assert hostname == text.lower() and 1 <= len(hostname) <= HOSTNAME_MAX


@pytest.fixture
def apex(tmp_path: Path) -> Iterator[LiveServer]:
    """Registered: example.com and www.shop.example (each only under one name), and both names of both.example."""
    prepare(tmp_path, ("example.com", "www.shop.example", "both.example", "www.both.example"))
    with live_server(tmp_path) as running:
        yield running


@pytest.fixture
def c(apex: LiveServer) -> Iterator[Client]:
    client = apex.client()
    yield client
    client.close()


def test_a_www_page_counts_for_the_bare_site_and_the_other_way_round(c: Client, apex: LiveServer) -> None:
    assert hit(c, load("w1", u="https://www.example.com/pricing")) == 204
    assert hit(c, load("w2", u="https://WWW.Example.com:443/")) == 204
    assert hit(c, load("w3", u="https://shop.example/cart")) == 204
    assert rows(apex, "SELECT bid, hostname, pathname FROM views ORDER BY bid") == [
        ("w1", "example.com", "/pricing"),
        ("w2", "example.com", "/"),
        ("w3", "www.shop.example", "/cart"),
    ]


def test_other_subdomains_stay_separate(c: Client, apex: LiveServer) -> None:
    assert hit(c, load("s1", u="https://blog.example.com/")) == 404
    assert hit(c, load("s2", u="https://www.www.example.com/")) == 404
    assert hit(c, load("s3", u="https://cdn.shop.example/")) == 404
    assert rows(apex, "SELECT count(*) FROM views") == [(0,)]


def test_when_both_names_are_registered_each_keeps_its_own(c: Client, apex: LiveServer) -> None:
    assert hit(c, load("b1", u="https://both.example/")) == 204
    assert hit(c, load("b2", u="https://www.both.example/")) == 204
    assert rows(apex, "SELECT bid, hostname FROM views ORDER BY bid") == [
        ("b1", "both.example"),
        ("b2", "www.both.example"),
    ]


def test_custom_events_match_the_same_way(c: Client, apex: LiveServer) -> None:
    assert hit(c, {"e": "custom", "g": "www.example.com", "d": {"a": "1"}}) == 204
    assert hit(c, {"e": "custom", "g": "shop.example", "d": {"a": "2"}}) == 204
    assert hit(c, {"e": "custom", "g": "blog.example.com", "d": {"a": "3"}}) == 404
    assert rows(apex, "SELECT group_name, value FROM events ORDER BY value") == [
        ("example.com", "1"),
        ("www.shop.example", "2"),
    ]


def test_a_referral_from_the_sites_other_name_is_a_direct_visit(c: Client, apex: LiveServer) -> None:
    assert hit(c, load("r1", u="https://www.example.com/", r="https://example.com/")) == 204
    assert hit(c, load("r2", u="https://example.com/", r="https://www.example.com/a")) == 204
    assert hit(c, load("r3", u="https://example.com/", r="https://blog.example.com/")) == 204
    # Two registered sites are two sites: a link between them is a referral.
    assert hit(c, load("r4", u="https://both.example/", r="https://www.both.example/")) == 204
    assert rows(apex, "SELECT bid, referrer_host FROM views ORDER BY bid") == [
        ("r1", ""),
        ("r2", ""),
        ("r3", "blog.example.com"),
        ("r4", "www.both.example"),
    ]
