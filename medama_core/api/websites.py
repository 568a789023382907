"""/websites and /websites/{hostname}: list, add, read, rename and delete the caller's sites.

The in-memory allow-set `ctx.hostnames`, which ingestion checks on every hit,
changes only here and only after the database has committed, on the event
loop thread. Who may read, rename or delete a site is checked before these
handlers run (app.ROUTES, access.py), which also lower-cases the path's
hostname.
"""

from __future__ import annotations

import time
from typing import Any

from medama_core import access
from medama_core.api import Context, drain_hits
from medama_core.hostnames import HOSTNAME_MAX, InvalidHostname, normalise
from medama_core.http.errors import HTTPError
from medama_core.http.jsonbody import json_object, optional_string, required_string
from medama_core.http.protocol import Request, Response, json_response
from medama_core.store import meta, site_data

SUMMARY_WINDOW_MS = 24 * 60 * 60 * 1000  # the list's `summary` counts the last 24 hours, as upstream
NOT_FOUND = access.SITE_NOT_FOUND


def parse_hostname(text: str, where: str = "hostname") -> str:
    """`localhost` or a dotted name of RFC 1123 labels, lower-cased; 400 otherwise."""
    try:
        return normalise(text)
    except InvalidHostname as exc:
        raise HTTPError(400, f"{where}: {exc}") from None


async def list_websites(request: Request, ctx: Context) -> Response:
    session = access.session(request)
    summary = _bool_query(request, "summary")
    hostnames = await ctx.meta.read(meta.list_user_hostnames, session.user.id)
    items: list[dict[str, Any]] = [{"hostname": hostname} for hostname in hostnames]
    if summary and hostnames:
        since = int(time.time() * 1000) - SUMMARY_WINDOW_MS
        visitors = await ctx.analytics.read(site_data.unique_visitors_since, hostnames, since)
        for item in items:
            item["summary"] = {"visitors": visitors[item["hostname"]]}
    return json_response(items)


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
    session = access.session(request)
    hostname = parse_hostname(required_string(json_object(request), "hostname", 1, HOSTNAME_MAX))
    try:
        await ctx.meta.write(meta.insert_website, hostname, session.user.id, int(time.time()))
    except meta.AlreadyExists as exc:
        raise HTTPError(409, str(exc)) from None
    ctx.hostnames.add(hostname)
    return json_response({"hostname": hostname}, 201)


async def get_website(request: Request, ctx: Context) -> Response:
    return json_response({"hostname": request.path_params["hostname"]})


async def patch_website(request: Request, ctx: Context) -> Response:
    """Rename a site, moving its views and events with it (upstream's rename matched no row, spec §10.5)."""
    hostname = request.path_params["hostname"]  # checked and lower-cased by the access check
    text = optional_string(json_object(request), "hostname", 1, HOSTNAME_MAX)
    new = hostname if text is None else parse_hostname(text)
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
    hostname = request.path_params["hostname"]  # checked and lower-cased by the access check
    if not await ctx.meta.write(meta.delete_website, hostname):
        raise HTTPError(404, NOT_FOUND)
    ctx.hostnames.discard(hostname)
    await drain_hits(ctx)
    await ctx.analytics.write(site_data.delete_site_data, [hostname])
    return Response(204)
