"""The ingest pipeline (ingest/pipeline.py): a parsed hit and its headers to rows, or a drop, or a 4xx."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from medama_core.hostnames import site_for
from medama_core.ingest import geo, pipeline, referrer, useragent
from medama_core.ingest.hit import InvalidHit, LoadHit, parse_hit
from medama_core.ingest.internal import internal_path
from medama_core.ingest.language import UNKNOWN_LANGUAGE
from medama_core.ops import Duration, NewEvents, NewView

SITES = frozenset({"example.com", "www.shop.example.net"})
NOW_MS = 1_733_000_000_000
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
)
LOAD = {
    "e": "load",
    "b": "lx1abc2def",
    "u": "https://example.com/blog/?utm_source=news",
    "r": "https://www.google.com/",
    "p": True,
    "q": False,
    "t": "Europe/London",
}


def rows(body: dict[str, object], ua: str = CHROME, lang: str = "en-GB,en;q=0.9") -> pipeline.Rows:
    return pipeline.rows_for(parse_hit(json.dumps(body).encode()), ua, lang, SITES, NOW_MS)


def view_of(body: dict[str, object], ua: str = CHROME, lang: str = "en-GB,en;q=0.9") -> tuple[str, NewView]:
    """The site and the `NewView` of a load."""
    site, op = rows(body, ua, lang)
    assert type(op) is NewView
    return site, op


def test_load_becomes_one_view_row_in_column_order() -> None:
    site, got = view_of(LOAD)
    assert site == "example.com"
    assert got.view == (
        "lx1abc2def",
        "example.com",
        "/blog",
        True,
        False,
        "www.google.com",
        "Google",
        "United Kingdom",
        "English",
        "British English",
        "Chrome",
        "Windows",
        "Desktop",
        "news",
        "",
        "",
        None,
        NOW_MS,
    )
    assert (got.events, got.referrer_path) == ((), "")


def test_www_twin_counts_for_the_registered_site_and_internal_referrer_gives_its_path() -> None:
    site, got = view_of({**LOAD, "u": "https://shop.example.net/cart", "r": "https://www.shop.example.net/a/"})
    assert site == "www.shop.example.net"
    assert got.view[5:7] == ("", "")  # a self-referral is no referrer
    assert got.referrer_path == "/a"


def test_custom_event_and_unload() -> None:
    site, custom = rows({"e": "custom", "b": "lx1", "g": "example.com", "d": {"plan": "pro", "n": 3}})
    assert site == "example.com" and type(custom) is NewEvents
    assert [(r[0], r[2], r[3], r[4], r[5]) for r in custom.events] == [
        ("lx1", "example.com", "plan", "pro", NOW_MS),
        ("lx1", "example.com", "n", "3", NOW_MS),
    ]
    assert len({r[1] for r in custom.events}) == 1  # one batch id for the event
    unload = rows({"e": "unload", "b": "lx1", "m": 1500})
    assert unload == ("", Duration("lx1", 1500))


@pytest.mark.parametrize(
    ("body", "ua", "lang", "reason"),
    [
        (LOAD, "Googlebot/2.1 (+http://www.google.com/bot.html)", "en", pipeline.BOT),
        ({**LOAD, "t": "Nowhere/Void"}, "Mozilla/5.0 (X11)", "", pipeline.TOO_MANY_UNKNOWNS),
    ],
)
def test_drops_name_their_reason_and_site(body: dict[str, object], ua: str, lang: str, reason: str) -> None:
    with pytest.raises(pipeline.Dropped) as info:
        rows(body, ua, lang)
    assert (info.value.reason, info.value.hostname) == (reason, "example.com")


def test_unknown_site_names_the_host() -> None:
    with pytest.raises(pipeline.UnknownSite) as info:
        rows({**LOAD, "u": "https://elsewhere.org/"})
    assert info.value.host == "elsewhere.org"


def test_named_caches_are_bounded_and_count_hits() -> None:
    rows(LOAD)
    rows(LOAD)
    info = pipeline.cache_info()
    assert set(info) == {"user_agent", "page_url", "referrer", "accept_language", "visitor", "arrival"}
    assert all(entry.maxsize is not None for entry in info.values())
    # A load looks its visitor and its arrival up once each: the second one finds both.
    assert info["visitor"].hits >= 1 and info["arrival"].hits >= 1


def test_cached_enrichment_follows_the_registered_sites() -> None:
    """The same raw inputs, looked up again after the websites changed, get the answer for the new sites: the
    caches keep nothing that depends on them (the site check, a self-referral by the other name, an internal
    referrer's path)."""
    body = {**LOAD, "u": "https://twin.example/a", "r": "https://www.twin.example/b/"}
    hit = parse_hit(json.dumps(body).encode())
    with pytest.raises(pipeline.UnknownSite):
        pipeline.rows_for(hit, CHROME, "en", {"example.com"}, NOW_MS)
    alone = pipeline.rows_for(hit, CHROME, "en", {"twin.example"}, NOW_MS)[1]
    assert type(alone) is NewView and alone.view[5] == "" and alone.referrer_path == "/b"  # its www twin: internal
    both = pipeline.rows_for(hit, CHROME, "en", {"twin.example", "www.twin.example"}, NOW_MS)[1]
    assert type(both) is NewView and both.view[5] == "www.twin.example" and both.referrer_path == ""  # another site
    assert pipeline.rows_for(hit, CHROME, "en", {"twin.example"}, NOW_MS)[1] == alone
    assert pipeline.cache_info()["arrival"].hits >= 3


def _old_page_view(hit: LoadHit, ua: str, lang: str, sites: frozenset[str], now_ms: int) -> pipeline.Rows:
    """The load enrichment as it was before the visitor and arrival caches (main at 78c59a4), from the same
    per-input caches: the judge of `test_loads_enrich_as_before`."""
    parts = pipeline.page(hit.url, hash_mode=hit.hash_mode)
    hostname = site_for(parts.hostname, sites)
    if hostname is None:
        raise pipeline.UnknownSite(parts.hostname)
    agent, unknowns = pipeline.agent_of(ua)
    if agent.is_bot:
        raise pipeline.Dropped(pipeline.BOT, hostname)
    country = geo.country_for(hit.timezone)
    if country is None:
        unknowns += 1
        country = useragent.UNKNOWN
    language = pipeline.language(lang)
    if language is None:
        unknowns += 1
        language = UNKNOWN_LANGUAGE
    if unknowns >= pipeline.MAX_UNKNOWNS:
        raise pipeline.Dropped(pipeline.TOO_MANY_UNKNOWNS, hostname)
    try:
        source = pipeline.classify_referrer(hit.referrer, parts.hostname)
    except referrer.InvalidReferrer as exc:
        raise InvalidHit(str(exc)) from None
    if isinstance(source, referrer.Spam):
        raise pipeline.Dropped(pipeline.SPAM_REFERRER, hostname)
    if source.host and site_for(source.host, sites) == hostname:
        source = referrer.DIRECT
    view: tuple[object, ...] = (
        hit.bid,
        hostname,
        parts.pathname,
        hit.unique_user,
        hit.unique_page,
        source.host,
        source.group,
        country,
    )
    view += (language.base, language.dialect, agent.browser, agent.os, agent.device, parts.utm_source)
    view += (parts.utm_medium, parts.utm_campaign, None, now_ms)
    came_from = ""
    if hit.referrer and not source.host:
        came_from = internal_path(hit.referrer, lambda host: site_for(host, sites) == hostname, hash_mode=hit.hash_mode)
    return hostname, NewView(view, (), came_from)


def _outcome(enrich: Callable[[LoadHit, str, str, frozenset[str], int], pipeline.Rows], *args: Any) -> object:
    """What an enrichment of `args` gives: its rows, or its exception's type and what it carries."""
    try:
        return enrich(*args)
    except (pipeline.Dropped, pipeline.UnknownSite, InvalidHit) as exc:
        return type(exc), exc.args, getattr(exc, "reason", None), getattr(exc, "hostname", None)


TWIN_SITES = (
    frozenset({"example.com"}),
    frozenset({"www.example.com"}),
    frozenset({"example.com", "www.example.com"}),
    frozenset({"shop.example.net", "example.com"}),
)


@given(
    url=st.sampled_from(["https://example.com/a", "https://www.example.com/b/#/x", "https://shop.example.net/c"])
    | st.text(max_size=30).map(lambda path: "https://example.com/" + path),
    ref=st.sampled_from(
        [
            "",
            "https://www.google.com/",
            "https://example.com/p/",
            "https://www.example.com/q",
            "https://shop.example.net/",
            "http://a.com:x/",
            "https://b.org/%zz",
            "https://user@example.com/u",
            "https://semalt.com/",
            "https://127.0.0.1/",
        ]
    )
    | st.text(max_size=30),
    tz=st.sampled_from(["Europe/Paris", "", "Mars/Base"]),
    ua=st.sampled_from([CHROME, "Mozilla/5.0 (X11)", "", "Googlebot/2.1 (+http://www.google.com/bot.html)"]),
    lang=st.sampled_from(["en-GB,en;q=0.9", "", "de", "x" * 3000]),
    hash_mode=st.booleans(),
)
def test_loads_enrich_as_before(url: str, ref: str, tz: str, ua: str, lang: str, hash_mode: bool) -> None:
    """Every load gives the same rows, drop or error as the enrichment without the visitor and arrival caches,
    for each set of sites in turn (the same raw inputs, so the later rounds are answered from the caches)."""
    hit = LoadHit("lx1", url, ref, True, False, tz, {}, hash_mode)
    for sites in TWIN_SITES + TWIN_SITES:
        args = (hit, ua, lang, sites, NOW_MS)
        assert _outcome(pipeline.rows_for, *args) == _outcome(_old_page_view, *args)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=8,
)
urls = st.sampled_from(
    ["https://example.com/x?utm_medium=a", "http://www.example.com/", "https://shop.example.net/#/a", "ftp://x", ""]
) | st.text(max_size=40)


@given(
    body=st.dictionaries(
        st.sampled_from(["e", "b", "u", "r", "p", "q", "t", "d", "h", "m", "g"]),
        json_values | urls | st.sampled_from(["load", "unload", "custom", "example.com", "Europe/Paris"]),
        max_size=11,
    ),
    ua=st.text(max_size=200) | st.sampled_from([CHROME, "", "bot"]),
    lang=st.text(max_size=60) | st.sampled_from(["en-GB,en;q=0.9", "", "*"]),
)
def test_any_payload_and_headers_give_rows_a_drop_or_a_4xx(body: dict[str, object], ua: str, lang: str) -> None:
    """The pipeline's invariant: rows, a silent drop, an unknown site (404) or a 4xx; never another error."""
    try:
        hit = parse_hit(json.dumps(body).encode())
        got = pipeline.rows_for(hit, ua, lang, SITES, NOW_MS)
    except InvalidHit as exc:
        assert 400 <= exc.status < 500
        return
    except (pipeline.Dropped, pipeline.UnknownSite):
        return
    site, op = got
    assert type(op) in (NewView, NewEvents, Duration)
    if type(op) is NewView:
        assert site in SITES and op.view[1] == site and len(op.view) == 18
    else:
        assert site in SITES if type(op) is NewEvents else site == ""


referrers = st.sampled_from(
    ["", "https://www.google.com/", "http://a.com:x/", "https://b.org/%zz", "https://example.com/p"]
)


@given(
    override=st.fixed_dictionaries(
        {},
        optional={
            "u": urls,
            "r": referrers | st.text(max_size=40),
            "t": st.sampled_from(["Europe/Paris", "", "Mars/Base"]) | st.text(max_size=10),
            "d": st.dictionaries(st.text(max_size=8), st.text(max_size=8) | st.integers(), max_size=3),
            "h": st.booleans(),
        },
    ),
    ua=st.sampled_from([CHROME, "Mozilla/5.0 (X11)", ""]) | st.text(max_size=80),
    lang=st.sampled_from(["en-GB,en;q=0.9", "", "de"]) | st.text(max_size=30),
)
def test_any_load_and_headers_give_rows_a_drop_or_a_4xx(override: dict[str, object], ua: str, lang: str) -> None:
    """The same invariant for loads that get past the parser: every enrichment step runs."""
    test_any_payload_and_headers_give_rows_a_drop_or_a_4xx.hypothesis.inner_test(  # type: ignore[attr-defined]
        body={**LOAD, **override}, ua=ua, lang=lang
    )
