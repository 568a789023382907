"""The stats queries behind /api/website/{hostname}/*: summary, lists, time, properties (spec §4).

Every answer is built from `Group` aggregates. Without filters they come from
the rollups (store/rollups.py), with filters from the column copies of clean
days (store/columns.py, store/scan.py); both read raw rows for the hours they
cannot answer. All feed the same formulas below, and agree to the last digit
with a plain reference over the raw rows (tests/store/test_equivalence.py).
"""

from __future__ import annotations

import sqlite3
from array import array
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from itertools import groupby
from operator import itemgetter
from typing import Any, Concatenate, ParamSpec, TypeVar

from medama_core.store import columns, rollups, scan
from medama_core.store.aggregate import (
    Group,
    Run,
    Runs,
    fraction,
    quantile_cont,
)
from medama_core.store.filters import PROP_FIELDS, Filter, matcher, where_sql
from medama_core.store.rollups import DAY, DURATION_KINDS, HOUR, HOUR_MS, KIND_SQL, KINDS, RUN_SPANS

UTC = timezone.utc  # datetime.UTC is Python 3.11+

P = ParamSpec("P")
T = TypeVar("T")
Piece = tuple[str, dict[str, object]]  # a WHERE clause over `views v` and its parameters

QUARTILES = (0.25, 0.5, 0.75)
STEPS_US = {  # interval -> bucket width in microseconds (week = 7 days, as upstream)
    "minute": 60 * 10**6,
    "hour": 3600 * 10**6,
    "day": 86400 * 10**6,
    "week": 7 * 86400 * 10**6,
}
MAX_BOUND_VALUES = 500  # values bound in one `IN (...)`; SQLite allows 32766 variables, far above this
RUNS_CHUNK = 50  # groups whose duration runs are held at once (a busy page's 90 days: ~100 runs)
# Bytes of day durations a summary holds in memory at once for its medians (10 M views in 90 days
# would be 31 MB); days beyond it keep every 64th value and read the rest from the database.
COLUMN_DURATIONS_HELD = 4 << 20
MAX_RAW_RANGES = 200  # raw ranges OR-ed in one query (each binds 2 values); after a migration every hour is raw

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


def snapshot(
    conn: sqlite3.Connection, fn: Callable[Concatenate[sqlite3.Connection, P], T], *args: P.args, **kwargs: P.kwargs
) -> T:
    """`fn(conn, ...)` inside one read transaction: all its queries and blob reads see the same rows."""
    conn.execute("BEGIN")
    try:
        return fn(conn, *args, **kwargs)
    finally:
        conn.execute("COMMIT")


# ---- raw rows ---------------------------------------------------------------------------------------

_RAW_GROUPS_SQL = "SELECT {label}, {columns} FROM views v WHERE {where} GROUP BY 1"
_RAW_DURATIONS_SQL = (
    "SELECT {label}, v.duration_ms FROM views v WHERE {where} AND v.duration_ms IS NOT NULL ORDER BY 1, 2"
)
# Enough for the compact rows of the lists (visitors or page visitors); full rows use GROUP_COLUMNS.
_VISITOR_COLUMNS = "COUNT(*) FILTER (WHERE v.is_unique_user), COUNT(*) FILTER (WHERE v.is_unique_page)"


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
    if time == "v.date_created":
        clauses += _props_sql(query, params)
    return " AND ".join(clauses)


def _props_sql(query: Query, params: dict[str, object]) -> list[str]:
    """The prop filters on views: an event with the view's bid, at any time, matching all of them."""
    if not query.prop_filters:
        return []
    props = where_sql(query.prop_filters, params, "p")
    return [f"EXISTS (SELECT 1 FROM events e WHERE e.bid = v.bid AND {' AND '.join(props)})"]


def _raw_groups(
    conn: sqlite3.Connection, label: str, where: str, params: dict[str, object], full: bool = True
) -> dict[Any, Group]:
    columns = rollups.GROUP_COLUMNS if full else _VISITOR_COLUMNS
    sql = _RAW_GROUPS_SQL.format(label=label, columns=columns, where=where)
    return {value: Group(*counts) for value, *counts in conn.execute(sql, params)}


def _raw_durations(
    conn: sqlite3.Connection, label: str, where: str, params: dict[str, object]
) -> Iterable[tuple[Any, array[int]]]:
    """Each label's durations, sorted, one label at a time."""
    rows = conn.execute(_RAW_DURATIONS_SQL.format(label=label, where=where), params)
    for value, pairs in groupby(rows, key=itemgetter(0)):
        yield value, array("q", (duration for _, duration in pairs))


# ---- rollups plus raw pieces ------------------------------------------------------------------------


def fast_groups(conn: sqlite3.Connection, query: Query, kind: int, full: bool = True) -> dict[str, Group]:
    """Aggregates per value of `kind` for an unfiltered query, from rollups and raw pieces.

    Without `full`, only visitors and page visitors are summed. Durations are not
    read here: each group gets a loader, and `load_quantiles` serves many at once.
    """
    plan = rollups.plan(conn, query.hostname, query.start, query.end)
    columns = rollups.SUMS if full else "SUM(visitors), SUM(page_visitors)"
    groups = rollups.rollup_groups(conn, query.hostname, kind, plan, columns)
    for where, params in _raw_pieces(query.hostname, plan.raw):
        for value, group in _raw_groups(conn, KIND_SQL[kind], where, params, full).items():
            groups.setdefault(value, Group()).add(group)
    for value, group in groups.items():
        group.loader = _loader(conn, query, kind, value)
    return groups


def _loader(conn: sqlite3.Connection, query: Query, kind: int, value: str) -> Callable[[], Runs]:
    return lambda: _runs(conn, query, kind, [value]).get(value, [])


def load_quantiles(
    conn: sqlite3.Connection, query: Query, kind: int, groups: dict[str, Group], values: list[str], qs: Sequence[float]
) -> None:
    """Select the quantiles `qs` of the fast-path groups `values` of `kind`.

    Their runs are read RUNS_CHUNK groups at a time and let go once selected.
    """
    if query.filters or not values:
        return
    for start in range(0, len(values), RUNS_CHUNK):
        chunk = values[start : start + RUNS_CHUNK]
        found = _runs(conn, query, kind, chunk)
        for value in chunk:
            runs = found.get(value, [])
            groups[value].fixed = {q: quantile_cont(runs, q) for q in qs}


def _runs(conn: sqlite3.Connection, query: Query, kind: int, values: list[str]) -> dict[str, Runs]:
    """Duration runs of some values of `kind`: the stored runs plus raw pieces.

    Kinds with runs at every RUN_SPAN read raw only the plan's raw ranges; the others,
    with day runs only, also read raw the hours outside whole built days.
    """
    if kind in DURATION_KINDS:
        plan = rollups.plan(conn, query.hostname, query.start, query.end, RUN_SPANS)
    else:
        plan = rollups.plan(conn, query.hostname, query.start, query.end, (HOUR, DAY))
        hours = [(lo * HOUR_MS, (hi + 1) * HOUR_MS - 1) for span, lo, hi in plan.pieces if span == HOUR]
        plan = rollups.Plan([piece for piece in plan.pieces if piece[0] == DAY], rollups.merge(plan.raw + hours))
    runs = rollups.rollup_runs(conn, query.hostname, kind, plan, values)
    for where, params in _raw_pieces(query.hostname, plan.raw):
        where += f" AND {KIND_SQL[kind]} IN ({rollups.bind_values(params, values, 'value')})"
        for value, durations in _raw_durations(conn, KIND_SQL[kind], where, params):
            runs.setdefault(value, []).append(Run.of(durations))
    return runs


def _raw_pieces(hostname: str, ranges: list[tuple[int, int]], time: str = "v.date_created") -> Iterator[Piece]:
    """WHERE clauses for the site's rows in the plan's raw ranges, MAX_RAW_RANGES ranges at a time.

    Several ranges choose their rows by rowid, one indexed range scan per range (the site is
    in the subqueries only): given OR-ed ranges, SQLite may pick an index that does not bound
    the time (it took the site's whole page-led index, before migration 8). A single range of
    views (most often the current hour) is bounded directly, which reads its rows in half the time.
    """
    table = "views" if time == "v.date_created" else "events"
    site = "hostname = :hostname AND " if table == "views" else ""
    if table == "views" and len(ranges) == 1:
        lo, hi = ranges[0]
        yield (
            "v.hostname = :hostname AND v.date_created BETWEEN :r0lo AND :r0hi",
            {
                "hostname": hostname,
                "r0lo": lo,
                "r0hi": hi,
            },
        )
        return
    for first in range(0, len(ranges), MAX_RAW_RANGES):
        params: dict[str, object] = {"hostname": hostname}
        selects = []
        for i, (lo, hi) in enumerate(ranges[first : first + MAX_RAW_RANGES]):
            params.update({f"r{i}lo": lo, f"r{i}hi": hi})
            selects.append(f"SELECT rowid FROM {table} WHERE {site}date_created BETWEEN :r{i}lo AND :r{i}hi")
        rows = f"{time[0]}.rowid IN ({' UNION ALL '.join(selects)})"
        yield (rows if table == "views" else f"v.hostname = :hostname AND {rows}"), params


def groups_for(
    conn: sqlite3.Connection, query: Query, kind: int, fields: Sequence[str] | None = None
) -> dict[str, Group]:
    """The groups of `kind`: from rollups without filters, from column copies (and raw pieces) with."""
    if not query.filters:
        return fast_groups(conn, query, kind)
    if kind == KINDS["total"]:
        site, _ = column_buckets(conn, query)
        return {"": site[0]} if 0 in site else {}
    return column_groups(conn, query, kind, True, fields)


# ---- column copies plus raw pieces ------------------------------------------------------------------


def _filtered_pieces(query: Query, ranges: list[tuple[int, int]]) -> Iterator[Piece]:
    """`_raw_pieces` with the query's filters."""
    for where, params in _raw_pieces(query.hostname, ranges):
        yield " AND ".join([where, *where_sql(query.view_filters, params), *_props_sql(query, params)]), params


def column_groups(
    conn: sqlite3.Connection, query: Query, kind: int, full: bool, fields: Sequence[str] | None = None
) -> dict[str, Group]:
    """Aggregates per value of `kind` for a filtered query: column copies of clean days, raw rows for the rest.

    Without `full`, only visitors and page visitors; with it, every count and the durations as runs.
    `fields` narrows the counts taken from the copies to what the caller reads (scan.GROUP_FIELDS;
    "labels" keeps groups whose counts are all 0); the others are left at 0.
    """
    if fields is None:
        fields = ("labels", "visitors", "page_visitors") + (("pageviews", "bounces", "timed") if full else ())
    the_plan = columns.plan(conn, query.hostname, query.start, query.end, props=bool(query.prop_filters))
    name = columns.KIND_COLUMNS[kind]
    hours = the_plan.hours_by_day()
    selection = scan.Selection(query.view_filters, query.prop_filters)
    totals: dict[str, Counter[str]] = {}
    runs: dict[str, list[array[int]]] = {}
    partial = the_plan.partial_days()
    for copy in columns.load(conn, query.hostname, list(hours), [*selection.columns, name], full, partial=partial):
        day_scan = scan.DayScan(copy)
        mask = day_scan.filters_mask(selection)
        if mask:
            mask &= day_scan.hours_in(hours[copy.day])
        if not mask:
            continue
        counts, day_runs = day_scan.group_counts(name, mask, fields, full)
        for field, counter in counts.items():
            totals.setdefault(field, Counter()).update(counter)
        for label, durations in day_runs.items():
            runs.setdefault(label, []).append(durations)
    groups: dict[str, Group] = {}
    for label in {label for counter in totals.values() for label in counter} | set(runs):
        group = groups[label] = Group()
        for field, counter in totals.items():
            if field != "labels":
                setattr(group, field, counter[label])
        if full:
            arrays = runs.get(label, [])
            group.measured = sum(map(len, arrays))
            group.duration_sum = sum(map(sum, arrays))
            group.zeros = sum(bisect_right(durations, 0) for durations in arrays)
            group.ones = sum(bisect_right(durations, 1) for durations in arrays)
            group.loader = _arrays_loader(arrays)
    for where, params in _filtered_pieces(query, the_plan.raw):
        for label, counts_ in _raw_groups(conn, KIND_SQL[kind], where, params, full).items():
            groups.setdefault(label, Group(runs=[] if full else None)).add(counts_)
        if full:
            for label, raw_durations in _raw_durations(conn, KIND_SQL[kind], where, params):
                groups[label].durations().append(Run.of(raw_durations))
    return groups


def _arrays_loader(arrays: list[array[int]]) -> Callable[[], Runs]:
    return lambda: [Run.of(durations) for durations in arrays]


def column_buckets(
    conn: sqlite3.Connection, query: Query, interval: str | None = None, start_us: int = 0, total: bool = False
) -> tuple[dict[int, Group], Group | None]:
    """Site aggregates with their medians for a filtered query, per bucket of `interval` from `start_us`
    (one bucket, 0, without), and with `total` the whole period as well.

    Whole hours of copied clean days come from the column copies (an hour that straddles a
    bucket edge is read raw), the rest from the raw rows. The copies give what /summary reads:
    visitors, pageviews, bounces, timed visitors and the median.
    """
    the_plan = columns.plan(conn, query.hostname, query.start, query.end, props=bool(query.prop_filters))
    fits = _fits(interval, start_us) if interval is not None else None
    raw = list(the_plan.raw)
    segments: dict[int, list[tuple[int, int, int]]] = {}  # day -> (first hour, last hour, bucket)
    for day, first, last in the_plan.days:
        for hour in range(first, last + 1):
            absolute = day * columns.HOURS_PER_DAY + hour
            bucket = 0
            if interval is not None and fits is not None:
                if not fits(absolute, HOUR):
                    raw.append((absolute * HOUR_MS, (absolute + 1) * HOUR_MS - 1))
                    continue
                bucket = _bucket_of(interval, start_us, absolute * HOUR_MS)
            pieces = segments.setdefault(day, [])
            if pieces and pieces[-1][2] == bucket and pieces[-1][1] == hour - 1:
                pieces[-1] = (pieces[-1][0], hour, bucket)
            else:
                pieces.append((hour, hour, bucket))
    groups: dict[int, Group] = {}
    raw_sources: dict[int, list[scan.Source]] = {}  # read first: buckets are then finished day by day
    params: dict[str, object] = {}
    label = "0" if interval is None else _bucket_sql(interval, params, start_us)
    for where, piece in _filtered_pieces(query, rollups.merge(raw)):
        piece.update(params)
        for key, counts in _raw_groups(conn, label, where, piece).items():
            groups.setdefault(key, Group()).add(counts)
        for key, durations in _raw_durations(conn, label, where, piece):
            raw_sources.setdefault(key, []).append(scan.ArrayRun(durations))
    open_buckets: dict[int, list[scan.Source]] = {}
    whole_sources: list[scan.Source] = [source for part in raw_sources.values() for source in part]
    held = 0  # bytes of durations held whole
    windows: list[columns.DurationsWindow] = []
    selection = scan.Selection(query.view_filters, query.prop_filters)
    for copy in columns.load(conn, query.hostname, list(segments), selection.columns, True):
        day_scan = scan.DayScan(copy)
        base = day_scan.filters_mask(selection)
        windows.append(columns.DurationsWindow(conn, copy))
        window = windows[-1]
        assert copy.durations is not None
        whole = held + len(copy.durations) * copy.durations.itemsize <= COLUMN_DURATIONS_HELD
        held += len(copy.durations) * copy.durations.itemsize if whole else 0
        day_mask, runs = 0, []
        for first, last, bucket in segments[copy.day] if base else ():
            mask = base & day_scan.hours_mask(first, last)
            if mask:
                groups.setdefault(bucket, Group()).add(day_scan.site_counts(mask))
                runs.append(day_scan.masked_run(mask, window, whole))
                open_buckets.setdefault(bucket, []).append(runs[-1])
                day_mask |= mask
        if total and runs:
            whole_sources.append(runs[0] if len(runs) == 1 else day_scan.masked_run(day_mask, window, whole))
        # Buckets are spans of time: one that this day's hours do not reach has no piece in later days.
        day_buckets = {bucket for _, _, bucket in segments[copy.day]}
        for bucket in [bucket for bucket in open_buckets if bucket not in day_buckets]:
            groups[bucket].fixed = {0.5: scan.quantile(open_buckets.pop(bucket) + raw_sources.get(bucket, []), 0.5)}
    for key, group in groups.items():
        if group.fixed is None:
            group.fixed = {0.5: scan.quantile(open_buckets.get(key, []) + raw_sources.get(key, []), 0.5)}
    whole_period = None
    if total:
        whole_period = _total(groups)  # type: ignore[arg-type]
        whole_period.fixed = {0.5: scan.quantile(whole_sources, 0.5)}
    for window in windows:
        window.close()
    return groups, whole_period


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
    groups = groups_for(conn, query, KINDS["total"])
    return _metrics(groups.get("", Group(runs=[])))


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
    return _bucket_rows(interval, start_us, end_us, _bucket_groups(conn, query, interval, start_us))


def _bucket_rows(interval: str, start_us: int, end_us: int, buckets: dict[int, Group]) -> list[dict[str, Any]]:
    result = []
    for index in range(bucket_count(interval, start_us, end_us)):
        group = buckets.get(index) or Group(runs=[])
        result.append({"date": _bucket_date(interval, start_us, index), **_metrics(group)})
    return result


def summary(conn: sqlite3.Connection, query: Query, previous: bool, interval: str | None) -> dict[str, Any]:
    """/summary: the period's metrics, the previous window's (with `previous`), the buckets (spec §4.2).

    With filters and an interval, one pass over the column copies gives the buckets and the period.
    """
    result: dict[str, Any] = {}
    rows = None
    if interval is not None and query.filters:
        assert query.start_us is not None and query.end_us is not None
        buckets, total = column_buckets(conn, query, interval, query.start_us, total=True)
        assert total is not None
        result["current"] = _metrics(total)
        rows = _bucket_rows(interval, query.start_us, query.end_us, buckets)
    else:
        result["current"] = site_metrics(conn, query)
    if previous and query.start_us is not None and query.end_us is not None:
        before = Query(query.hostname, *previous_period(query.start_us, query.end_us), query.filters)
        result["previous"] = site_metrics(conn, before)
    if interval is not None:
        assert query.start_us is not None and query.end_us is not None
        result["interval"] = rows or interval_metrics(conn, query, interval, query.start_us, query.end_us)
    return result


def _fits(interval: str, start_us: int) -> rollups.Fits:
    """Whether a block of hours lies inside one bucket, so that its rollup row can be added to the bucket."""
    if interval == "month":

        def inside_month(hour: int, span: int) -> bool:
            month = _month_index(hour * HOUR_MS) + 1
            if month // 12 > datetime.max.year:
                return True
            next_month = int(datetime(month // 12, month % 12 + 1, 1, tzinfo=UTC).timestamp()) * 1000
            return next_month >= (hour + span) * HOUR_MS

        return inside_month
    step = STEPS_US[interval]

    def inside_step(hour: int, span: int) -> bool:
        first_us = hour * HOUR_MS * 1000
        next_edge = first_us + step - (first_us - start_us) % step  # the first bucket edge after the block starts
        return next_edge >= first_us + span * HOUR_MS * 1000

    return inside_step


def _bucket_groups(conn: sqlite3.Connection, query: Query, interval: str, start_us: int) -> dict[int, Group]:
    """Buckets from the rollup periods inside them, and raw rows for the hours that straddle their edges."""
    if query.filters:
        return column_buckets(conn, query, interval, start_us)[0]
    params: dict[str, object] = {}
    label = _bucket_sql(interval, params, start_us)
    plan = rollups.plan(conn, query.hostname, query.start, query.end, RUN_SPANS, _fits(interval, start_us))
    groups: dict[int, Group] = {}
    pieces: dict[int, list[tuple[int, int]]] = {}
    for span, lo, hi in plan.pieces:
        pieces.setdefault(span, []).append((lo, hi))
    for span, ranges in pieces.items():
        counts, runs = rollups.period_buckets(conn, query.hostname, span, ranges)
        for period, group_counts in counts.items():
            group = groups.setdefault(_bucket_of(interval, start_us, period * span * HOUR_MS), Group(runs=[]))
            group.add(group_counts)
            if period in runs:
                group.durations().append(runs[period])
    for where, piece in _raw_pieces(query.hostname, plan.raw):
        piece.update(params)
        for index, group_counts in _raw_groups(conn, label, where, piece).items():
            groups.setdefault(index, Group(runs=[])).add(group_counts)
        for index, durations in _raw_durations(conn, label, where, piece):
            groups[index].durations().append(Run.of(durations))
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
    kind = KINDS[kind_name]
    pages = endpoint == "pages"
    if query.filters:
        # Compact rows read one count: page visitors for pages (which drop paths without any),
        # visitors for the rest (which keep groups without any, so every label).
        fields = None if not summary else ("page_visitors",) if pages else ("labels", "visitors")
        groups = column_groups(conn, query, kind, not summary, fields)
    else:
        groups = fast_groups(conn, query, kind, full=not summary)
    total = _total(groups)
    if pages:
        items = [(label, g) for label, g in groups.items() if g.page_visitors > 0]
        if summary:
            items.sort(key=lambda item: (-item[1].page_visitors, item[0]))
        else:
            items.sort(key=lambda item: (-item[1].page_visitors, -item[1].pageviews, item[0]))
    else:
        items = sorted(groups.items(), key=lambda item: (-item[1].visitors, item[0]))
    chosen = page.cut(items)
    if not summary:
        load_quantiles(conn, query, kind, groups, [label for label, _ in chosen], (0.5,))
    rows = []
    for label, group in chosen:
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
    # Only page visitors and durations are read below.
    groups = groups_for(conn, query, KINDS["path"], ("page_visitors",))
    kept = [(path, g) for path, g in groups.items() if g.page_visitors >= 3 and g.median_positive()]
    if not summary:
        load_quantiles(conn, query, KINDS["path"], groups, [path for path, _ in kept], QUARTILES)
        kept = [(path, g) for path, g in kept if g.duration(0.25) > 0]
    total = sum(g.duration_sum for _, g in kept)
    shares = {path: fraction(g.duration_sum, total) for path, g in kept}
    if summary:
        # Sorted by share first; medians are read only for the rows up to the page's end and their ties.
        kept.sort(key=lambda item: -shares[item[0]])
        wanted = len(kept) if page.limit is None else min(len(kept), page.offset + page.limit)
        if wanted:
            last = shares[kept[wanted - 1][0]]
            kept = [item for item in kept if shares[item[0]] >= last]
            load_quantiles(conn, query, KINDS["path"], groups, [path for path, _ in kept], (0.5,))
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

# Events first: a period selects events by time, and each event finds its view by bid.
_RAW_PROPS_SQL = """
    SELECT e.name, e.value, COUNT(*) FROM events e CROSS JOIN views v ON v.bid = e.bid
    WHERE {where} GROUP BY 1, 2"""


def property_counts(conn: sqlite3.Connection, query: Query) -> dict[tuple[str, str], int]:
    """Events per (name, value) of the site's views, the period applied to the events' own time."""
    if query.view_filters:
        return _column_property_counts(conn, query)
    plan = rollups.plan(conn, query.hostname, query.start, query.end)
    counts = rollups.props_groups(conn, query.hostname, plan)
    for where, params in _raw_pieces(query.hostname, plan.raw, "e.date_created"):
        for name, value, n in conn.execute(_RAW_PROPS_SQL.format(where=where), params):
            counts[(name, value)] = counts.get((name, value), 0) + n
    tests = [(flt.field == "prop_name", matcher(flt)) for flt in query.prop_filters]
    return {key: n for key, n in counts.items() if all(test(key[0] if is_name else key[1]) for is_name, test in tests)}


def _column_property_counts(conn: sqlite3.Connection, query: Query) -> dict[tuple[str, str], int]:
    """property_counts with view filters: the events' column copies of clean days, raw rows for the rest."""
    the_plan = columns.plan(conn, query.hostname, query.start, query.end, columns.EVENTS)
    hours = the_plan.hours_by_day()
    selection = scan.Selection(query.filters)
    names = [*selection.columns, *columns.EVENT_COLUMNS]
    counts: Counter[tuple[str, str]] = Counter()
    partial = the_plan.partial_days()
    for copy in columns.load(conn, query.hostname, list(hours), names, False, columns.EVENTS, partial):
        day_scan = scan.DayScan(copy)
        mask = day_scan.filters_mask(selection)
        if mask:
            mask &= day_scan.hours_in(hours[copy.day])
        if mask:
            counts += day_scan.pair_counts(*columns.EVENT_COLUMNS, mask)
    for where, params in _raw_pieces(query.hostname, the_plan.raw, "e.date_created"):
        clauses = [where, *where_sql(query.view_filters, params), *where_sql(query.prop_filters, params, "p")]
        for name, value, n in conn.execute(_RAW_PROPS_SQL.format(where=" AND ".join(clauses)), params):
            counts[(name, value)] += n
    return counts


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
