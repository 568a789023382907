"""What a hit from another tool's tracker lacks, and how it is filled in: uniqueness, the site's URL, properties.

Plausible's and Umami's scripts never call `/api/event/ping`, so the
browser-cache answer our own tracker carries in `p` and `q` is missing. It
is not made up from anything about the person (no address, no hash, nothing
kept between requests): a view counts as the visitor's first of the day
(`p`) when it starts a visit, that is when its referrer is empty or names
another site, and as the first view of its page (`q`) always. So a visitor
who comes back the same day from outside counts again, and a page seen twice
in a day counts twice (docs/migrate.md says what this changes in the numbers).
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Final

from medama_core.ingest.hit import (
    MAX_PROPERTIES,
    MAX_PROPERTIES_BYTES,
    MAX_PROPERTY_KEY_CHARS,
    MAX_PROPERTY_VALUE_CHARS,
    MAX_URL_CHARS,
    SNIFF_BYTES,
    HitTooLarge,
    InvalidHit,
)

__all__ = [
    "EVENT_PROPERTY",
    "generated_bid",
    "is_visit_entry",
    "limited",
    "properties",
    "site_url",
    "sniffer",
]

# The property a foreign custom event's name is stored under ("Signup" -> event=Signup), so
# `plausible("Signup", {props: {plan: "pro"}})` stores what `data-m:click="event=Signup; plan=pro"` does.
EVENT_PROPERTY: Final = "event"


def _bare(host: str) -> str:
    host = host.lower().rstrip(".")
    return host[4:] if host.startswith("www.") else host


def is_visit_entry(referrer: str, site: str) -> bool:
    """Whether a view with this referrer starts a visit of `site`: no referrer, or one from another host.

    A referrer that is not an absolute http(s) URL (Umami 2.10 sends the previous
    path on in-page navigation) is from the site itself. `www.` is ignored on both sides.
    """
    if not referrer:
        return True
    try:
        parts = urllib.parse.urlsplit(referrer)
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    return _bare(parts.hostname) != _bare(site)


def site_url(url: str, site: str) -> str:
    """`url` with its scheme and host replaced by https and `site`: the site a hit names is the one it counts for.

    A relative URL ("/path?q", as Umami 2.10 sends it) is taken on `site`. Raises
    `InvalidHit` when `url` is neither an absolute http(s) URL nor a path.
    """
    if len(url) > MAX_URL_CHARS:
        raise InvalidHit(f"URL longer than {MAX_URL_CHARS} characters")
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        raise InvalidHit("URL does not parse") from None
    if parts.scheme:
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise InvalidHit("URL must be an absolute http(s) URL or a path")
    elif parts.netloc or not url.startswith("/"):
        raise InvalidHit("URL must be an absolute http(s) URL or a path")
    return urllib.parse.urlunsplit(("https", site, parts.path or "/", parts.query, parts.fragment))


def _value(key: str, value: object) -> str:
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, (int, float, str)):
        text = value if isinstance(value, str) else json.dumps(value)
    elif value is None:
        text = ""
    else:  # Umami flattens nested objects; a JSON text keeps them readable without inventing keys
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    if len(text) > MAX_PROPERTY_VALUE_CHARS:
        raise HitTooLarge(f'property "{key}" longer than {MAX_PROPERTY_VALUE_CHARS} characters')
    return text


def properties(value: object, what: str) -> dict[str, str]:
    """A foreign tracker's property object as stored text values; `None` is none, anything but an object a 400.

    Plausible's older scripts send the object as JSON text, which is read too.
    Empty values are left out, as our tracker leaves out `key=` pairs. Past a
    size limit of our own hits' properties (ingest/hit.py) it raises HitTooLarge
    (413), as `/api/event/hit` does; `limited` checks what is finally stored.
    """
    if value is None:
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value) if value else {}
        except ValueError:
            raise InvalidHit(f'"{what}" must be an object') from None
    if not isinstance(value, Mapping):
        raise InvalidHit(f'"{what}" must be an object')
    if len(value) > MAX_PROPERTIES:
        raise HitTooLarge(f"more than {MAX_PROPERTIES} custom properties")
    stored: dict[str, str] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not key:
            raise InvalidHit("property names must not be empty")
        if len(key) > MAX_PROPERTY_KEY_CHARS:
            raise HitTooLarge(f"property names must be at most {MAX_PROPERTY_KEY_CHARS} characters")
        text = _value(key, item)
        if text:
            stored[key] = text
    return stored


def limited(stored: Mapping[str, str]) -> dict[str, str]:
    """The properties a foreign hit stores (its own and the event name, revenue and currency added to
    them), within the count and byte limits of our own hits' properties; HitTooLarge (413) past them."""
    if len(stored) > MAX_PROPERTIES:
        raise HitTooLarge(f"more than {MAX_PROPERTIES} custom properties (the event name counts as one)")
    if sum(len(key.encode()) + len(value.encode()) for key, value in stored.items()) > MAX_PROPERTIES_BYTES:
        raise HitTooLarge(f"custom properties larger than {MAX_PROPERTIES_BYTES} bytes (names and values, UTF-8)")
    return dict(stored)


def sniffer(*keys: str) -> Callable[[bytes], str]:
    """A reader of the site a raw body names under one of `keys` in its first SNIFF_BYTES (lower-cased, or ""),
    without parsing it: for counting a drop of a body refused before or at parsing, as ingest/hit.py's
    `sniff_host` does for ours. Only a run of host name characters is taken; the caller keeps it only if it
    is a registered site."""
    names = b"|".join(re.escape(key.encode()) for key in keys)
    pattern = re.compile(rb'"(?:' + names + rb')"\s*:\s*"([A-Za-z0-9.-]{1,253})')

    def sniff(body: bytes) -> str:
        found = pattern.search(body, 0, SNIFF_BYTES)
        return found.group(1).decode("ascii").lower() if found is not None else ""

    return sniff


def generated_bid(now_ms: int, random_bits: int) -> str:
    """A beacon id made on the server for a view whose tracker sends none: base36 time, then 64 random bits.

    The same shape as our tracker's (time first, so ids sort by creation); it names
    the view, not the visitor, and no later request can carry it back.
    """
    return _base36(now_ms) + _base36(random_bits)


def _base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        number, rest = divmod(number, 36)
        out = digits[rest] + out
        if not number:
            return out
