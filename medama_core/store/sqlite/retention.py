"""Retention on SQLite: a site's raw rows older than its cutoff deleted a small batch at a time, its rollups kept.

A batch covers the site's oldest hours, about PURGE_BATCH_VIEWS views, and
only whole UTC days whose hours are all rolled up (none dirty). Before the
rows go, each day the batch touches gets its day block built, whatever its
size, because the block's column copy and its duration runs per referrer,
browser, ... are read from the raw rows (store/sqlite/rollups.py build_day_now). A
small site is first made to keep rows of every kind, since its lists are
otherwise read raw (rollups.keep_every_kind). The views go with their custom
events; the delete triggers' marks are taken back in the same transaction,
since the rolled-up hours are right and a rebuild would now read nothing.
The days' column copies go too. `raw_floor` records where the site's raw
rows now start: a filtered answer reaching before it is partial.

The freed pages stay in the file's freelist and later inserts take them:
the file does not grow again until the freed space is used (no VACUUM).
"""

from __future__ import annotations

import sqlite3
from typing import Final

from medama_core.store.protocol import Step
from medama_core.store.sqlite import columns, rollups
from medama_core.store.sqlite.db import Transaction

HOUR_MS: Final = rollups.HOUR_MS
# Views (with their events and index entries) deleted per writer transaction: about 20 µs each with their
# row, two index entries and a trigger run. bench/retention.py: a median step of 37 ms, the longest 104 ms
# (2 shared, busy cores), so hit batches wait for the writer no longer than for a rollup step (~0.5 s).
# At least one hour goes.
PURGE_BATCH_VIEWS: Final = 2_000


# The (site, hour) pairs the delete triggers will mark that are not dirty now: the views' hours, and for
# each of their events, its hour and the hours of the views sharing its bid (store/sqlite/analytics.py triggers).
_MARKS_SQL = """
    INSERT OR IGNORE INTO temp.purge_marks SELECT hostname, hour FROM (
        SELECT :hostname AS hostname, date_created / 3600000 AS hour FROM views
            WHERE hostname = :hostname AND date_created BETWEEN :lo AND :hi
        UNION SELECT w.hostname, e.date_created / 3600000 FROM views v CROSS JOIN events e ON e.bid = v.bid
            CROSS JOIN views w ON w.bid = e.bid
            WHERE v.hostname = :hostname AND v.date_created BETWEEN :lo AND :hi
        UNION SELECT w.hostname, w.date_created / 3600000 FROM views v CROSS JOIN events e ON e.bid = v.bid
            CROSS JOIN views w ON w.bid = e.bid
            WHERE v.hostname = :hostname AND v.date_created BETWEEN :lo AND :hi
    ) m WHERE NOT EXISTS (SELECT 1 FROM rollup_dirty d WHERE d.hostname = m.hostname AND d.hour = m.hour)"""
_MARKS_TABLE_SQL = "CREATE TEMP TABLE IF NOT EXISTS purge_marks (hostname TEXT, hour INTEGER, UNIQUE (hostname, hour))"
_DELETE_EVENTS_SQL = """
    DELETE FROM events WHERE bid IN (
        SELECT bid FROM views WHERE hostname = :hostname AND date_created BETWEEN :lo AND :hi)"""
_DELETE_VIEWS_SQL = "DELETE FROM views WHERE hostname = :hostname AND date_created BETWEEN :lo AND :hi"
_UNMARK_SQL = """
    DELETE FROM rollup_dirty WHERE (hostname, hour) IN (SELECT hostname, hour FROM temp.purge_marks)"""
_SET_FLOOR_SQL = """
    INSERT INTO raw_floor VALUES (:hostname, :floor)
    ON CONFLICT (hostname) DO UPDATE SET floor = max(floor, excluded.floor)"""


def purge_step(conn: sqlite3.Connection, hostname: str, before_ms: int) -> Step:
    """Delete one batch of the site's raw rows older than `before_ms` (a UTC midnight), oldest first."""
    with Transaction(conn):
        first = conn.execute("SELECT MIN(date_created) FROM views WHERE hostname = ?", (hostname,)).fetchone()[0]
        if first is None or first >= before_ms:
            return Step(0)
        if rollups.keep_every_kind(conn, hostname):
            return Step(0, waiting=True)
        first_hour = first // HOUR_MS
        params = {"hostname": hostname, "lo": first, "before": before_ms, "n": PURGE_BATCH_VIEWS}
        later = conn.execute(
            "SELECT date_created FROM views WHERE hostname = :hostname AND date_created BETWEEN :lo AND :before - 1"
            " ORDER BY date_created LIMIT 1 OFFSET :n",
            params,
        ).fetchone()
        end_hour = before_ms // HOUR_MS if later is None else max(later[0] // HOUR_MS, first_hour + 1)
        # Whole days clean: their day blocks are built from their raw rows before these go.
        first_day, last_day = first_hour // rollups.DAY, (end_hour - 1) // rollups.DAY
        dirty = rollups.dirty_hours(conn, hostname, first_day * rollups.DAY, (last_day + 1) * rollups.DAY - 1)
        if dirty:
            end_hour = min(end_hour, dirty[0] // rollups.DAY * rollups.DAY)
            last_day = (end_hour - 1) // rollups.DAY
            if end_hour <= first_hour:
                return Step(0, waiting=True)
        for day in range(first_day, last_day + 1):
            rollups.build_day_now(conn, hostname, day)
        bounds = {"hostname": hostname, "lo": first_hour * HOUR_MS, "hi": end_hour * HOUR_MS - 1}
        conn.execute(_MARKS_TABLE_SQL)
        conn.execute(_MARKS_SQL, bounds)
        conn.execute(_DELETE_EVENTS_SQL, bounds)
        deleted = conn.execute(_DELETE_VIEWS_SQL, bounds).rowcount
        conn.execute(_UNMARK_SQL)
        conn.execute("DELETE FROM temp.purge_marks")
        for day in range(first_day, last_day + 1):
            columns.mark_uncopied(conn, hostname, day)
        conn.execute(_SET_FLOOR_SQL, {"hostname": hostname, "floor": end_hour * HOUR_MS})
    return Step(deleted)


def raw_floor(conn: sqlite3.Connection, hostname: str) -> int | None:
    """Unix ms before which the site's raw rows were deleted by retention; None when none were."""
    row = conn.execute("SELECT floor FROM raw_floor WHERE hostname = ?", (hostname,)).fetchone()
    return None if row is None else int(row[0])


# The tables of derived rows keyed by site: after a purge they alone hold the site's oldest days.
_DERIVED_TABLES: Final = (
    "rollup",
    "rollup_rare",
    "rollup_durations",
    "rollup_props",
    "rollup_prop_names",
    "rollup_built",
    "rollup_todo",
    "rollup_sites",
    "rollup_common",
    "column_days",
    "raw_floor",
)


def rename_derived(conn: sqlite3.Connection, old: str, new: str) -> None:
    """A purged site's derived rows follow its rename (inside the caller's transaction, after `new`'s are
    gone): the hours whose raw rows moved are marked dirty and rebuilt, the purged ones keep their rollups."""
    if raw_floor(conn, old) is None:
        return  # every hour is rebuilt from the moved raw rows
    for table in _DERIVED_TABLES:
        conn.execute(f"UPDATE {table} SET hostname = :new WHERE hostname = :old", {"old": old, "new": new})


def forget_derived(conn: sqlite3.Connection, hostname: str) -> None:
    """A deleted site's derived rows (inside the caller's transaction): once purged, its oldest days would
    otherwise stay, and show again under a new site of the same name."""
    if raw_floor(conn, hostname) is None:
        return  # the delete triggers rebuild every hour it had from nothing
    for table in _DERIVED_TABLES:
        conn.execute(f"DELETE FROM {table} WHERE hostname = ?", (hostname,))
