"""/websites and /websites/{hostname}: list, add, read, rename and delete the caller's sites; their sparklines.

The in-memory allow-set `ctx.hostnames`, which ingestion checks on every hit,
changes only here and only after the database has committed, on the event
loop thread.
"""

from __future__ import annotations

import re
import time
from typing import Any, Final

from medama_core import auth
from medama_core.api import Context, drain_hits
from medama_core.api import stats as stats_api
from medama_core.http.errors import HTTPError
from medama_core.http.jsonbody import json_object, optional_string, required_string
from medama_core.http.protocol import Request, Response, json_response
from medama_core.store import meta, overview, site_data, stats

HOSTNAME_MAX = 253  # RFC 1035 §2.3.4: 255 octets on the wire, 253 characters as text
SUMMARY_WINDOW_MS = 24 * 60 * 60 * 1000  # the list's `summary` counts the last 24 hours, as upstream
# Sites per sparklines request: twice the dashboard's page of 24 cards, so a wider grid still needs one
# request; 50 names of at most 253 characters stay inside the server's 16 KiB request head.
SPARKLINES_MAX_SITES: Final = 50
# Buckets per site: a year of days (366) fits. A sparkline is a few hundred pixels wide, so more points
# could not be drawn, and 50 sites of 400 buckets are ~2 MB of JSON.
SPARKLINE_MAX_BUCKETS: Final = 400
# RFC 1123 §2.1 label: letters, digits and inner hyphens, 1 to 63 characters.
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_FQDN = re.compile(rf"{_LABEL}(?:\.{_LABEL})+")
NOT_FOUND = "website not found"


def parse_hostname(text: str, where: str = "hostname") -> str:
    """`localhost` or a dotted name of RFC 1123 labels, lower-cased; 400 otherwise."""
    hostname = text.lower()
    if not 1 <= len(hostname) <= HOSTNAME_MAX:
        raise HTTPError(400, f"{where}: must be 1 to {HOSTNAME_MAX} characters long")
    if hostname != "localhost" and not _FQDN.fullmatch(hostname):
        raise HTTPError(400, f"{where}: {text[:HOSTNAME_MAX]!r} is not a valid hostname")
    return hostname


async def _check_owner(ctx: Context, session: auth.Session, hostname: str, other_owner_status: int) -> None:
    """404 for an unknown site; `other_owner_status` with the same message for another user's site
    (upstream answers 401 on GET and PATCH, 404 on DELETE)."""
    owner = await ctx.meta.read(meta.website_owner, hostname)
    if owner is None:
        raise HTTPError(404, NOT_FOUND)
    if owner != session.user.id:
        raise HTTPError(other_owner_status, NOT_FOUND)


async def _check_owner_of_each(ctx: Context, session: auth.Session, hostnames: list[str], other_status: int) -> None:
    """`_check_owner` for several sites: one read of the caller's sites, the owner looked up only for the others."""
    mine = set(await ctx.meta.read(meta.list_user_hostnames, session.user.id))
    for hostname in hostnames:
        if hostname not in mine:
            await _check_owner(ctx, session, hostname, other_status)


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
    session = await auth.require_user(request, ctx.meta)
    summary = _bool_query(request, "summary")
    hostnames = await ctx.meta.read(meta.list_user_hostnames, session.user.id)
    items: list[dict[str, Any]] = [{"hostname": hostname} for hostname in hostnames]
    if summary and hostnames:
        since = int(time.time() * 1000) - SUMMARY_WINDOW_MS
        visitors = await ctx.analytics.read(stats.snapshot, overview.visitors_since, hostnames, since)
        for item in items:
            item["summary"] = {"visitors": visitors[item["hostname"]]}
    return json_response(items)


async def get_sparklines(request: Request, ctx: Context) -> Response:
    """Our addition: the /summary interval buckets of several of the caller's sites in one request."""
    session = await auth.require_user(request, ctx.meta)
    hostnames = parse_hostname_list(request.query_value("hostnames"))
    start_us, end_us = (stats_api.parse_time(name, _required_query(request, name)) for name in ("start", "end"))
    interval = _required_query(request, "interval")
    if interval not in (*stats.STEPS_US, "month"):
        raise HTTPError(400, "interval: must be one of minute, hour, day, week, month")
    if stats.bucket_count(interval, start_us, end_us) > SPARKLINE_MAX_BUCKETS:
        raise HTTPError(
            400, f"interval: {interval} buckets from start to end would be more than {SPARKLINE_MAX_BUCKETS}"
        )
    # Another user's site is as unknown as a missing one: 404 (a 401 would send the dashboard to its login page).
    await _check_owner_of_each(ctx, session, hostnames, 404)
    rows = await ctx.analytics.read(stats.snapshot, overview.site_intervals, hostnames, start_us, end_us, interval)
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
    session = await auth.require_user(request, ctx.meta)
    hostname = parse_hostname(required_string(json_object(request), "hostname", 1, HOSTNAME_MAX))
    auth.refuse_in_demo(ctx.config.demo)
    try:
        await ctx.meta.write(meta.insert_website, hostname, session.user.id, int(time.time()))
    except meta.AlreadyExists as exc:
        raise HTTPError(409, str(exc)) from None
    ctx.hostnames.add(hostname)
    return json_response({"hostname": hostname}, 201)


async def get_website(request: Request, ctx: Context) -> Response:
    session = await auth.require_user(request, ctx.meta)
    hostname = parse_hostname(request.path_params["hostname"])
    await _check_owner(ctx, session, hostname, 401)
    return json_response({"hostname": hostname})


async def patch_website(request: Request, ctx: Context) -> Response:
    """Rename a site, moving its views and events with it (upstream's rename matched no row, spec §10.5)."""
    session = await auth.require_user(request, ctx.meta)
    hostname = parse_hostname(request.path_params["hostname"])
    text = optional_string(json_object(request), "hostname", 1, HOSTNAME_MAX)
    new = hostname if text is None else parse_hostname(text)
    auth.refuse_in_demo(ctx.config.demo)
    await _check_owner(ctx, session, hostname, 401)
    if new == hostname:
        return json_response({"hostname": hostname})
    try:
        renamed = await ctx.meta.write(meta.rename_website, hostname, new, int(time.time()))
    except meta.AlreadyExists as exc:
        raise HTTPError(409, str(exc)) from None
    if not renamed:
        raise HTTPError(404, NOT_FOUND)
    ctx.hostnames.discard(hostname)
    ctx.hostnames.add(new)
    await drain_hits(ctx)
    await ctx.analytics.write(site_data.rename_site_data, hostname, new)
    return json_response({"hostname": new})


async def delete_website(request: Request, ctx: Context) -> Response:
    """Delete a site with all its views and events (upstream kept the events, spec §10.6)."""
    session = await auth.require_user(request, ctx.meta)
    hostname = parse_hostname(request.path_params["hostname"])
    auth.refuse_in_demo(ctx.config.demo)
    await _check_owner(ctx, session, hostname, 404)
    if not await ctx.meta.write(meta.delete_website, hostname):
        raise HTTPError(404, NOT_FOUND)
    ctx.hostnames.discard(hostname)
    await drain_hits(ctx)
    await ctx.analytics.write(site_data.delete_site_data, [hostname])
    return Response(204)
