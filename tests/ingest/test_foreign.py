"""The foreign trackers' parsers (Plausible, Umami), the visit-entry rule, and matching id-less follow-ups to views."""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medama_core.ingest import plausible, umami
from medama_core.ingest.foreign import generated_bid, is_visit_entry, site_url
from medama_core.ingest.hit import SNIFF_BYTES, HitTooLarge, InvalidHit
from medama_core.ingest.openviews import SLACK_MS, OpenViews, ViewKey


def body(**fields: object) -> bytes:
    return json.dumps(fields).encode()


# --- Plausible ---


def test_plausible_short_and_long_keys_read_alike() -> None:
    short = plausible.parse_event(body(n="pageview", u="https://a.com/x", d="A.com, b.com", r="https://t.co/", h=1))
    long = plausible.parse_event(
        body(name="pageview", url="https://a.com/x", domain="A.com, b.com", referrer="https://t.co/", hash_mode=1)
    )
    assert short == long
    assert short.domains == ("a.com", "b.com") and short.hash_mode and short.referrer == "https://t.co/"


def test_plausible_custom_event_props_revenue_and_old_string_props() -> None:
    event = plausible.parse_event(
        body(
            n="Purchase",
            u="https://a.com/",
            d="a.com",
            p='{"plan": "pro", "n": 2, "empty": ""}',
            **{"$": {"amount": 9.5, "currency": "EUR"}},
        )
    )
    assert dict(event.properties) == {"plan": "pro", "n": "2", "event": "Purchase", "revenue": "9.5", "currency": "EUR"}


def test_plausible_outbound_download_and_404_goals_take_our_trackers_properties() -> None:
    def parse(name: str, props: dict[str, str]) -> dict[str, str]:
        body = {"n": name, "u": "https://a.com/docs", "d": "a.com", "p": props}
        return dict(plausible.parse_event(json.dumps(body).encode()).properties)

    outbound = parse("Outbound Link: Click", {"url": "https://Other.example:8443/x?y=1#top"})
    assert outbound == {"outbound-link": "https://Other.example:8443/x?y=1", "outbound-host": "other.example"}
    download = parse("File Download", {"url": "https://a.com/files/Guide.PDF"})
    assert download == {"file-download": "https://a.com/files/Guide.PDF", "file-type": "pdf"}
    assert parse("File Download", {"url": "https://a.com/get"}) == {"file-download": "https://a.com/get"}
    assert parse("404", {"path": "/missing"}) == {"404": "/missing"}
    # Without the property they carry, or with an address that does not parse, they stay plain custom events.
    assert parse("Outbound Link: Click", {}) == {"event": "Outbound Link: Click"}
    assert parse("Outbound Link: Click", {"url": "http://[::1"}) == {
        "event": "Outbound Link: Click",
        "url": "http://[::1",
    }


@given(st.sampled_from(["Outbound Link: Click", "File Download", "404"]), st.text(max_size=600))
def test_plausible_goal_properties_from_any_text_are_bounded(name: str, text: str) -> None:
    found = plausible.insight_properties(name, {"url": text, "path": text})
    assert found is None or all(len(value) <= plausible.MAX_LINK_CHARS for value in found.values())


def test_plausible_engagement_keeps_its_milliseconds() -> None:
    event = plausible.parse_event(body(n="engagement", u="https://a.com/", d="a.com", e=3200, sd=55))
    assert (event.name, event.engaged_ms) == ("engagement", 3200)


@pytest.mark.parametrize(
    "fields",
    [
        {"u": "https://a.com/", "d": "a.com"},
        {"n": "pageview", "d": "a.com"},
        {"n": "pageview", "u": "https://a.com/", "d": " , "},
        {"n": "pageview", "u": "mailto:x@a.com", "d": "a.com"},
        {"n": "pageview", "u": "https://a.com/", "d": "a.com", "h": 2},
        {"n": "engagement", "u": "https://a.com/", "d": "a.com", "e": True},
        {"n": "x", "u": "https://a.com/", "d": "a.com", "$": {"amount": True, "currency": "EUR"}},
        {"n": "pageview", "u": "https://a.com/", "d": ",".join(f"s{i}.com" for i in range(9))},
    ],
)
def test_plausible_invalid(fields: dict[str, object]) -> None:
    with pytest.raises(InvalidHit):
        plausible.parse_event(body(**fields))


@settings(max_examples=300)
@given(st.binary(max_size=300))
def test_plausible_any_bytes_give_an_event_or_invalid_hit(data: bytes) -> None:
    try:
        plausible.parse_event(data)
    except InvalidHit:
        pass


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)
# Values that make valid events likely, mixed with anything.
VALUES = st.sampled_from(["pageview", "engagement", "Signup", "https://a.com/x", "a.com,b.com", "/p", ""]) | JSONISH
SLOW_OK = settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow], deadline=None)


@SLOW_OK
@given(st.dictionaries(st.sampled_from(["n", "u", "d", "r", "p", "h", "e", "$", "name", "url"]), VALUES))
def test_plausible_any_json_object_gives_an_event_or_invalid_hit(fields: dict[str, object]) -> None:
    try:
        event = plausible.parse_event(json.dumps(fields).encode())
    except InvalidHit:
        return
    assert event.page_url(event.domains[0]).startswith("https://")


# --- Umami ---


def test_umami_210_path_and_encoded_referrer() -> None:
    event = umami.parse_send(
        body(
            type="event",
            payload={"website": "id-1", "hostname": "A.com", "url": "/x%20y", "referrer": "https://b.com/%C3%A9"},
        )
    )
    assert (event.kind, event.hostname, event.page_url("a.com"), event.referrer) == (
        umami.VIEW,
        "a.com",
        "https://a.com/x%20y",
        "https://b.com/é",
    )


def test_umami_later_scripts_send_absolute_urls_and_ids_that_are_dropped() -> None:
    event = umami.parse_send(
        body(
            type="event",
            payload={
                "website": "w",
                "url": "https://www.a.com/p?q=1",
                "name": "Signup",
                "data": {"n": 1},
                "vid": "v1",
                "id": "u",
            },
        )
    )
    assert event.kind == umami.EVENT and dict(event.properties) == {"n": "1", "event": "Signup"}
    assert event.page_url("a.com") == "https://a.com/p?q=1"
    assert "v1" not in repr(event) and "'u'" not in repr(event)
    assert umami.parse_send(
        body(type="identify", payload={"id": "person", "data": {"email": "x"}})
    ) == umami.UmamiEvent(umami.IDENTIFY)


@settings(max_examples=300)
@given(st.binary(max_size=300))
def test_umami_any_bytes_give_an_event_or_invalid_hit(data: bytes) -> None:
    try:
        umami.parse_send(data)
    except InvalidHit:
        pass


@SLOW_OK
@given(
    st.sampled_from(["event", "identify", "x"]),
    st.dictionaries(st.sampled_from(["website", "hostname", "url", "referrer", "name", "data"]), VALUES),
)
def test_umami_any_payload_gives_an_event_or_invalid_hit(kind: str, payload: dict[str, object]) -> None:
    try:
        event = umami.parse_send(json.dumps({"type": kind, "payload": payload}).encode())
    except InvalidHit:
        return
    if event.kind != umami.IDENTIFY:
        assert event.page_url("a.com").startswith("https://a.com/")


# --- Attributing refused bodies and the property limits (our /api/event/hit's) ---

HOST_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789.-")


@settings(max_examples=300)
@given(st.binary(max_size=1200))
def test_the_sniffers_read_any_bytes_as_empty_or_a_host_name(data: bytes) -> None:
    for sniff in (plausible.sniff_domain, umami.sniff_hostname):
        host = sniff(data)
        assert len(host) <= 253 and set(host) <= HOST_CHARS


@settings(max_examples=200)
@given(st.from_regex(r"[A-Za-z0-9][A-Za-z0-9.-]{0,40}", fullmatch=True), st.text(max_size=200), st.booleans())
def test_the_sniffers_find_the_site_a_body_names_near_its_start(host: str, junk: str, long_keys: bool) -> None:
    key = "domain" if long_keys else "d"
    raw = json.dumps({"n": junk[:50], key: f"{host},b.com", "u": junk}).encode()
    assert plausible.sniff_domain(raw) == host.lower()
    raw = json.dumps({"type": "event", "payload": {"website": junk[:50], "hostname": host, "url": junk}}).encode()
    assert umami.sniff_hostname(raw) == host.lower()
    assert plausible.sniff_domain(b" " * SNIFF_BYTES + raw) == ""  # only the start is read


def test_properties_past_our_limits_are_413() -> None:
    page = {"u": "https://a.com/", "d": "a.com"}
    cases = [
        {"n": "pageview", "p": {f"k{i}": "v" for i in range(11)}},
        {"n": "Signup", "p": {f"k{i}": "v" for i in range(10)}},  # the event name is the eleventh
        {"n": "pageview", "p": {"k" * 129: "v"}},
        {"n": "pageview", "p": {"k": "v" * 513}},
        {"n": "pageview", "p": {f"k{i}": "v" * 200 for i in range(6)}},  # 1,212 bytes together
    ]
    for fields in cases:
        with pytest.raises(HitTooLarge):
            plausible.parse_event(body(**page, **fields))
    payload = {"hostname": "a.com", "url": "/", "name": "signup", "data": {f"k{i}": i for i in range(10)}}
    with pytest.raises(HitTooLarge):
        umami.parse_send(body(type="event", payload=payload))
    assert len(plausible.parse_event(body(**page, n="Signup", p={f"k{i}": "v" for i in range(9)})).properties) == 10


# --- the visit-entry rule and URLs ---


@pytest.mark.parametrize(
    "referrer, entry",
    [
        ("", True),
        ("https://google.com/", True),
        ("https://a.com/x", False),
        ("https://www.a.com/x", False),
        ("http://sub.a.com/", True),
        ("/previous/path", False),
        ("android-app://com.slack/", False),
    ],
)
def test_visit_entry(referrer: str, entry: bool) -> None:
    assert is_visit_entry(referrer, "a.com") is entry


def test_site_url_keeps_path_query_and_fragment() -> None:
    assert site_url("http://www.a.com:8080/p/?q=1#h", "a.com") == "https://a.com/p/?q=1#h"
    with pytest.raises(InvalidHit):
        site_url("//evil.com/x", "a.com")


def test_generated_bids_sort_by_time() -> None:
    assert generated_bid(1_700_000_000_000, 5) < generated_bid(1_700_000_000_001, 0)


# --- matching follow-ups to views ---

KEY = ViewKey("a.com", "https://a.com/", "Chrome", "Windows", "Desktop", "English/English (UK)")


def test_engagement_goes_to_a_view_open_long_enough() -> None:
    views = OpenViews()
    views.open(KEY, "old", 0)
    views.open(KEY, "new", 50_000)
    # 40 s engaged at 60 s: "new" was open 10 s only, so it is "old"'s.
    assert views.engage(KEY, 40_000, 60_000).bid == "old"  # type: ignore[union-attr]
    # Then 15 s more: "old" would be at 55 s of 61 s open: still consistent, oldest first.
    assert views.engage(KEY, 15_000, 61_000).bid == "old"  # type: ignore[union-attr]
    # 10 s more: "old" cannot have 65 s in 62 s, "new" can have 10 s in 12 s.
    chosen = views.engage(KEY, 10_000, 62_000)
    assert chosen is not None and (chosen.bid, chosen.engaged_ms) == ("new", 10_000)
    assert views.engage(KEY._replace(url="https://a.com/other"), 1, 62_000) is None


def test_views_expire_and_are_bounded() -> None:
    views = OpenViews(ttl_ms=1000, max_views=3)
    for i in range(5):
        views.open(KEY, f"v{i}", i)
    assert len(views) == 3 and views.latest(KEY, 10).bid == "v4"  # type: ignore[union-attr]
    assert views.latest(KEY, 2000) is None and len(views) == 0


@settings(max_examples=200)
@given(
    st.lists(st.tuples(st.integers(0, 2), st.integers(0, 2), st.integers(1, 30_000)), min_size=1, max_size=40),
    st.randoms(),
)
def test_engaged_time_never_leaves_its_key_and_one_view_is_exact(
    script: list[tuple[int, int, int]], rng: random.Random
) -> None:
    """Whatever the interleaving, each key's engaged total is what was sent for it; with one open view per
    key, every millisecond lands on that view."""
    views = OpenViews()
    keys = [KEY._replace(url=f"https://a.com/{i}") for i in range(3)]
    sent = dict.fromkeys(keys, 0)
    owned: dict[str, ViewKey] = {}
    now = 0
    for n, (action, k, ms) in enumerate(script):
        now += ms + SLACK_MS
        key = keys[k]
        if action == 0 or views.latest(key, now) is None:
            views.open(key, f"b{n}", now)
            owned[f"b{n}"] = key
        else:
            view = views.engage(key, ms, now)
            assert view is not None and owned[view.bid] == key
            sent[key] += ms
    for key in keys:
        got = sum(v.engaged_ms for v in views._by_key.get(key, ()))
        assert got == sent[key]


@SLOW_OK
@given(st.text(max_size=200), st.sampled_from(["a.com", "www.a.com"]))
def test_any_referrer_and_url_text_gives_an_answer_or_invalid_hit(text: str, site: str) -> None:
    assert isinstance(is_visit_entry(text, site), bool)
    try:
        url = site_url(text, site)
    except InvalidHit:
        return
    assert url.startswith(f"https://{site}/")
