"""Share links: /websites/{hostname}/shares to make and revoke them, /share/{id}/... to read a site through one.

A share's stats are answered by the stats handlers themselves (api/stats.py,
api/imported.py), called with the share's site, so they are what the site's
own dashboard shows, on whichever engine computes them. This module only
narrows the request (the share's panels; under a k-anonymity floor, filters
on values the share shows: kfloor.py) and the answer (rows of fewer than k
visitors). Who may call which route is checked before (app.ROUTES, access.py).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final
from urllib.parse import urlencode

from medama_core import access, auth, kfloor, passwords, sharelinks, throttle
from medama_core.api import Context, cookie_secure, imported, stats
from medama_core.http.errors import HTTPError
from medama_core.http.jsonbody import (
    json_object,
    optional_int,
    optional_string,
    optional_string_list,
    required_string,
)
from medama_core.http.protocol import Request, Response, json_response
from medama_core.store import protocol as meta
from medama_core.store.filters import Filter

DEFAULT_K: Final = 5  # a public dashboard hides rows of fewer than 5 visitors unless its owner says otherwise
PASSWORD_MIN, PASSWORD_MAX = 5, 128  # as account passwords
MAX_EXPIRY_S: Final = 253_402_300_799  # 9999-12-31, the last date JavaScript and RFC 3339 both show
SHARE_NOT_FOUND: Final = "share not found"
WRONG_PASSWORD: Final = "share password is wrong"

Handler = Callable[[Request, Context], Awaitable[Response]]
# The stats a share answers, each by the handler the site's own dashboard calls.
STATS: Final[dict[str, Handler]] = {**stats.HANDLERS, "imported": imported.get_imported}
# What a share may be limited to: every list (the totals, chart and imported-days note are always shown).
PANELS: Final = tuple(name for name in stats.HANDLERS if name != "summary")


def share_json(share: meta.Share) -> dict[str, Any]:
    """A share as its site's admins see it: everything but the password (only whether it has one)."""
    return {
        "id": share.id,
        "name": share.name,
        "hostname": share.hostname,
        "path": f"/share/{share.id}",
        "k": share.k,
        "panels": list(share.panels),
        "frameAncestors": list(share.frame_ancestors),
        "passwordProtected": share.password is not None,
        "dateCreated": share.date_created,
        "dateExpires": share.date_expires,
    }


async def list_shares(request: Request, ctx: Context) -> Response:
    shares = await ctx.meta.list_shares(request.path_params["hostname"])
    return json_response([share_json(share) for share in shares])


def _panels(body: dict[str, Any]) -> tuple[str, ...]:
    panels = optional_string_list(body, "panels", len(PANELS)) or []
    unknown = [panel for panel in panels if panel not in PANELS]
    if unknown:
        raise HTTPError(400, f"panels: {unknown[0][:40]!r} is not one of {', '.join(PANELS)}")
    return tuple(panels)


def _frame_ancestors(body: dict[str, Any]) -> tuple[str, ...]:
    origins = optional_string_list(body, "frameAncestors", sharelinks.MAX_FRAME_ANCESTORS) or []
    for origin in origins:
        problem = sharelinks.frame_ancestor_problem(origin)
        if problem is not None:
            raise HTTPError(400, f"frameAncestors: {problem}")
    return tuple(origins)


async def post_share(request: Request, ctx: Context) -> Response:
    """A new link to the site's dashboard: a name, a floor k, an optional password, expiry (Unix
    seconds), panels and the origins that may embed it."""
    hostname = request.path_params["hostname"]
    body = json_object(request)
    name = optional_string(body, "name", 0, sharelinks.NAME_MAX) or ""
    k = optional_int(body, "k", 0, sharelinks.K_MAX)
    password = optional_string(body, "password", PASSWORD_MIN, PASSWORD_MAX) if body.get("password") else None
    now = int(time.time())
    expires = optional_int(body, "dateExpires", 0, MAX_EXPIRY_S) if body.get("dateExpires") is not None else None
    if expires is not None and expires <= now:
        raise HTTPError(400, "dateExpires: must be in the future")
    panels, ancestors = _panels(body), _frame_ancestors(body)
    if len(await ctx.meta.list_shares(hostname)) >= sharelinks.MAX_SHARES_PER_SITE:
        raise HTTPError(409, f"a website may have at most {sharelinks.MAX_SHARES_PER_SITE} share links")
    hashed = None
    if password is not None:
        async with ctx.auth.hashing:
            hashed = await asyncio.to_thread(passwords.hash_password, password)
    share = meta.Share(
        sharelinks.new_id(), hostname, name, hashed, DEFAULT_K if k is None else k, panels, ancestors, now, expires
    )
    try:
        await ctx.meta.insert_share(share)
    except meta.MissingWebsite:
        raise HTTPError(404, access.SITE_NOT_FOUND) from None  # deleted since the access check
    return json_response(share_json(share), 201)


async def delete_share(request: Request, ctx: Context) -> Response:
    """Revoke a link: its page and API answer 404 from the next request on."""
    if not await ctx.meta.delete_share(request.path_params["hostname"], request.path_params["id"]):
        raise HTTPError(404, SHARE_NOT_FOUND)
    return Response(204)


# --- reading a site through a share (access: share:read) ---


def _share(request: Request) -> meta.Share:
    found = access.caller(request).share
    if found is None:
        raise HTTPError(404, SHARE_NOT_FOUND)
    return found


async def get_share(request: Request, ctx: Context) -> Response:
    """What the shared dashboard needs to draw itself: the site, its name, the floor and the panels shown."""
    share = _share(request)
    return json_response(
        {
            "id": share.id,
            "name": share.name,
            "hostname": share.hostname,
            "k": share.k,
            "panels": list(share.panels or PANELS),
            "dateExpires": share.date_expires,
        }
    )


async def post_share_auth(request: Request, ctx: Context) -> Response:
    """Open a share that has a password: a cookie for that share's API, for a day. Throttled as sign-in."""
    share_id = request.path_params["share"]
    password = required_string(json_object(request), "password", 1, PASSWORD_MAX)
    share = await ctx.meta.get_share(share_id) if sharelinks.well_formed_id(share_id) else None
    now = int(time.time())
    if share is None:
        raise HTTPError(404, SHARE_NOT_FOUND)
    if share.date_expires is not None and share.date_expires <= now:
        raise HTTPError(404, access.SHARE_GONE)
    stored = share.password
    if stored is None:
        return Response(204)  # nothing to open
    keys = throttle.login_keys(auth.client_network(request, ctx.config.trustedproxies), f"share:{share.id}")

    async def check() -> bool:
        return await auth.verify_hash(ctx.auth, ctx.log, stored, password)

    if not await auth.throttled(ctx.auth, ctx.log, keys, check):
        raise HTTPError(401, WRONG_PASSWORD)
    until = now + sharelinks.COOKIE_LIFETIME_S
    if share.date_expires is not None:
        until = min(until, share.date_expires)
    token = sharelinks.cookie_token(share.id, stored, until)
    secure = cookie_secure(request, ctx)
    cookie = sharelinks.set_cookie(share.id, token, secure=secure, embedded=bool(share.frame_ancestors))
    return Response(204, headers=[("Set-Cookie", cookie)])


async def _call(ctx: Context, name: str, share: meta.Share, query: list[tuple[str, str]]) -> Response:
    """The site's own stats handler for `name`, as if its dashboard asked with this query."""
    inner = Request(
        "GET",
        f"/api/website/{share.hostname}/{name}",
        urlencode(query),
        path_params={"hostname": share.hostname},
    )
    return await STATS[name](inner, ctx)


def _answer(response: Response) -> Any:
    """A handler's JSON answer; its refusal (a bad parameter) raised as it was given."""
    data = json.loads(response.body)
    if response.status != 200:
        raise HTTPError(response.status, str(data["error"]["message"]))
    return data


async def _check_filters(
    ctx: Context, share: meta.Share, filters: tuple[Filter, ...], pairs: list[tuple[str, str]]
) -> None:
    """403 for a filter on stats the share does not show, and under a floor, for a filter that could
    reach values it hides: not eq/in, naming a hidden value, or selecting fewer than k visitors."""
    for flt in filters:
        shown_by = kfloor.endpoint_of(flt.field)
        if share.panels and shown_by not in share.panels:
            raise HTTPError(403, f"{flt.field}: this share does not show {shown_by}")
    if not filters or not kfloor.active(share.k):
        return
    for flt in filters:
        problem = kfloor.filter_problem(flt, filters, share.k)
        if problem is not None:
            raise HTTPError(403, problem)
    period = [(key, value) for key, value in pairs if key in ("start", "end")]
    for flt in filters:
        endpoint, variants, key = kfloor.value_lists(flt, filters)
        shown: set[str] = set()
        for extra in variants:
            rows = _answer(await _call(ctx, endpoint, share, [*period, ("summary", "true"), *extra.items()]))
            shown |= kfloor.shown_values(endpoint, rows, key, share.k)
        hidden = kfloor.hidden_values(flt, shown)
        if hidden:
            raise HTTPError(
                403, f"{flt.field}: {hidden[0][:80]!r} is not shown on this share (fewer than {share.k} visitors)"
            )
    chosen = [(key, value) for key, value in pairs if "[" in key]
    totals = _answer(await _call(ctx, "summary", share, [*period, *chosen]))
    if int(totals["current"]["visitors"]) < share.k:
        raise HTTPError(403, f"these filters select fewer than {share.k} visitors, which this share does not show")


def _stats_handler(name: str) -> Handler:
    """`GET /share/{share}/{name}`: the site's `name` stats within the share's limits."""

    async def handler(request: Request, ctx: Context) -> Response:
        share = _share(request)
        pairs = [(key, value) for key, values in request.query.items() for value in values]
        await _check_filters(ctx, share, stats.parse_filters(request), pairs)
        response = await _call(ctx, name, share, pairs)
        if response.status != 200 or name not in kfloor.ROW_COUNT or not kfloor.active(share.k):
            return response
        rows = json.loads(response.body)
        shown_paths = None
        if name == "time" and rows and "visitors" not in rows[0]:  # compact rows: judged by the full ones
            full = [(key, value) for key, value in pairs if key not in ("summary", "limit", "offset")]
            shown_paths = {
                row["path"] for row in _answer(await _call(ctx, name, share, full)) if row["visitors"] >= share.k
            }
        return json_response(kfloor.floor_rows(name, rows, share.k, shown_paths))

    handler.__name__ = f"get_share_{name}"
    return handler


# Stats name -> the handler of `GET /share/{share}/{name}`: the routes of app.ROUTES.
HANDLERS: Final[dict[str, Handler]] = {name: _stats_handler(name) for name in STATS}
