"""The ingest pipeline: a parsed hit, its request headers and the registered sites to the rows it stores.

Pure (no I/O, no shared state beyond bounded caches keyed by their inputs): the
enrichment of a load beacon (spec §3.2) in upstream's order — site check, bot,
two or more unknown enrichments, referrer, spam referrer — and the rows of a
custom event. What needs state (the client's rate limit and block lists
before it, the site's daily quota and the drop counters after it, the writer)
stays with the endpoint (api/events.py), which only wires these steps.

Every lookup a beacon repeats is cached by its inputs in a named, bounded
cache: the User-Agent's class and unknown count, the page URL's
parts, the referrer's class, the Accept-Language header. The time zone's
country is one dict lookup (ingest/geo.py) and needs none. A load takes them
in two looks: what its visitor's headers and time zone give (`_visitor`) and
what its page URL and referrer give (`_arrival`), each cached by its raw
inputs; the decisions that depend on the registered sites (the site check,
a self-referral, an internal referrer) are taken per hit, so the caches
never hold a stale answer when websites change.
"""

from __future__ import annotations

import functools
import secrets
from collections.abc import Container, Iterable
from typing import Final

from medama_core.hostnames import WWW, site_for
from medama_core.ingest import geo, referrer, useragent
from medama_core.ingest.hit import CustomHit, Hit, InvalidHit, LoadHit, PageParts, UnloadHit, page_parts
from medama_core.ingest.internal import NO_PATH, referrer_page
from medama_core.ingest.language import UNKNOWN_LANGUAGE, Language, parse_accept_language
from medama_core.ops import Duration, NewEvents, NewView

__all__ = [
    "BOT",
    "SPAM_REFERRER",
    "TOO_MANY_UNKNOWNS",
    "Dropped",
    "Row",
    "Rows",
    "UnknownSite",
    "cache_info",
    "new_batch_id",
    "rows_for",
]

# Upstream's rule: a hit with this many enrichments unknown (browser, OS, device,
# country, language) is almost certainly not a person, and is dropped.
MAX_UNKNOWNS: Final = 2

# Drop reasons this module decides, as stored in `drops.reason` (the others are api/events.py's).
BOT: Final = "bot"
SPAM_REFERRER: Final = "spam_referrer"
TOO_MANY_UNKNOWNS: Final = "too_many_unknowns"

# Browsers send a few dozen distinct Accept-Language values; 1,024 entries of at most
# 2 KiB (language.MAX_HEADER_CHARS) bound the cache at 2 MB and keep the hot set.
LANGUAGE_CACHE_SIZE: Final = 1024

# Real traffic repeats its pages and referrers (a site has a few hundred pages, most visits come
# from a few dozen referrer URLs): 4,096 entries of each, ~1 KB apiece, hold the hot set in ~8 MB
# and spare a URL parse (~5 µs) per hit. Errors (InvalidHit, InvalidReferrer) are never cached.
URL_CACHE_SIZE: Final = 4096

# A site sees a few hundred distinct User-Agent headers a day; 4,096 raw headers (at most
# useragent.MAX_UA_CHARS each is classified, ~0.3 KB typical) keep the hot set in ~2 MB and spare the
# header's trim and the class's unknown count on each hit (the classifier has its own cache behind).
USER_AGENT_CACHE_SIZE: Final = 4096

# A visit's page views send the same User-Agent, Accept-Language and time zone: the enrichment they give together
# (class, country, language, unknown count) is kept per raw triple, one look-up a view instead of three. Only for
# headers of at most VISITOR_KEY_CHARS together (browsers send ~150-300), so 4,096 entries stay under ~5 MB.
VISITOR_CACHE_SIZE: Final = 4096
VISITOR_KEY_CHARS: Final = 1024
# A page is reached from a few referrers (another page of the site, a search engine): what the page URL and the
# referrer give together (the page's parts, the referrer's class, its host and internal path) is kept per raw
# (URL, referrer, hash mode); for a URL and referrer of at most ARRIVAL_KEY_CHARS together (~100-200 typical),
# so 4,096 entries stay under ~10 MB. What depends on the registered sites is not kept (`_page_view`).
ARRIVAL_CACHE_SIZE: Final = 4096
ARRIVAL_KEY_CHARS: Final = 2048

WWW_CHARS: Final = len(WWW)  # how much longer or shorter a site's other name is

_CROCKFORD: Final = "0123456789abcdefghjkmnpqrstvwxyz"

language = functools.lru_cache(maxsize=LANGUAGE_CACHE_SIZE)(parse_accept_language)
page = functools.lru_cache(maxsize=URL_CACHE_SIZE)(page_parts)
classify_referrer = functools.lru_cache(maxsize=URL_CACHE_SIZE)(referrer.classify)


@functools.lru_cache(maxsize=USER_AGENT_CACHE_SIZE)
def agent_of(user_agent: str) -> tuple[useragent.Agent, int]:
    """The class of a raw User-Agent header and how many of its browser, OS and device are unknown."""
    agent = useragent.parse(user_agent)
    return agent, useragent.unknown_count(agent)


def _visitor_of(user_agent: str, accept_language: str, timezone: str) -> tuple[useragent.Agent, str, Language, int]:
    """The class of a User-Agent header, the country of a time zone and the language of an Accept-Language
    header (the unknown ones given as such), and how many of browser, OS, device, country and language are
    unknown."""
    agent, unknowns = agent_of(user_agent)
    country = geo.country_for(timezone)
    if country is None:
        unknowns += 1
        country = useragent.UNKNOWN
    lang = language(accept_language)
    if lang is None:
        unknowns += 1
        lang = UNKNOWN_LANGUAGE
    return agent, country, lang, unknowns


_visitor = functools.lru_cache(maxsize=VISITOR_CACHE_SIZE)(_visitor_of)

# A referrer that does not parse: its message, for the InvalidHit a hit with it gets.
Unreadable = str


def _arrival_of(
    url: str, referrer_url: str, hash_mode: bool
) -> tuple[PageParts, referrer.Referrer | referrer.Spam | Unreadable, str, str]:
    """A page URL's parts, its referrer's class (or why it does not parse), and the referrer's host and the path
    it stores when that host is the site's (ingest/internal.py). Raises `InvalidHit` for a page URL that does
    not parse (never cached)."""
    parts = page(url, hash_mode=hash_mode)
    source: referrer.Referrer | referrer.Spam | Unreadable
    try:
        source = classify_referrer(referrer_url, parts.hostname)
    except referrer.InvalidReferrer as exc:
        source = str(exc)
    host, path = referrer_page(referrer_url, hash_mode=hash_mode)
    return parts, source, host, path


_arrival = functools.lru_cache(maxsize=ARRIVAL_CACHE_SIZE)(_arrival_of)


Row = tuple[object, ...]  # values in store/rows.py VIEW_COLUMNS or EVENT_COLUMNS order


# What one hit stores: the registered site whose daily quota it takes ("" for an unload: none) and the writer's op,
# a load's `NewView` (its `views` row, its events, the path of its internal referrer), a custom event's `NewEvents`
# or an unload's `Duration`. A plain pair, not a class of its own: the writer's op is made once, here, per hit.
Rows = tuple[str, NewView | NewEvents | Duration]


class Dropped(Exception):
    """A hit dropped silently (204) for `reason`, counted for the registered site `hostname`."""

    def __init__(self, reason: str, hostname: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.hostname = hostname


class UnknownSite(Exception):
    """A hit for `host`, which no registered site has (404)."""

    def __init__(self, host: str) -> None:
        super().__init__(host)
        self.host = host


def rows_for(hit: Hit, user_agent: str, accept_language: str, sites: Container[str], now_ms: int) -> Rows:
    """The rows `hit`, received at `now_ms` with these User-Agent and Accept-Language headers, stores
    for one of the registered `sites`. Raises `Dropped`, `UnknownSite` or `InvalidHit` (a 4xx)."""
    if type(hit) is LoadHit:
        return _page_view(hit, user_agent, accept_language, sites, now_ms)
    if type(hit) is UnloadHit:
        return "", Duration(hit.bid, hit.duration_ms)
    assert type(hit) is CustomHit
    group = site_for(hit.group, sites)  # lower-case already, as websites are stored
    if group is None:
        raise UnknownSite(hit.group)
    return group, NewEvents(_event_rows(hit.bid, group, hit.properties.items(), now_ms))


def _page_view(hit: LoadHit, user_agent: str, accept_language: str, sites: Container[str], now_ms: int) -> Rows:
    """Enrich a load beacon into a `views` row (spec §3.2)."""
    url = hit.url
    referrer_url = hit.referrer
    if len(url) + len(referrer_url) <= ARRIVAL_KEY_CHARS:
        parts, source, referrer_host, referrer_path = _arrival(url, referrer_url, hit.hash_mode)
    else:
        parts, source, referrer_host, referrer_path = _arrival_of(url, referrer_url, hit.hash_mode)
    hostname = site_for(parts.hostname, sites)
    if hostname is None:
        raise UnknownSite(parts.hostname)
    if len(user_agent) + len(accept_language) <= VISITOR_KEY_CHARS:
        agent, country, lang, unknowns = _visitor(user_agent, accept_language, hit.timezone)
    else:
        agent, country, lang, unknowns = _visitor_of(user_agent, accept_language, hit.timezone)
    if agent.is_bot:
        raise Dropped(BOT, hostname)
    if unknowns >= MAX_UNKNOWNS:
        raise Dropped(TOO_MANY_UNKNOWNS, hostname)
    if isinstance(source, str):
        raise InvalidHit(source)
    if isinstance(source, referrer.Spam):
        raise Dropped(SPAM_REFERRER, hostname)
    host = source.host
    # From the site's other name (www. or not): not a referral. `site_for` finds `hostname` only for that very
    # name or its twin, four characters longer or shorter, so any other length needs no look.
    twin_length = abs(len(host) - len(hostname)) == WWW_CHARS
    if host and (host == hostname or (twin_length and site_for(host, sites) == hostname)):
        source = referrer.DIRECT
    view = (  # VIEW_COLUMNS order
        hit.bid,
        hostname,
        parts.pathname,
        hit.unique_user,
        hit.unique_page,
        source.host,
        source.group,
        country,
        lang.base,
        lang.dialect,
        agent.browser,
        agent.os,
        agent.device,
        parts.utm_source,
        parts.utm_medium,
        parts.utm_campaign,
        None,  # duration_ms: set by the unload
        now_ms,
    )
    events = _event_rows(hit.bid, hostname, hit.properties.items(), now_ms) if hit.properties else ()
    # The path of an internal referrer (none for external ones): entry and exit pages (docs/insights.md).
    # An external referrer (a host kept above) has none: only a self-referral is looked at, by its host
    # (ingest/internal.py internal_path's rule, with the site taken here).
    came_from = NO_PATH
    if referrer_path and not source.host and site_for(referrer_host, sites) == hostname:
        came_from = referrer_path
    return hostname, NewView(view, events, came_from)


def _event_rows(bid: str, group: str, properties: Iterable[tuple[str, str]], now_ms: int) -> list[Row]:
    """One `events` row per property, all sharing a new batch id (spec §3.2 step 9)."""
    batch_id = new_batch_id(now_ms)
    return [(bid, batch_id, group, name, value, now_ms) for name, value in properties]  # EVENT_COLUMNS order


def new_batch_id(now_ms: int) -> str:
    """`event_` + 26 Crockford base-32 characters: 48 bits of milliseconds, then 80 random bits (TypeID)."""
    value = (now_ms << 80) | secrets.randbits(80)
    return "event_" + "".join(_CROCKFORD[(value >> shift) & 31] for shift in range(125, -1, -5))


def cache_info() -> dict[str, functools._CacheInfo]:
    """Hits, misses and sizes of the pipeline's named caches (for the debug endpoint and the benchmarks)."""
    return {
        "user_agent": agent_of.cache_info(),
        "page_url": page.cache_info(),
        "referrer": classify_referrer.cache_info(),
        "accept_language": language.cache_info(),
        "visitor": _visitor.cache_info(),
        "arrival": _arrival.cache_info(),
    }
