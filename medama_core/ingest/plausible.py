"""Plausible's event API (`POST /api/event`): its body read, and mapped onto our view, duration and custom hits.

Plausible's scripts send short keys (`n`, `u`, `d`, `r`, `p`, `h`, `$`, and on
`engagement` events `e` engaged milliseconds and `sd` scroll depth); its
documented API takes the long ones (`name`, `url`, `domain`, `referrer`,
`props`, `revenue`). Both are read. The mapping:

- `pageview` -> a `LoadHit` per site named in `d` (a comma list names several),
  under a beacon id made here, uniqueness by `foreign.is_visit_entry`;
- `engagement` -> an `Engagement`: milliseconds to add to the view it belongs to
  (found by `openviews.OpenViews`, since the script sends no id); `sd` is not kept;
- Plausible's own goals for what our tracker's insight builds record take our
  tracker's property names, so they land in the same panels: `Outbound Link: Click`
  {url} -> `outbound-link`, `outbound-host`; `File Download` {url} -> `file-download`,
  `file-type`; `404` {path} -> `404`;
- any other name -> a `CustomHit` with the props and `event=<name>`, and the
  revenue as `revenue` and `currency` properties.
"""

from __future__ import annotations

import posixpath
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from medama_core.ingest.foreign import EVENT_PROPERTY, limited, properties, site_url, sniffer
from medama_core.ingest.hit import MAX_DURATION_MS, MAX_GROUP_CHARS, MAX_URL_CHARS, InvalidHit
from medama_core.ingest.hit import _decode as decode_body

__all__ = ["MAX_DOMAINS", "PAGEVIEW", "ENGAGEMENT", "PlausibleEvent", "parse_event", "sniff_domain"]

PAGEVIEW: Final = "pageview"
ENGAGEMENT: Final = "engagement"

# Plausible's own limit on an event name (its events schema: 120 characters).
MAX_NAME_CHARS: Final = 120
# A "rollup" snippet names a few sites (`data-domain="a.com,b.com"`); each is one more row.
MAX_DOMAINS: Final = 8

# Plausible's names for the goals its outbound-links, file-downloads and 404 scripts send
# (its docs: "Outbound Link: Click", "File Download", "404"), and the property each carries.
OUTBOUND_EVENT: Final = "Outbound Link: Click"
DOWNLOAD_EVENT: Final = "File Download"
NOT_FOUND_EVENT: Final = "404"
# Our tracker's caps on those values (tracker.js: link addresses 512, a not-found route 256).
MAX_LINK_CHARS: Final = 512
MAX_ROUTE_CHARS: Final = 256
# A file type is the extension of the link's last path segment: letters and digits, at most this long.
MAX_FILE_TYPE_CHARS: Final = 10

# The (first) site a raw body names, for counting a drop of a body refused before or at parsing.
sniff_domain: Final = sniffer("d", "domain")


@dataclass(frozen=True, slots=True)
class PlausibleEvent:
    name: str
    url: str  # as sent
    domains: tuple[str, ...]  # lower-cased, `www.` kept (the site lookup tells www and apex apart or not)
    referrer: str = ""
    properties: Mapping[str, str] = field(default_factory=dict)
    hash_mode: bool = False
    engaged_ms: int = 0  # `engagement` only: engaged time since the script's previous report

    def page_url(self, site: str) -> str:
        """The page URL under `site`, the host the view is stored for."""
        return site_url(self.url, site)


def _field(obj: Mapping[str, object], short: str, long: str) -> object:
    return obj[short] if short in obj else obj.get(long)


def _text(value: object, what: str, limit: int, *, required: bool) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value):
        raise InvalidHit(f'"{what}" must be a non-empty string' if required else f'"{what}" must be a string')
    if len(value) > limit:
        raise InvalidHit(f'"{what}" longer than {limit} characters')
    return value


def _domains(value: object) -> tuple[str, ...]:
    text = _text(value, "d", MAX_GROUP_CHARS * MAX_DOMAINS, required=True)
    domains = tuple(dict.fromkeys(part.strip().lower() for part in text.split(",") if part.strip()))
    if not domains:
        raise InvalidHit('"d" must name a site')
    if len(domains) > MAX_DOMAINS:
        raise InvalidHit(f'"d" names more than {MAX_DOMAINS} sites')
    return domains


def _revenue(value: object) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidHit('"$" must be an object with amount and currency')
    amount, currency = value.get("amount"), value.get("currency")
    if isinstance(amount, bool) or not isinstance(amount, (int, float, str)) or not isinstance(currency, str):
        raise InvalidHit('"$" must be an object with amount and currency')
    return properties({"revenue": amount, "currency": currency}, "$")


def _engaged(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_DURATION_MS:
        raise InvalidHit(f'"e" must be a whole number of milliseconds from 0 to {MAX_DURATION_MS}')
    return value


def insight_properties(name: str, props: Mapping[str, str]) -> dict[str, str] | None:
    """Our tracker's properties for one of Plausible's outbound, download or 404 goals; None for another event."""
    if name == NOT_FOUND_EVENT and props.get("path"):
        return {"404": props["path"][:MAX_ROUTE_CHARS]}
    link = props.get("url", "")
    if name not in (OUTBOUND_EVENT, DOWNLOAD_EVENT) or not link:
        return None
    try:
        parts = urllib.parse.urlsplit(link)
        host = parts.hostname or ""
    except ValueError:  # e.g. an unclosed IPv6 bracket: kept as a plain custom event
        return None
    address = link.split("#", 1)[0][:MAX_LINK_CHARS]
    if name == OUTBOUND_EVENT:
        return {"outbound-link": address, "outbound-host": host} if host else None
    found = {"file-download": address}
    extension = posixpath.splitext(parts.path)[1][1:].lower()
    if extension.isascii() and extension.isalnum() and len(extension) <= MAX_FILE_TYPE_CHARS:
        found["file-type"] = extension
    return found


def parse_event(body: bytes) -> PlausibleEvent:
    """Validate a `POST /api/event` body.

    Raises:
        InvalidHit: with a message fit for the client, for any body that is not a
            valid event; no other exception escapes.
    """
    obj = decode_body(body)
    name = _text(_field(obj, "n", "name"), "n", MAX_NAME_CHARS, required=True)
    url = _text(_field(obj, "u", "url"), "u", MAX_URL_CHARS, required=True)
    domains = _domains(_field(obj, "d", "domain"))
    referrer = _text(_field(obj, "r", "referrer"), "r", MAX_URL_CHARS, required=False)
    props = limited(properties(_field(obj, "p", "props"), "p"))
    hash_value = _field(obj, "h", "hash_mode")
    if hash_value not in (None, 0, 1, True, False) or isinstance(hash_value, float):
        raise InvalidHit('"h" must be 0 or 1')
    event = PlausibleEvent(name, url, domains, referrer, props, bool(hash_value))
    site_url(url, domains[0])  # the URL must be usable before anything is stored
    if name == ENGAGEMENT:
        return PlausibleEvent(name, url, domains, referrer, props, event.hash_mode, _engaged(obj.get("e", 0)))
    if name != PAGEVIEW and (insight := insight_properties(name, props)) is not None:
        return PlausibleEvent(name, url, domains, referrer, insight, event.hash_mode)
    if name != PAGEVIEW:
        extra = {EVENT_PROPERTY: name, **_revenue(_field(obj, "$", "revenue"))}
        return PlausibleEvent(name, url, domains, referrer, limited({**props, **extra}), event.hash_mode)
    return event
