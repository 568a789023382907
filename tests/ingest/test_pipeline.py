"""The ingest pipeline (ingest/pipeline.py): a parsed hit and its headers to rows, or a drop, or a 4xx."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from medama_core.ingest import pipeline
from medama_core.ingest.hit import InvalidHit, parse_hit

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


def test_load_becomes_one_view_row_in_column_order() -> None:
    got = rows(LOAD)
    assert got.site == "example.com"
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
    assert (got.events, got.came_from, got.duration) == ((), "", None)


def test_www_twin_counts_for_the_registered_site_and_internal_referrer_gives_its_path() -> None:
    got = rows({**LOAD, "u": "https://shop.example.net/cart", "r": "https://www.shop.example.net/a/"})
    assert got.site == "www.shop.example.net"
    assert got.view is not None and got.view[5:7] == ("", "")  # a self-referral is no referrer
    assert got.came_from == "/a"


def test_custom_event_and_unload() -> None:
    custom = rows({"e": "custom", "b": "lx1", "g": "example.com", "d": {"plan": "pro", "n": 3}})
    assert custom.site == "example.com"
    assert [(r[0], r[2], r[3], r[4], r[5]) for r in custom.events] == [
        ("lx1", "example.com", "plan", "pro", NOW_MS),
        ("lx1", "example.com", "n", "3", NOW_MS),
    ]
    assert len({r[1] for r in custom.events}) == 1  # one batch id for the event
    unload = rows({"e": "unload", "b": "lx1", "m": 1500})
    assert unload == pipeline.Rows("", duration=("lx1", 1500))


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
    assert set(info) == {"user_agent", "page_url", "referrer", "accept_language"}
    assert all(entry.maxsize is not None and entry.hits >= 1 for entry in info.values())


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
    assert isinstance(got, pipeline.Rows)
    assert (got.view is not None) + (got.duration is not None) + bool(got.events) >= 1 or got.site
    if got.view is not None:
        assert got.site in SITES and got.view[1] == got.site and len(got.view) == 18


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
