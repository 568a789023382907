"""The stats queries behind /api/website/{hostname}/*: summary, lists, time, properties (spec §4).

Every answer is built from `Group` aggregates. Without filters they come from
the rollups (store/rollups.py) plus raw rows for the pieces rollups cannot
answer; with filters they come from the raw rows, medians and quartiles
through ranking windows. Both feed the same formulas below, so the fast path
and the raw path agree to the last digit (tests/store/test_stats_random.py).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import groupby
from typing import Any

from medama_core.store import rollups
from medama_core.store.aggregate import Group, Runs, fraction
from medama_core.store.filters import PROP_FIELDS, Filter, matcher, where_sql
from medama_core.store.rollups import DURATION_KINDS, HOUR_MS, KIND_SQL, KINDS

QUARTILES = (0.25, 0.5, 0.75)
STEPS_US = {  # interval -> bucket width in microseconds (week = 7 days, as upstream)
    "minute": 60 * 10**6,
    "hour": 3600 * 10**6,
    "day": 86400 * 10**6,
    "week": 7 * 86400 * 10**6,
}

# List endpoint -> (dimension kind, JSON label key). `referrers` and `languages` switch kind by a flag.
LISTS: dict[str, tuple[str, str]] = {
    "pages": ("path", "path"),
    "referrers": ("referrer", "referrer"),
    "sources": ("utm_source", "source"),
    "mediums": ("utm_medium", "medium"),
    "campaigns": ("utm_campaign", "campaign"),
    "browsers": ("browser", "browser"),
    "os": ("os", "os"),
    "devices": ("device", "device"),
    "countries": ("country", "country"),
    "languages": ("language", "language"),
}


@dataclass(frozen=True)
class Query:
    """What every stats endpoint filters on: a site, an optional period and the field filters."""

    hostname: str
    start_us: int | None = None  # inclusive, Unix microseconds (RFC 3339 carries up to µs)
    end_us: int | None = None
    filters: tuple[Filter, ...] = ()

    @property
    def start(self) -> int | None:
        """The first whole millisecond inside the period."""
        return None if self.start_us is None else -(-self.start_us // 1000)

    @property
    def end(self) -> int | None:
        return None if self.end_us is None else self.end_us // 1000

    @property
    def view_filters(self) -> tuple[Filter, ...]:
        return tuple(f for f in self.filters if f.field not in PROP_FIELDS)

    @property
    def prop_filters(self) -> tuple[Filter, ...]:
        return tuple(f for f in self.filters if f.field in PROP_FIELDS)


@dataclass(frozen=True)
class Page:
    """Which slice of a sorted list to return: `limit` None means all rows."""

    limit: int | None = None
    offset: int = 0

    def cut(self, rows: list[Any]) -> list[Any]:
        end = None if self.limit is None else self.offset + self.limit
        return rows[self.offset : end]


# ---- raw rows ---------------------------------------------------------------------------------------

_RAW_GROUPS_SQL = "SELECT {label}, " + rollups.GROUP_COLUMNS + " FROM views v WHERE {where} GROUP BY 1"
_RAW_RUNS_SQL = "SELECT {label}, v.duration_ms FROM views v WHERE {where} AND v.duration_ms IS NOT NULL ORDER BY 1, 2"
# Quantiles as DuckDB's quantile_cont: the 0-based position (n-1)q between two order statistics,
# found with a ranking window, interpolated linearly in double precision.
_RAW_QUANTILES_SQL = """
    WITH ranked AS (
        SELECT {label} AS label, v.duration_ms AS d,
            ROW_NUMBER() OVER (PARTITION BY {label} ORDER BY v.duration_ms) - 1 AS i,
            COUNT(*) OVER (PARTITION BY {label}) AS n
        FROM views v WHERE {where} AND v.duration_ms IS NOT NULL
    ),
    positions AS (
        SELECT label, d, i, n, q, (n - 1) * q AS pos, CAST((n - 1) * q AS INTEGER) AS lo
        FROM ranked, (SELECT 0.25 AS q UNION ALL SELECT 0.5 UNION ALL SELECT 0.75)
    ),
    ends AS (
        SELECT label, q, pos, lo,
            MAX(CASE WHEN i = lo THEN d END) AS lo_v,
            MAX(CASE WHEN i = lo + (pos > lo) THEN d END) AS hi_v
        FROM positions WHERE i BETWEEN lo AND lo + 1 GROUP BY label, q
    )
    SELECT label, q, CAST(lo_v AS REAL) + CAST(hi_v - lo_v AS REAL) * (pos - lo) FROM ends"""


def _where(query: Query, params: dict[str, object], lo: int | None, hi: int | None, time: str) -> str:
    """`hostname`, the period on `time`, and the query's filters (prop filters through `events e`)."""
    clauses = ["v.hostname = :hostname"]
    params["hostname"] = query.hostname
    if lo is not None:
        clauses.append(f"{time} >= :lo")
        params["lo"] = lo
    if hi is not None:
        clauses.append(f"{time} <= :hi")
        params["hi"] = hi
    clauses += where_sql(query.view_filters, params)
    if query.prop_filters and time == "v.date_created":
        props = where_sql(query.prop_filters, params, "p")
        clauses.append(f"EXISTS (SELECT 1 FROM events e WHERE e.bid = v.bid AND {' AND '.join(props)})")
    return " AND ".join(clauses)


def _raw_groups(conn: sqlite3.Connection, label: str, where: str, params: dict[str, object]) -> dict[Any, Group]:
    sql = _RAW_GROUPS_SQL.format(label=label, where=where)
    return {value: Group(*counts) for value, *counts in conn.execute(sql, params)}


def _raw_runs(conn: sqlite3.Connection, label: str, where: str, params: dict[str, object]) -> dict[Any, list[int]]:
    rows = conn.execute(_RAW_RUNS_SQL.format(label=label, where=where), params)
    return {value: [duration for _, duration in pairs] for value, pairs in groupby(rows, key=lambda row: row[0])}


def _raw_quantiles(
    conn: sqlite3.Connection, label: str, where: str, params: dict[str, object]
) -> dict[Any, dict[float, float | None]]:
    result: dict[Any, dict[float, float | None]] = {}
    for value, q, quantile in conn.execute(_RAW_QUANTILES_SQL.format(label=label, where=where), params):
        result.setdefault(value, {})[q] = quantile
    return result


def filtered_groups(conn: sqlite3.Connection, query: Query, label: str, quantiles: bool) -> dict[Any, Group]:
    """Aggregates per `label` (SQL over `views v`) straight from the raw rows, filters applied."""
    params: dict[str, object] = {}
    where = _where(query, params, query.start, query.end, "v.date_created")
    groups = _raw_groups(conn, label, where, params)
    if quantiles:
        found = _raw_quantiles(conn, label, where, params)
        for value, group in groups.items():
            group.fixed = found.get(value, dict.fromkeys(QUARTILES))
    return groups


# ---- rollups plus raw pieces ------------------------------------------------------------------------


def fast_groups(conn: sqlite3.Connection, query: Query, kind: int, runs: bool) -> dict[str, Group]:
    """Aggregates per value of `kind` for an unfiltered query, from rollups and raw pieces.

    With `runs`, durations are loaded for every group of a kind that stores them; for
    other kinds each group gets a loader that reads its durations when first asked.
    """
    plan = rollups.plan(conn, query.hostname, query.start, query.end)
    groups = rollups.rollup_groups(conn, query.hostname, kind, plan)
    stored = runs and kind in DURATION_KINDS
    all_runs = rollups.rollup_runs(conn, query.hostname, kind, plan) if stored else {}
    for lo, hi in plan.raw:
        params: dict[str, object] = {}
        where = _where(Query(query.hostname), params, lo, hi, "v.date_created")
        for value, group in _raw_groups(conn, KIND_SQL[kind], where, params).items():
            groups.setdefault(value, Group()).add(group)
        if stored:
            for value, run in _raw_runs(conn, KIND_SQL[kind], where, params).items():
                all_runs.setdefault(value, []).append(run)
    for value, group in groups.items():
        if stored:
            group.runs = all_runs.get(value, [])
        else:
            group.runs = None
            group.loader = _durations_loader(conn, query, kind, value)
    return groups


def _durations_loader(conn: sqlite3.Connection, query: Query, kind: int, value: str) -> Callable[[], Runs]:
    def load() -> Runs:
        params: dict[str, object] = {"value": value}
        where = _where(Query(query.hostname), params, query.start, query.end, "v.date_created")
        where += f" AND {KIND_SQL[kind]} = :value"
        found = _raw_runs(conn, "''", where, params)
        return [found.get("", [])]

    return load


def groups_for(conn: sqlite3.Connection, query: Query, kind: int, durations: bool) -> dict[str, Group]:
    """The groups of `kind`: rollups when the query has no filters, the raw rows otherwise."""
    if query.filters:
        return filtered_groups(conn, query, KIND_SQL[kind], durations)
    return fast_groups(conn, query, kind, durations)


def _total(groups: dict[str, Group]) -> Group:
    total = Group()
    for group in groups.values():
        total.add(group)
    return total


# ---- /summary ---------------------------------------------------------------------------------------


def _metrics(group: Group) -> dict[str, Any]:
    return {
        "visitors": group.visitors,
        "pageviews": group.pageviews,
        "bounce_percentage": group.bounce_rate(),
        "duration": group.duration(),
    }


def site_metrics(conn: sqlite3.Connection, query: Query) -> dict[str, Any]:
    """visitors, pageviews, bounce_percentage and duration over the whole query."""
    groups = groups_for(conn, query, KINDS["total"], True)
    return _metrics(groups.get("", Group(runs=[], fixed=None)))


def bucket_count(interval: str, start_us: int, end_us: int) -> int:
    """How many buckets `interval` makes from start to end (both inclusive)."""
    if end_us < start_us:
        return 0
    if interval == "month":
        return _month_index(end_us // 1000) - _month_index(start_us // 1000) + 1
    return (end_us - start_us) // STEPS_US[interval] + 1


def _month_index(ms: int) -> int:
    moment = datetime.fromtimestamp(ms // 1000, UTC)
    return moment.year * 12 + moment.month - 1


def _bucket_date(interval: str, start_us: int, index: int) -> str:
    """DuckDB's text for a TIMESTAMPTZ bucket start in UTC: `YYYY-MM-DD HH:MM:SS[.ffffff]+00`."""
    if interval == "month":
        month = _month_index(start_us // 1000) + index
        return f"{month // 12:04d}-{month % 12 + 1:02d}-01 00:00:00+00"
    us = start_us + index * STEPS_US[interval]
    seconds, micro = divmod(us, 10**6)
    text = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S")
    if micro:
        text += f".{micro:06d}".rstrip("0")
    return text + "+00"


def _bucket_sql(interval: str, params: dict[str, object], start_us: int) -> str:
    if interval == "month":
        params["month0"] = _month_index(start_us // 1000)
        return (
            "(CAST(strftime('%Y', v.date_created / 1000, 'unixepoch') AS INTEGER) * 12"
            " + CAST(strftime('%m', v.date_created / 1000, 'unixepoch') AS INTEGER) - 1 - :month0)"
        )
    params["origin_us"] = start_us
    params["step_us"] = STEPS_US[interval]
    return "((v.date_created * 1000 - :origin_us) / :step_us)"


def interval_metrics(
    conn: sqlite3.Connection, query: Query, interval: str, start_us: int, end_us: int
) -> list[dict[str, Any]]:
    """One entry per bucket from start to end, empty buckets as zeros (spec §4.2)."""
    count = bucket_count(interval, start_us, end_us)
    buckets = _bucket_groups(conn, query, interval, start_us)
    result = []
    for index in range(count):
        group = buckets.get(index) or Group(runs=[])
        result.append({"date": _bucket_date(interval, start_us, index), **_metrics(group)})
    return result


def _hour_aligned(interval: str, start_us: int) -> bool:
    """Whether every whole hour falls inside one bucket, so hour rollups can be summed per bucket."""
    return interval == "month" or (interval != "minute" and start_us % (HOUR_MS * 1000) == 0)


def _bucket_groups(conn: sqlite3.Connection, query: Query, interval: str, start_us: int) -> dict[int, Group]:
    params: dict[str, object] = {}
    label = _bucket_sql(interval, params, start_us)
    if query.filters or not _hour_aligned(interval, start_us):
        where = _where(query, params, query.start, query.end, "v.date_created")
        raw = _raw_groups(conn, label, where, params)
        found = _raw_quantiles(conn, label, where, params)
        for value, group in raw.items():
            group.fixed = found.get(value, dict.fromkeys(QUARTILES))
        return raw
    plan = rollups.plan(conn, query.hostname, query.start, query.end, days=False)
    groups: dict[int, Group] = {}
    for lo, hi in plan.hours:
        hours, runs = rollups.hour_buckets(conn, query.hostname, lo, hi)
        for hour, counts in hours.items():
            index = _bucket_of(interval, start_us, hour * HOUR_MS)
            group = groups.setdefault(index, Group())
            group.add(counts)
            assert group.runs is not None
            group.runs.extend(runs.get(hour, []))
    for lo, hi in plan.raw:
        piece: dict[str, object] = dict(params)
        where = _where(Query(query.hostname), piece, lo, hi, "v.date_created")
        for index, counts in _raw_groups(conn, label, where, piece).items():
            groups.setdefault(index, Group()).add(counts)
        for index, run in _raw_runs(conn, label, where, piece).items():
            group = groups[index]
            assert group.runs is not None
            group.runs.append(run)
    return groups


def _bucket_of(interval: str, start_us: int, ms: int) -> int:
    if interval == "month":
        return _month_index(ms) - _month_index(start_us // 1000)
    return (ms * 1000 - start_us) // STEPS_US[interval]


# ---- list endpoints ---------------------------------------------------------------------------------


def list_stats(
    conn: sqlite3.Connection, query: Query, endpoint: str, summary: bool, page: Page, variant: bool = False
) -> list[dict[str, Any]]:
    """pages, referrers, sources, ... languages. `variant`: grouped=false / locale=true."""
    kind_name, key = LISTS[endpoint]
    if variant:
        kind_name = {"referrer": "referrer_host", "language": "language_dialect"}.get(kind_name, kind_name)
    pages = endpoint == "pages"
    groups = groups_for(conn, query, KINDS[kind_name], durations=not summary)
    total = _total(groups)
    if pages:
        items = [(label, g) for label, g in groups.items() if g.page_visitors > 0]
        if summary:
            items.sort(key=lambda item: (-item[1].page_visitors, item[0]))
        else:
            items.sort(key=lambda item: (-item[1].page_visitors, -item[1].pageviews, item[0]))
    else:
        items = sorted(groups.items(), key=lambda item: (-item[1].visitors, item[0]))
    rows = []
    for label, group in page.cut(items):
        visitors = group.page_visitors if pages else group.visitors
        row: dict[str, Any] = {
            key: label,
            "visitors": visitors,
            "visitors_percentage": fraction(visitors, total.page_visitors if pages else total.visitors),
        }
        if not summary:
            if pages:
                row["pageviews"] = group.pageviews
                row["pageviews_percentage"] = fraction(group.pageviews, total.pageviews)
            row["bounce_percentage"] = group.bounce_rate()
            row["duration"] = group.duration()
        rows.append(row)
    return rows


def time_stats(conn: sqlite3.Connection, query: Query, summary: bool, page: Page) -> list[dict[str, Any]]:
    """/time: median, quartiles and share of total time per page (spec §4.3)."""
    groups = groups_for(conn, query, KINDS["path"], True)
    kept = [
        (path, g)
        for path, g in groups.items()
        if g.page_visitors >= 3 and g.median_positive() and (summary or g.duration(0.25) > 0)
    ]
    total = sum(g.duration_sum for _, g in kept)
    shares = {path: fraction(g.duration_sum, total) for path, g in kept}
    if summary:
        kept.sort(key=lambda item: (-shares[item[0]], -item[1].duration(), -item[1].page_visitors, item[0]))
    else:
        kept.sort(key=lambda item: (-item[1].page_visitors, -item[1].duration(), item[0]))
    rows = []
    for path, group in page.cut(kept):
        if summary:
            rows.append({"path": path, "duration": group.duration(), "duration_percentage": shares[path]})
        else:
            rows.append(
                {
                    "path": path,
                    "duration": group.duration(),
                    "duration_upper_quartile": group.duration(0.75),
                    "duration_lower_quartile": group.duration(0.25),
                    "duration_percentage": shares[path],
                    "visitors": group.page_visitors,
                }
            )
    return rows


# ---- /properties ------------------------------------------------------------------------------------

_RAW_PROPS_SQL = """
    SELECT e.name, e.value, COUNT(*) FROM events e JOIN views v ON v.bid = e.bid
    WHERE {where} GROUP BY 1, 2"""


def property_counts(conn: sqlite3.Connection, query: Query) -> dict[tuple[str, str], int]:
    """Events per (name, value) of the site's views, the period applied to the events' own time."""
    if query.view_filters:
        params: dict[str, object] = {}
        where = _where(query, params, query.start, query.end, "e.date_created")
        where = " AND ".join([where, *where_sql(query.prop_filters, params, "p")])
        return {(name, value): n for name, value, n in conn.execute(_RAW_PROPS_SQL.format(where=where), params)}
    plan = rollups.plan(conn, query.hostname, query.start, query.end)
    counts = rollups.props_groups(conn, query.hostname, plan)
    for lo, hi in plan.raw:
        params = {}
        where = _where(Query(query.hostname), params, lo, hi, "e.date_created")
        for name, value, n in conn.execute(_RAW_PROPS_SQL.format(where=where), params):
            counts[(name, value)] = counts.get((name, value), 0) + n
    tests = [(flt.field == "prop_name", matcher(flt)) for flt in query.prop_filters]
    return {key: n for key, n in counts.items() if all(test(key[0] if is_name else key[1]) for is_name, test in tests)}


def properties(conn: sqlite3.Connection, query: Query, page: Page) -> list[dict[str, Any]]:
    """Event counts per property name, or per value when a non-empty prop_name filter is given."""
    # An empty prop_name selects no property: it lists names, as if absent (spec §4.4).
    kept = tuple(f for f in query.filters if not (f.field == "prop_name" and f.value == ""))
    by_value = any(f.field == "prop_name" for f in kept)
    counts = property_counts(conn, Query(query.hostname, query.start_us, query.end_us, kept))
    total = sum(counts.values())
    if by_value:
        items = sorted(counts.items(), key=lambda item: (-item[1], item[0][1], item[0][0]))
        return [
            {"value": value, "events": n, "events_percentage": fraction(n, total)} for (_, value), n in page.cut(items)
        ]
    names: dict[str, int] = {}
    for (name, _), n in counts.items():
        names[name] = names.get(name, 0) + n
    ranked = sorted(names.items(), key=lambda item: (-item[1], item[0]))
    return [{"name": name, "events": n, "events_percentage": fraction(n, total)} for name, n in page.cut(ranked)]


def previous_period(start_us: int, end_us: int) -> tuple[int, int]:
    """[start - (end - start), start]: the window of equal length just before, sharing the instant `start`."""
    return start_us - (end_us - start_us), start_us
