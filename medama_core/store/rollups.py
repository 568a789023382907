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
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import groupby

from medama_core.store.aggregate import Group, Runs
from medama_core.store.db import Transaction

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
HOUR, DAY = 0, 1  # rollup spans
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
DURATION_KINDS = (0, 1)  # kinds whose sorted durations are stored: the site (summary) and pages (time)

# The additive aggregates of one group, as SQL over `views v`.
GROUP_COLUMNS = """
    COUNT(*) FILTER (WHERE v.is_unique_user),
    COUNT(*) FILTER (WHERE v.is_unique_page),
    COUNT(*),
    COUNT(*) FILTER (WHERE v.is_unique_user AND v.duration_ms BETWEEN 100 AND 5000),
    COUNT(*) FILTER (WHERE v.is_unique_user AND v.duration_ms IS NOT NULL),
    ifnull(SUM(v.duration_ms), 0)"""

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
_HOUR_PROPS_SQL = """
    SELECT e.name, e.value, COUNT(*) FROM events e JOIN views v ON v.bid = e.bid AND v.hostname = :hostname
    WHERE e.date_created BETWEEN :lo AND :hi GROUP BY 1, 2"""
_DELETE_SQL = {
    table: f"DELETE FROM {table} WHERE hostname = :hostname AND span = :span AND period = :period"
    for table in ("rollup", "rollup_durations", "rollup_props")
}
_INSERT_GROUP_SQL = "INSERT INTO rollup VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
_DAY_ROLLUP_SQL = """
    INSERT INTO rollup SELECT hostname, 1, kind, :day, value, SUM(visitors), SUM(page_visitors),
        SUM(pageviews), SUM(bounces), SUM(timed), SUM(duration_sum)
    FROM rollup WHERE hostname = :hostname AND span = 0 AND kind BETWEEN 0 AND 12 AND period BETWEEN :lo AND :hi
    GROUP BY kind, value"""
_DAY_PROPS_SQL = """
    INSERT INTO rollup_props SELECT hostname, 1, :day, name, value, SUM(events)
    FROM rollup_props WHERE hostname = :hostname AND span = 0 AND period BETWEEN :lo AND :hi
    GROUP BY name, value"""
_DAY_DURATIONS_SQL = """
    SELECT kind, value, width, durations FROM rollup_durations
    WHERE hostname = :hostname AND span = 0 AND kind = :kind AND period BETWEEN :lo AND :hi
    ORDER BY value"""
_DATA_HOURS_SQL = """
    SELECT MIN(low), MAX(high) FROM (
        SELECT MIN(period) AS low, MAX(period) AS high FROM rollup WHERE hostname = :hostname AND span = 0 AND kind = 0
        UNION ALL
        SELECT MIN(period), MAX(period) FROM rollup_props WHERE hostname = :hostname AND span = 0
        UNION ALL
        SELECT MIN(hour), MAX(hour) FROM rollup_dirty WHERE hostname = :hostname
    )"""
_BUILT_DAYS_SQL = """
    SELECT day FROM rollup_days WHERE hostname = :hostname AND day BETWEEN :lo / 24 AND :hi / 24"""
_DAYS_PENDING_SQL = """
    SELECT DISTINCT period / 24 FROM rollup WHERE hostname = :hostname AND span = 0 AND kind = 0
    AND period / 24 NOT IN (SELECT day FROM rollup_days WHERE hostname = :hostname)"""


def pack(values: list[int]) -> tuple[int, bytes]:
    """Sorted non-negative durations as little-endian unsigned integers: (width in bytes, blob)."""
    typecode = "I" if not values or values[-1] < 1 << 32 else "Q"
    packed = array(typecode, values)
    if sys.byteorder == "big":
        packed.byteswap()
    return packed.itemsize, packed.tobytes()


def unpack(width: int, blob: bytes) -> array[int]:
    packed = array("I" if width == 4 else "Q")
    packed.frombytes(blob)
    if sys.byteorder == "big":
        packed.byteswap()
    return packed


def refresh(conn: sqlite3.Connection, now_ms: int, limit: int = 10_000) -> int:
    """Rebuild up to `limit` closed dirty hours, then the closed days they complete; return hours rebuilt."""
    rows = conn.execute(_DIRTY_CLOSED_SQL, {"now_hour": now_ms // HOUR_MS, "limit": limit}).fetchall()
    for start in range(0, len(rows), REFRESH_HOURS_PER_TRANSACTION):
        chunk = rows[start : start + REFRESH_HOURS_PER_TRANSACTION]
        with Transaction(conn):
            for hostname, hour in chunk:
                _rebuild_hour(conn, hostname, hour)
                conn.execute("DELETE FROM rollup_dirty WHERE hostname = ? AND hour = ?", (hostname, hour))
                conn.execute("DELETE FROM rollup_days WHERE hostname = ? AND day = ?", (hostname, hour // 24))
    for hostname in sorted({hostname for hostname, _ in rows}):
        _rebuild_days(conn, hostname, now_ms // DAY_MS)
    return len(rows)


def _rebuild_hour(conn: sqlite3.Connection, hostname: str, hour: int) -> None:
    key = {"hostname": hostname, "span": HOUR, "period": hour}
    for sql in _DELETE_SQL.values():
        conn.execute(sql, key)
    bounds = {"hostname": hostname, "lo": hour * HOUR_MS, "hi": (hour + 1) * HOUR_MS - 1}
    groups = conn.execute(_HOUR_ROLLUP_SQL, bounds).fetchall()
    conn.executemany(_INSERT_GROUP_SQL, [(hostname, HOUR, kind, hour, *rest) for kind, *rest in groups])
    durations = conn.execute(_HOUR_DURATIONS_SQL, bounds).fetchall()
    all_values = sorted(duration for _, duration in durations)
    _insert_durations(conn, hostname, HOUR, hour, 0, "", all_values)
    for path, pairs in groupby(durations, key=lambda row: row[0]):
        _insert_durations(conn, hostname, HOUR, hour, 1, path, [duration for _, duration in pairs])
    props = conn.execute(_HOUR_PROPS_SQL, bounds).fetchall()
    conn.executemany(
        "INSERT INTO rollup_props VALUES (?, ?, ?, ?, ?, ?)", [(hostname, HOUR, hour, *row) for row in props]
    )


def _insert_durations(
    conn: sqlite3.Connection, hostname: str, span: int, period: int, kind: int, value: str, values: list[int]
) -> None:
    if values:
        width, blob = pack(values)
        conn.execute(
            "INSERT INTO rollup_durations VALUES (?, ?, ?, ?, ?, ?, ?)",
            (hostname, span, kind, period, value, width, blob),
        )


def _rebuild_days(conn: sqlite3.Connection, hostname: str, today: int) -> None:
    """Build the day rows of every closed day of `hostname` that has none and no dirty hour."""
    days = [row[0] for row in conn.execute(_DAYS_PENDING_SQL, {"hostname": hostname})]
    for day in sorted(days):
        lo, hi = day * 24, day * 24 + 23
        dirty = conn.execute(_DIRTY_IN_RANGE_SQL, {"hostname": hostname, "lo": lo, "hi": hi}).fetchone()
        if day >= today or dirty is not None:
            continue
        with Transaction(conn):
            key = {"hostname": hostname, "span": DAY, "period": day}
            for sql in _DELETE_SQL.values():
                conn.execute(sql, key)
            bounds = {"hostname": hostname, "day": day, "lo": lo, "hi": hi}
            conn.execute(_DAY_ROLLUP_SQL, bounds)
            conn.execute(_DAY_PROPS_SQL, bounds)
            for kind in DURATION_KINDS:
                rows = conn.execute(_DAY_DURATIONS_SQL, {**bounds, "kind": kind}).fetchall()
                for value, parts in groupby(rows, key=lambda row: row[1]):
                    merged = sorted(v for _, _, width, blob in parts for v in unpack(width, blob))
                    _insert_durations(conn, hostname, DAY, day, kind, value, merged)
            conn.execute("INSERT OR IGNORE INTO rollup_days VALUES (?, ?)", (hostname, day))


@dataclass
class Plan:
    """A time range cut into pieces: day and hour periods read from rollups, ms ranges read raw."""

    days: list[tuple[int, int]] = field(default_factory=list)  # inclusive period ranges
    hours: list[tuple[int, int]] = field(default_factory=list)
    raw: list[tuple[int, int]] = field(default_factory=list)  # inclusive Unix-ms ranges

    def pieces(self) -> Iterator[tuple[int, int, int]]:
        for lo, hi in self.days:
            yield DAY, lo, hi
        for lo, hi in self.hours:
            yield HOUR, lo, hi


def plan(conn: sqlite3.Connection, hostname: str, start: int | None, end: int | None, days: bool = True) -> Plan:
    """Cut [start, end] (inclusive Unix ms; None = unbounded) into rollup periods and raw ranges."""
    result = Plan()
    first = None if start is None else -(-start // HOUR_MS)  # first whole hour
    last = None if end is None else (end + 1) // HOUR_MS - 1  # last whole hour
    if first is not None and last is not None and first > last:
        if start is not None and end is not None and start <= end:
            result.raw.append((start, end))
        return result
    if start is not None and first is not None and start < first * HOUR_MS:
        result.raw.append((start, first * HOUR_MS - 1))
    if end is not None and last is not None and end > (last + 1) * HOUR_MS - 1:
        result.raw.append(((last + 1) * HOUR_MS, end))
    low, high = conn.execute(_DATA_HOURS_SQL, {"hostname": hostname}).fetchone()
    if low is None:
        return result
    first = low if first is None else max(first, low)
    last = high if last is None else min(last, high)
    if first > last:
        return result
    dirty = [row[0] for row in conn.execute(_DIRTY_IN_RANGE_SQL, {"hostname": hostname, "lo": first, "hi": last})]
    for hour in dirty:
        result.raw.append((hour * HOUR_MS, (hour + 1) * HOUR_MS - 1))
    built: set[int] = set()
    if days:
        built = {row[0] for row in conn.execute(_BUILT_DAYS_SQL, {"hostname": hostname, "lo": first, "hi": last})}
        built -= {hour // 24 for hour in dirty}
    # Walk the clean stretches between dirty hours, taking whole built days where they fit.
    edges = [first - 1, *dirty, last + 1]
    for left, right in zip(edges, edges[1:], strict=False):
        _cover(result, left + 1, right - 1, built)
    result.days = _merge(result.days)
    result.hours = _merge(result.hours)
    result.raw = _merge(result.raw)
    return result


def _cover(result: Plan, lo: int, hi: int, built: set[int]) -> None:
    """Add hours lo..hi to the plan, as days where a whole built day fits."""
    hour = lo
    while hour <= hi:
        day = hour // 24
        if hour % 24 == 0 and hour + 23 <= hi and day in built:
            result.days.append((day, day))
            hour += 24
        else:
            stop = min(hi, (day + 1) * 24 - 1)
            result.hours.append((hour, stop))
            hour = stop + 1


def _merge(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for lo, hi in sorted(ranges):
        if merged and lo <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(hi, merged[-1][1]))
        else:
            merged.append((lo, hi))
    return merged


_ROLLUP_GROUPS_SQL = """
    SELECT value, SUM(visitors), SUM(page_visitors), SUM(pageviews), SUM(bounces), SUM(timed), SUM(duration_sum)
    FROM rollup WHERE hostname = :hostname AND span = :span AND kind = :kind AND period BETWEEN :lo AND :hi
    GROUP BY value"""
_ROLLUP_RUNS_SQL = """
    SELECT value, width, durations FROM rollup_durations
    WHERE hostname = :hostname AND span = :span AND kind = :kind AND period BETWEEN :lo AND :hi"""
_ROLLUP_BUCKETS_SQL = """
    SELECT period, visitors, page_visitors, pageviews, bounces, timed, duration_sum
    FROM rollup WHERE hostname = :hostname AND span = 0 AND kind = 0 AND period BETWEEN :lo AND :hi"""
_ROLLUP_BUCKET_RUNS_SQL = """
    SELECT period, width, durations FROM rollup_durations
    WHERE hostname = :hostname AND span = 0 AND kind = 0 AND period BETWEEN :lo AND :hi"""


def rollup_groups(conn: sqlite3.Connection, hostname: str, kind: int, the_plan: Plan) -> dict[str, Group]:
    """The additive aggregates per value of `kind` over the plan's rollup periods."""
    groups: dict[str, Group] = {}
    for span, lo, hi in the_plan.pieces():
        params = {"hostname": hostname, "span": span, "kind": kind, "lo": lo, "hi": hi}
        for value, *counts in conn.execute(_ROLLUP_GROUPS_SQL, params):
            group = groups.get(value)
            if group is None:
                group = groups[value] = Group()
            group.add(Group(*counts))
    return groups


def rollup_runs(conn: sqlite3.Connection, hostname: str, kind: int, the_plan: Plan) -> dict[str, Runs]:
    """Sorted duration runs per value of `kind` (0 or 1) over the plan's rollup periods."""
    runs: dict[str, Runs] = {}
    for span, lo, hi in the_plan.pieces():
        params = {"hostname": hostname, "span": span, "kind": kind, "lo": lo, "hi": hi}
        for value, width, blob in conn.execute(_ROLLUP_RUNS_SQL, params):
            runs.setdefault(value, []).append(unpack(width, blob))
    return runs


def hour_buckets(conn: sqlite3.Connection, hostname: str, lo: int, hi: int) -> tuple[dict[int, Group], dict[int, Runs]]:
    """Site totals and duration runs per hour for hours lo..hi (clean ones only have rows)."""
    params = {"hostname": hostname, "lo": lo, "hi": hi}
    groups = {period: Group(*counts) for period, *counts in conn.execute(_ROLLUP_BUCKETS_SQL, params)}
    runs: dict[int, Runs] = {}
    for period, width, blob in conn.execute(_ROLLUP_BUCKET_RUNS_SQL, params):
        runs[period] = [unpack(width, blob)]
    return groups, runs


def props_groups(conn: sqlite3.Connection, hostname: str, the_plan: Plan) -> dict[tuple[str, str], int]:
    """Event counts per (name, value) over the plan's rollup periods."""
    counts: dict[tuple[str, str], int] = {}
    for span, lo, hi in the_plan.pieces():
        rows = conn.execute(
            "SELECT name, value, SUM(events) FROM rollup_props"
            " WHERE hostname = ? AND span = ? AND period BETWEEN ? AND ? GROUP BY name, value",
            (hostname, span, lo, hi),
        )
        for name, value, events in rows:
            counts[(name, value)] = counts.get((name, value), 0) + events
    return counts
