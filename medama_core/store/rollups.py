"""Hour and day rollups of `views`/`events`: rebuilding dirty hours, and planning a range over them.

Triggers (migration 3) record which (site, hour) pairs changed in
`rollup_dirty`. `refresh` rebuilds closed dirty hours from the raw rows, then
the UTC days made only of clean hours. A reader splits a time range into whole
clean days, whole clean hours, and raw pieces (the partial hours at the ends
and every dirty hour), so an answer never depends on a stale rollup row.
See docs/storage.md.
"""

from __future__ import annotations

import sqlite3
import sys
from array import array
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import chain, groupby
from operator import itemgetter

from medama_core.store import columns
from medama_core.store.aggregate import SAMPLE_STEP, Group, Run, Runs
from medama_core.store.db import Transaction, read_blob

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
# Rollup spans, in hours: a row of span s and period p covers hours p*s .. p*s+s-1 (aligned on the
# Unix epoch). Each span is a multiple of the one before and is built from it; 6 hours, 8 days and
# 64 days make a 90-day range a dozen rows per value instead of 90 day rows.
HOUR, DAY = 1, 24
SPANS = (HOUR, 6, DAY, 8 * DAY, 64 * DAY)
# Spans that also store sorted durations (for the site and for pages). 6-hour runs serve the day
# buckets of time zones off UTC: a day from 07:00 UTC is 3 such blocks and 6 hours, not 24 hours.
RUN_SPANS = (HOUR, 6, DAY, 8 * DAY)
INLINE_RUN = 1024  # runs up to this many values are read whole with their row; one blob open costs more
MAX_LISTED_PERIODS = 4000  # integers written into one `IN (...)`: ~40 KB of SQL, far below SQLite's 1 MB
REFRESH_HOURS_PER_TRANSACTION = 24  # keeps each writer transaction short so hits are not held back long

# Dimension kind -> the SQL expression over `views v` it groups by. Kind 0 is the whole site.
KINDS: dict[str, int] = {
    "total": 0,
    "path": 1,
    "referrer_host": 2,
    "referrer": 3,
    "utm_source": 4,
    "utm_medium": 5,
    "utm_campaign": 6,
    "browser": 7,
    "os": 8,
    "device": 9,
    "country": 10,
    "language": 11,
    "language_dialect": 12,
}
KIND_SQL: dict[int, str] = {
    0: "''",
    1: "v.pathname",
    2: "v.referrer_host",
    3: "CASE WHEN v.referrer_group = '' THEN v.referrer_host ELSE v.referrer_group END",
    4: "v.utm_source",
    5: "v.utm_medium",
    6: "v.utm_campaign",
    7: "v.ua_browser",
    8: "v.ua_os",
    9: "v.ua_device_type",
    10: "v.country",
    11: "v.language_base",
    12: "v.language_dialect",
}
DURATION_KINDS = (0, 1)  # kinds whose sorted durations are stored at every RUN_SPAN: the site and pages
# The other kinds keep theirs for whole days only, for the medians of full list rows (detail tables).
DAY_RUN_KINDS = tuple(kind for kind in KIND_SQL if kind not in DURATION_KINDS)
_ALL_KINDS = ", ".join(str(kind) for kind in KIND_SQL)  # `kind IN (...)` lets SQLite seek each kind

# The additive aggregates of one group, as SQL over `views v`, in the order of `Group`'s fields.
GROUP_COLUMNS = """
    COUNT(*) FILTER (WHERE v.is_unique_user),
    COUNT(*) FILTER (WHERE v.is_unique_page),
    COUNT(*),
    COUNT(*) FILTER (WHERE v.is_unique_user AND v.duration_ms BETWEEN 100 AND 5000),
    COUNT(*) FILTER (WHERE v.is_unique_user AND v.duration_ms IS NOT NULL),
    ifnull(SUM(v.duration_ms), 0),
    COUNT(v.duration_ms),
    COUNT(*) FILTER (WHERE v.duration_ms <= 0),
    COUNT(*) FILTER (WHERE v.duration_ms <= 1)"""
SUMS = """SUM(visitors), SUM(page_visitors), SUM(pageviews), SUM(bounces), SUM(timed), SUM(duration_sum),
    SUM(measured), SUM(zeros), SUM(ones)"""
_COUNTS = "visitors, page_visitors, pageviews, bounces, timed, duration_sum, measured, zeros, ones"


_DIRTY_CLOSED_SQL = """
    SELECT hostname, hour FROM rollup_dirty WHERE hour < :now_hour ORDER BY hostname, hour LIMIT :limit"""
_DIRTY_IN_RANGE_SQL = """
    SELECT hour FROM rollup_dirty WHERE hostname = :hostname AND hour BETWEEN :lo AND :hi ORDER BY hour"""
_HOUR_ROLLUP_SQL = (
    "WITH v AS MATERIALIZED (SELECT * FROM views WHERE hostname = :hostname AND date_created BETWEEN :lo AND :hi) "
    + " UNION ALL ".join(f"SELECT {kind}, {expr}, {GROUP_COLUMNS} FROM v GROUP BY 2" for kind, expr in KIND_SQL.items())
)
_HOUR_DURATIONS_SQL = """
    SELECT pathname, duration_ms FROM views
    WHERE hostname = :hostname AND date_created BETWEEN :lo AND :hi AND duration_ms IS NOT NULL
    ORDER BY pathname, duration_ms"""
# Events first: an hour's events are found by time, their views by bid (views-first would scan the site).
_HOUR_PROPS_SQL = """
    SELECT e.name, e.value, COUNT(*) FROM events e CROSS JOIN views v ON v.bid = e.bid AND v.hostname = :hostname
    WHERE e.date_created BETWEEN :lo AND :hi GROUP BY 1, 2"""
# `kind IN (...)` rather than a range, so SQLite seeks each kind's rows of the period.
_DELETE_SQL = (
    f"DELETE FROM rollup WHERE hostname = :hostname AND span = :span AND kind IN ({_ALL_KINDS}) AND period = :period",
    f"DELETE FROM rollup_durations WHERE hostname = :hostname AND span = :span AND kind IN ({_ALL_KINDS})"
    " AND period = :period",
    "DELETE FROM rollup_props WHERE hostname = :hostname AND span = :span AND period = :period",
)
_INSERT_GROUP_SQL = f"INSERT INTO rollup VALUES ({', '.join('?' * 14)})"
_INSERT_DURATIONS_SQL = "INSERT INTO rollup_durations VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
# A block of `span` hours summed from the rows of the span below it (:below), periods :lo..:hi of that span.
_BLOCK_ROLLUP_SQL = f"""
    INSERT INTO rollup SELECT hostname, :span, kind, :period, value, {SUMS}
    FROM rollup WHERE hostname = :hostname AND span = :below AND kind IN ({_ALL_KINDS}) AND period BETWEEN :lo AND :hi
    GROUP BY kind, value"""
_BLOCK_PROPS_SQL = """
    INSERT INTO rollup_props SELECT hostname, :span, :period, name, value, SUM(events)
    FROM rollup_props WHERE hostname = :hostname AND span = :below AND period BETWEEN :lo AND :hi
    GROUP BY name, value"""
# A day's durations per value of every kind in DAY_RUN_KINDS, from the raw rows.
_DAY_KIND_DURATIONS_SQL = (
    "WITH v AS MATERIALIZED (SELECT * FROM views WHERE hostname = :hostname AND date_created BETWEEN :lo AND :hi"
    " AND duration_ms IS NOT NULL) "
    + " UNION ALL ".join(f"SELECT {kind}, {KIND_SQL[kind]}, v.duration_ms FROM v" for kind in DAY_RUN_KINDS)
    + " ORDER BY 1, 2, 3"
)
_MERGE_DURATIONS_SQL = """
    SELECT value, width, durations FROM rollup_durations
    WHERE hostname = :hostname AND span = :span AND kind = :kind AND period BETWEEN :lo AND :hi
    ORDER BY value"""
# Each MIN and MAX in a query of its own: SQLite answers a lone MIN() or MAX() with one index seek,
# but both in one SELECT make it read every row (all the hourly property rows: ~1.5 ms at 10 M views).
_DATA_HOURS_SQL = f"""
    SELECT MIN(low), MAX(high) FROM (
        SELECT
            (SELECT MIN(period) FROM rollup WHERE hostname = :hostname AND span = {HOUR} AND kind = 0) AS low,
            (SELECT MAX(period) FROM rollup WHERE hostname = :hostname AND span = {HOUR} AND kind = 0) AS high
        UNION ALL
        SELECT
            (SELECT MIN(period) FROM rollup_props WHERE hostname = :hostname AND span = {HOUR}),
            (SELECT MAX(period) FROM rollup_props WHERE hostname = :hostname AND span = {HOUR})
        UNION ALL
        SELECT
            (SELECT MIN(hour) FROM rollup_dirty WHERE hostname = :hostname),
            (SELECT MAX(hour) FROM rollup_dirty WHERE hostname = :hostname)
    )"""
_BUILT_SQL = """
    SELECT period FROM rollup_built WHERE hostname = :hostname AND span = :span AND period BETWEEN :lo AND :hi"""
_DATA_HOURS_IN_RANGE_SQL = f"""
    SELECT period FROM rollup WHERE hostname = :hostname AND span = {HOUR} AND kind = 0 AND period BETWEEN :lo AND :hi
    UNION
    SELECT period FROM rollup_props WHERE hostname = :hostname AND span = {HOUR} AND period BETWEEN :lo AND :hi"""


def pack(values: Sequence[int], width: int | None = None) -> tuple[int, bytes]:
    """Sorted non-negative durations as little-endian unsigned integers: (width in bytes, blob).

    The width is 4 bytes when the largest (last) value allows it, unless given.
    """
    if width is None:
        width = 4 if not values or values[-1] < 1 << 32 else 8
    packed = array("I" if width == 4 else "Q", values)
    if sys.byteorder == "big":
        packed.byteswap()
    return width, packed.tobytes()


def unpack(width: int, blob: bytes) -> array[int]:
    packed = array("I" if width == 4 else "Q")
    packed.frombytes(blob)
    if sys.byteorder == "big":
        packed.byteswap()
    return packed


def refresh(conn: sqlite3.Connection, now_ms: int, limit: int = 10_000) -> int:
    """Rebuild up to `limit` closed dirty hours, then the closed blocks they complete; return hours rebuilt."""
    rows = conn.execute(_DIRTY_CLOSED_SQL, {"now_hour": now_ms // HOUR_MS, "limit": limit}).fetchall()
    for start in range(0, len(rows), REFRESH_HOURS_PER_TRANSACTION):
        chunk = rows[start : start + REFRESH_HOURS_PER_TRANSACTION]
        with Transaction(conn):
            for hostname, hour in chunk:
                _rebuild_hour(conn, hostname, hour)
                conn.execute("DELETE FROM rollup_dirty WHERE hostname = ? AND hour = ?", (hostname, hour))
                columns.drop_day(conn, hostname, hour // DAY)
                conn.executemany(
                    "DELETE FROM rollup_built WHERE hostname = ? AND span = ? AND period = ?",
                    [(hostname, span, hour // span) for span in SPANS[1:]],
                )
    for hostname, pairs in groupby(rows, key=lambda row: row[0]):
        _rebuild_blocks(conn, hostname, [hour for _, hour in pairs], now_ms // HOUR_MS)
    return len(rows)


def _rebuild_hour(conn: sqlite3.Connection, hostname: str, hour: int) -> None:
    key = {"hostname": hostname, "span": HOUR, "period": hour}
    for sql in _DELETE_SQL:
        conn.execute(sql, key)
    bounds = {"hostname": hostname, "lo": hour * HOUR_MS, "hi": (hour + 1) * HOUR_MS - 1}
    groups = conn.execute(_HOUR_ROLLUP_SQL, bounds).fetchall()
    conn.executemany(_INSERT_GROUP_SQL, [(hostname, HOUR, kind, hour, *rest) for kind, *rest in groups])
    durations = conn.execute(_HOUR_DURATIONS_SQL, bounds).fetchall()
    rows = [_durations_row(hostname, HOUR, hour, 0, "", sorted(duration for _, duration in durations))]
    for path, pairs in groupby(durations, key=lambda row: row[0]):
        rows.append(_durations_row(hostname, HOUR, hour, 1, path, [duration for _, duration in pairs]))
    conn.executemany(_INSERT_DURATIONS_SQL, [row for row in rows if row is not None])
    props = conn.execute(_HOUR_PROPS_SQL, bounds).fetchall()
    conn.executemany(
        "INSERT INTO rollup_props VALUES (?, ?, ?, ?, ?, ?)", [(hostname, HOUR, hour, *row) for row in props]
    )


def _durations_row(
    hostname: str, span: int, period: int, kind: int, value: str, values: Sequence[int]
) -> tuple[object, ...] | None:
    """A rollup_durations row: the sorted values packed, and every SAMPLE_STEP-th one packed apart."""
    if not values:
        return None
    width, blob = pack(values)
    _, samples = pack(values[SAMPLE_STEP - 1 :: SAMPLE_STEP], width)
    return (hostname, span, kind, period, value, len(values), width, samples, blob)


def _rebuild_blocks(conn: sqlite3.Connection, hostname: str, hours: list[int], now_hour: int) -> None:
    """Build the blocks around the rebuilt `hours` and those of the last largest span, smallest spans first.

    A block is built once it is closed, none of its hours is dirty, some hour has rows, and
    every block below it that has rows is built. The recent blocks are looked at every time:
    a block may close after its last rebuilt hour.
    """
    recent = range(max(0, now_hour - SPANS[-1]), now_hour)
    for below, span in zip(SPANS, SPANS[1:], strict=False):
        blocks = {hour // span for hour in hours} | set(range(recent.start // span, (recent.stop - 1) // span + 1))
        first, last = min(blocks), max(blocks)
        hour_bounds = {"hostname": hostname, "lo": first * span, "hi": last * span + span - 1}
        built = _built(conn, hostname, span, first, last)
        dirty = {row[0] // span for row in conn.execute(_DIRTY_IN_RANGE_SQL, hour_bounds)}
        data_hours = [row[0] for row in conn.execute(_DATA_HOURS_IN_RANGE_SQL, hour_bounds)]
        with_rows = {hour // span for hour in data_hours}
        incomplete = set()  # blocks holding a block of the span below that has rows but was not built
        if below != HOUR:
            built_below = _built(conn, hostname, below, first * span // below, (last + 1) * span // below - 1)
            incomplete = {hour // span for hour in data_hours if hour // below not in built_below}
        for block in sorted((blocks & with_rows) - built - dirty - incomplete):
            if block * span + span - 1 < now_hour:  # closed
                with Transaction(conn):
                    _build_block(conn, hostname, span, below, block)


def _built(conn: sqlite3.Connection, hostname: str, span: int, lo: int, hi: int) -> set[int]:
    params = {"hostname": hostname, "span": span, "lo": lo, "hi": hi}
    return {row[0] for row in conn.execute(_BUILT_SQL, params)}


def _build_block(conn: sqlite3.Connection, hostname: str, span: int, below: int, block: int) -> None:
    for sql in _DELETE_SQL:
        conn.execute(sql, {"hostname": hostname, "span": span, "period": block})
    lo, hi = block * span // below, (block + 1) * span // below - 1
    bounds = {"hostname": hostname, "span": span, "period": block, "below": below, "lo": lo, "hi": hi}
    conn.execute(_BLOCK_ROLLUP_SQL, bounds)
    conn.execute(_BLOCK_PROPS_SQL, bounds)
    if span in RUN_SPANS:  # merged from the runs of the run span below
        source = RUN_SPANS[RUN_SPANS.index(span) - 1]
        periods = {"hostname": hostname, "span": source, "lo": block * span // source}
        periods["hi"] = (block + 1) * span // source - 1
        for kind in DURATION_KINDS:
            rows = conn.execute(_MERGE_DURATIONS_SQL, {**periods, "kind": kind}).fetchall()
            merged_rows = []
            for value, parts in groupby(rows, key=lambda row: row[0]):
                merged = sorted(chain.from_iterable(unpack(width, blob) for _, width, blob in parts))
                merged_rows.append(_durations_row(hostname, span, block, kind, value, merged))
            conn.executemany(_INSERT_DURATIONS_SQL, [row for row in merged_rows if row is not None])
    if span == DAY:
        day = {"hostname": hostname, "lo": block * DAY_MS, "hi": (block + 1) * DAY_MS - 1}
        day_rows = []
        for (kind, value), pairs in groupby(conn.execute(_DAY_KIND_DURATIONS_SQL, day), key=itemgetter(0, 1)):
            day_rows.append(_durations_row(hostname, DAY, block, kind, value, [duration for _, _, duration in pairs]))
        conn.executemany(_INSERT_DURATIONS_SQL, [row for row in day_rows if row is not None])
        columns.build_day(conn, hostname, block)
    conn.execute("INSERT OR IGNORE INTO rollup_built VALUES (?, ?, ?)", (hostname, span, block))


@dataclass
class Plan:
    """A time range cut into pieces: (span, first period, last period) read from rollups, ms ranges read raw."""

    pieces: list[tuple[int, int, int]] = field(default_factory=list)
    raw: list[tuple[int, int]] = field(default_factory=list)  # inclusive Unix-ms ranges


Fits = Callable[[int, int], bool]  # fits(first hour, span): whether that block may be used whole


def plan(
    conn: sqlite3.Connection,
    hostname: str,
    start: int | None,
    end: int | None,
    spans: Sequence[int] = SPANS,
    fits: Fits | None = None,
) -> Plan:
    """Cut [start, end] (inclusive Unix ms; None = unbounded) into rollup periods of `spans` and raw ranges.

    With `fits`, only blocks it accepts are used, and hours it refuses are read raw
    (time buckets: a block must not straddle a bucket's edge).
    """
    result = Plan()
    result.raw, hours = whole_hours(conn, hostname, start, end)
    if hours is None:
        return result
    first, last = hours
    dirty = dirty_hours(conn, hostname, first, last)
    for hour in dirty:
        result.raw.append((hour * HOUR_MS, (hour + 1) * HOUR_MS - 1))
    built: dict[int, set[int]] = {}
    for span in sorted(spans, reverse=True):
        if span != HOUR:
            params = {"hostname": hostname, "span": span, "lo": first // span, "hi": last // span}
            built[span] = {row[0] for row in conn.execute(_BUILT_SQL, params)}
    # Walk the clean stretches between dirty hours, taking the largest built blocks that fit.
    periods: list[tuple[int, int]] = []
    edges = [first - 1, *dirty, last + 1]
    for left, right in zip(edges, edges[1:], strict=False):
        _cover(periods, left + 1, right - 1, built, fits or _always)
    for span, group in groupby(sorted(periods), key=lambda item: item[0]):
        merged = merge([(period, period) for _, period in group])
        if span:
            result.pieces += [(span, lo, hi) for lo, hi in merged]
        else:  # hours refused by `fits`
            result.raw += [(lo * HOUR_MS, (hi + 1) * HOUR_MS - 1) for lo, hi in merged]
    result.raw = merge(result.raw)
    return result


def whole_hours(
    conn: sqlite3.Connection, hostname: str, start: int | None, end: int | None
) -> tuple[list[tuple[int, int]], tuple[int, int] | None]:
    """The partial hours at the ends of [start, end] (inclusive Unix ms; None = unbounded), to read raw,
    and the first and last whole hour inside it that the site's rows can be in (None: none)."""
    raw: list[tuple[int, int]] = []
    first = None if start is None else -(-start // HOUR_MS)  # first whole hour
    last = None if end is None else (end + 1) // HOUR_MS - 1  # last whole hour
    if first is not None and last is not None and first > last:
        if start is not None and end is not None and start <= end:
            raw.append((start, end))
        return raw, None
    if start is not None and first is not None and start < first * HOUR_MS:
        raw.append((start, first * HOUR_MS - 1))
    if end is not None and last is not None and end > (last + 1) * HOUR_MS - 1:
        raw.append(((last + 1) * HOUR_MS, end))
    low, high = conn.execute(_DATA_HOURS_SQL, {"hostname": hostname}).fetchone()
    if low is None:
        return raw, None
    first = low if first is None else max(first, low)  # no row lies outside the site's data hours
    last = high if last is None else min(last, high)
    return raw, None if first > last else (first, last)


def dirty_hours(conn: sqlite3.Connection, hostname: str, first: int, last: int) -> list[int]:
    """The site's dirty hours among first..last, ascending."""
    return [row[0] for row in conn.execute(_DIRTY_IN_RANGE_SQL, {"hostname": hostname, "lo": first, "hi": last})]


def _always(hour: int, span: int) -> bool:
    return True


def _cover(periods: list[tuple[int, int]], lo: int, hi: int, built: dict[int, set[int]], fits: Fits) -> None:
    """Add hours lo..hi as (span, period) pairs, taking the largest built block that starts at each point.

    An hour that does not fit is added as (0, hour): to be read raw.
    """
    hour = lo
    while hour <= hi:
        for span, blocks in built.items():  # largest span first
            if hour % span == 0 and hour + span - 1 <= hi and hour // span in blocks and fits(hour, span):
                periods.append((span, hour // span))
                hour += span
                break
        else:
            periods.append((HOUR if fits(hour, HOUR) else 0, hour))
            hour += 1


def merge(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Inclusive ranges, sorted, with overlapping and adjacent ones joined."""
    merged: list[tuple[int, int]] = []
    for lo, hi in sorted(ranges):
        if merged and lo <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(hi, merged[-1][1]))
        else:
            merged.append((lo, hi))
    return merged


def _union(the_plan: Plan, select: str, params: dict[str, object]) -> str:
    """`select` (ending in a WHERE clause) once per piece of the plan, its span and periods bound, UNION ALL."""
    parts = []
    for i, (span, lo, hi) in enumerate(the_plan.pieces):
        params.update({f"s{i}": span, f"lo{i}": lo, f"hi{i}": hi})
        parts.append(f"{select} AND span = :s{i} AND period BETWEEN :lo{i} AND :hi{i}")
    return " UNION ALL ".join(parts)


def bind_values(params: dict[str, object], values: Iterable[str], prefix: str = "v") -> str:
    """Bind `values` as :<prefix>0, :<prefix>1, ... and return the list of their names for an IN (...)."""
    names = []
    for i, value in enumerate(values):
        params[f"{prefix}{i}"] = value
        names.append(f":{prefix}{i}")
    return ", ".join(names) or "NULL"


def rollup_groups(
    conn: sqlite3.Connection, hostname: str, kind: int, the_plan: Plan, columns: str = SUMS
) -> dict[str, Group]:
    """The additive aggregates per value of `kind` over the plan's rollup pieces.

    `columns` may be a shorter list of sums (the first fields of `Group`) when fewer are needed.
    """
    if not the_plan.pieces:
        return {}
    params: dict[str, object] = {"hostname": hostname, "kind": kind}
    pieces = _union(the_plan, "SELECT * FROM rollup WHERE hostname = :hostname AND kind = :kind", params)
    sql = f"SELECT value, {columns} FROM ({pieces}) GROUP BY value"
    return {value: Group(*counts) for value, *counts in conn.execute(sql, params)}


def stored_run(
    conn: sqlite3.Connection, rowid: int, count: int, width: int, samples: bytes, whole: bytes | None
) -> Run:
    """A run from a rollup_durations row: small runs whole, others as samples with windows read on demand."""
    if whole is not None:
        return Run.of(unpack(width, whole))

    def read(lo: int, hi: int) -> Sequence[int]:
        return unpack(width, read_blob(conn, "rollup_durations", "durations", rowid, lo * width, (hi - lo) * width))

    return Run(count, unpack(width, samples), read)


_RUN_COLUMNS = "rowid, count, width, samples, CASE WHEN count <= :inline THEN durations END"


def rollup_runs(
    conn: sqlite3.Connection, hostname: str, kind: int, the_plan: Plan, values: Iterable[str]
) -> dict[str, Runs]:
    """Sorted duration runs of `values` of `kind` over the plan's pieces (RUN_SPANS; days only for DAY_RUN_KINDS)."""
    runs: dict[str, Runs] = {}
    if not the_plan.pieces:
        return runs
    params: dict[str, object] = {"hostname": hostname, "kind": kind, "inline": INLINE_RUN}
    select = (
        f"SELECT value, {_RUN_COLUMNS} FROM rollup_durations WHERE hostname = :hostname AND kind = :kind"
        f" AND value IN ({bind_values(params, values)})"
    )
    sql = _union(the_plan, select, params)
    for value, *row in conn.execute(sql, params):
        runs.setdefault(value, []).append(stored_run(conn, *row))
    return runs


def period_buckets(
    conn: sqlite3.Connection, hostname: str, span: int, ranges: Sequence[tuple[int, int]]
) -> tuple[dict[int, Group], dict[int, Run]]:
    """Site totals and duration runs per period of `span` (one of RUN_SPANS), periods in the (lo, hi) ranges:
    one query for all of them (a summary's day buckets off UTC are a few hundred small pieces)."""
    params = {"hostname": hostname, "span": span, "inline": INLINE_RUN}
    every = [period for lo, hi in ranges for period in range(lo, hi + 1)]
    groups: dict[int, Group] = {}
    runs: dict[int, Run] = {}
    for first in range(0, len(every), MAX_LISTED_PERIODS):
        periods = ", ".join(str(int(period)) for period in every[first : first + MAX_LISTED_PERIODS])
        where = f"WHERE hostname = :hostname AND span = :span AND kind = 0 AND period IN ({periods})"
        for period, *counts in conn.execute(f"SELECT period, {_COUNTS} FROM rollup {where}", params):
            groups[period] = Group(*counts)
        for period, *row in conn.execute(f"SELECT period, {_RUN_COLUMNS} FROM rollup_durations {where}", params):
            runs[period] = stored_run(conn, *row)
    return groups, runs


def props_groups(conn: sqlite3.Connection, hostname: str, the_plan: Plan) -> dict[tuple[str, str], int]:
    """Event counts per (name, value) over the plan's rollup pieces."""
    if not the_plan.pieces:
        return {}
    params: dict[str, object] = {"hostname": hostname}
    pieces = _union(the_plan, "SELECT * FROM rollup_props WHERE hostname = :hostname", params)
    sql = f"SELECT name, value, SUM(events) FROM ({pieces}) GROUP BY name, value"
    return {(name, value): events for name, value, events in conn.execute(sql, params)}
