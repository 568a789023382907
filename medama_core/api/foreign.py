"""Plausible's `POST /api/event` and Umami's `POST /api/send`: other tools' trackers, unchanged, pointed at us.

Each body is read by its pure parser (ingest/plausible.py, ingest/umami.py),
becomes our own hits, and goes through the same pipeline as `/api/event/hit`
(events.ingest). What these handlers add is the answer each script expects and
the matching of id-less follow-ups to their view (ingest/openviews.py).
"""

from __future__ import annotations

import secrets
import time
from typing import Final

from medama_core.api import Context, events
from medama_core.http.errors import HTTPError
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


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").partition(";")[0].strip().lower()


def _key(request: Request, site: str, url: str) -> ViewKey:
    """What the view row of this request stores besides its page: the key of its open view."""
    agent = useragent.parse(request.headers.get("user-agent", ""))
    language = parse_accept_language(request.headers.get("accept-language", ""))
    tag = f"{language.base}/{language.dialect}" if language else ""
    return ViewKey(site, url, agent.browser, agent.os, agent.device, tag)


def _site(ctx: Context, name: str) -> str | None:
    """The registered site a hit names: itself, or its other name with or without `www.`."""
    if name in ctx.hostnames:
        return name
    other = name[4:] if name.startswith("www.") else f"www.{name}"
    return other if other in ctx.hostnames else None


async def _view(
    request: Request, ctx: Context, site: str, url: str, referrer: str, props: dict[str, str], *, hash_mode: bool
) -> bool:
    now_ms = int(time.time() * 1000)
    bid = generated_bid(now_ms, secrets.randbits(64))
    entry = is_visit_entry(referrer, site)
    # From the site itself: "", as our tracker sends for in-page navigation (and a path is no URL).
    hit = LoadHit(bid, url, referrer if entry else "", entry, True, "", props, hash_mode)
    stored = await events.ingest(hit, request, ctx)
    if stored:
        ctx.open_views.open(_key(request, site, url), bid, now_ms)
    return stored


async def _custom(request: Request, ctx: Context, site: str, url: str, props: dict[str, str]) -> bool:
    view = ctx.open_views.latest(_key(request, site, url), int(time.time() * 1000))
    return await events.ingest(CustomHit(site, props, view.bid if view else ""), request, ctx)


async def _engagement(request: Request, ctx: Context, site: str, url: str, engaged_ms: int) -> bool:
    if engaged_ms <= 0:
        return False
    view = ctx.open_views.engage(_key(request, site, url), engaged_ms, int(time.time() * 1000))
    if view is None:
        return False
    return await events.ingest(UnloadHit(view.bid, view.engaged_ms), request, ctx)


async def post_plausible_event(request: Request, ctx: Context) -> Response:
    """`POST /event`: a Plausible event; 202 as Plausible answers, with X-Plausible-Dropped when not stored."""
    if _media_type(request) not in PLAUSIBLE_MEDIA_TYPES:
        raise HTTPError(415, f"unsupported content type {_media_type(request) or 'none'!r}; send application/json")
    try:
        event = plausible.parse_event(request.body)
        sites = [_site(ctx, domain) for domain in event.domains]
        dropped = sites.count(None)
        for _ in range(dropped):
            events.count_unknown_site(ctx)
        for site in dict.fromkeys(s for s in sites if s is not None):  # `www.a.com,a.com`: one site, one hit
            url = event.page_url(site)
            if event.name == plausible.PAGEVIEW:
                props = dict(event.properties)
                stored = await _view(request, ctx, site, url, event.referrer, props, hash_mode=event.hash_mode)
            elif event.name == plausible.ENGAGEMENT:
                stored = await _engagement(request, ctx, site, url, event.engaged_ms)
            else:
                stored = await _custom(request, ctx, site, url, dict(event.properties))
            dropped += not stored
    except InvalidHit as exc:
        raise HTTPError(400, str(exc)) from None
    headers = [(DROPPED_HEADER, str(dropped))] if dropped else []
    return Response(202, b"ok", "text/plain; charset=utf-8", headers)


async def post_umami_send(request: Request, ctx: Context) -> Response:
    """`POST /send`: an Umami event; 200 `{}`, the one answer for every visitor (no cache token)."""
    try:
        event = umami.parse_send(request.body)
        if event.kind == umami.IDENTIFY:
            return json_response({})  # nothing of it is stored: it describes a person
        site = ctx.umami_ids.get(event.website) or _site(ctx, event.hostname)
        if site is None:
            events.count_unknown_site(ctx)
            raise HTTPError(404, "website not found")
        url = event.page_url(site)
        if event.kind == umami.VIEW:
            await _view(request, ctx, site, url, event.referrer, {}, hash_mode=False)
        else:
            await _custom(request, ctx, site, url, dict(event.properties))
    except InvalidHit as exc:
        raise HTTPError(400, str(exc)) from None
    return json_response({})
