"""/website/{hostname}/*: the stats endpoints, driven by a name -> query table (spec §2.8, §4).

The access check (app.ROUTES, access.py) has already refused a caller who
may not read the site (401, or 404 `website not found`, as for an unknown
site); each handler checks the query string (400), then runs one store
function on a reader thread. After answering, a stats request that saw closed dirty hours asks the
writer thread to rebuild them (store/rollups.py), one rebuild at a time.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
import time
from collections.abc import Awaitable, Callable
from typing import Any

from medama_core.api import Context, imported
from medama_core.http.errors import HTTPError
from medama_core.http.params import parse_time
from medama_core.http.protocol import Request, Response, json_response
from medama_core.store import columns, rollups, stats
from medama_core.store.filters import FIELDS, OPERATORS, Filter

LIMIT_MAX = 5000  # upstream's schema bound on `limit`
OFFSET_MAX = 5000  # upstream's schema bound on `offset`
MAX_BUCKETS = 10_000  # a year of hours is 8,784; minute buckets over a month would be 44,640 rows of JSON
REFRESH_HOURS = 2000  # hours one background rebuild takes on; about three months of one busy site
# Hours per writer call: a busy site's hour takes ~0.1 s to rebuild (10 M views in 90 days), so the
# writer thread returns to hit batches every few seconds at most.
REFRESH_HOURS_PER_CALL = 24
REFRESH_COPIES = 400  # days one background run copies for filtered stats (store/columns.py); ~0.4 s each at 111k views

_BOOLS = {"true": True, "false": False}

_refreshing: dict[int, asyncio.Task[int]] = {}  # id(ctx.analytics) -> the rebuild in flight


def _bool(request: Request, name: str, default: bool) -> bool:
    text = request.query_value(name)
    if text is None:
        return default
    if text not in _BOOLS:
        raise HTTPError(400, f"{name}: must be true or false")
    return _BOOLS[text]


def _int(request: Request, name: str, low: int, high: int) -> int | None:
    text = request.query_value(name)
    if text is None:
        return None
    if not re.fullmatch(r"[+-]?\d{1,10}", text):
        raise HTTPError(400, f"{name}: must be an integer")
    value = int(text)
    if not low <= value <= high:
        raise HTTPError(400, f"{name}: must be between {low} and {high}")
    return value


def parse_filters(request: Request) -> tuple[Filter, ...]:
    """`field[op]=value` for the whitelisted fields; per field the first operator in precedence order."""
    found = []
    for field in FIELDS:
        for op in OPERATORS:
            value = request.query_value(f"{field}[{op}]")
            if value is not None:
                found.append(Filter(field, op, value))
                break
    return tuple(found)


def parse_query(request: Request) -> stats.Query:
    start = request.query_value("start")
    end = request.query_value("end")
    return stats.Query(
        hostname=request.path_params["hostname"],
        start_us=None if start is None else parse_time("start", start),
        end_us=None if end is None else parse_time("end", end),
        filters=parse_filters(request),
    )


def parse_page(request: Request) -> stats.Page:
    limit = _int(request, "limit", 1, LIMIT_MAX)
    offset = _int(request, "offset", 0, OFFSET_MAX)
    return stats.Page(limit, offset or 0)


async def _answer(ctx: Context, fn: Callable[..., Any], *args: object) -> Response:
    result = await ctx.analytics.read(stats.snapshot, fn, *args)
    _schedule_refresh(ctx)
    return json_response(result)


def _schedule_refresh(ctx: Context) -> None:
    """Start a background rebuild of closed dirty hours unless one is already running."""
    key = id(ctx.analytics)
    running = _refreshing.get(key)
    if running is not None and not running.done():
        return
    if ctx.analytics.closed:
        return
    task = asyncio.get_running_loop().create_task(_refresh(ctx))
    _refreshing[key] = task


async def _refresh(ctx: Context) -> int:
    """Rebuild up to REFRESH_HOURS closed dirty hours, a few per writer call so hit batches get in between;
    then copy up to REFRESH_COPIES built days that have no column copy yet (store/columns.py)."""
    now_ms = int(time.time() * 1000)
    dirty, uncopied = await ctx.analytics.read(_work_waiting, now_ms)
    if not (dirty or uncopied):
        return 0
    done = 0
    try:
        while dirty and done < REFRESH_HOURS and not ctx.analytics.closed:
            rebuilt = await ctx.analytics.write(rollups.refresh, now_ms, REFRESH_HOURS_PER_CALL)
            done += rebuilt
            if rebuilt < REFRESH_HOURS_PER_CALL:
                break
        # Today's hours just rebuilt: copy today's closed hours again, a few sites per writer call.
        while done and not ctx.analytics.closed:
            if await ctx.analytics.write(columns.refresh_open, now_ms) < columns.BACKFILL_DAYS_PER_CALL:
                break
        copied = 0
        while copied < REFRESH_COPIES and not ctx.analytics.closed:
            added = await ctx.analytics.write(columns.backfill, columns.BACKFILL_DAYS_PER_CALL)
            copied += added
            if added < columns.BACKFILL_DAYS_PER_CALL:
                break
    except (sqlite3.Error, RuntimeError) as exc:  # shutting down, or a busy database: the next request retries
        ctx.log.warn("rollup refresh failed", error=repr(exc))
    return done


def _work_waiting(conn: sqlite3.Connection, now_ms: int) -> tuple[bool, bool]:
    """(whether a closed hour is dirty, whether a built day has no column copy)."""
    row = conn.execute("SELECT 1 FROM rollup_dirty WHERE hour < ? LIMIT 1", (now_ms // rollups.HOUR_MS,)).fetchone()
    return row is not None, columns.has_missing(conn)


async def get_summary(request: Request, ctx: Context) -> Response:
    query = parse_query(request)
    previous = _bool(request, "previous", False)
    interval = request.query_value("interval")
    if interval is not None:
        if interval not in (*stats.STEPS_US, "month"):
            raise HTTPError(400, "interval: must be one of minute, hour, day, week, month")
        if query.start_us is None or query.end_us is None:
            raise HTTPError(400, "interval: needs both start and end")
        if stats.bucket_count(interval, query.start_us, query.end_us) > MAX_BUCKETS:
            raise HTTPError(400, f"interval: {interval} buckets from start to end would be more than {MAX_BUCKETS}")
    return await _answer(ctx, imported.summary, query, previous, interval)  # stats.summary + imported days


def _list_handler(
    endpoint: str, flag: str | None, flag_default: bool
) -> Callable[[Request, Context], Awaitable[Response]]:
    """A list endpoint; `flag` is grouped (referrers) or locale (languages), where it switches the column."""

    async def handler(request: Request, ctx: Context) -> Response:
        query = parse_query(request)
        summary = _bool(request, "summary", False)
        page = parse_page(request)
        variant = flag is not None and _bool(request, flag, flag_default) != flag_default
        return await _answer(ctx, imported.list_stats, query, endpoint, summary, page, variant)

    handler.__name__ = f"get_{endpoint}"
    return handler


get_pages = _list_handler("pages", None, False)
get_referrers = _list_handler("referrers", "grouped", True)
get_sources = _list_handler("sources", None, False)
get_mediums = _list_handler("mediums", None, False)
get_campaigns = _list_handler("campaigns", None, False)
get_browsers = _list_handler("browsers", None, False)
get_os = _list_handler("os", None, False)
get_devices = _list_handler("devices", None, False)
get_countries = _list_handler("countries", None, False)
get_languages = _list_handler("languages", "locale", False)


async def get_time(request: Request, ctx: Context) -> Response:
    query = parse_query(request)
    summary = _bool(request, "summary", False)
    return await _answer(ctx, stats.time_stats, query, summary, parse_page(request))


async def get_properties(request: Request, ctx: Context) -> Response:
    query = parse_query(request)
    return await _answer(ctx, stats.properties, query, parse_page(request))


# Endpoint name -> handler: the 13 stats routes of app.ROUTES.
HANDLERS: dict[str, Callable[[Request, Context], Awaitable[Response]]] = {
    "summary": get_summary,
    "pages": get_pages,
    "time": get_time,
    "referrers": get_referrers,
    "sources": get_sources,
    "mediums": get_mediums,
    "campaigns": get_campaigns,
    "browsers": get_browsers,
    "os": get_os,
    "devices": get_devices,
    "countries": get_countries,
    "languages": get_languages,
    "properties": get_properties,
}
