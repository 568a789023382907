"""/websites and /websites/{hostname}: list, add, read, rename and delete the caller's sites.

The in-memory allow-set `ctx.hostnames`, which ingestion checks on every hit,
changes only here and only after the database has committed, on the event
loop thread.
"""

from __future__ import annotations

import re
import time
from typing import Any

from medama_core import auth
from medama_core.api import Context, drain_hits, reload_site_settings
from medama_core.http.errors import HTTPError
from medama_core.http.jsonbody import json_object, optional_string, required_string
from medama_core.http.protocol import Request, Response, json_response
from medama_core.store import meta, site_data

HOSTNAME_MAX = 253  # RFC 1035 §2.3.4: 255 octets on the wire, 253 characters as text
SUMMARY_WINDOW_MS = 24 * 60 * 60 * 1000  # the list's `summary` counts the last 24 hours, as upstream
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


async def require_own_site(request: Request, ctx: Context) -> str:
    """The `{hostname}` of a route under /websites/{hostname}/ once the caller is known (401) and owns
    that site: 404 `website not found` for an unknown site and for another user's alike (ours; the
    routes of upstream answer 401 on GET and PATCH there). The one owner check of those routes."""
    session = await auth.require_user(request, ctx.meta)
    hostname = parse_hostname(request.path_params["hostname"])
    await _check_owner(ctx, session, hostname, 404)
    return hostname


async def list_websites(request: Request, ctx: Context) -> Response:
    session = await auth.require_user(request, ctx.meta)
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
    await reload_site_settings(ctx)  # the site's settings moved with it
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
    await reload_site_settings(ctx)
    await drain_hits(ctx)
    await ctx.analytics.write(site_data.delete_site_data, [hostname])
    return Response(204)
