"""Per-site retention: purging raw rows past each site's `retentionDays`, and saying when an answer is partial.

The analytics store deletes a site's raw rows older than its cutoff one small
batch per writer call (AnalyticsStore.purge_step) and keeps their hours as
rollups, so unfiltered answers stay whole. A filtered answer (any filter,
goals included) whose period starts before the site's raw floor cannot count
the deleted rows: it carries the PARTIAL_HEADER naming where raw data starts.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Final

from medama_core.api import Context
from medama_core.http.protocol import Response
from medama_core.store import protocol as store

# Response header of a stats answer that lacks deleted raw rows (docs/insights.md, openapi.yaml).
PARTIAL_HEADER: Final = "X-Medama-Partial"
DAY_MS: Final = 86_400_000
# Purge steps one background round takes per site before moving on: with PURGE_BATCH_VIEWS views a step
# (store/sqlite/retention.py), 500 steps are a million views, and the next round (the next stats read, or
# the hourly tick of api/stats.py) continues where this one stopped.
MAX_STEPS_PER_SITE: Final = 500


def cutoff(now_ms: int, days: int) -> int:
    """The first UTC midnight whose day is kept: today and the `days` days before it stay."""
    return (now_ms // DAY_MS - days) * DAY_MS


async def purge(ctx: Context, now_ms: int | None = None) -> bool:
    """Delete the raw rows past every site's retention, a batch per writer call; True when some site's
    rows wait for its rollups to be rebuilt first (the caller runs the store's upkeep, then this again)."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    waiting = False
    for hostname, settings in sorted(ctx.site_settings.items()):
        if settings.retention_days is None:
            continue
        before = cutoff(now_ms, settings.retention_days)
        for _ in range(MAX_STEPS_PER_SITE):
            if ctx.analytics.closed:
                return False
            step = await ctx.analytics.purge_step(hostname, before)
            waiting = waiting or step.waiting
            if not step.deleted:
                break
    return waiting


def floor_text(floor_ms: int) -> str:
    """Where raw data starts: a UTC date at midnight, else the UTC time (a purge between two batches)."""
    moment = datetime.fromtimestamp(floor_ms / 1000, timezone.utc)
    return moment.strftime("%Y-%m-%d") if floor_ms % DAY_MS == 0 else moment.strftime("%Y-%m-%dT%H:%M:%SZ")


async def mark_partial(ctx: Context, response: Response, hostname: str, starts: list[int | None]) -> None:
    """Add PARTIAL_HEADER when a period starting at one of `starts` (Unix ms; None: unbounded) reaches
    before the site's raw floor. Only answers read from raw rows ask (filtered ones)."""
    floor = await ctx.analytics.raw_floor(hostname)
    if floor is not None and any(start is None or start < floor for start in starts):
        response.headers.append((PARTIAL_HEADER, f"raw data kept from {floor_text(floor)}"))


def period_starts(query: store.Query, previous: bool = False) -> list[int | None]:
    """The first ms of the query's period, and of its previous period when compared with it."""
    starts = [query.start]
    if previous and query.start_us is not None and query.end_us is not None:
        starts.append(-(-store.previous_period(query.start_us, query.end_us)[0] // 1000))
    return starts
