"""Tracker beacon parsing (spec §3.1, §3.5, §3.6) and page URL splitting (§3.2 steps 2, 3, 8)."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medama_core.ingest.hit import (
    MAX_BODY_BYTES,
    MAX_DURATION_MS,
    MAX_PATHNAME_BYTES,
    MAX_PROPERTIES,
    MAX_PROPERTIES_BYTES,
    MAX_PROPERTY_KEY_CHARS,
    MAX_PROPERTY_VALUE_CHARS,
    MAX_UTM_BYTES,
    CustomHit,
    HitTooLarge,
    InvalidHit,
    LoadHit,
    PageParts,
    UnloadHit,
    host_of,
    page_parts,
    parse_hit,
    parse_json_hit,
    sniff_host,
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


def body(obj: object) -> bytes:
    return json.dumps(obj).encode()


def test_load_minimal() -> None:
    hit = parse_hit(body({"e": "load", "b": "b1", "u": "http://a.com", "p": False, "q": True}))
    assert hit == LoadHit(bid="b1", url="http://a.com", referrer="", unique_user=False, unique_page=True, timezone="")
    assert hit.properties == {}
    assert hit.hash_mode is False


def test_load_full() -> None:
    hit = parse_hit(body({**LOAD, "d": {"plan": "pro", "seats": 3, "trial": False, "neg": -7}, "h": True}))
    assert hit == LoadHit(
        bid="lx1abc2def",
        url="https://example.com/blog/?utm_source=news",
        referrer="https://www.google.com/",
        unique_user=True,
        unique_page=False,
        timezone="Europe/London",
        properties={"plan": "pro", "seats": "3", "trial": "false", "neg": "-7"},
        hash_mode=True,
    )


def test_load_unknown_keys_ignored() -> None:
    assert isinstance(parse_hit(body({**LOAD, "zz": [1, {"x": None}]})), LoadHit)


def test_text_plain_style_body_with_whitespace() -> None:
    assert isinstance(parse_hit(b"  \n" + body(LOAD) + b"\n"), LoadHit)


def test_unload() -> None:
    assert parse_hit(body({"e": "unload", "b": "b1", "m": 1500})) == UnloadHit(bid="b1", duration_ms=1500)


def test_unload_max() -> None:
    hit = parse_hit(body({"e": "unload", "b": "b1", "m": MAX_DURATION_MS}))
    assert hit == UnloadHit(bid="b1", duration_ms=MAX_DURATION_MS)


def test_custom() -> None:
    hit = parse_hit(body({"e": "custom", "g": "example.com", "d": {"clicked": "signup", "n": 2}}))
    assert hit == CustomHit(group="example.com", properties={"clicked": "signup", "n": "2"}, bid="")


def test_custom_with_beacon() -> None:
    hit = parse_hit(body({"e": "custom", "g": "Example.COM", "d": {"a": True}, "b": "b9"}))
    assert hit == CustomHit(group="example.com", properties={"a": "true"}, bid="b9")


def _without(obj: dict[str, object], key: str) -> dict[str, object]:
    return {k: v for k, v in obj.items() if k != key}


INVALID = [
    ("empty", b"", "empty body"),
    ("not-json", b"{nope", "invalid JSON"),
    ("not-utf8", b'{"e":"load","b":"\xff"}', "not UTF-8"),
    ("array", b"[]", "JSON object"),
    ("string", b'"load"', "JSON object"),
    ("nan", b'{"e":"unload","b":"x","m":NaN}', "NaN is not a number"),
    ("too-big", b" " * (MAX_BODY_BYTES + 1), "larger than"),
    ("deep-array", b"[" * 50_000, "nested deeper"),
    ("deep-object", b'{"a":' * 10_000, "nested deeper"),
    ("deep-inside-unknown-key", body({**LOAD, "x": [[[[[[[[[1]]]]]]]]]}), "nested deeper"),
    ("huge-int", b'{"e":"unload","b":"x","m":' + b"9" * 5000 + b"}", "invalid JSON"),
    ("no-e", body(_without(LOAD, "e")), '"e" must be one of'),
    ("bad-e", body({**LOAD, "e": "pageview"}), '"e" must be one of'),
    ("e-not-string", body({**LOAD, "e": 1}), '"e" must be one of'),
    ("load-no-b", body(_without(LOAD, "b")), '"b" must be a non-empty string'),
    ("load-empty-b", body({**LOAD, "b": ""}), '"b" must be a non-empty string'),
    ("load-long-b", body({**LOAD, "b": "x" * 65}), '"b" longer than 64'),
    ("load-no-u", body(_without(LOAD, "u")), '"u" must be'),
    ("load-relative-u", body({**LOAD, "u": "/blog"}), '"u" must be an absolute http(s) URL'),
    ("load-ftp-u", body({**LOAD, "u": "ftp://example.com/"}), '"u" must be an absolute http(s) URL'),
    ("load-bad-u", body({**LOAD, "u": "http://[::1"}), '"u" is not a valid URL'),
    ("load-bad-escape-u", body({**LOAD, "u": "http://a.com/%zz"}), '"u" is not a valid URL'),
    ("load-no-p", body(_without(LOAD, "p")), '"p" must be a boolean'),
    ("load-p-string", body({**LOAD, "p": "true"}), '"p" must be a boolean'),
    ("load-q-int", body({**LOAD, "q": 1}), '"q" must be a boolean'),
    ("load-r-not-string", body({**LOAD, "r": 5}), '"r" must be a string'),
    ("load-h-not-bool", body({**LOAD, "h": "yes"}), '"h" must be a boolean'),
    ("load-d-not-object", body({**LOAD, "d": ["a"]}), "invalid custom property"),
    ("load-d-float", body({**LOAD, "d": {"a": 1.5}}), "must be a string, integer or boolean"),
    ("load-d-null", body({**LOAD, "d": {"a": None}}), "must be a string, integer or boolean"),
    ("load-d-nested", body({**LOAD, "d": {"a": {"b": 1}}}), "must be a string, integer or boolean"),
    ("load-d-int64", body({**LOAD, "d": {"a": 2**63}}), "64-bit integer range"),
    ("load-d-empty-key", body({**LOAD, "d": {"": "x"}}), "property names"),
    ("load-d-long-value", body({**LOAD, "d": {"a": "x" * 513}}), "longer than 512"),
    ("load-d-long-key", body({**LOAD, "d": {"k" * 129: "x"}}), "at most 128 characters"),
    ("load-d-too-many", body({**LOAD, "d": {str(i): i for i in range(11)}}), "more than 10"),
    ("load-d-too-large", body({**LOAD, "d": {f"k{i}": "v" * 250 for i in range(5)}}), "larger than 1024 bytes"),
    ("load-d-too-large-utf8", body({**LOAD, "d": {f"k{i}": "é" * 200 for i in range(3)}}), "larger than 1024"),
    ("load-b-not-ascii", body({**LOAD, "b": "bé"}), '"b" must be ASCII'),
    ("unload-b-not-ascii", body({"e": "unload", "b": "ü", "m": 5}), '"b" must be ASCII'),
    ("custom-b-not-ascii", body({"e": "custom", "g": "a.com", "d": {"a": "b"}, "b": "ü"}), '"b" must be ASCII'),
    ("unload-no-m", body({"e": "unload", "b": "b"}), '"m" must be an integer'),
    ("unload-m-zero", body({"e": "unload", "b": "b", "m": 0}), '"m" must be between'),
    ("unload-m-negative", body({"e": "unload", "b": "b", "m": -5}), '"m" must be between'),
    ("unload-m-bool", body({"e": "unload", "b": "b", "m": True}), '"m" must be an integer'),
    ("unload-m-float", body({"e": "unload", "b": "b", "m": 1500.0}), '"m" must be an integer'),
    ("unload-m-string", body({"e": "unload", "b": "b", "m": "1500"}), '"m" must be an integer'),
    ("unload-m-too-big", body({"e": "unload", "b": "b", "m": MAX_DURATION_MS + 1}), '"m" must be between'),
    ("unload-no-b", body({"e": "unload", "m": 5}), '"b" must be a non-empty string'),
    ("load-long-t", body({**LOAD, "t": "x" * 65}), '"t" longer than 64'),
    ("custom-no-g", body({"e": "custom", "d": {"a": "b"}}), '"g" must be a non-empty string'),
    ("custom-empty-d", body({"e": "custom", "g": "a.com", "d": {}}), "invalid custom property"),
    ("custom-no-d", body({"e": "custom", "g": "a.com"}), "invalid custom property"),
    ("custom-b-not-string", body({"e": "custom", "g": "a.com", "d": {"a": "b"}, "b": 3}), '"b" must be a string'),
]


@pytest.mark.parametrize(("raw", "message"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
def test_invalid(raw: bytes, message: str) -> None:
    with pytest.raises(InvalidHit) as info:
        parse_hit(raw)
    assert message in str(info.value)


def test_invalid_hit_is_a_value_error() -> None:
    assert issubclass(InvalidHit, ValueError)


TOO_LARGE = {"load-d-long-value", "load-d-long-key", "load-d-too-many", "load-d-too-large", "load-d-too-large-utf8"}


@pytest.mark.parametrize(("name", "raw"), [(c[0], c[1]) for c in INVALID], ids=[c[0] for c in INVALID])
def test_past_a_size_limit_of_the_properties_is_413_else_400(name: str, raw: bytes) -> None:
    with pytest.raises(InvalidHit) as info:
        parse_hit(raw)
    assert info.value.status == (413 if name in TOO_LARGE else 400)
    assert isinstance(info.value, HitTooLarge) == (name in TOO_LARGE)


def test_properties_at_every_limit_are_accepted() -> None:
    """10 properties of 1,024 bytes in all, a 128-character name, a 512-character value: within the limits."""
    names = [f"{i:02d}" + "k" * 49 for i in range(MAX_PROPERTIES)]  # 51 characters each
    value_chars = MAX_PROPERTIES_BYTES // MAX_PROPERTIES - 51  # 1,020 bytes in all
    hit = parse_hit(body({**LOAD, "d": {name: "v" * value_chars for name in names}}))
    assert isinstance(hit, LoadHit) and len(hit.properties) == MAX_PROPERTIES
    one_long = parse_hit(body({**LOAD, "d": {"k" * MAX_PROPERTY_KEY_CHARS: "v" * MAX_PROPERTY_VALUE_CHARS}}))
    assert isinstance(one_long, LoadHit) and list(map(len, one_long.properties.values())) == [MAX_PROPERTY_VALUE_CHARS]


@pytest.mark.parametrize(
    ("url", "hash_mode", "parts"),
    [
        ("https://example.com/blog/", False, PageParts("example.com", "/blog", "", "", "")),
        ("https://example.com/", False, PageParts("example.com", "/", "", "", "")),
        ("https://example.com", False, PageParts("example.com", "", "", "", "")),
        ("https://Example.COM:8443/A/b", False, PageParts("example.com", "/A/b", "", "", "")),
        ("https://example.com/a%20b/c%2Fd", False, PageParts("example.com", "/a b/c/d", "", "", "")),
        ("https://example.com/a//", False, PageParts("example.com", "/a/", "", "", "")),
        ("https://example.com/#/about", False, PageParts("example.com", "/", "", "", "")),
        ("https://example.com/#/about", True, PageParts("example.com", "/#/about", "", "", "")),
        ("https://example.com/app/#/users/1", True, PageParts("example.com", "/app#/users/1", "", "", "")),
        ("https://example.com/app/", True, PageParts("example.com", "/app", "", "", "")),
        ("https://example.com/#caf%C3%A9", True, PageParts("example.com", "/#café", "", "", "")),
        (
            "https://example.com/p?utm_source=news+letter&utm_medium=email&utm_campaign=spring%20sale",
            False,
            PageParts("example.com", "/p", "news letter", "email", "spring sale"),
        ),
        (
            "https://example.com/p?utm_source=a&utm_source=b&UTM_MEDIUM=x&utm_campaign=",
            False,
            PageParts("example.com", "/p", "a", "", ""),
        ),
        ("http://[2001:db8::1]:8080/x", False, PageParts("2001:db8::1", "/x", "", "", "")),
    ],
    ids=[
        "trailing-slash", "root", "empty-path", "host-lower-case-port-dropped", "percent-decoded",
        "one-slash-removed", "fragment-dropped", "hash-mode", "hash-mode-subpath", "hash-mode-no-fragment",
        "hash-mode-decoded", "utm", "utm-first-exact-key", "ipv6-host",
    ],
)  # fmt: skip
def test_page_parts(url: str, hash_mode: bool, parts: PageParts) -> None:
    assert page_parts(url, hash_mode=hash_mode) == parts


def test_page_parts_bounds_lengths() -> None:
    parts = page_parts(f"https://a.com/{'p' * 5000}?utm_source={'s' * 1000}")
    assert len(parts.pathname) == MAX_PATHNAME_BYTES
    assert len(parts.utm_source) == MAX_UTM_BYTES
    wide = page_parts(f"https://a.com/{'é' * 5000}?utm_source={'€' * 1000}")
    assert wide.pathname == "/" + "é" * ((MAX_PATHNAME_BYTES - 1) // 2)  # bytes, and never half a character
    assert wide.utm_source == "€" * (MAX_UTM_BYTES // 3)


def test_page_parts_rejects_bad_url() -> None:
    with pytest.raises(InvalidHit):
        page_parts("http://a.com:notaport/")


@given(st.binary(max_size=2000))
def test_any_bytes_give_a_hit_or_invalid_hit(raw: bytes) -> None:
    try:
        hit = parse_hit(raw)
    except InvalidHit:
        return
    assert isinstance(hit, LoadHit | UnloadHit | CustomHit)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4),
    max_leaves=20,
)


@given(
    st.dictionaries(
        st.sampled_from(["e", "b", "u", "r", "p", "q", "t", "d", "h", "m", "g", "x"]),
        json_values | st.sampled_from(["load", "unload", "custom", "https://a.com/x"]),
    )
)
def test_any_json_object_gives_a_hit_or_invalid_hit(obj: dict[str, object]) -> None:
    try:
        hit = parse_hit(json.dumps(obj).encode())
    except InvalidHit:
        return
    assert isinstance(hit, LoadHit | UnloadHit | CustomHit)
    if isinstance(hit, LoadHit):
        page_parts(hit.url, hash_mode=hit.hash_mode)


@given(st.text(max_size=300))
def test_page_parts_any_text_returns_or_raises_invalid_hit(url: str) -> None:
    try:
        parts = page_parts(url)
    except InvalidHit:
        return
    assert parts.hostname == parts.hostname.lower()
    assert len(parts.pathname.encode("utf-8", "surrogatepass")) <= MAX_PATHNAME_BYTES


# --- the cheap host readers used to count drops ---

HOST_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789.-")


@pytest.mark.parametrize(
    ("raw", "host"),
    [
        (body(LOAD), "example.com"),
        (body({**LOAD, "u": "https://WWW.Example.com:8443/x"}), "www.example.com"),
        (body({"e": "custom", "g": "Shop.example.net", "d": {"a": 1}}), "shop.example.net"),
        (b'{"e":"load","u" : "http://user@a.example/p"}', "a.example"),
        (b'{"e":"load","b":"' + b"x" * 2000 + b'","u":"https://late.example/"}', ""),  # past SNIFF_BYTES
        (b'{"u":"javascript:alert(1)"}', ""),
        (b"\xff\xfe not json at all", ""),
        (b"", ""),
    ],
)
def test_sniff_host_reads_the_site_near_the_start(raw: bytes, host: str) -> None:
    assert sniff_host(raw) == host


@given(st.binary(max_size=3000))
def test_sniff_host_of_any_bytes_is_empty_or_a_host_name(raw: bytes) -> None:
    host = sniff_host(raw)
    assert host == "" or (len(host) <= 253 and set(host) <= HOST_CHARS)


@given(st.text(max_size=300))
def test_host_of_any_text_is_a_lower_case_string(url: str) -> None:
    host = host_of(url)
    assert host == host.lower() and "/" not in host and ":" not in host


def test_host_of_agrees_with_page_parts_on_real_urls() -> None:
    for url in ("https://Example.COM:8443/A/b", "http://u:p@a.example/x?y#z", "https://a.com", "https://a.com?q"):
        assert host_of(url) == page_parts(url).hostname


def _outcome(parse: Callable[[bytes], object], body: bytes) -> object:
    try:
        return parse(body)
    except InvalidHit as exc:
        return (type(exc), str(exc))


# Strings a beacon's fields may hold: quotes, backslashes, control characters, non-ASCII, lengths around the limits.
_FIELD = st.one_of(
    st.text(alphabet=st.characters(codec="utf-8"), max_size=12),
    st.text(alphabet='ab"\\\x00\x1f\x7f/é€', max_size=6),
    st.sampled_from(
        ["", "https://example.com/", "http://EXAMPLE.com:80/a?utm_source=x#f", "https://[::1]/", "ftp://x/"]
    ),
    st.integers(60, 70).map(lambda n: "b" * n),
    st.integers(8185, 8195).map(lambda n: "https://example.com/" + "a" * (n - 20)),
)
_LITERAL = st.sampled_from(["true", "false", "true", "false", "null", '"true"', "1", "True"])
_DURATION = st.one_of(
    st.integers(-2, 2**33).map(str),
    st.sampled_from(["4294967295", "4294967296", "9999999999", "10000000000", "0", "01", "1.0", "1e3", "-0", " 5"]),
)
# Mostly none: a near miss is the general parser's at once, and the fields' edge cases want whole beacons.
_MUTATION = st.sampled_from(["", "", "", "", "", " ", "\n", ',"x":1', ',"b":"again"'])


def _tracker_body(b: str, u: str, r: str, t: str, p: str, q: str, h: str | None, m: str, unload: bool) -> str:
    """A beacon as tracker.js writes one, its string fields written as given (escapes, quotes and all)."""
    if unload:
        return f'{{"b":"{b}","e":"unload","m":{m}'
    extra = "" if h is None else f',"h":{h}'
    return f'{{"b":"{b}","e":"load","u":"{u}","r":"{r}","p":{p},"q":{q},"t":"{t}"{extra}'


@settings(max_examples=1000)
@given(
    fields=st.tuples(_FIELD, _FIELD, _FIELD, _FIELD),
    literals=st.tuples(_LITERAL, _LITERAL, st.one_of(st.none(), _LITERAL)),
    m=_DURATION,
    unload=st.booleans(),
    as_json=st.booleans(),
    mutation=_MUTATION,
)
def test_tracker_beacons_parse_as_json(
    fields: tuple[str, str, str, str],
    literals: tuple[str, str, str | None],
    m: str,
    unload: bool,
    as_json: bool,
    mutation: str,
) -> None:
    """Every body shaped like the tracker's beacons (strings written raw, escapes and control characters and
    all, or escaped as JSON; near misses with spaces, extra or repeated keys) gives from `parse_hit` what the
    JSON decoder's path gives: the same hit or the same refusal. Seen failing with the fast path's backslash
    rule, its control-character rule, its beacon id, time zone or duration limit taken out in turn."""
    if as_json:
        fields = tuple(json.dumps(value)[1:-1] for value in fields)  # type: ignore[assignment]
    body = _tracker_body(*fields, *literals, m, unload) + mutation + "}"
    data = body.encode("utf-8", "surrogatepass")
    assert _outcome(parse_hit, data) == _outcome(parse_json_hit, data)


_SENT = '{"b":"lx1","e":"load","u":"https://example.com/a","r":"%s","p":true,"q":false,"t":"%s"}'


@pytest.mark.parametrize(
    "body",
    [
        _SENT % ("", "Europe/Paris"),
        '{"b":"lx1","e":"load","u":"https://example.com/#/x","r":"https://a.org/","p":false,"q":true,"t":"","h":true}',
        '{"b":"lx1","e":"unload","m":4294967295}',
        # Near misses, each the general parser's: a control character, an escape, a limit passed.
        '{"b":"lx\x01","e":"unload","m":5}',
        '{"b":"lx\\u0031","e":"unload","m":5}',
        '{"b":"lx1","e":"unload","m":4294967296}',
        '{"b":"%s","e":"unload","m":5}' % ("b" * 65),
        '{"b":"lé","e":"unload","m":5}',
        _SENT % ("\x1f", "Europe/Paris"),
        _SENT % ("\\/", "Europe/Paris"),
        _SENT % ("", "x" * 65),
    ],
)
def test_tracker_beacons_as_sent(body: str) -> None:
    """The tracker's beacons, and near misses the property test above might not draw."""
    data = body.encode()
    assert _outcome(parse_hit, data) == _outcome(parse_json_hit, data)
