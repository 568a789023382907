"""Plausible's `POST /api/event` and Umami's `POST /api/send`: other tools' trackers, unchanged, pointed at us.

Each body is read by its pure parser (ingest/plausible.py, ingest/umami.py),
becomes our own hits, and goes through the same pipeline as `/api/event/hit`
(events.ingest): the same rate limit, block lists, site matching
(hostnames.site_for), drops with their reasons and sites, and daily quota.
What these handlers add is the answer each script expects and the matching of
id-less follow-ups to their view (ingest/openviews.py).
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Final

from medama_core.api import Context, events
from medama_core.hostnames import site_for
from medama_core.http.protocol import Request, Response, json_response
from medama_core.ingest import plausible, umami, useragent
from medama_core.ingest.foreign import generated_bid, is_visit_entry
from medama_core.ingest.hit import CustomHit, InvalidHit, LoadHit, UnloadHit
from medama_core.ingest.language import parse_accept_language
from medama_core.ingest.openviews import ViewKey

# Plausible's script posts text/plain (no preflight); its API clients send application/json.
PLAUSIBLE_MEDIA_TYPES: Final = frozenset({"application/json", "text/plain"})
# Plausible's server answers a dropped event 202 with this header (the count dropped).
DROPPED_HEADER: Final = "X-Plausible-Dropped"


def _key(request: Request, site: str, url: str) -> ViewKey:
    """What the view row of this request stores besides its page: the key of its open view."""
    agent = useragent.parse(request.headers.get("user-agent", ""))
    language = parse_accept_language(request.headers.get("accept-language", ""))
    tag = f"{language.base}/{language.dialect}" if language else ""
    return ViewKey(site, url, agent.browser, agent.os, agent.device, tag)


# One visit of the pipeline: the request, its client's IP (charged to the rate limit once per request),
# the registered site and the page URL under it.
@dataclass(frozen=True, slots=True)
class _Hit:
    request: Request
    ctx: Context
    ip: str | None
    site: str
    url: str


async def _view(at: _Hit, referrer: str, props: dict[str, str], *, hash_mode: bool) -> bool:
    now_ms = int(time.time() * 1000)
    bid = generated_bid(now_ms, secrets.randbits(64))
    entry = is_visit_entry(referrer, at.site)
    # From the site itself: "", as our tracker sends for in-page navigation (and a path is no URL).
    hit = LoadHit(bid, at.url, referrer if entry else "", entry, True, "", props, hash_mode)
    stored = await events.ingest(hit, at.request, at.ctx, at.ip)
    if stored:
        at.ctx.open_views.open(_key(at.request, at.site, at.url), bid, now_ms)
    return stored


async def _custom(at: _Hit, props: dict[str, str]) -> bool:
    view = at.ctx.open_views.latest(_key(at.request, at.site, at.url), int(time.time() * 1000))
    return await events.ingest(CustomHit(at.site, props, view.bid if view else ""), at.request, at.ctx, at.ip)


async def _engagement(at: _Hit, engaged_ms: int) -> bool:
    if engaged_ms <= 0:
        return False
    view = at.ctx.open_views.engage(_key(at.request, at.site, at.url), engaged_ms, int(time.time() * 1000))
    if view is None:
        return False
    return await events.ingest(UnloadHit(view.bid, view.engaged_ms), at.request, at.ctx, at.ip)


async def post_plausible_event(request: Request, ctx: Context) -> Response:
    """`POST /event`: a Plausible event; 202 as Plausible answers, with X-Plausible-Dropped when not stored."""
    ip = events.client(request, ctx, plausible.sniff_domain)
    media_type = events.request_media_type(request)
    if media_type not in PLAUSIBLE_MEDIA_TYPES:
        message = f"unsupported content type {media_type or 'none'!r}; send application/json"
        raise events.refuse_payload(ctx, 415, message, events.sniffed_site(ctx, request.body, plausible.sniff_domain))
    try:
        event = plausible.parse_event(request.body)
    except InvalidHit as exc:
        named = events.sniffed_site(ctx, request.body, plausible.sniff_domain)
        raise events.refuse_payload(ctx, exc.status, str(exc), named) from None
    sites: list[str] = []
    dropped = 0
    for domain in event.domains:
        registered = site_for(domain, ctx.hostnames)
        if registered is None:
            events.unknown_site(ctx, domain)  # counted; Plausible answers it 202 all the same
            dropped += 1
        else:
            sites.append(registered)
    for site in dict.fromkeys(sites):  # `www.a.com,a.com`: one site, one hit
        at = _Hit(request, ctx, ip, site, event.page_url(site))
        if event.name == plausible.PAGEVIEW:
            stored = await _view(at, event.referrer, dict(event.properties), hash_mode=event.hash_mode)
        elif event.name == plausible.ENGAGEMENT:
            stored = await _engagement(at, event.engaged_ms)
        else:
            stored = await _custom(at, dict(event.properties))
        dropped += not stored
    headers = [(DROPPED_HEADER, str(dropped))] if dropped else []
    return Response(202, b"ok", "text/plain; charset=utf-8", headers)


async def post_umami_send(request: Request, ctx: Context) -> Response:
    """`POST /send`: an Umami event; 200 `{}`, the one answer for every visitor (no cache token)."""
    ip = events.client(request, ctx, umami.sniff_hostname)
    try:
        event = umami.parse_send(request.body)
    except InvalidHit as exc:
        named = events.sniffed_site(ctx, request.body, umami.sniff_hostname)
        raise events.refuse_payload(ctx, exc.status, str(exc), named) from None
    if event.kind == umami.IDENTIFY:
        return json_response({})  # nothing of it is stored: it describes a person
    site = ctx.umami_ids.get(event.website) or site_for(event.hostname, ctx.hostnames)
    if site is None:
        raise events.unknown_site(ctx, event.hostname)
    at = _Hit(request, ctx, ip, site, event.page_url(site))
    if event.kind == umami.VIEW:
        await _view(at, event.referrer, {}, hash_mode=False)
    else:
        await _custom(at, dict(event.properties))
    return json_response({})
