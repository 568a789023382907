"""Imported daily totals in the stats answers of any engine: added to /summary and the lists for the days they cover.

Plausible's export holds daily aggregates only (store/sqlite/imported.py). They are
added here, after the stats have computed their answer from our own rows, so
every day without imported totals is exactly what the stats said, and an
imported day adds exactly its imported counts:

- visitors and pageviews: added (over several days, a visitor counted on two
  days counts twice, as in any sum of daily totals);
- bounce rate: the visitor-weighted mean of ours and the imported bounces per visit;
- duration: ours (a median cannot be merged with a total); where no view of ours
  is in the period, the imported mean visit duration.

A day counts when its 00:00 UTC lies in the period. Answers with filters get
nothing added (the totals cannot be filtered). The websites list's visitors
(`summary=true`) and sparklines (`GET /websites/sparklines`) get them as
/summary does, so a card and the site's chart agree. (Moved here from api/imported.py: the API reaches it
through the analytics store protocol.)

The merge is the same on every engine: each function takes the engine's reads
(`Engine`: its own stats and its imported totals); store/sqlite/imported_merge.py
gives SQLite's, store/clickhouse/imported.py ClickHouse's.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final, Generic, TypeVar

from medama_core.store.aggregate import fraction, round4
from medama_core.store.query import LISTS, STEPS_US, Page, Query, previous_period
from medama_core.store.rows import Totals

__all__ = ["DIMENSIONS", "Engine", "list_stats", "site_intervals", "summary", "visitors_since"]

C = TypeVar("C")  # the engine's connection


@dataclass(frozen=True)
class Engine(Generic[C]):
    """One engine's reads that the merge composes: its own stats answers, and its imported totals."""

    summary: Callable[[C, Query, bool, str | None], dict[str, Any]]
    list_stats: Callable[[C, Query, str, bool, Page, bool], list[dict[str, Any]]]
    site_intervals: Callable[[C, list[str], int, int, str], list[list[dict[str, Any]]]]
    visitors_since: Callable[[C, list[str], int], dict[str, int]]
    site_days: Callable[[C, str, int | None, int | None], dict[int, Totals]]
    totals: Callable[[C, str, str, int | None, int | None], dict[str, Totals]]
    imported_visitors_since: Callable[[C, list[str], int], dict[str, int]]


# List endpoint -> the imported dimension it adds (and its `grouped=false` variant for referrers).
DIMENSIONS: Final = {
    "pages": "path",
    "referrers": "referrer",
    "sources": "utm_source",
    "mediums": "utm_medium",
    "campaigns": "utm_campaign",
    "browsers": "browser",
    "os": "os",
    "devices": "device",
    "countries": "country",
}
_DAY_MS: Final = 86_400_000
_UTC: Final = dt.timezone.utc  # dt.UTC is Python 3.11+


def _add(metrics: dict[str, Any], extra: Totals) -> None:
    """Add imported totals to a {visitors, pageviews, bounce_percentage, duration} answer, in place."""
    ours = int(metrics["visitors"])
    total = ours + extra.visitors
    if not total:
        return
    theirs = extra.bounces / extra.visits if extra.visits else 0.0
    metrics["bounce_percentage"] = round4((metrics["bounce_percentage"] * ours + theirs * extra.visitors) / total)
    metrics["visitors"] = total
    metrics["pageviews"] = int(metrics["pageviews"]) + extra.pageviews
    if not ours and extra.visits:
        metrics["duration"] = round(extra.duration_s * 1000 / extra.visits)


def _sum(days: Iterable[Totals]) -> Totals:
    return Totals(*(sum(column) for column in zip(*days, strict=False))) if days else Totals()


def _ms(us: int | None, *, up: bool) -> int | None:
    if us is None:
        return None
    return -(-us // 1000) if up else us // 1000


def _bucket(interval: str, start_us: int, day_ms: int) -> int:
    if interval == "month":
        day = dt.datetime.fromtimestamp(day_ms / 1000, _UTC)
        first = dt.datetime.fromtimestamp(start_us / 1e6, _UTC)
        return (day.year * 12 + day.month) - (first.year * 12 + first.month)
    return (day_ms * 1000 - start_us) // STEPS_US[interval]


def summary(conn: C, query: Query, previous: bool, interval: str | None, engine: Engine[C]) -> dict[str, Any]:
    """stats.summary, plus the imported days of the period (and of the previous window, and per bucket)."""
    result = engine.summary(conn, query, previous, interval)
    if query.filters:
        return result
    days = engine.site_days(conn, query.hostname, query.start, query.end)
    if days:
        _add(result["current"], _sum(list(days.values())))
        if interval is not None:
            assert query.start_us is not None
            _add_to_buckets(result["interval"], days, interval, query.start_us)
    if "previous" in result and query.start_us is not None and query.end_us is not None:
        lo, hi = previous_period(query.start_us, query.end_us)
        before = engine.site_days(conn, query.hostname, _ms(lo, up=True), _ms(hi, up=False))
        if before:
            _add(result["previous"], _sum(list(before.values())))
    return result


def _add_to_buckets(rows: list[dict[str, Any]], days: dict[int, Totals], interval: str, start_us: int) -> None:
    """Add each imported day to the /summary interval entry its 00:00 UTC falls in, in place."""
    buckets: dict[int, list[Totals]] = {}
    for day, totals in days.items():
        buckets.setdefault(_bucket(interval, start_us, day), []).append(totals)
    for index, row in enumerate(rows):
        if index in buckets:
            _add(row, _sum(buckets[index]))


def site_intervals(
    conn: C, hostnames: list[str], start_us: int, end_us: int, interval: str, engine: Engine[C]
) -> list[list[dict[str, Any]]]:
    """overview.site_intervals (the sparklines), with each site's imported days added as /summary adds them."""
    rows = engine.site_intervals(conn, hostnames, start_us, end_us, interval)
    for hostname, buckets in zip(hostnames, rows, strict=True):
        query = Query(hostname, start_us, end_us)
        days = engine.site_days(conn, hostname, query.start, query.end)
        if days:
            _add_to_buckets(buckets, days, interval, start_us)
    return rows


def visitors_since(conn: C, hostnames: list[str], since_ms: int, engine: Engine[C]) -> dict[str, int]:
    """overview.visitors_since (the websites list's summary), plus the imported visitors of the days whose
    00:00 UTC lies in the window, as /summary adds them."""
    counts = engine.visitors_since(conn, hostnames, since_ms)
    for hostname, extra in engine.imported_visitors_since(conn, hostnames, since_ms).items():
        counts[hostname] += extra
    return counts


def list_stats(
    conn: C,
    query: Query,
    endpoint: str,
    summary: bool,
    page: Page,
    variant: bool,
    engine: Engine[C],
) -> list[dict[str, Any]]:
    """stats.list_stats, with the imported totals of the period added per value, ranked and paged again."""
    dimension = DIMENSIONS.get(endpoint)
    if dimension == "referrer" and variant:
        dimension = "referrer_host"
    extra = (
        {}
        if dimension is None or query.filters
        else engine.totals(conn, query.hostname, dimension, query.start, query.end)
    )
    if not extra:
        return engine.list_stats(conn, query, endpoint, summary, page, variant)
    key = LISTS[endpoint][1]
    rows = {row[key]: row for row in engine.list_stats(conn, query, endpoint, summary, Page(), variant)}
    pages = endpoint == "pages"
    for value, totals in extra.items():
        row = rows.get(value)
        if row is None:
            row = rows[value] = {key: value, "visitors": 0}
            if not summary:
                if pages:
                    row["pageviews"] = 0
                row["bounce_percentage"] = 0.0
                row["duration"] = 0
        ours = int(row["visitors"])
        row["visitors"] = ours + totals.visitors
        if not summary:
            if pages:
                row["pageviews"] = int(row["pageviews"]) + totals.pageviews
            else:
                _add_rate(row, ours, totals)
    merged = list(rows.values())
    visitors = sum(int(row["visitors"]) for row in merged)
    pageviews = sum(int(row.get("pageviews", 0)) for row in merged)
    for row in merged:
        row["visitors_percentage"] = fraction(int(row["visitors"]), visitors)
        if pages and not summary:
            row["pageviews_percentage"] = fraction(int(row["pageviews"]), pageviews)
    if pages and not summary:
        merged.sort(key=lambda row: (-row["visitors"], -row["pageviews"], row[key]))
    else:
        merged.sort(key=lambda row: (-row["visitors"], row[key]))
    return [_ordered(row, key, pages, summary) for row in page.cut(merged)]


def _add_rate(row: dict[str, Any], ours: int, totals: Totals) -> None:
    total = ours + totals.visitors
    theirs = totals.bounces / totals.visits if totals.visits else 0.0
    if total:
        row["bounce_percentage"] = round4((row["bounce_percentage"] * ours + theirs * totals.visitors) / total)
    if not ours and totals.visits:
        row["duration"] = round(totals.duration_s * 1000 / totals.visits)


def _ordered(row: dict[str, Any], key: str, pages: bool, summary: bool) -> dict[str, Any]:
    """The row's fields in the order stats.list_stats writes them."""
    names = [key, "visitors", "visitors_percentage"]
    if not summary:
        names += ["pageviews", "pageviews_percentage"] if pages else []
        names += ["bounce_percentage", "duration"]
    return {name: row[name] for name in names}
