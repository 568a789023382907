"""/website/{hostname}/*: the stats endpoints, driven by a name -> query table (spec §2.8, §4).

The access check (app.ROUTES, access.py) has already refused a caller who
may not read the site (401, or 404 `website not found`, as for an unknown
site); each handler checks the query string (400), then asks the analytics store
(store/protocol.py). The store's background work (AnalyticsStore.maintain; on
SQLite the rollups': rebuilding closed dirty hours, building blocks and column
copies) runs from start-up until none is left, one bounded step per writer call
so hit batches get the writer in between; a stats request starts it again when
it has stopped.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

from medama_core import goals
from medama_core.api import Context, retention
from medama_core.http.errors import HTTPError
from medama_core.http.params import parse_time
from medama_core.http.protocol import Request, Response, json_response
from medama_core.store import protocol as stats
from medama_core.store.protocol import FIELDS, OPERATORS, Filter

LIMIT_MAX = 5000  # upstream's schema bound on `limit`
OFFSET_MAX = 5000  # upstream's schema bound on `offset`
MAX_BUCKETS = 10_000  # a year of hours is 8,784; minute buckets over a month would be 44,640 rows of JSON
# The background work also runs this often without stats reads: retention's cutoff moves once a UTC day,
# and an hour late is soon enough for it (and for hours left dirty by a quiet site's last views).
RETENTION_TICK_S = 3600

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


async def parse_stats_query(request: Request, ctx: Context) -> stats.Query:
    """parse_query, and `goal[eq]=<id>` (ours): the views that reached that goal of the site (goals.py)."""
    query = parse_query(request)
    goal_id = request.query_value("goal[eq]")
    if goal_id is None:
        return query
    goal = next((g for g in await ctx.meta.list_goals(query.hostname) if g.id == goal_id), None)
    if goal is None:
        raise HTTPError(400, "goal[eq]: this website has no goal with that id")
    try:
        filters = goals.goal_filters(goal, query.filters)
    except goals.InvalidGoal as exc:
        raise HTTPError(400, f"goal[eq]: {exc}") from None
    return dataclasses.replace(query, filters=filters)


def parse_page(request: Request) -> stats.Page:
    limit = _int(request, "limit", 1, LIMIT_MAX)
    offset = _int(request, "offset", 0, OFFSET_MAX)
    return stats.Page(limit, offset or 0)


async def _answer(
    ctx: Context, result: Awaitable[Any], query: stats.Query, starts: list[int | None], raw: bool = False
) -> Response:
    """The answer as JSON, marked partial when it was read from raw rows (`raw`: unfiltered, yet read raw
    on this engine) over a period starting before the site's raw floor (api/retention.py)."""
    answer = await result
    _schedule_refresh(ctx)
    response = json_response(answer)
    if query.filters or raw:
        await retention.mark_partial(ctx, response, query.hostname, starts)
    return response


def start_background(ctx: Context) -> None:
    """Start the store's background work (at start-up: an import or a migration may have left plenty),
    and again every RETENTION_TICK_S, so that retention deletes old rows on a site nobody looks at."""
    _schedule_refresh(ctx)
    loop = asyncio.get_running_loop()
    ticking = loop.create_task(_tick(ctx))

    async def stop() -> None:
        ticking.cancel()
        running = _refreshing.pop(id(ctx.analytics), None)
        if running is not None and not running.done():  # e.g. waiting for reads to finish (db.quiet)
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)

    ctx.on_shutdown.append(stop)


async def _tick(ctx: Context) -> None:
    while not ctx.analytics.closed:
        await asyncio.sleep(RETENTION_TICK_S)
        _schedule_refresh(ctx)


def _schedule_refresh(ctx: Context) -> None:
    """Start the store's background work (AnalyticsStore.maintain) unless it is already running."""
    if ctx.maintain_elsewhere is not None:  # a -workers child: the parent runs it (workers.py)
        ctx.maintain_elsewhere()
        return
    key = id(ctx.analytics)
    running = _refreshing.get(key)
    if running is not None and not running.done():
        return
    if ctx.analytics.closed:
        return
    task = asyncio.get_running_loop().create_task(_refresh(ctx))
    _refreshing[key] = task


async def _refresh(ctx: Context) -> int:
    try:
        done = await ctx.analytics.maintain()
        while await retention.purge(ctx):  # some rows wait for their hours to be rolled up first
            rebuilt = await ctx.analytics.maintain()
            done += rebuilt
            if not rebuilt:
                break
        return done
    except Exception as exc:  # shutting down, or a busy database: the next request retries
        ctx.log.warn("rollup refresh failed", error=repr(exc))
        return 0


async def get_summary(request: Request, ctx: Context) -> Response:
    query = await parse_stats_query(request, ctx)
    previous = _bool(request, "previous", False)
    interval = request.query_value("interval")
    if interval is not None:
        if interval not in (*stats.STEPS_US, "month"):
            raise HTTPError(400, "interval: must be one of minute, hour, day, week, month")
        if query.start_us is None or query.end_us is None:
            raise HTTPError(400, "interval: needs both start and end")
        if stats.bucket_count(interval, query.start_us, query.end_us) > MAX_BUCKETS:
            raise HTTPError(400, f"interval: {interval} buckets from start to end would be more than {MAX_BUCKETS}")
    starts = retention.period_starts(query, previous)
    return await _answer(ctx, ctx.analytics.summary(query, previous, interval), query, starts)


def _list_handler(
    endpoint: str, flag: str | None, flag_default: bool
) -> Callable[[Request, Context], Awaitable[Response]]:
    """A list endpoint; `flag` is grouped (referrers) or locale (languages), where it switches the column."""

    async def handler(request: Request, ctx: Context) -> Response:
        query = await parse_stats_query(request, ctx)
        summary = _bool(request, "summary", False)
        page = parse_page(request)
        variant = flag is not None and _bool(request, flag, flag_default) != flag_default
        raw = "lists" in ctx.analytics.raw_unfiltered and not summary
        answer = ctx.analytics.list_stats(query, endpoint, summary, page, variant)
        return await _answer(ctx, answer, query, [query.start], raw)

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
    query = await parse_stats_query(request, ctx)
    summary = _bool(request, "summary", False)
    raw = "time" in ctx.analytics.raw_unfiltered and not summary
    return await _answer(ctx, ctx.analytics.time_stats(query, summary, parse_page(request)), query, [query.start], raw)


async def get_entries(request: Request, ctx: Context) -> Response:
    """Entry pages (ours; store/sqlite/entries.py): the parameters of /pages."""
    query = await parse_stats_query(request, ctx)
    summary = _bool(request, "summary", False)
    raw = "entries" in ctx.analytics.raw_unfiltered
    return await _answer(ctx, ctx.analytics.entries(query, summary, parse_page(request)), query, [query.start], raw)


async def get_exits(request: Request, ctx: Context) -> Response:
    """Exit pages (ours; store/sqlite/entries.py): the parameters of /pages."""
    query = await parse_stats_query(request, ctx)
    summary = _bool(request, "summary", False)
    raw = "entries" in ctx.analytics.raw_unfiltered
    return await _answer(ctx, ctx.analytics.exits(query, summary, parse_page(request)), query, [query.start], raw)


async def get_properties(request: Request, ctx: Context) -> Response:
    query = await parse_stats_query(request, ctx)
    return await _answer(ctx, ctx.analytics.properties(query, parse_page(request)), query, [query.start])


async def get_progress(request: Request, ctx: Context) -> Response:
    """How much background work the site's numbers wait for (not in upstream): closed hours still to
    rebuild (read raw meanwhile, so answers are exact but slower) and blocks still to build."""
    now_ms = int(time.time() * 1000)
    waiting = await ctx.analytics.progress(request.path_params["hostname"], now_ms)
    _schedule_refresh(ctx)
    return json_response({**waiting, "ready": not any(waiting.values())})


# Endpoint name -> handler: the 15 stats routes of app.ROUTES (get_progress is routed on its own: no table).
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
    "entries": get_entries,  # ours: entry and exit pages
    "exits": get_exits,
}
