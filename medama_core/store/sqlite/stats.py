"""The stats queries behind /api/website/{hostname}/*: summary, lists, time, properties (spec §4).

Every answer is built from `Group` aggregates. Without filters they come from
the rollups (store/sqlite/rollups.py), with filters from the column copies of clean
days (store/sqlite/columns.py, store/sqlite/scan.py); both read raw rows for the hours they
cannot answer. All feed the same formulas below, and agree to the last digit
with a plain reference over the raw rows (tests/store/test_equivalence.py).
"""

from __future__ import annotations

import json
import sqlite3
import sys
from array import array
from collections import Counter
from collections.abc import Callable, Collection, Iterator, Sequence
from datetime import datetime, timezone
from itertools import accumulate
from typing import Any, Concatenate, Final, ParamSpec, TypeVar

from medama_core.store.aggregate import (
    Group,
    Run,
    Runs,
    fraction,
    positive_sql,
    quantile_cont,
)
from medama_core.store.filters import matcher, where_sql
from medama_core.store.query import LISTS as LISTS
from medama_core.store.query import QUARTILES as QUARTILES
from medama_core.store.query import STEPS_US as STEPS_US
from medama_core.store.query import Page as Page
from medama_core.store.query import Query as Query
from medama_core.store.query import bucket_count as bucket_count
from medama_core.store.query import bucket_date as _bucket_date
from medama_core.store.query import month_index as _month_index
from medama_core.store.query import previous_period as previous_period
from medama_core.store.sqlite import columns, rawruns, rollups, scan
from medama_core.store.sqlite.rollups import DAY, DURATION_KINDS, HOUR, HOUR_MS, KIND_SQL, KINDS, RUN_SPANS

UTC = timezone.utc  # datetime.UTC is Python 3.11+

P = ParamSpec("P")
T = TypeVar("T")
Piece = tuple[str, dict[str, object]]  # a WHERE clause over `views v` and its parameters

MAX_BOUND_VALUES = 500  # values bound in one `IN (...)`; SQLite allows 32766 variables, far above this
RUNS_CHUNK = 50  # groups whose duration runs are held at once (a busy page's 90 days: ~100 runs)
# Bytes of day durations a summary holds in memory at once for its medians (10 M views in 90 days
# would be 31 MB); days beyond it keep every 64th value and read the rest from the database.
COLUMN_DURATIONS_HELD = 4 << 20
MAX_RAW_RANGES = 200  # raw ranges OR-ed in one query (each binds 2 values); after a migration every hour is raw
# Labels a filtered list counts in memory (Python: up to ~200 bytes each with their text, ~3 MB per field);
# more (a long tail) are summed in a temporary database instead. 50,000 before: a long tail's day holds
# ~45k paths at 10 M views, so a day's counts stayed in memory for every field.
MAX_LABELS_HELD: Final = 16_384
SPILL_CACHE_KIB: Final = 1024  # the temporary database's page cache: it is written once and read once
RAW_ROWS_CHUNK: Final = 4096  # raw groups fetched at a time into a tally
# Bytes of durations a filtered list (full rows) or /time keeps from its counting pass over the column
# copies, so that the medians of the rows shown need no second pass over every day (the usual filter
# selects a few thousand views: ~10-100 KB). Past it (a filter keeping most of a busy site) they are let
# go and read again for the rows shown only (_filtered_runs).
TALLY_RUNS_HELD: Final = 4 << 20
# What kept durations cost beside their values (KeptRuns): a piece's lists and arrays, and per label of a
# piece its string and two slots. A Run per label and piece, as kept before, cost ~640 bytes (measured),
# of which 200 were counted: a long tail's tally held ~3x TALLY_RUNS_HELD.
KEPT_PIECE_BYTES: Final = 400
KEPT_LABEL_SLOTS: Final = 12  # a list slot (8) and an offset (4) beside the label's string
# The counts a full row (detail table) of a filtered list reads.
FULL_FIELDS = ("pageviews", "bounces", "timed", "measured", "zeros", "ones", "twos", "duration_sum")


def snapshot(
    conn: sqlite3.Connection, fn: Callable[Concatenate[sqlite3.Connection, P], T], *args: P.args, **kwargs: P.kwargs
) -> T:
    """`fn(conn, ...)` inside one read transaction: all its queries and blob reads see the same rows. The
    raw durations it reads are held up to rawruns.RAW_DURATIONS_HELD values, the rest in a temporary database."""
    conn.execute("BEGIN")
    raw = _REQUEST_RAW[id(conn)] = rawruns.RawRuns(rawruns.RAW_DURATIONS_HELD)
    try:
        return fn(conn, *args, **kwargs)
    finally:
        del _REQUEST_RAW[id(conn)]
        raw.close()
        conn.execute("COMMIT")


# The raw runs of the request each reader connection runs now (snapshot); a connection runs one at a time.
_REQUEST_RAW: dict[int, rawruns.RawRuns] = {}
_UNBOUNDED_RAW = rawruns.RawRuns(None)  # outside a snapshot (no request to bound): runs stay in memory


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
) -> Iterator[tuple[Any, Run]]:
    """Each label's durations as a sorted run, one label at a time (sorted by SQLite; held as rawruns bounds)."""
    rows = conn.execute(_RAW_DURATIONS_SQL.format(label=label, where=where), params)
    return _REQUEST_RAW.get(id(conn), _UNBOUNDED_RAW).runs(rows)


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
    conn: sqlite3.Connection,
    query: Query,
    kind: int,
    groups: dict[str, Group],
    values: list[str],
    qs: Sequence[float],
    copied: KeptRuns | None = None,
) -> None:
    """Select the quantiles `qs` of the fast-path groups `values` of `kind`.

    Their runs are read RUNS_CHUNK groups at a time and let go once selected; a filtered query's
    runs from the column copies may be `copied` already (_filtered_runs).
    """
    if not values:
        return
    for start in range(0, len(values), RUNS_CHUNK):
        chunk = values[start : start + RUNS_CHUNK]
        if query.filters:
            found = _filtered_runs(conn, query, kind, chunk, copied)
        else:
            found = _runs(conn, query, kind, chunk)
        for value in chunk:
            runs = found.get(value, [])
            groups[value].fixed = {q: quantile_cont(runs, q) for q in qs}


def _runs(conn: sqlite3.Connection, query: Query, kind: int, values: list[str]) -> dict[str, Runs]:
    """Duration runs of some values of `kind`: the stored runs (and the rare rows' durations) plus raw pieces.

    Kinds with runs at every RUN_SPAN read raw only the plan's raw ranges; the others, with day runs
    only, take the hours outside whole built days from the days' column copies (a dashboard's first
    day from local midnight, today so far), and read raw what no copy holds.
    """
    runs: dict[str, Runs] = {}
    if kind in DURATION_KINDS:
        plan = plan_for(conn, query, kind, RUN_SPANS)
    else:
        plan = plan_for(conn, query, kind, (HOUR, DAY))
        hours = [(lo * HOUR_MS, (hi + 1) * HOUR_MS - 1) for span, lo, hi in plan.pieces if span == HOUR]
        outside = rollups.merge(plan.raw + hours)
        runs, outside = _copied_runs(conn, query.hostname, kind, values, outside)
        plan = rollups.Plan([piece for piece in plan.pieces if piece[0] == DAY], outside)
    for value, found in rollups.rollup_runs(conn, query.hostname, kind, plan, values, rare=bool(kind)).items():
        runs.setdefault(value, []).extend(found)
    for where, params in _raw_pieces(query.hostname, plan.raw):
        where += f" AND {KIND_SQL[kind]} IN ({rollups.bind_values(params, values, 'value')})"
        for value, run in _raw_durations(conn, KIND_SQL[kind], where, params):
            runs.setdefault(value, []).append(run)
    return runs


def _copied_runs(
    conn: sqlite3.Connection, hostname: str, kind: int, values: list[str], ranges: list[tuple[int, int]]
) -> tuple[dict[str, Runs], list[tuple[int, int]]]:
    """The durations of `values` of `kind` in the Unix-ms `ranges` from the column copies that hold them,
    and the ranges left to read raw."""
    name = columns.KIND_COLUMNS[kind]
    wanted = set(values)
    runs: dict[str, Runs] = {}
    raw: list[tuple[int, int]] = []
    for lo, hi in ranges:
        the_plan = columns.plan(conn, hostname, lo, hi)
        raw += the_plan.raw
        hours = the_plan.hours_by_day()
        for copy in columns.load(conn, hostname, list(hours), [name], True, partial=the_plan.partial_days()):
            day_scan = scan.DayScan(copy)
            column = copy.columns[name]
            mask = day_scan.codes_mask(column, column.dictionary.positions(wanted))
            if mask:
                mask &= day_scan.hours_in(hours[copy.day])
            if mask:
                _, day_runs = day_scan.group_counts(name, mask, (), True)
                for label, durations in day_runs.items():
                    runs.setdefault(label, []).append(Run.of(durations))
    return runs, rollups.merge(raw)


def plan_for(conn: sqlite3.Connection, query: Query, kind: int, spans: Sequence[int] = rollups.SPANS) -> rollups.Plan:
    """The query's range cut into rollup pieces and raw ranges for `kind`. A small site keeps only the
    site rows (rollups.SMALL_SITE_VIEWS): its dimensions are read raw over the whole range."""
    if kind != KINDS["total"] and not rollups.site_full(conn, query.hostname):
        raw, hours = rollups.whole_hours(conn, query.hostname, query.start, query.end)
        if hours is not None:
            raw.append((hours[0] * HOUR_MS, (hours[1] + 1) * HOUR_MS - 1))
        return rollups.Plan([], rollups.merge(raw))
    return rollups.plan(conn, query.hostname, query.start, query.end, spans)


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


def groups_for(conn: sqlite3.Connection, query: Query, kind: int) -> dict[str, Group]:
    """The site's group (kind 0): from rollups without filters, from column copies (and raw pieces) with."""
    if not query.filters:
        return fast_groups(conn, query, kind)
    site, _ = column_buckets(conn, query)
    return {"": site[0]} if 0 in site else {}


# ---- column copies plus raw pieces ------------------------------------------------------------------


def _filtered_pieces(query: Query, ranges: list[tuple[int, int]]) -> Iterator[Piece]:
    """`_raw_pieces` with the query's filters."""
    for where, params in _raw_pieces(query.hostname, ranges):
        yield " AND ".join([where, *where_sql(query.view_filters, params), *_props_sql(query, params)]), params


class KeptRuns:
    """The column copies' durations per label that a filtered tally kept (Tally.keep), compactly: per
    piece of a day its labels, where each label's durations start, and the durations, label after label."""

    def __init__(self) -> None:
        self.pieces: list[tuple[list[str], array[int], array[int]]] = []
        self.held = 0  # bytes, as KEPT_PIECE_BYTES and KEPT_LABEL_SLOTS count them

    def add(self, piece_runs: dict[str, array[int]]) -> None:
        if not piece_runs:
            return
        labels = list(piece_runs)
        starts = array("I", accumulate(map(len, piece_runs.values()), initial=0))
        durations = array(next(iter(piece_runs.values())).typecode)
        for run in piece_runs.values():
            durations.extend(run)
        self.pieces.append((labels, starts, durations))
        self.held += KEPT_PIECE_BYTES + sum(map(sys.getsizeof, labels)) + KEPT_LABEL_SLOTS * len(labels)
        self.held += durations.itemsize * len(durations)

    def runs(self, labels: Collection[str]) -> dict[str, Runs]:
        """The kept runs of `labels`, a run per piece that has the label."""
        wanted = set(labels)
        found: dict[str, Runs] = {}
        for names, starts, durations in self.pieces:
            for i in [i for i, label in enumerate(names) if label in wanted]:
                found.setdefault(names[i], []).append(Run.of(durations[starts[i] : starts[i + 1]]))
        return found


class Tally:
    """Counts per label of a filtered query, added day by day: in Counters while they hold at most
    MAX_LABELS_HELD labels, and then (and at the end) in a private temporary database, which SQLite
    keeps in its page cache and writes to a file it deletes on close only when it grows: a long tail
    costs disk, not memory. The groups come out summed and sorted by SQLite, as without filters."""

    def __init__(self, fields: Sequence[str], keys: Sequence[str] = ("value",), keep_runs: bool = False) -> None:
        """Counts `fields` per label; a label is a string, or with more `keys` a tuple (name, value).
        With `keep_runs`, also each label's durations from the column copies (`runs`) while they fit
        TALLY_RUNS_HELD; `runs` is None once they did not."""
        self.fields = tuple(fields)
        self.keys = tuple(keys)
        self.runs: KeptRuns | None = KeptRuns() if keep_runs else None
        self.counters: dict[str, Counter[Any]] = {field: Counter() for field in fields}
        self.db = sqlite3.connect("", isolation_level=None)
        self.db.execute(f"PRAGMA cache_size = -{SPILL_CACHE_KIB}")
        self.db.execute(
            f"CREATE TABLE counts ({', '.join(f'{key} TEXT NOT NULL' for key in keys)}, {', '.join(fields)})"
        )

    def add(self, counts: dict[str, Counter[Any]]) -> None:
        for field, counter in counts.items():
            self.counters[field].update(counter)
        if max(map(len, self.counters.values())) > MAX_LABELS_HELD:
            self._spill()

    def keep(self, piece_runs: dict[str, array[int]]) -> None:
        """Hold a piece's sorted durations per label, or let every one go once they pass TALLY_RUNS_HELD."""
        if self.runs is None:
            return
        self.runs.add(piece_runs)
        if self.runs.held > TALLY_RUNS_HELD:
            self.runs = None

    def _spill(self) -> None:
        labels = set().union(*self.counters.values())
        one = len(self.keys) == 1
        rows = (((label,) if one else label) + tuple(self.counters[f][label] for f in self.fields) for label in labels)
        self.db.execute("BEGIN")
        self.db.executemany(f"INSERT INTO counts VALUES ({', '.join('?' * (len(self.keys) + len(self.fields)))})", rows)
        self.db.execute("COMMIT")
        for counter in self.counters.values():
            counter.clear()

    def summed(self) -> str:
        """The counts summed per label (`value`), as a subquery of `db`, named as rollup's columns."""
        self._spill()
        sums = ", ".join(f"SUM({field}) AS {field}" for field in self.fields if field != "labels")
        return f"(SELECT value, {sums} FROM counts GROUP BY value)"

    def summed_pairs(self) -> str:
        """A tally of (name, value) keys as rows (name, value, events) of `db`, after a last spill."""
        self._spill()
        return "SELECT name, value, events FROM counts"

    def groups(self) -> dict[str, Group]:
        """Every label's group, held in memory (for the tests' small answers)."""
        sums = ", ".join(f"SUM({field})" for field in self.fields)
        self._spill()
        rows = self.db.execute(f"SELECT value, {sums} FROM counts GROUP BY value")
        return {label: _group(self.fields, counts) for label, *counts in rows}

    def close(self) -> None:
        self.db.close()


def _group(fields: Sequence[str], counts: Sequence[int]) -> Group:
    """A group with the counts of `fields` (rollup's column names; "labels" is no count), the others 0."""
    group = Group()
    for field, n in zip(fields, counts, strict=True):
        if field != "labels":
            setattr(group, field, n)
    return group


def _filtered_tally(
    conn: sqlite3.Connection, query: Query, kind: int, fields: Sequence[str], keep_runs: bool = False
) -> Tally:
    """Counts `fields` (scan.GROUP_FIELDS, scan.DURATION_SUM; "labels" keeps labels whose counts are all 0)
    per value of `kind` for a filtered query: column copies of clean days, raw rows for the rest. With
    `keep_runs`, the copies' durations per label too, while they fit (Tally.keep)."""
    the_plan = columns.plan(conn, query.hostname, query.start, query.end, props=bool(query.prop_filters))
    name = columns.KIND_COLUMNS[kind]
    hours = the_plan.hours_by_day()
    selection = scan.Selection(query.view_filters, query.prop_filters)
    tally = Tally(fields, keep_runs=keep_runs)
    durations = keep_runs or scan.DURATION_SUM in fields
    partial = the_plan.partial_days()
    for copy in columns.load(conn, query.hostname, list(hours), [*selection.columns, name], durations, partial=partial):
        day_scan = scan.DayScan(copy)
        mask = day_scan.filters_mask(selection)
        if mask:
            mask &= day_scan.hours_in(hours[copy.day])
        if mask:
            counts, day_runs = day_scan.group_counts(name, mask, fields, tally.runs is not None)
            tally.add(counts)
            tally.keep(day_runs)
    columns_sql = ", ".join(rollups.GROUP_SQL["pageviews" if field == "labels" else field] for field in fields)
    for where, params in _filtered_pieces(query, the_plan.raw):
        sql = _RAW_GROUPS_SQL.format(label=KIND_SQL[kind], columns=columns_sql, where=where)
        cursor = conn.execute(sql, params)
        while rows := cursor.fetchmany(RAW_ROWS_CHUNK):
            tally.add({field: Counter({row[0]: row[i] for row in rows}) for i, field in enumerate(fields, 1)})
    return tally


def _filtered_runs(
    conn: sqlite3.Connection, query: Query, kind: int, labels: Sequence[str], copied: KeptRuns | None = None
) -> dict[str, Runs]:
    """The durations of the views of `labels` of `kind` that a filtered query selects (copies, then raw).
    `copied`: every label's runs from the copies, kept by the tally's pass (Tally.keep): only raw is read."""
    the_plan = columns.plan(conn, query.hostname, query.start, query.end, props=bool(query.prop_filters))
    name = columns.KIND_COLUMNS[kind]
    hours = the_plan.hours_by_day()
    selection = scan.Selection(query.view_filters, query.prop_filters)
    wanted = set(labels)
    runs: dict[str, Runs] = {}
    if not labels:
        return runs
    if copied is not None:
        runs = copied.runs(labels)
        hours = {}
    partial = the_plan.partial_days()
    for copy in columns.load(conn, query.hostname, list(hours), [*selection.columns, name], True, partial=partial):
        day_scan = scan.DayScan(copy)
        column = copy.columns[name]
        mask = day_scan.codes_mask(column, column.dictionary.positions(wanted))
        if mask:
            mask &= day_scan.filters_mask(selection)
        if mask:
            mask &= day_scan.hours_in(hours[copy.day])
        if mask:
            for label, durations in day_scan.group_counts(name, mask, (), True)[1].items():
                runs.setdefault(label, []).append(Run.of(durations))
    for where, params in _filtered_pieces(query, the_plan.raw):
        where += f" AND {KIND_SQL[kind]} IN ({rollups.bind_values(params, labels, 'value')})"
        for label, run in _raw_durations(conn, KIND_SQL[kind], where, params):
            runs.setdefault(label, []).append(run)
    return runs


def column_groups(
    conn: sqlite3.Connection, query: Query, kind: int, full: bool, fields: Sequence[str] | None = None
) -> dict[str, Group]:
    """Every group of `kind` for a filtered query, held in memory: visitors and page visitors (and labels
    with none), and with `full` every count and the durations as runs. The endpoints use the tally
    and the runs of the groups they show instead; this is the whole answer, for the tests."""
    if fields is None:
        fields = ("labels", "visitors", "page_visitors") + (FULL_FIELDS if full else ())
    tally = _filtered_tally(conn, query, kind, fields)
    try:
        groups = tally.groups()
    finally:
        tally.close()
    if full:
        runs = _filtered_runs(conn, query, kind, list(groups))
        for label, group in groups.items():
            group.runs = runs.get(label, [])
    return groups


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
        for key, run in _raw_durations(conn, label, where, piece):
            raw_sources.setdefault(key, []).append(rawruns.RunSource(run))
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
        # A page filter's few views of the day are taken as their rows (scan.DayScan.picks): their buckets'
        # counts and durations then cost no pass over the whole day each.
        selected: scan.Selected = (day_scan.picks(base) if base else None) or base
        parts: list[scan.Selected] = []
        runs: list[scan.Source] = []
        for first, last, bucket in segments[copy.day] if base else ():
            part = day_scan.in_hours(selected, first, last)
            if part:
                groups.setdefault(bucket, Group()).add(day_scan.site_counts(part))
                runs.append(day_scan.masked_run(part, window, whole))
                open_buckets.setdefault(bucket, []).append(runs[-1])
                parts.append(part)
        if total and runs:
            day_run = runs[0] if len(runs) == 1 else day_scan.masked_run(day_scan.union(parts), window, whole)
            whole_sources.append(day_run)
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
        for index, run in _raw_durations(conn, label, where, piece):
            groups[index].durations().append(run)
    return groups


def _bucket_of(interval: str, start_us: int, ms: int) -> int:
    if interval == "month":
        return _month_index(ms) - _month_index(start_us // 1000)
    return (ms * 1000 - start_us) // STEPS_US[interval]


# ---- top lists without filters ----------------------------------------------------------------------

# Raw rows of a set of Unix-ms ranges (`:ranges`, a JSON list of [lo, hi]): each range one seek of the
# site's time index, whatever their number (an OR of ranges made SQLite pick a worse index).
_RAW_RANGES = """json_each(:ranges) r CROSS JOIN views v
    ON v.hostname = :hostname AND v.date_created BETWEEN r.value ->> 0 AND r.value ->> 1"""
# Sort orders of the lists (spec §4.3), over the summed columns; labels compare as SQLite's BINARY
# collation does, UTF-8 bytes, which is Python's order of code points.
_ORDERS = {
    "visitors": "visitors DESC, value",
    "pages": "page_visitors DESC, value",
    "pages_full": "page_visitors DESC, pageviews DESC, value",
}
# The counts each sort reads, the first one the score that bounds a rare value.
_ORDER_FIELDS = {"visitors": ("visitors",), "pages": ("page_visitors",), "pages_full": ("page_visitors", "pageviews")}
COUNT_FIELDS = tuple(rollups.GROUP_SQL)


def _group_rows(
    query: Query,
    kind: int,
    plan: rollups.Plan,
    rare: str,
    params: dict[str, object],
    names: Sequence[str] = COUNT_FIELDS,
    values: Sequence[str] | None = None,
) -> str:
    """A SELECT of (value, counts `names`...) rows whose sums per value are the value's counts over the
    plan: the common values' rollup rows of its pieces, its raw ranges grouped, and the rare values' hour
    rows of the pieces' hours, for `rare` = "all" values, or "raw" only for values that also have raw
    rows (any other rare value counts at most rollups.RARE_VIEWS views). With `values`, only those."""
    params.update({"hostname": query.hostname, "kind": kind})
    counts = ", ".join(names)
    chosen = ""
    if values is not None:
        params["values"] = json.dumps(list(values))
        chosen = " AND value IN (SELECT value FROM json_each(:values))"
    parts = []
    if plan.pieces:
        select = f"SELECT value, {counts} FROM rollup WHERE hostname = :hostname AND kind = :kind{chosen}"
        parts.append(rollups.union(plan, select, params, seek=values is not None))
    raw = ""
    if plan.raw:
        params["ranges"] = json.dumps(plan.raw)
        named = ", ".join(f"{rollups.GROUP_SQL[name]} AS {name}" for name in names)
        raw = f"SELECT * FROM (SELECT {KIND_SQL[kind]} AS value, {named} FROM {_RAW_RANGES} GROUP BY 1)"
        parts.append(raw + (f" WHERE {chosen[5:]}" if chosen else ""))
    if plan.pieces and kind != KINDS["total"] and (rare == "all" or rare == "raw" and raw):
        select = f"SELECT value, {counts} FROM {{rare}} WHERE hostname = :hostname AND kind = :kind{chosen}"
        if rare == "raw" and values is None:
            select += f" AND value IN (SELECT value FROM ({raw}))"
        parts.append(rollups.rare_union(plan, select, params, seek=rare == "raw" or values is not None))
    return " UNION ALL ".join(parts) or f"SELECT '' AS value, {', '.join('0 AS ' + n for n in names)} WHERE 0"


def _summed(rows: str, names: Sequence[str] = COUNT_FIELDS) -> str:
    """The rows summed per value, as a subquery whose columns are named like rollup's."""
    sums = ", ".join(f"SUM({name}) AS {name}" for name in names)
    return f"(SELECT value, {sums} FROM ({rows}) GROUP BY value)"


def top_groups(
    conn: sqlite3.Connection, query: Query, kind: int, order: str, wanted: int | None, full: bool
) -> list[tuple[str, Group]]:
    """The first `wanted` groups of `kind` (None: all) in `order` (a key of _ORDERS), exact, without filters;
    with `full` every count, else the sort's counts only.

    Summed by SQLite, which sorts and keeps only the rows asked for: no list of every value is held
    here. The sort's counts are summed first, the others then for the rows chosen only. Rare values
    are left out when the last row wanted counts more than they can (RARE_VIEWS), which is the usual
    case: a long tail then costs nothing.
    """
    plan = plan_for(conn, query, kind)
    names = _ORDER_FIELDS[order]
    where = " WHERE page_visitors > 0" if order.startswith("pages") else ""
    limit = "" if wanted is None else f" LIMIT {int(wanted)}"
    found: list[tuple[str, Group]] = []
    for rare in ("raw", "all") if wanted is not None else ("all",):
        params: dict[str, object] = {}
        groups = _summed(_group_rows(query, kind, plan, rare, params, names), names)
        sql = f"SELECT * FROM {groups}{where} ORDER BY {_ORDERS[order]}{limit}"
        found = [(value, _group(names, counts)) for value, *counts in conn.execute(sql, params)]
        if rare == "all" or len(found) == wanted and getattr(found[-1][1], names[0]) > rollups.RARE_VIEWS:
            break
    if not full or not found:
        return found
    params = {}
    rows = _group_rows(query, kind, plan, "all", params, values=[value for value, _ in found])
    every = {value: Group(*counts) for value, *counts in conn.execute(f"SELECT * FROM {_summed(rows)}", params)}
    return [(value, every[value]) for value, _ in found]


def _filtered_top(
    conn: sqlite3.Connection, query: Query, kind: int, order: str, wanted: int | None, full: bool
) -> tuple[list[tuple[str, Group]], Group, KeptRuns | None]:
    """top_groups for a filtered query (from a tally of the column copies and raw rows), the totals of
    every group, and for `full` rows the copies' durations when the tally kept them (Tally.keep).
    Compact rows read one count: page visitors for pages (which drop paths without any), visitors for
    the rest (which keep groups without any, so every label)."""
    if full:
        fields: tuple[str, ...] = ("labels", "visitors", "page_visitors", *FULL_FIELDS)
    else:
        fields = ("page_visitors",) if order == "pages" else ("labels", "visitors")
    tally = _filtered_tally(conn, query, kind, fields, keep_runs=full)
    try:
        summed = tally.summed()
        names = [field for field in fields if field != "labels"]
        where = " WHERE page_visitors > 0" if order.startswith("pages") else ""
        limit = "" if wanted is None else f" LIMIT {int(wanted)}"
        sql = f"SELECT value, {', '.join(names)} FROM {summed}{where} ORDER BY {_ORDERS[order]}{limit}"
        items = [(value, _group(names, counts)) for value, *counts in tally.db.execute(sql)]
        totals = tally.db.execute(f"SELECT {', '.join(f'ifnull(SUM({n}), 0)' for n in names)} FROM {summed}")
        total = _group(names, totals.fetchone())
    finally:
        tally.close()
    return items, total, tally.runs


def site_totals(conn: sqlite3.Connection, query: Query) -> Group:
    """The whole site's counts over the query (every view has one value of each kind: the lists' totals)."""
    if query.filters:
        site, _ = column_buckets(conn, query)
        return site.get(0, Group())
    return fast_groups(conn, query, KINDS["total"]).get("", Group())


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
    wanted = None if page.limit is None else page.offset + page.limit
    order = "visitors" if not pages else "pages" if summary else "pages_full"
    copied = None
    if query.filters:
        items, total, copied = _filtered_top(conn, query, kind, order, wanted, not summary)
    else:
        items = top_groups(conn, query, kind, order, wanted, not summary)
        total = site_totals(conn, query)
    groups = dict(items)
    chosen = page.cut(items)
    if not summary:
        load_quantiles(conn, query, kind, groups, [label for label, _ in chosen], (0.5,), copied)
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
    kept, total, copied = _kept_pages(conn, query, summary, page)
    shares = {path: fraction(g.duration_sum, total) for path, g in kept}
    groups = dict(kept)
    if summary:
        # Sorted by share first; medians are read only for the rows up to the page's end and their ties.
        kept.sort(key=lambda item: -shares[item[0]])
        wanted = len(kept) if page.limit is None else min(len(kept), page.offset + page.limit)
        if wanted:
            last = shares[kept[wanted - 1][0]]
            kept = [item for item in kept if shares[item[0]] >= last]
            load_quantiles(conn, query, KINDS["path"], groups, [path for path, _ in kept], (0.5,), copied)
        kept.sort(key=lambda item: (-shares[item[0]], -item[1].duration(), -item[1].page_visitors, item[0]))
    else:
        load_quantiles(conn, query, KINDS["path"], groups, [path for path, _ in kept], QUARTILES, copied)
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


_TIME_FIELDS = ("page_visitors", "measured", "zeros", "ones", "twos", "duration_sum")


def _kept_pages(
    conn: sqlite3.Connection, query: Query, summary: bool, page: Page
) -> tuple[list[tuple[str, Group]], int, KeptRuns | None]:
    """/time: the pages that can be on the page asked for (with their ties), and the total duration of
    every page /time keeps. SQLite sums the groups (without filters from the rollups, with them from a
    tally of the column copies) and keeps those with 3 page visitors or more and a positive median (and
    lower quartile, for full rows), decided from the counts of small durations (aggregate.positive);
    rare paths (RARE_VIEWS) cannot have 3. The rows come in order of share (or of page visitors, for
    full rows) and are read only up to the last tie. With filters, the copies' durations per page too,
    when the tally kept them (Tally.keep)."""
    if query.filters:
        tally = _filtered_tally(conn, query, KINDS["path"], _TIME_FIELDS, keep_runs=True)
        try:
            return (*_kept_rows(tally.db, tally.summed(), {}, summary, page), tally.runs)
        finally:
            tally.close()
    plan = plan_for(conn, query, KINDS["path"])
    params: dict[str, object] = {}
    groups = _summed(_group_rows(query, KINDS["path"], plan, "raw", params))
    return (*_kept_rows(conn, groups, params, summary, page), None)


def _kept_rows(
    db: sqlite3.Connection, groups: str, params: dict[str, object], summary: bool, page: Page
) -> tuple[list[tuple[str, Group]], int]:
    kept = f"page_visitors >= 3 AND {positive_sql(0.5, 'measured', 'zeros', 'ones', 'twos')}"
    if not summary:
        kept += f" AND {positive_sql(0.25, 'measured', 'zeros', 'ones', 'twos')}"
    order = "duration_sum DESC" if summary else "page_visitors DESC"
    sql = f"SELECT value, {', '.join(_TIME_FIELDS)}, SUM(duration_sum) OVER () FROM {groups} WHERE {kept}"
    sql += f" ORDER BY {order}"
    wanted = None if page.limit is None else page.offset + page.limit
    found: list[tuple[str, Group]] = []
    total = 0
    last: Any = None
    for value, *counts, total in db.execute(sql, params):
        group = _group(_TIME_FIELDS, counts)
        key = fraction(group.duration_sum, total) if summary else group.page_visitors
        if wanted is not None and len(found) >= wanted and key != last:
            break
        found.append((value, group))
        last = key
    return found, total


# ---- /properties ------------------------------------------------------------------------------------

# Events first: a period selects events by time, and each event finds its view by bid.
_RAW_PROPS_SQL = """
    SELECT e.name, e.value, COUNT(*) FROM events e CROSS JOIN views v ON v.bid = e.bid
    WHERE {where} GROUP BY 1, 2"""


def property_counts(conn: sqlite3.Connection, query: Query) -> dict[tuple[str, str], int]:
    """Events per (name, value) of the site's views, the period applied to the events' own time (every
    pair: /properties uses this with view filters only, and SQL sums and sorts without them)."""
    if query.view_filters:
        tally = _column_property_counts(conn, query)
        try:
            sql = f"SELECT name, value, SUM(events) FROM ({tally.summed_pairs()}) GROUP BY 1, 2"
            return {(name, value): n for name, value, n in tally.db.execute(sql)}
        finally:
            tally.close()
    plan = rollups.plan(conn, query.hostname, query.start, query.end)
    counts = rollups.props_groups(conn, query.hostname, plan)
    for where, params in _raw_pieces(query.hostname, plan.raw, "e.date_created"):
        for name, value, n in conn.execute(_RAW_PROPS_SQL.format(where=where), params):
            counts[(name, value)] = counts.get((name, value), 0) + n
    tests = [(flt.field == "prop_name", matcher(flt)) for flt in query.prop_filters]
    return {key: n for key, n in counts.items() if all(test(key[0] if is_name else key[1]) for is_name, test in tests)}


def _column_property_counts(conn: sqlite3.Connection, query: Query) -> Tally:
    """Events per (name, value) with view filters, in a tally: the events' column copies of clean days,
    raw rows for the rest."""
    the_plan = columns.plan(conn, query.hostname, query.start, query.end, columns.EVENTS)
    hours = the_plan.hours_by_day()
    selection = scan.Selection(query.filters)
    names = [*selection.columns, *columns.EVENT_COLUMNS]
    tally = Tally(("events",), ("name", "value"))
    partial = the_plan.partial_days()
    for copy in columns.load(conn, query.hostname, list(hours), names, False, columns.EVENTS, partial):
        day_scan = scan.DayScan(copy)
        mask = day_scan.filters_mask(selection)
        if mask:
            mask &= day_scan.hours_in(hours[copy.day])
        if mask:
            tally.add({"events": day_scan.pair_counts(*columns.EVENT_COLUMNS, mask)})
    for where, params in _raw_pieces(query.hostname, the_plan.raw, "e.date_created"):
        clauses = [where, *where_sql(query.view_filters, params), *where_sql(query.prop_filters, params, "p")]
        cursor = conn.execute(_RAW_PROPS_SQL.format(where=" AND ".join(clauses)), params)
        while rows := cursor.fetchmany(RAW_ROWS_CHUNK):
            tally.add({"events": Counter({(name, value): n for name, value, n in rows})})
    return tally


def properties(conn: sqlite3.Connection, query: Query, page: Page) -> list[dict[str, Any]]:
    """Event counts per property name, or per value when a non-empty prop_name filter is given."""
    # An empty prop_name selects no property: it lists names, as if absent (spec §4.4).
    kept = tuple(f for f in query.filters if not (f.field == "prop_name" and f.value == ""))
    by_value = any(f.field == "prop_name" for f in kept)
    query = Query(query.hostname, query.start_us, query.end_us, kept)
    if not query.view_filters:
        return _rollup_properties(conn, query, by_value, page)
    tally = _column_property_counts(conn, query)  # prop filters applied already
    try:
        return _properties_answer(tally.db, tally.summed_pairs(), {}, "1", by_value, page)
    finally:
        tally.close()


# Events of a set of Unix-ms ranges (`:ranges`) by their own time, each with its view on the site.
_RAW_EVENTS = """json_each(:ranges) r CROSS JOIN events e ON e.date_created BETWEEN r.value ->> 0 AND r.value ->> 1
    CROSS JOIN views v ON v.bid = e.bid AND v.hostname = :hostname"""


def _rollup_properties(conn: sqlite3.Connection, query: Query, by_value: bool, page: Page) -> list[dict[str, Any]]:
    """/properties without view filters, summed and sorted by SQLite: names from their own rows unless
    prop filters choose among the (name, value) rows; only the rows asked for come back, with the total."""
    plan = rollups.plan(conn, query.hostname, query.start, query.end)
    params: dict[str, object] = {"hostname": query.hostname, "ranges": json.dumps(plan.raw)}
    limit = "" if page.limit is None else f" LIMIT {int(page.offset + page.limit)}"
    if not query.prop_filters:
        parts = [f"SELECT e.name, COUNT(*) AS events FROM {_RAW_EVENTS} GROUP BY 1"] if plan.raw else []
        if plan.pieces:
            parts.append(
                rollups.union(plan, "SELECT name, events FROM rollup_prop_names WHERE hostname = :hostname", params)
            )
        rows = " UNION ALL ".join(parts) or "SELECT '' AS name, 0 AS events WHERE 0"
        sql = (
            f"SELECT name, SUM(events) AS n, SUM(SUM(events)) OVER () FROM ({rows}) GROUP BY name ORDER BY n DESC, name"
        )
        found = conn.execute(sql + limit, params).fetchall()
        return [
            {"name": name, "events": n, "events_percentage": fraction(n, total)} for name, n, total in page.cut(found)
        ]
    parts = [f"SELECT e.name, e.value, COUNT(*) AS events FROM {_RAW_EVENTS} GROUP BY 1, 2"] if plan.raw else []
    if plan.pieces:
        parts.append(
            rollups.union(plan, "SELECT name, value, events FROM rollup_props WHERE hostname = :hostname", params)
        )
    rows = " UNION ALL ".join(parts) or "SELECT '' AS name, '' AS value, 0 AS events WHERE 0"
    chosen = " AND ".join(where_sql(query.prop_filters, params, "p"))
    return _properties_answer(conn, rows, params, chosen, by_value, page)


def _properties_answer(
    db: sqlite3.Connection, rows: str, params: dict[str, object], chosen: str, by_value: bool, page: Page
) -> list[dict[str, Any]]:
    """The /properties rows from (name, value, events) `rows` of `db` where `chosen` holds, summed per value
    (with `by_value`) or name, sorted, cut to the page, with each share of their total."""
    limit = "" if page.limit is None else f" LIMIT {int(page.offset + page.limit)}"
    if by_value:
        sql = (
            f"SELECT value, SUM(events) AS n, SUM(SUM(events)) OVER () FROM ({rows}) e WHERE {chosen}"
            " GROUP BY name, value ORDER BY n DESC, value, name"
        )
        found = db.execute(sql + limit, params).fetchall()
        return [
            {"value": value, "events": n, "events_percentage": fraction(n, total)}
            for value, n, total in page.cut(found)
        ]
    sql = (
        f"SELECT name, SUM(events) AS n, SUM(SUM(events)) OVER () FROM ({rows}) e WHERE {chosen}"
        " GROUP BY name ORDER BY n DESC, name"
    )
    found = db.execute(sql + limit, params).fetchall()
    return [{"name": name, "events": n, "events_percentage": fraction(n, total)} for name, n, total in page.cut(found)]
