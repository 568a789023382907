"""/websites and /websites/{hostname}: list, add, read, rename and delete the caller's sites; their sparklines.

The in-memory allow-set `ctx.hostnames`, which ingestion checks on every hit,
changes only here and only after the database has committed, on the event
loop thread. Who may read, rename or delete a site is checked before these
handlers run (app.ROUTES, access.py), which also lower-cases the path's
hostname.
"""

from __future__ import annotations

import re
import time
from typing import Any, Final

from medama_core import access, permissions
from medama_core.api import Context, drain_hits, reload_site_settings
from medama_core.api import stats as stats_api
from medama_core.hostnames import HOSTNAME_MAX, InvalidHostname, normalise
from medama_core.http.errors import HTTPError
from medama_core.http.jsonbody import json_object, optional_string, required_string
from medama_core.http.params import parse_time
from medama_core.http.protocol import Request, Response, json_response
from medama_core.store import protocol as meta
from medama_core.store import protocol as stats

SUMMARY_WINDOW_MS = 24 * 60 * 60 * 1000  # the list's `summary` counts the last 24 hours, as upstream
# Sites per sparklines request: twice the dashboard's page of 24 cards, so a wider grid still needs one
# request; 50 names of at most 253 characters stay inside the server's 16 KiB request head.
SPARKLINES_MAX_SITES: Final = 50
# Buckets per site: a year of days (366) fits. A sparkline is a few hundred pixels wide, so more points
# could not be drawn, and 50 sites of 400 buckets are ~2 MB of JSON.
SPARKLINE_MAX_BUCKETS: Final = 400
NOT_FOUND = access.SITE_NOT_FOUND
# Ours: the Umami website id a site answers to on POST /api/send (a UUID in Umami; letters, digits, - and _).
UMAMI_ID_FIELD = "umamiWebsiteId"
UMAMI_ID_MAX = 64  # Umami's ids are 36-character UUIDs; room for other aliases, bounded
_UMAMI_ID = re.compile(r"[A-Za-z0-9_-]+")


def parse_hostname(text: str, where: str = "hostname") -> str:
    """`localhost` or a dotted name of RFC 1123 labels, lower-cased; 400 otherwise."""
    try:
        return normalise(text)
    except InvalidHostname as exc:
        raise HTTPError(400, f"{where}: {exc}") from None


def parse_hostname_list(text: str | None, where: str = "hostnames") -> list[str]:
    """Comma-separated hostnames, each as `parse_hostname` reads it, repeats dropped (first kept);
    1 to SPARKLINES_MAX_SITES of them, else 400."""
    if not text:
        raise HTTPError(400, f"{where}: give 1 to {SPARKLINES_MAX_SITES} comma-separated hostnames")
    parts = text.split(",")
    if len(parts) > SPARKLINES_MAX_SITES:
        raise HTTPError(400, f"{where}: at most {SPARKLINES_MAX_SITES} hostnames per request")
    return list(dict.fromkeys(parse_hostname(part, where) for part in parts))


async def list_websites(request: Request, ctx: Context) -> Response:
    """The sites the caller sees (permissions.sees_site): every site for an admin, a viewer's granted ones."""
    actor = access.caller(request).actor
    summary = _bool_query(request, "summary")
    hostnames = [h for h in await ctx.meta.list_hostnames() if permissions.sees_site(actor, h)]
    items: list[dict[str, Any]] = [{"hostname": hostname} for hostname in hostnames]
    if summary and hostnames:
        since = int(time.time() * 1000) - SUMMARY_WINDOW_MS
        visitors = await ctx.analytics.visitors_since(hostnames, since)
        for item in items:
            item["summary"] = {"visitors": visitors[item["hostname"]]}
    return json_response(items)


async def get_sparklines(request: Request, ctx: Context) -> Response:
    """Our addition: the /summary interval buckets of several of the caller's sites in one request."""
    hostnames = parse_hostname_list(request.query_value("hostnames"))
    start_us, end_us = (parse_time(name, _required_query(request, name)) for name in ("start", "end"))
    interval = _required_query(request, "interval")
    if interval not in (*stats.STEPS_US, "month"):
        raise HTTPError(400, "interval: must be one of minute, hour, day, week, month")
    if stats.bucket_count(interval, start_us, end_us) > SPARKLINE_MAX_BUCKETS:
        raise HTTPError(
            400, f"interval: {interval} buckets from start to end would be more than {SPARKLINE_MAX_BUCKETS}"
        )
    # The route needs a signed-in caller; each site in the query is checked as a stats route checks its own.
    await access.authorize_sites(request, hostnames, ctx.meta, demo=ctx.config.demo)
    # With the imported daily totals (store/imported_stats.py), as each site's /summary has them.
    rows = await ctx.analytics.site_intervals(hostnames, start_us, end_us, interval)
    # Stats reads, like the per-site /summary calls the websites page made before: rebuild closed dirty hours.
    stats_api._schedule_refresh(ctx)
    return json_response([{"hostname": h, "interval": buckets} for h, buckets in zip(hostnames, rows, strict=True)])


def _required_query(request: Request, name: str) -> str:
    value = request.query_value(name)
    if value is None:
        raise HTTPError(400, f"{name}: is required")
    return value


def _bool_query(request: Request, name: str) -> bool:
    """A boolean query parameter as Go's strconv.ParseBool reads it; absent is false."""
    value = request.query_value(name)
    if value is None:
        return False
    if value in ("1", "t", "T", "true", "TRUE", "True"):
        return True
    if value in ("0", "f", "F", "false", "FALSE", "False"):
        return False
    raise HTTPError(400, f"{name}: must be true or false")


async def post_website(request: Request, ctx: Context) -> Response:
    user = access.user(request)
    hostname = parse_hostname(required_string(json_object(request), "hostname", 1, HOSTNAME_MAX))
    try:
        await ctx.meta.insert_website(hostname, user.id, int(time.time()))
    except meta.AlreadyExists as exc:
        raise HTTPError(409, str(exc)) from None
    ctx.hostnames.add(hostname)
    return json_response({"hostname": hostname}, 201)


async def _answer(ctx: Context, hostname: str) -> dict[str, str]:
    """A site as GET and PATCH answer it: upstream's `hostname`, plus our optional Umami website id."""
    answer = {"hostname": hostname}
    umami_id = await ctx.meta.umami_id(hostname)
    if umami_id is not None:
        answer[UMAMI_ID_FIELD] = umami_id
    return answer


def _umami_id(body: dict[str, Any]) -> str | None:
    """The Umami website id to set: None when the field is absent, "" to remove it."""
    if body.get(UMAMI_ID_FIELD, 0) is None:
        return ""
    value = optional_string(body, UMAMI_ID_FIELD, 0, UMAMI_ID_MAX)
    if value and not _UMAMI_ID.fullmatch(value):
        raise HTTPError(400, f"{UMAMI_ID_FIELD}: only letters, digits, - and _")
    return value


async def _set_umami_id(ctx: Context, hostname: str, umami_id: str) -> None:
    try:
        await ctx.meta.set_umami_id(hostname, umami_id)
    except meta.AlreadyExists as exc:
        raise HTTPError(409, str(exc)) from None
    ctx.umami_ids = await ctx.meta.umami_ids()


async def get_website(request: Request, ctx: Context) -> Response:
    return json_response(await _answer(ctx, request.path_params["hostname"]))


async def patch_website(request: Request, ctx: Context) -> Response:
    """Rename a site, moving its views and events with it (upstream's rename matched no row, spec §10.5)."""
    hostname = request.path_params["hostname"]  # checked and lower-cased by the access check
    body = json_object(request)
    text = optional_string(body, "hostname", 1, HOSTNAME_MAX)
    new = hostname if text is None else parse_hostname(text)
    umami_id = _umami_id(body)
    if umami_id is not None:
        await _set_umami_id(ctx, hostname, umami_id)
    if new == hostname:
        return json_response(await _answer(ctx, hostname))
    try:
        renamed = await ctx.meta.rename_website(hostname, new, int(time.time()))
    except meta.AlreadyExists as exc:
        raise HTTPError(409, str(exc)) from None
    if not renamed:
        raise HTTPError(404, NOT_FOUND)
    ctx.hostnames.discard(hostname)
    ctx.hostnames.add(new)
    await reload_site_settings(ctx)  # the site's settings moved with it
    await drain_hits(ctx)
    await ctx.analytics.rename_site(hostname, new)
    ctx.umami_ids = await ctx.meta.umami_ids()  # the id moved with the site (ON UPDATE CASCADE)
    return json_response(await _answer(ctx, new))


async def delete_website(request: Request, ctx: Context) -> Response:
    """Delete a site with all its views and events (upstream kept the events, spec §10.6)."""
    hostname = request.path_params["hostname"]  # checked and lower-cased by the access check
    if not await ctx.meta.delete_website(hostname):
        raise HTTPError(404, NOT_FOUND)
    ctx.hostnames.discard(hostname)
    ctx.umami_ids = await ctx.meta.umami_ids()  # its id went with it (ON DELETE CASCADE)
    await reload_site_settings(ctx)
    await drain_hits(ctx)
    await ctx.analytics.delete_sites([hostname])
    return Response(204)
