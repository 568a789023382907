"""Validate a tracker beacon body into a LoadHit, UnloadHit or CustomHit, and split its page URL."""

from __future__ import annotations

import functools
import json
import re
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Final, NamedTuple

__all__ = [
    "CustomHit",
    "Hit",
    "HitTooLarge",
    "InvalidHit",
    "LoadHit",
    "PageParts",
    "UnloadHit",
    "cut",
    "host_of",
    "page_parts",
    "parse_hit",
    "parse_json_hit",
    "sniff_host",
]

# The largest real beacon is a load with a long URL, a referrer (browsers cap
# it at 4 KiB) and a few properties: well under 16 KiB. 64 KiB leaves room and
# still bounds the work done on a hostile body.
MAX_BODY_BYTES: Final = 64 * 1024

# A valid beacon nests two levels (the object and its "d"); unknown keys are
# ignored but still parsed, so allow a little more. The stdlib json module
# recurses once per level, so deeper bodies are refused before it runs.
MAX_DEPTH: Final = 8

# The tracker's beacon id is base36(Date.now()) + base36(Math.random()), about
# 20 ASCII characters. It is stored with the view and with each of its events
# (and in an index of each), so it must be ASCII: 128 bytes, not 4 x 128.
MAX_BEACON_CHARS: Final = 64

# Most servers refuse request lines over 8 KiB (nginx's default header buffer,
# Apache's LimitRequestLine), so no page URL or referrer is longer.
MAX_URL_CHARS: Final = 8192

# DNS caps a host name at 253 characters; `g` of a custom event is one.
MAX_GROUP_CHARS: Final = 253

# The longest IANA zone name is 32 characters ("America/Argentina/ComodRivadavia").
MAX_TIMEZONE_CHARS: Final = 64

# Custom properties come from a handful of data-m attributes (docs/tracker.md).
# Each is one `events` row (with the beacon id, site, batch id and two index
# entries: ~200 bytes besides its text), so these caps bound what one beacon
# can store; past them the hit is refused with 413 (docs/ingestion.md). With
# 64 properties of 1 KiB allowed, one hit stored ~84 KB.
MAX_PROPERTIES: Final = 10  # API clients get room beyond the tracker's few
MAX_PROPERTY_KEY_CHARS: Final = 128  # a name, such as "plan" or "button"
MAX_PROPERTY_VALUE_CHARS: Final = 512  # a label, id or URL path
MAX_PROPERTIES_BYTES: Final = 1024  # all names and values of one hit, UTF-8

# Property integers are Go int64 upstream (the OpenAPI "integer" type).
MIN_PROPERTY_INT: Final = -(2**63)
MAX_PROPERTY_INT: Final = 2**63 - 1

# views.duration_ms is a DuckDB UINTEGER upstream (~49.7 days of milliseconds);
# larger values made its insert fail with a 500, here they are a 400.
MAX_DURATION_MS: Final = 2**32 - 1

# Stored columns are cut to these lengths in UTF-8 bytes (never inside a
# character): longer values are almost always generated junk, and the stats
# machinery copies each distinct value about ten times (a rollup row per span,
# sorted durations, the day's column copies; docs/storage.md), so a long unique
# value costs many times its length. Umami stores paths in 500 characters.
MAX_PATHNAME_BYTES: Final = 512
MAX_UTM_BYTES: Final = 128  # a tag such as "newsletter" or "spring-sale-2025"

# A site has a few hundred pages: remembering whether 4,096 URLs (at most MAX_URL_CHARS
# each, ~100 bytes typically) are valid spares a URL split (~2 µs) on most hits.
URL_CHECK_CACHE_SIZE: Final = 4096

# Go's url.Parse, which upstream used, refuses control characters and broken
# percent escapes; urllib.parse accepts both.
_CONTROL_RE: Final = re.compile(r"[\x00-\x1f\x7f]")
_BAD_ESCAPE_RE: Final = re.compile(r"%(?![0-9A-Fa-f]{2})")
# A JSON string, or an unterminated one running to the end. Whatever the
# greedy loop takes, the optional closing quote then matches, so no attempt
# ever backtracks and stripping strings is linear even for hostile runs of
# quotes and backslashes. (Not possessive `*+`: that is Python 3.11+.)
_STRING_RE: Final = re.compile(r'"(?:[^"\\]|\\.?)*"?', re.DOTALL)
_BRACKET_RE: Final = re.compile(r"[\[\]{}]")


class InvalidHit(ValueError):
    """The beacon body is not a valid hit (the API answers `status` with this message)."""

    status = 400


class HitTooLarge(InvalidHit):
    """A hit past a size limit of its custom properties: 413 Content Too Large."""

    status = 413


# Not frozen: a frozen dataclass's __init__ sets each field through object.__setattr__,
# which cost ~2 µs per hit; nothing mutates a hit after parse_hit returns it.
@dataclass(slots=True)
class LoadHit:
    """`e: "load"`: a page view."""

    bid: str
    url: str
    referrer: str
    unique_user: bool
    unique_page: bool
    timezone: str
    # Custom properties, values already in their stored string form.
    properties: Mapping[str, str] = field(default_factory=dict)
    # `h: true`: the site uses hash routing, so the fragment is part of the page.
    hash_mode: bool = False


@dataclass(slots=True)
class UnloadHit:
    """`e: "unload"`: how long the page with this beacon id was visible."""

    bid: str
    duration_ms: int


@dataclass(slots=True)
class CustomHit:
    """`e: "custom"`: a custom event for the site `group` (lower-cased, like page host names)."""

    group: str
    properties: Mapping[str, str]
    bid: str = ""


Hit = LoadHit | UnloadHit | CustomHit


class PageParts(NamedTuple):
    hostname: str
    pathname: str
    utm_source: str
    utm_medium: str
    utm_campaign: str


def _too_deep(text: str) -> bool:
    """Whether brackets outside strings nest deeper than MAX_DEPTH."""
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return False  # cannot nest deeper than the brackets it has: skips the scan for real beacons
    depth = 0
    for match in _BRACKET_RE.finditer(_STRING_RE.sub("", text)):
        depth += 1 if match.group() in "[{" else -1
        if depth > MAX_DEPTH:
            return True
    return False


def _reject_constant(name: str) -> object:
    raise InvalidHit(f"invalid JSON: {name} is not a number")


# One decoder for every hit: json.loads with keyword arguments builds a new one per call.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def _decode(body: bytes) -> dict[str, object]:
    if not body:
        raise InvalidHit("empty body")
    if len(body) > MAX_BODY_BYTES:
        raise InvalidHit(f"body larger than {MAX_BODY_BYTES} bytes")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidHit("body is not UTF-8") from None
    if _too_deep(text):
        raise InvalidHit(f"JSON nested deeper than {MAX_DEPTH} levels")
    try:
        value = _DECODER.decode(text)
    except ValueError as exc:  # JSONDecodeError, or an integer past the digit limit
        if isinstance(exc, InvalidHit):
            raise
        raise InvalidHit(f"invalid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise InvalidHit("body must be a JSON object")
    if "\\u" in text and not _utf8_safe(value):
        raise InvalidHit("invalid JSON: a string holds a lone UTF-16 surrogate escape")
    return value


def _utf8_safe(value: object) -> bool:
    """Whether every string in a decoded value can be stored as UTF-8: a lone `\\udXXX`
    escape is valid JSON but cannot be (SQLite would refuse the row with an error)."""
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _string(obj: Mapping[str, object], key: str, *, limit: int, required: bool, empty_ok: bool) -> str:
    value = obj.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (not value and not empty_ok):
        kind = "a string" if empty_ok else "a non-empty string"
        raise InvalidHit(f'"{key}" must be {kind}')
    if len(value) > limit:
        raise InvalidHit(f'"{key}" longer than {limit} characters')
    return value


def _beacon(obj: Mapping[str, object], *, required: bool) -> str:
    """`b`: required and non-empty for page views and unloads, optional for custom events; ASCII."""
    bid = _string(obj, "b", limit=MAX_BEACON_CHARS, required=required, empty_ok=not required)
    if not bid.isascii():
        raise InvalidHit('"b" must be ASCII')
    return bid


def _bool(obj: Mapping[str, object], key: str, *, required: bool) -> bool:
    value = obj.get(key)
    if value is None and not required:
        return False
    if not isinstance(value, bool):
        raise InvalidHit(f'"{key}" must be a boolean')
    return value


def _property_value(key: str, value: object) -> str:
    # bool is a subclass of int, so it is tested first.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        if not MIN_PROPERTY_INT <= value <= MAX_PROPERTY_INT:
            raise InvalidHit(f'property "{key}" is out of the 64-bit integer range')
        return str(value)
    if isinstance(value, str):
        if len(value) > MAX_PROPERTY_VALUE_CHARS:
            raise HitTooLarge(f'property "{key}" longer than {MAX_PROPERTY_VALUE_CHARS} characters')
        return value
    raise InvalidHit(f'property "{key}" must be a string, integer or boolean')


def _properties(obj: Mapping[str, object], *, required: bool) -> dict[str, str]:
    value = obj.get("d")
    if value is None and not required:
        return {}
    if not isinstance(value, dict) or (required and not value):
        raise InvalidHit("invalid custom property")
    if len(value) > MAX_PROPERTIES:
        raise HitTooLarge(f"more than {MAX_PROPERTIES} custom properties")
    properties: dict[str, str] = {}
    size = 0
    for key, item in value.items():
        if not key:
            raise InvalidHit("property names must not be empty")
        if len(key) > MAX_PROPERTY_KEY_CHARS:
            raise HitTooLarge(f"property names must be at most {MAX_PROPERTY_KEY_CHARS} characters")
        text = properties[key] = _property_value(key, item)
        size += len(key.encode()) + len(text.encode())
    if size > MAX_PROPERTIES_BYTES:
        raise HitTooLarge(f"custom properties larger than {MAX_PROPERTIES_BYTES} bytes (names and values, UTF-8)")
    return properties


def _split_url(url: str, what: str) -> urllib.parse.SplitResult:
    if _CONTROL_RE.search(url) or _BAD_ESCAPE_RE.search(url):
        raise InvalidHit(f"{what} is not a valid URL")
    try:
        parts = urllib.parse.urlsplit(url)
        _ = parts.port  # a malformed port raises ValueError
    except ValueError:
        raise InvalidHit(f"{what} is not a valid URL") from None
    return parts


def _page_url(obj: Mapping[str, object]) -> str:
    url = _string(obj, "u", limit=MAX_URL_CHARS, required=True, empty_ok=False)
    problem = _page_url_problem(url)
    if problem is not None:
        raise InvalidHit(problem)
    return url


@functools.lru_cache(maxsize=URL_CHECK_CACHE_SIZE)
def _page_url_problem(url: str) -> str | None:
    """Why `url` cannot be a page URL, or None when it can (a site's pages repeat: cached)."""
    try:
        parts = _split_url(url, '"u"')
    except InvalidHit as exc:
        return str(exc)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return '"u" must be an absolute http(s) URL'
    return None


def _load(obj: Mapping[str, object]) -> LoadHit:
    # Fast path for the tracker's own beacons: every field present with its exact type and within
    # its limit, no properties (parse_hit 8 -> 4 µs per load). Anything else takes the checks below,
    # which say what is wrong.
    get = obj.get
    bid, url, ref, unique_user, unique_page, tz = get("b"), get("u"), get("r"), get("p"), get("q"), get("t")
    hash_mode = get("h", False)
    if (
        type(bid) is str
        and 0 < len(bid) <= MAX_BEACON_CHARS
        and bid.isascii()
        and type(url) is str
        and 0 < len(url) <= MAX_URL_CHARS
        and type(ref) is str
        and len(ref) <= MAX_URL_CHARS
        and type(unique_user) is bool
        and type(unique_page) is bool
        and type(tz) is str
        and len(tz) <= MAX_TIMEZONE_CHARS
        and type(hash_mode) is bool
        and get("d") is None
        and _page_url_problem(url) is None
    ):
        return LoadHit(bid, url, ref, unique_user, unique_page, tz, {}, hash_mode)
    return LoadHit(
        bid=_beacon(obj, required=True),
        url=_page_url(obj),
        referrer=_string(obj, "r", limit=MAX_URL_CHARS, required=False, empty_ok=True),
        unique_user=_bool(obj, "p", required=True),
        unique_page=_bool(obj, "q", required=True),
        timezone=_string(obj, "t", limit=MAX_TIMEZONE_CHARS, required=False, empty_ok=True),
        properties=_properties(obj, required=False),
        hash_mode=_bool(obj, "h", required=False),
    )


def _unload(obj: Mapping[str, object]) -> UnloadHit:
    bid = _beacon(obj, required=True)
    duration = obj.get("m")
    if isinstance(duration, bool) or not isinstance(duration, int):
        raise InvalidHit('"m" must be an integer')
    if not 0 < duration <= MAX_DURATION_MS:
        raise InvalidHit(f'"m" must be between 1 and {MAX_DURATION_MS}')
    return UnloadHit(bid=bid, duration_ms=duration)


def _custom(obj: Mapping[str, object]) -> CustomHit:
    return CustomHit(
        group=_string(obj, "g", limit=MAX_GROUP_CHARS, required=True, empty_ok=False).lower(),
        properties=_properties(obj, required=True),
        bid=_beacon(obj, required=False),
    )


_PARSERS: Final[dict[str, Callable[[Mapping[str, object]], Hit]]] = {
    "load": _load,
    "unload": _unload,
    "custom": _custom,
}


# The tracker's own beacons, as `JSON.stringify` writes them (tracker.js): a load's fields, or an unload's, in
# that order, no spaces, strings without escapes or control characters, so each string's text is its value and
# the object has exactly these keys. `_tracker_beacon` reads them with one match instead of the JSON decoder,
# a dict and its look-ups; any other body (other order, spaces, escapes, properties, another kind) is parsed
# as JSON, as is one that matches but breaks a limit. `tests/ingest/test_hit.py` checks both give the same.
_PLAIN: Final = r'"([^"\\\x00-\x1f]*)"'  # a JSON string without escapes: its text is its value
_LOAD_BEACON: Final = re.compile(
    rf'\{{"b":{_PLAIN},"e":"load","u":{_PLAIN},"r":{_PLAIN},"p":(true|false),"q":(true|false),"t":{_PLAIN}'
    r'(?:,"h":(true|false))?\}'
)
_UNLOAD_BEACON: Final = re.compile(rf'\{{"b":{_PLAIN},"e":"unload","m":([1-9][0-9]{{0,9}})\}}')


def _tracker_beacon(body: bytes) -> Hit | None:
    """The hit of a tracker beacon written as `_LOAD_BEACON` or `_UNLOAD_BEACON` say and within every limit
    (what `parse_hit` would return for it); None for any other body."""
    if len(body) > MAX_BODY_BYTES:
        return None
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    load = _LOAD_BEACON.fullmatch(text)
    if load is not None:
        bid, url, ref, unique_user, unique_page, tz, hash_mode = load.groups()
        if (
            0 < len(bid) <= MAX_BEACON_CHARS
            and bid.isascii()
            and 0 < len(url) <= MAX_URL_CHARS
            and len(ref) <= MAX_URL_CHARS
            and len(tz) <= MAX_TIMEZONE_CHARS
            and _page_url_problem(url) is None
        ):
            return LoadHit(bid, url, ref, unique_user == "true", unique_page == "true", tz, {}, hash_mode == "true")
        return None
    unload = _UNLOAD_BEACON.fullmatch(text)
    if unload is not None:
        bid, duration = unload.groups()
        if 0 < len(bid) <= MAX_BEACON_CHARS and bid.isascii() and int(duration) <= MAX_DURATION_MS:
            return UnloadHit(bid, int(duration))
    return None


def parse_hit(body: bytes) -> Hit:
    """Validate a `POST /api/event/hit` body (spec §3.1, §3.5, §3.6).

    Unknown keys are ignored. Load hits accept one field upstream lacks,
    `h` (boolean, default false): the tracker sets it in hash mode so the
    fragment becomes part of the stored path (see `page_parts`).

    Raises:
        InvalidHit: with a message fit for the client, for any body that is not
            a valid hit; no other exception escapes.
    """
    hit = _tracker_beacon(body)
    if hit is not None:
        return hit
    return parse_json_hit(body)


def parse_json_hit(body: bytes) -> Hit:
    """`parse_hit` through the JSON decoder for every body (what it does for bodies other than the tracker's)."""
    obj = _decode(body)
    kind = obj.get("e")
    parser = _PARSERS.get(kind) if isinstance(kind, str) else None
    if parser is None:
        raise InvalidHit('"e" must be one of "load", "unload", "custom"')
    return parser(obj)


# The host of an absolute URL, without validating anything: scheme, "//", optional user info,
# then the host up to a port, path, query or fragment. For attributing a drop, never for storing.
_HOST_RE: Final = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://(?:[^/?#@]*@)?([^/?#:@\[\]]*)")

# Where a tracker body names its site: the page URL of a load ("u") or the group of a custom
# event ("g"). The tracker writes them near the start; looking only there keeps a drop cheap
# whatever the body's size.
SNIFF_BYTES: Final = 1024
_SNIFF_RE: Final = re.compile(rb'"(?:u"\s*:\s*"https?://(?:[^/?#"@\\]*@)?|g"\s*:\s*")([A-Za-z0-9.-]{1,253})')


def host_of(url: str) -> str:
    """The lower-cased host of an absolute URL, or "" (cheap; no validation)."""
    found = _HOST_RE.match(url)
    return found.group(1).lower() if found is not None else ""


def sniff_host(body: bytes) -> str:
    """The lower-cased site host a raw hit body names in its first SNIFF_BYTES, or "".

    For counting a hit dropped before or without parsing (rate limited, unreadable);
    the caller keeps the answer only if it is a registered site.
    """
    found = _SNIFF_RE.search(body, 0, SNIFF_BYTES)
    return found.group(1).decode("ascii").lower() if found is not None else ""


def cut(text: str, limit: int) -> str:
    """`text` cut to at most `limit` bytes of UTF-8, never inside a character."""
    if len(text) <= limit // 4:  # even four-byte characters fit: the common case, no encoding
        return text
    data = text.encode("utf-8", "surrogatepass")
    if len(data) <= limit:
        return text
    return data[:limit].decode("utf-8", "ignore")


def _first_values(query: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for key, value in urllib.parse.parse_qsl(query, keep_blank_values=True):
        values.setdefault(key, value)
    return values


def page_parts(url: str, *, hash_mode: bool = False) -> PageParts:
    """Split a page URL into its stored columns (spec §3.2 steps 2, 3 and 8).

    - hostname: lower-cased (host names are case-insensitive and websites are
      stored lower-case; upstream kept the case as sent), without the port;
    - pathname: percent-decoded, query dropped, one trailing "/" removed unless
      the path is "/", "" for an empty path; with `hash_mode`, "#" and the
      decoded fragment are appended (upstream dropped it, spec §10.9); cut to
      MAX_PATHNAME_BYTES;
    - utm_*: the first value of each exact, case-sensitive key, URL-decoded,
      cut to MAX_UTM_BYTES.

    Raises:
        InvalidHit: `url` does not parse.
    """
    parts = _split_url(url, "page URL")
    path = urllib.parse.unquote(parts.path)
    if len(path) > 1 and path.endswith("/"):
        path = path[:-1]
    if hash_mode and parts.fragment:
        path = f"{path}#{urllib.parse.unquote(parts.fragment)}"
    utm = _first_values(parts.query)
    return PageParts(
        hostname=(parts.hostname or "").lower(),
        pathname=cut(path, MAX_PATHNAME_BYTES),
        utm_source=cut(utm.get("utm_source", ""), MAX_UTM_BYTES),
        utm_medium=cut(utm.get("utm_medium", ""), MAX_UTM_BYTES),
        utm_campaign=cut(utm.get("utm_campaign", ""), MAX_UTM_BYTES),
    )
