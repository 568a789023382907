"""Umami's collect API (`POST /api/send`): its body read, and what of it becomes a view or a custom event.

`{"type": "event", "payload": {website, hostname, url, referrer, title, screen,
language, name, data, tag}}`: without `name` a page view, with it a custom event
whose `data` are its properties (and `event=<name>`). `identify` bodies are
accepted and dropped whole: their `id` and `data` describe a person, which we do
not store. Newer scripts also send `id` and `vid` (a visitor id kept in
localStorage) on every event: never read. `title`, `screen` and `tag` have no
column and are not kept.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from medama_core.ingest.foreign import EVENT_PROPERTY, limited, properties, site_url, sniffer
from medama_core.ingest.hit import MAX_GROUP_CHARS, MAX_URL_CHARS, InvalidHit
from medama_core.ingest.hit import _decode as decode_body

__all__ = ["EVENT", "IDENTIFY", "VIEW", "UmamiEvent", "parse_send", "sniff_hostname"]

VIEW: Final = "view"
EVENT: Final = "event"
IDENTIFY: Final = "identify"

# Umami's website ids are UUIDs (36 characters); a little room for other forms of alias.
MAX_WEBSITE_ID_CHARS: Final = 64
# Umami's own limit on an event name (its schema: 50 characters); a little room.
MAX_NAME_CHARS: Final = 128

# The site a raw body names by host name, for counting a drop of a body refused before or at parsing.
sniff_hostname: Final = sniffer("hostname")


@dataclass(frozen=True, slots=True)
class UmamiEvent:
    kind: str  # VIEW, EVENT or IDENTIFY
    website: str = ""
    hostname: str = ""
    url: str = ""  # as sent: a path (2.10) or an absolute URL (later scripts)
    referrer: str = ""
    properties: Mapping[str, str] = field(default_factory=dict)

    def page_url(self, site: str) -> str:
        return site_url(self.url, site)


def _text(obj: Mapping[str, object], key: str, limit: int, *, required: bool = False) -> str:
    value = obj.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value):
        raise InvalidHit(f'"payload.{key}" must be a {"non-empty " if required else ""}string')
    if len(value) > limit:
        raise InvalidHit(f'"payload.{key}" longer than {limit} characters')
    return value


def _decoded(text: str) -> str:
    """Undo the script's `encodeURI` (2.10); a later script's plain URL is unchanged by it."""
    return urllib.parse.unquote(text) if "%" in text else text


def parse_send(body: bytes) -> UmamiEvent:
    """Validate a `POST /api/send` body.

    Raises:
        InvalidHit: with a message fit for the client, for any body that is not a
            valid event; no other exception escapes.
    """
    obj = decode_body(body)
    kind = obj.get("type")
    if kind not in (EVENT, IDENTIFY):
        raise InvalidHit('"type" must be "event" or "identify"')
    payload = obj.get("payload")
    if not isinstance(payload, dict):
        raise InvalidHit('"payload" must be an object')
    if kind == IDENTIFY:
        return UmamiEvent(IDENTIFY)
    website = _text(payload, "website", MAX_WEBSITE_ID_CHARS)
    hostname = _text(payload, "hostname", MAX_GROUP_CHARS).lower()
    if not website and not hostname:
        raise InvalidHit('"payload" must name the site by "website" or "hostname"')
    url = _text(payload, "url", MAX_URL_CHARS, required=True)
    site_url(url, hostname or "localhost")  # usable before anything is stored
    referrer = _decoded(_text(payload, "referrer", MAX_URL_CHARS))
    name = _text(payload, "name", MAX_NAME_CHARS)
    if not name:
        return UmamiEvent(VIEW, website, hostname, url, referrer)
    props = properties(payload.get("data"), "payload.data")
    return UmamiEvent(EVENT, website, hostname, url, referrer, limited({**props, EVENT_PROPERTY: name}))
