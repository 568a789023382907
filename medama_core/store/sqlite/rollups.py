"""Hour and block rollups of `views`/`events`: rebuilding dirty hours in batches, building blocks, and
planning a range over them.

Triggers record which (site, hour) pairs changed in `rollup_dirty`. The
refresher rebuilds closed dirty hours from the raw rows, many sites and hours
per statement (`refresh_hours`: its cost follows the rows, not sites x hours),
and queues the blocks around them; `build_blocks` builds the queued blocks
once they are closed and clean. A reader splits a time range into the largest
clean built blocks, clean hours and raw pieces (the partial hours at the ends
and every dirty hour), so an answer never depends on a stale rollup row.

Long tails: a value of a dimension seen at most RARE_VIEWS times in a site's
rolled-up hours is "rare" and has hour rows only, in `rollup_rare`; `rollup`
and every block hold the common values. A value becomes common (for good)
when its views pass RARE_VIEWS: its rare rows move to `rollup` and into the
built blocks around them. Small sites keep the site rows only (kind 0).
See docs/storage.md.
"""

from __future__ import annotations

import heapq
import sqlite3
import sys
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import chain, groupby, islice
from operator import itemgetter
from typing import Final

from medama_core.store.aggregate import SAMPLE_STEP, Group, Run, Runs
from medama_core.store.sqlite import columns
from medama_core.store.sqlite.db import Transaction, read_blob

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
# Rollup spans, in hours: a row of span s and period p covers hours p*s .. p*s+s-1 (aligned on the
# Unix epoch). Each span is a multiple of the one before; 6 hours, 8 days and 64 days make a 90-day
# range a dozen rows per value instead of 90 day rows.
HOUR, DAY = 1, 24
SPANS = (HOUR, 6, DAY, 8 * DAY, 64 * DAY)
# Spans that also store sorted durations (for the site and for pages). 6-hour runs serve the day
# buckets of time zones off UTC: a day from 07:00 UTC is 3 such blocks and 6 hours, not 24 hours.
RUN_SPANS = (HOUR, 6, DAY, 8 * DAY)
INLINE_RUN = 1024  # stored runs up to this many values are read whole with their row; one blob open costs more
# A group's durations, when at most this many, live in its rollup row (8 bytes each): a long tail's
# groups (one or two views each) then cost no rollup_durations row and no second lookup.
INLINE_DURATIONS: Final = 16
# A value seen at most this many times in all of a site's rolled-up hours is rare: it has hour rows
# only (`rollup_rare`), and no count of it can exceed this in any range. 2, because /time keeps pages
# with 3 page visitors or more, so a rare path never counts there: "seen once or twice" is most of a
# long tail (89% of 200k paths in bench/stats.py's 1 M-view shape).
RARE_VIEWS: Final = 2
# Sites with fewer views than this in their rolled-up hours keep the site rows (kind 0) and their
# custom events only; their lists read the raw rows, which at this size costs a few ms (0.5-1 µs a
# row), while 13 rollup rows per view would cost more to build and store than they save. A site that
# grows past it has all its hours rebuilt with every kind, once.
SMALL_SITE_VIEWS: Final = 20_000
# A block (6 hours and up) is built only when it holds at least this many views: below, its hours'
# rows cost about as much to read as the block's, and 2,000 small sites would need ~300k blocks a
# month. Also the least views of a day with a column copy (store/sqlite/columns.py).
MIN_BLOCK_VIEWS: Final = 500
# One writer call rebuilds dirty hours holding about this many views, so hit batches get the writer in
# between, and a read asked for meanwhile waits for no more than one such call (Database.unit); at least
# one hour however big. 20,000 before: ~0.5 s at 10 M views on 2 idle cores, 1.7 s on average on a
# loaded VM, which a panel then waited for. 5,000 costs ~10% more of the refresher's CPU in all than
# 10,000 (each batch commits, moves its rare values to common and rewrites the same index pages: 1 M
# views / 200k paths after an import, 41-42 s against 37.8 s, bench/settle.py), but 10,000 made the first
# pass of the page-filtered set right after that import 14-17 s against 8.4-8.7 (reads wait behind
# longer units) and did not settle measurably sooner (128 and 157 s against 137 and 140).
REFRESH_BATCH_VIEWS: Final = 5_000
# An hour batch's views when no stats read has come for a while (backends/sqlite.py, QUIET_BEFORE_LONG_S):
# nobody waits behind the unit, so it may be longer and cost less in all. 1 M views / 200k paths after an
# import (bench/settle.py): hour batches 34.4 s of CPU against 37.8 s at 5,000 (fewer commits, fewer moves
# of rare values to common), the same peak RSS; the first read that comes meanwhile waits for one such
# batch (~0.7 s of CPU at that size, ~0.5 s at 10 M views on 2 idle cores).
QUIET_BATCH_VIEWS: Final = 20_000
REFRESH_BATCH_PAIRS: Final = 5_000  # (site, hour) pairs looked at per writer call (after an import: 1 M)
# Blocks one writer call builds: a 333k-view day block with its column copy takes ~4 s of CPU alone, and a
# read waits for the whole call (Database.unit); 8 before.
BLOCKS_PER_CALL: Final = 2
DROPS_PER_CALL: Final = 20_000  # queued blocks one writer call drops (~10 µs each: 2,000 small sites queue ~300k)
WRITE_CHUNK: Final = 4096  # rows written per executemany while reading another statement's rows
MAX_LISTED_PERIODS = 4000  # integers written into one `IN (...)`: ~40 KB of SQL, far below SQLite's 1 MB
# Merging runs: up to this many values are merged by sorting a list (fast, ~36 bytes a value: ~1.2 MB);
# more (a day of 1 M views a month: 33k; a busy site's 8 days: ~2 M) stream through a heap merge into
# the blob, MERGE_CHUNK values at a time (~0.4 µs a value). 1 << 17 held ~5 MB per block.
MERGE_IN_MEMORY: Final = 1 << 15
MERGE_CHUNK: Final = 1 << 14

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
    "entry": 13,
    "came_from": 14,
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
    # Entry and exit pages (store/sqlite/entries.py). 13: an entry's page behind ENTRY_MARK, NOT_ENTRY for the
    # other views; 14: the internal referrer's path, '' (NOT_ENTRY) for the views without one.
    13: "CASE WHEN v.referrer_path = '' THEN '+' || v.pathname ELSE '' END",
    14: "v.referrer_path",
}
# Kind 13's value of an entry is its path behind this mark, so that no path (not even '') can be mistaken
# for NOT_ENTRY, the value of every view that is not an entry (and, in kind 14, of every view without an
# internal referrer: a stored internal referrer path is never '').
ENTRY_MARK: Final = "+"
NOT_ENTRY: Final = ""
DURATION_KINDS = (0, 1)  # kinds whose sorted durations are stored at every RUN_SPAN: the site and pages
# The other kinds keep theirs for whole days only, for the medians of full list rows (detail tables).
# Entry and exit pages show no durations: kinds 13 and 14 keep none (store/sqlite/entries.py).
NO_RUN_KINDS = (13, 14)
DAY_RUN_KINDS = tuple(kind for kind in KIND_SQL if kind not in DURATION_KINDS + NO_RUN_KINDS)
VALUE_KINDS = tuple(kind for kind in KIND_SQL if kind)  # the dimensions (rare or common values)
_ALL_KINDS = ", ".join(str(kind) for kind in KIND_SQL)  # `kind IN (...)` lets SQLite seek each kind

# The additive aggregates of one group, as SQL over `views v`, in the order of `Group`'s fields.
GROUP_SQL: dict[str, str] = {
    "visitors": "COUNT(*) FILTER (WHERE v.is_unique_user)",
    "page_visitors": "COUNT(*) FILTER (WHERE v.is_unique_page)",
    "pageviews": "COUNT(*)",
    "bounces": "COUNT(*) FILTER (WHERE v.is_unique_user AND v.duration_ms BETWEEN 100 AND 5000)",
    "timed": "COUNT(*) FILTER (WHERE v.is_unique_user AND v.duration_ms IS NOT NULL)",
    "duration_sum": "ifnull(SUM(v.duration_ms), 0)",
    "measured": "COUNT(v.duration_ms)",
    "zeros": "COUNT(*) FILTER (WHERE v.duration_ms <= 0)",
    "ones": "COUNT(*) FILTER (WHERE v.duration_ms <= 1)",
    "twos": "COUNT(*) FILTER (WHERE v.duration_ms <= 2)",
}
GROUP_COLUMNS = ", ".join(GROUP_SQL.values())
COUNT_NAMES = ", ".join(GROUP_SQL)  # the same, as rollup's column names
NAMED_GROUP_COLUMNS = ", ".join(f"{sql} AS {name}" for name, sql in GROUP_SQL.items())
SUMS = ", ".join(f"SUM({name})" for name in COUNT_NAMES.split(", "))

_DIRTY_CLOSED_SQL = """
    SELECT hostname, hour FROM rollup_dirty WHERE hour < :now_hour ORDER BY hour, hostname LIMIT :limit"""
_DIRTY_IN_RANGE_SQL = """
    SELECT hour FROM rollup_dirty WHERE hostname = :hostname AND hour BETWEEN :lo AND :hi ORDER BY hour"""
_PAIR_VIEWS_SQL = "SELECT COUNT(*) FROM views WHERE hostname = :hostname AND date_created BETWEEN :lo AND :hi"
# The views of the batch's (site, hour) pairs, each with its hour and whether its site keeps every kind.
# The views of the batch's (site, hour) pairs, each with its hour and whether its site keeps every kind:
# copied once into a temporary table that each kind's statement reads (one statement for all the kinds
# held a sorter per kind until its end: ~2 MB each, 26 MB in all).
_BATCH_VIEWS_SQL = f"""
    INSERT INTO temp.refresh_views SELECT v.*, p.hour AS hour, p.full AS full FROM temp.refresh_pairs p
    CROSS JOIN views v
    ON v.hostname = p.hostname AND v.date_created BETWEEN p.hour * {HOUR_MS} AND p.hour * {HOUR_MS} + {HOUR_MS - 1}"""
# The batch's groups of one kind. A group of kinds 2-12 with at most :rare views (one that may be rare)
# keeps its durations as text for now; the site's and pages' come sorted from _BATCH_DURATIONS_SQL.
_BATCH_GROUPS_SQL = {
    kind: f"INSERT INTO temp.refresh_new SELECT v.hostname, v.hour, {kind}, {expr}, {GROUP_COLUMNS}, "
    + ("NULL" if kind in DURATION_KINDS else "CASE WHEN COUNT(*) <= :rare THEN group_concat(v.duration_ms) END")
    + " FROM temp.refresh_views v"
    + ("" if kind == 0 else " WHERE v.full")
    + " GROUP BY v.hostname, v.hour"
    + ("" if kind == 0 else ", 4")
    for kind, expr in KIND_SQL.items()
}
_IS_COMMON = (
    "EXISTS (SELECT 1 FROM rollup_common c WHERE c.hostname = {t}.hostname AND c.kind = {t}.kind"
    " AND c.value = {t}.value)"
)
# Values of the batch that pass RARE_VIEWS with this batch's views (the batch's old rows are gone by now).
_PROMOTE_SQL = f"""
    INSERT INTO temp.refresh_promote SELECT n.hostname, n.kind, n.value FROM temp.refresh_new n
    WHERE n.kind > 0 AND NOT {_IS_COMMON.format(t="n")}
    GROUP BY n.hostname, n.kind, n.value
    HAVING SUM(n.pageviews) + ifnull((SELECT SUM(r.pageviews) FROM rollup_rare r INDEXED BY rollup_rare_value
        WHERE r.hostname = n.hostname AND r.kind = n.kind AND r.value = n.value), 0) > :rare"""
_MOVED_SQL = f"""
    SELECT r.hostname, r.kind, r.hour, r.value, {COUNT_NAMES}, r.durations FROM temp.refresh_promote p
    CROSS JOIN rollup_rare r INDEXED BY rollup_rare_value
    ON r.hostname = p.hostname AND r.kind = p.kind AND r.value = p.value"""
# The durations each new row keeps: the site's and pages' (hour runs), and the rare rows' of every kind.
_BATCH_DURATIONS_SQL = (
    " UNION ALL ".join(
        f"SELECT v.hostname, v.hour, {kind} AS kind, {KIND_SQL[kind]} AS value, v.duration_ms"
        " FROM temp.refresh_views v WHERE v.duration_ms IS NOT NULL" + ("" if kind == 0 else " AND v.full")
        for kind in DURATION_KINDS
    )
    + " ORDER BY 1, 2, 3, 4, 5"
)
# The rare rows' durations of kinds 2-12, kept as text by _BATCH_GROUPS_SQL.
_RARE_DURATIONS_SQL = f"""
    SELECT hostname, hour, kind, value, durations FROM temp.refresh_new n
    WHERE n.kind > 1 AND n.durations NOT NULL AND NOT {_IS_COMMON.format(t="n")}"""
_SET_INLINE_SQL = """
    UPDATE temp.refresh_new SET durations = ? WHERE hostname = ? AND hour = ? AND kind = ? AND value = ?"""
_INSERT_COMMON_SQL = f"""
    INSERT INTO rollup SELECT hostname, {HOUR}, kind, hour, value, {COUNT_NAMES},
        CASE WHEN kind IN (0, 1) THEN durations END FROM temp.refresh_new n
    WHERE n.kind = 0 OR {_IS_COMMON.format(t="n")}"""
_INSERT_RARE_SQL = f"""
    INSERT INTO rollup_rare SELECT hostname, kind, hour, value, {COUNT_NAMES}, durations FROM temp.refresh_new n
    WHERE n.kind > 0 AND NOT {_IS_COMMON.format(t="n")}"""
# Events first: an hour's events are found by time, their views by bid; only the batch's pairs count.
_BATCH_PROPS_SQL = f"""
    SELECT v.hostname, e.date_created / {HOUR_MS} AS hour, e.name, e.value, COUNT(*)
    FROM events e CROSS JOIN views v ON v.bid = e.bid
    WHERE e.date_created BETWEEN :lo AND :hi
        AND EXISTS (SELECT 1 FROM temp.refresh_pairs p
            WHERE p.hostname = v.hostname AND p.hour = e.date_created / {HOUR_MS})
    GROUP BY 1, 2, 3, 4"""
_DELETE_HOUR_SQL = (
    f"DELETE FROM rollup WHERE hostname = :hostname AND span = {HOUR} AND kind IN ({_ALL_KINDS}) AND period = :hour",
    f"DELETE FROM rollup_rare WHERE hostname = :hostname AND kind IN ({_ALL_KINDS}) AND hour = :hour",
    f"DELETE FROM rollup_durations WHERE hostname = :hostname AND span = {HOUR} AND kind IN ({_ALL_KINDS})"
    " AND period = :hour",
    f"DELETE FROM rollup_props WHERE hostname = :hostname AND span = {HOUR} AND period = :hour",
    f"DELETE FROM rollup_prop_names WHERE hostname = :hostname AND span = {HOUR} AND period = :hour",
)
# Pairs of the batch that have rollup rows already (rebuilt again): only those need the deletes above.
_HAD_ROWS_SQL = f"""
    SELECT p.hostname, p.hour FROM temp.refresh_pairs p WHERE EXISTS (
        SELECT 1 FROM rollup r WHERE r.hostname = p.hostname AND r.span = {HOUR} AND r.kind = 0 AND r.period = p.hour)
    OR EXISTS (SELECT 1 FROM rollup_props r WHERE r.hostname = p.hostname AND r.span = {HOUR} AND r.period = p.hour)"""
# A subquery per pair, not a join: SQLite would build a Bloom filter of every site row of `rollup` for it.
_OLD_SITE_VIEWS_SQL = f"""
    SELECT hostname, SUM(views) FROM (SELECT p.hostname, (SELECT r.pageviews FROM rollup r WHERE r.hostname = p.hostname
        AND r.span = {HOUR} AND r.kind = 0 AND r.period = p.hour) AS views FROM temp.refresh_pairs p)
    WHERE views NOT NULL GROUP BY 1"""
_DELETE_BLOCK_SQL = (
    f"DELETE FROM rollup WHERE hostname = :hostname AND span = :span AND kind IN ({_ALL_KINDS}) AND period = :period",
    f"DELETE FROM rollup_durations WHERE hostname = :hostname AND span = :span AND kind IN ({_ALL_KINDS})"
    " AND period = :period",
    "DELETE FROM rollup_props WHERE hostname = :hostname AND span = :span AND period = :period",
    "DELETE FROM rollup_prop_names WHERE hostname = :hostname AND span = :span AND period = :period",
)
_FLOOR_SQL = "SELECT floor FROM raw_floor WHERE hostname = :hostname"
_INSERT_DURATIONS_SQL = "INSERT INTO rollup_durations VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
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


def pack_inline(values: Sequence[int]) -> bytes:
    """A rollup row's own durations (at most INLINE_DURATIONS), 8 bytes each."""
    return pack(values, 8)[1]


def unpack_inline(blob: bytes) -> array[int]:
    return unpack(8, blob)


# ---- site modes ---------------------------------------------------------------------------------------


def site_full(conn: sqlite3.Connection, hostname: str) -> bool:
    """Whether the site's clean hours have rows of every kind (else the site rows only: lists read raw)."""
    row = conn.execute("SELECT full FROM rollup_sites WHERE hostname = ?", (hostname,)).fetchone()
    return bool(row and row[0])


def _site_modes(conn: sqlite3.Connection, hostnames: Iterable[str]) -> dict[str, bool]:
    """Each site's mode, deciding it for a site seen the first time from its views so far."""
    modes = {}
    for hostname in hostnames:
        row = conn.execute("SELECT full FROM rollup_sites WHERE hostname = ?", (hostname,)).fetchone()
        if row is None:
            # The first rebuild of a site (a new site, an import, or after migration 12): by its rows so far.
            count = conn.execute(
                f"SELECT COUNT(*) FROM (SELECT 1 FROM views WHERE hostname = ? LIMIT {SMALL_SITE_VIEWS})", (hostname,)
            ).fetchone()[0]
            full = count >= SMALL_SITE_VIEWS
            conn.execute("INSERT INTO rollup_sites VALUES (?, 0, ?)", (hostname, int(full)))
            modes[hostname] = full
        else:
            modes[hostname] = bool(row[0])
    return modes


def _grow_sites(conn: sqlite3.Connection, hostnames: Iterable[str]) -> None:
    """Small sites that reached SMALL_SITE_VIEWS keep every kind from now on: all their hours are rebuilt."""
    for hostname in hostnames:
        row = conn.execute("SELECT views, full FROM rollup_sites WHERE hostname = ?", (hostname,)).fetchone()
        if row is not None and not row[1] and row[0] >= SMALL_SITE_VIEWS:
            conn.execute("UPDATE rollup_sites SET full = 1 WHERE hostname = ?", (hostname,))
            conn.execute(
                f"INSERT OR IGNORE INTO rollup_dirty SELECT DISTINCT hostname, date_created / {HOUR_MS}"
                " FROM views WHERE hostname = ?",
                (hostname,),
            )


def keep_every_kind(conn: sqlite3.Connection, hostname: str) -> bool:
    """Make a small site keep rows of every kind, as if it had grown (store/sqlite/retention.py: its lists must
    not need raw rows that are to go); True when its hours now wait to be rebuilt, False when it already did."""
    if site_full(conn, hostname):
        return False
    views = conn.execute("SELECT views FROM rollup_sites WHERE hostname = ?", (hostname,)).fetchone()
    conn.execute("INSERT OR REPLACE INTO rollup_sites VALUES (?, ?, 1)", (hostname, views[0] if views else 0))
    conn.execute(
        f"INSERT OR IGNORE INTO rollup_dirty SELECT DISTINCT hostname, date_created / {HOUR_MS}"
        " FROM views WHERE hostname = ?",
        (hostname,),
    )
    return True


# ---- rebuilding hours ---------------------------------------------------------------------------------


def refresh(conn: sqlite3.Connection, now_ms: int, limit: int = 10**9) -> int:
    """Rebuild the closed dirty hours (up to about `limit` views), then build every block that is due;
    return the hours rebuilt. Tests and benches call this; the server takes the steps one writer call
    at a time (api/stats.py)."""
    hours = 0
    while hours < limit:
        done = refresh_hours(conn, now_ms)
        hours += done
        if not done:
            break
    while build_blocks(conn, now_ms):
        pass
    return hours


def refresh_hours(conn: sqlite3.Connection, now_ms: int, views: int | None = None) -> int:
    """Rebuild one batch of closed dirty hours, oldest first across sites, holding about `views` views
    (REFRESH_BATCH_VIEWS unless given; at least one hour); return how many hours were rebuilt."""
    now_hour = now_ms // HOUR_MS
    views = REFRESH_BATCH_VIEWS if views is None else views
    with Transaction(conn):
        pairs = conn.execute(_DIRTY_CLOSED_SQL, {"now_hour": now_hour, "limit": REFRESH_BATCH_PAIRS}).fetchall()
        if not pairs:
            return 0
        _temp_tables(conn)
        chosen: list[tuple[str, int]] = []
        total = 0
        for hostname, hour in pairs:  # counted one by one, up to the batch's views
            bounds = {"hostname": hostname, "lo": hour * HOUR_MS, "hi": (hour + 1) * HOUR_MS - 1}
            count = conn.execute(_PAIR_VIEWS_SQL, bounds).fetchone()[0]
            if chosen and total + count > views:
                break
            chosen.append((hostname, hour))
            total += count
        modes = _site_modes(conn, {hostname for hostname, _ in chosen})
        conn.executemany(
            "INSERT INTO temp.refresh_pairs VALUES (?, ?, ?)",
            [(hostname, hour, int(modes[hostname])) for hostname, hour in chosen],
        )
        _rebuild_batch(conn, chosen)
        _grow_sites(conn, modes)
        for table in ("refresh_pairs", "refresh_new", "refresh_promote", "refresh_views"):
            conn.execute(f"DELETE FROM temp.{table}")
    return len(chosen)


def _temp_tables(conn: sqlite3.Connection) -> None:
    conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS refresh_pairs (hostname TEXT NOT NULL, hour INTEGER NOT NULL,"
        " full INTEGER NOT NULL, PRIMARY KEY (hostname, hour)) WITHOUT ROWID"
    )
    conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS refresh_new (hostname TEXT NOT NULL, hour INTEGER NOT NULL,"
        " kind INTEGER NOT NULL, value TEXT NOT NULL,"
        + ", ".join(f"{name} INTEGER NOT NULL" for name in COUNT_NAMES.split(", "))
        + ", durations BLOB, PRIMARY KEY (hostname, hour, kind, value)) WITHOUT ROWID"
    )
    conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS refresh_promote (hostname TEXT NOT NULL, kind INTEGER NOT NULL,"
        " value TEXT NOT NULL, PRIMARY KEY (hostname, kind, value)) WITHOUT ROWID"
    )
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS refresh_views AS SELECT *, 0 AS hour, 0 AS full FROM views WHERE 0")


def _rebuild_batch(conn: sqlite3.Connection, pairs: list[tuple[str, int]]) -> None:
    """Rebuild the hours of temp.refresh_pairs from their raw rows (inside the caller's transaction)."""
    old_views = dict(conn.execute(_OLD_SITE_VIEWS_SQL).fetchall())
    for hostname, hour in conn.execute(_HAD_ROWS_SQL).fetchall():
        for sql in _DELETE_HOUR_SQL:
            conn.execute(sql, {"hostname": hostname, "hour": hour})
    conn.execute(_BATCH_VIEWS_SQL)
    for sql in _BATCH_GROUPS_SQL.values():
        conn.execute(sql, {"rare": RARE_VIEWS})
    conn.execute(_PROMOTE_SQL, {"rare": RARE_VIEWS})
    conn.execute("INSERT INTO rollup_common SELECT * FROM temp.refresh_promote")
    _move_promoted(conn)
    # Durations: each new row's own when few (a rare row's always), else a rollup_durations row (common
    # rows of kinds 0 and 1).
    inline: list[tuple[object, ...]] = []
    most = max(INLINE_DURATIONS, RARE_VIEWS)
    for (hostname, hour, kind, value), rows in groupby(conn.execute(_BATCH_DURATIONS_SQL), key=itemgetter(0, 1, 2, 3)):
        values = [row[4] for row in rows]
        if len(values) <= most:
            inline.append((pack_inline(values), hostname, hour, kind, value))
            if len(inline) >= WRITE_CHUNK:
                conn.executemany(_SET_INLINE_SQL, inline)
                inline.clear()
        else:
            conn.execute(_INSERT_DURATIONS_SQL, _durations_row(hostname, HOUR, hour, kind, value, values))
    conn.executemany(_SET_INLINE_SQL, inline)
    texts = conn.execute(_RARE_DURATIONS_SQL).fetchall()
    conn.executemany(_SET_INLINE_SQL, [(pack_inline(sorted(map(int, text.split(",")))), *key) for *key, text in texts])
    conn.execute(_INSERT_COMMON_SQL)
    conn.execute(_INSERT_RARE_SQL)
    _rebuild_props(conn, pairs)
    new_views = conn.execute(
        "SELECT hostname, SUM(pageviews) FROM temp.refresh_new WHERE kind = 0 GROUP BY hostname"
    ).fetchall()
    deltas = {hostname: views - old_views.get(hostname, 0) for hostname, views in new_views}
    for hostname, views in old_views.items():
        deltas.setdefault(hostname, -views)
    conn.executemany(
        "UPDATE rollup_sites SET views = views + ? WHERE hostname = ?", [(d, h) for h, d in deltas.items()]
    )
    conn.executemany("DELETE FROM rollup_dirty WHERE hostname = ? AND hour = ?", pairs)
    days = {(hostname, hour // DAY) for hostname, hour in pairs}
    for hostname, day in days:
        columns.drop_day(conn, hostname, day)
    blocks = {(hostname, span, hour // span) for hostname, hour in pairs for span in SPANS[1:]}
    conn.executemany("DELETE FROM rollup_built WHERE hostname = ? AND span = ? AND period = ?", blocks)
    conn.executemany("INSERT OR IGNORE INTO rollup_todo VALUES (?, ?, ?)", blocks)


def _move_promoted(conn: sqlite3.Connection) -> None:
    """Move the rare rows of values just promoted (temp.refresh_promote) to `rollup`: their hour rows, and
    their counts into the built blocks that hold those hours (a rare value has no block rows)."""
    moved = conn.execute(_MOVED_SQL).fetchall()
    if not moved:
        return
    hour_rows: list[tuple[object, ...]] = []
    # Whether each (site, span, period) is built, looked up once: a batch right after an import moves
    # ~80k rare rows into blocks none of which is built yet (317k lookups, one per row and span, before).
    built: dict[tuple[str, int, int], bool] = {}
    blocks: dict[tuple[str, int, int, int, str], tuple[Group, list[int]]] = {}
    for hostname, kind, hour, value, *counts, durations in moved:
        hour_rows.append((hostname, HOUR, kind, hour, value, *counts, durations if kind in DURATION_KINDS else None))
        for span in SPANS[1:]:
            block = (hostname, span, hour // span)
            is_built = built.get(block)
            if is_built is None:
                is_built = built[block] = conn.execute(_BLOCK_BUILT_SQL, block).fetchone() is not None
            if not is_built:
                continue
            group, values = blocks.setdefault((hostname, span, kind, hour // span, value), (Group(), []))
            group.add(Group(*counts))
            if _keeps_runs(span, kind) and durations is not None:
                values.extend(unpack_inline(durations))
    conn.executemany(f"INSERT INTO rollup VALUES ({', '.join('?' * 16)})", hour_rows)
    patches = []
    for (hostname, span, kind, period, value), (group, values) in blocks.items():
        inline = pack_inline(sorted(values)) if values else None
        patches.append((hostname, span, kind, period, value, *group.counts(), inline))
    conn.executemany(f"INSERT INTO rollup VALUES ({', '.join('?' * 16)})", patches)
    conn.execute(
        "DELETE FROM rollup_rare INDEXED BY rollup_rare_value WHERE (hostname, kind, value) IN"
        " (SELECT hostname, kind, value FROM temp.refresh_promote)"
    )


_BLOCK_BUILT_SQL = "SELECT 1 FROM rollup_built WHERE hostname = ? AND span = ? AND period = ?"


def _keeps_runs(span: int, kind: int) -> bool:
    """Whether rows of `span` and `kind` keep the group's durations: the site's and pages' at RUN_SPANS,
    the other kinds' for days."""
    return span in RUN_SPANS and kind in DURATION_KINDS or span == DAY and kind in DAY_RUN_KINDS


def _rebuild_props(conn: sqlite3.Connection, pairs: list[tuple[str, int]]) -> None:
    """Custom event counts (per name and value, and per name) of the batch's hours, each hour's events read once."""
    hours = sorted({hour for _, hour in pairs})
    rows: list[tuple[object, ...]] = []
    for first, last in merge([(hour, hour) for hour in hours]):
        bounds = {"lo": first * HOUR_MS, "hi": (last + 1) * HOUR_MS - 1}
        rows += [
            (hostname, HOUR, hour, name, value, n)
            for hostname, hour, name, value, n in conn.execute(_BATCH_PROPS_SQL, bounds)
        ]
    conn.executemany("INSERT INTO rollup_props VALUES (?, ?, ?, ?, ?, ?)", rows)
    names: Counter[tuple[object, object, object]] = Counter()
    for hostname, _, hour, name, _, n in rows:
        names[(hostname, hour, name)] += int(n)  # type: ignore[call-overload]
    conn.executemany(
        "INSERT INTO rollup_prop_names VALUES (?, ?, ?, ?, ?)",
        [(hostname, HOUR, hour, name, n) for (hostname, hour, name), n in names.items()],
    )


def _durations_row(
    hostname: str, span: int, period: int, kind: int, value: str, values: Sequence[int]
) -> tuple[object, ...]:
    """A rollup_durations row: the sorted values packed, and every SAMPLE_STEP-th one packed apart."""
    width, blob = pack(values)
    _, samples = pack(values[SAMPLE_STEP - 1 :: SAMPLE_STEP], width)
    return (hostname, span, kind, period, value, len(values), width, samples, blob)


# ---- building blocks ----------------------------------------------------------------------------------


# Closed queued blocks that are not to be built now: fewer than :least views in their hours, or a dirty
# hour (rebuilding it queues the block again).
_TODO_DROPPED_SQL = f"""
    SELECT t.hostname, t.span, t.period FROM rollup_todo t WHERE (t.period + 1) * t.span <= :now
    AND ((SELECT ifnull(SUM(r.pageviews), 0) FROM rollup r WHERE r.hostname = t.hostname AND r.span = {HOUR}
            AND r.kind = 0 AND r.period BETWEEN t.period * t.span AND t.period * t.span + t.span - 1) < :least
        OR EXISTS (SELECT 1 FROM rollup_dirty d WHERE d.hostname = t.hostname
            AND d.hour BETWEEN t.period * t.span AND t.period * t.span + t.span - 1))
    LIMIT :n"""


def build_blocks(conn: sqlite3.Connection, now_ms: int, limit: int | None = None) -> int:
    """Build up to `limit` queued blocks that are closed and clean, smallest spans first; drop from the
    queue those that hold too few views or dirty hours (rebuilding those hours queues them again).
    Returns how many queued blocks were settled (built or dropped); 0 when none is due."""
    now_hour = now_ms // HOUR_MS
    limit = BLOCKS_PER_CALL if limit is None else limit
    with Transaction(conn):  # most queued blocks of small sites hold too few views: dropped in bulk
        params = {"now": now_hour, "least": MIN_BLOCK_VIEWS, "n": DROPS_PER_CALL}
        dropped = conn.execute(_TODO_DROPPED_SQL, params).fetchall()
        conn.executemany("DELETE FROM rollup_todo WHERE hostname = ? AND span = ? AND period = ?", dropped)
    if dropped:
        return len(dropped)
    due = conn.execute(
        "SELECT hostname, span, period FROM rollup_todo WHERE (period + 1) * span <= :now"
        " ORDER BY span, period LIMIT :n",
        {"now": now_hour, "n": limit},
    ).fetchall()
    for hostname, span, period in due:
        with Transaction(conn):
            conn.execute(
                "DELETE FROM rollup_todo WHERE hostname = ? AND span = ? AND period = ?", (hostname, span, period)
            )
            first, last = period * span, period * span + span - 1
            if dirty_hours(conn, hostname, first, last):
                continue  # rebuilding the dirty hours queues the block again
            pieces = plan(conn, hostname, first * HOUR_MS, (last + 1) * HOUR_MS - 1, [s for s in SPANS if s < span])
            assert not pieces.raw, "a clean block's hours are all rolled up"
            if pieces.pieces and _views(conn, hostname, pieces) >= MIN_BLOCK_VIEWS:
                _build_block(conn, hostname, span, period, pieces)
    return len(due)


def build_day_now(conn: sqlite3.Connection, hostname: str, day: int) -> None:
    """Build a closed, clean UTC day's block now, whatever its views (store/sqlite/retention.py: its raw rows are
    to go, and the block's copy and day runs are read from them), and take it off the queue."""
    conn.execute("DELETE FROM rollup_todo WHERE hostname = ? AND span = ? AND period = ?", (hostname, DAY, day))
    if conn.execute(_BUILT_SQL, {"hostname": hostname, "span": DAY, "lo": day, "hi": day}).fetchone():
        return
    pieces = plan(conn, hostname, day * DAY_MS, (day + 1) * DAY_MS - 1, [s for s in SPANS if s < DAY])
    assert not pieces.raw, "a clean day's hours are all rolled up"
    if pieces.pieces:
        _build_block(conn, hostname, DAY, day, pieces)


def _views(conn: sqlite3.Connection, hostname: str, the_plan: Plan) -> int:
    params: dict[str, object] = {"hostname": hostname}
    pieces = _union(the_plan, "SELECT pageviews FROM rollup WHERE hostname = :hostname AND kind = 0", params)
    return int(conn.execute(f"SELECT ifnull(SUM(pageviews), 0) FROM ({pieces})", params).fetchone()[0])


def _build_block(conn: sqlite3.Connection, hostname: str, span: int, period: int, pieces: Plan) -> None:
    """A block's rows summed from the pieces inside it (the largest built blocks, then hours)."""
    key = {"hostname": hostname, "span": span, "period": period}
    for sql in _DELETE_BLOCK_SQL:
        conn.execute(sql, key)
    params: dict[str, object] = dict(key)
    rows = _union(pieces, f"SELECT * FROM rollup WHERE hostname = :hostname AND kind IN ({_ALL_KINDS})", params)
    conn.execute(
        f"INSERT INTO rollup SELECT :hostname, :span, kind, :period, value, {SUMS}, NULL FROM ({rows})"
        " GROUP BY kind, value",
        params,
    )
    params = dict(key)
    rows = _union(pieces, "SELECT * FROM rollup_props WHERE hostname = :hostname", params)
    conn.execute(
        f"INSERT INTO rollup_props SELECT :hostname, :span, :period, name, value, SUM(events) FROM ({rows})"
        " GROUP BY name, value",
        params,
    )
    params = dict(key)
    rows = _union(pieces, "SELECT * FROM rollup_prop_names WHERE hostname = :hostname", params)
    conn.execute(
        f"INSERT INTO rollup_prop_names SELECT :hostname, :span, :period, name, SUM(events) FROM ({rows})"
        " GROUP BY name",
        params,
    )
    if span in RUN_SPANS:
        for kind in DURATION_KINDS:
            _merge_block_runs(conn, hostname, span, period, kind, pieces)
    if span == DAY:
        # The copy reads the day's views in duration order: it hands over every dimension's runs.
        columns.build_day(conn, hostname, period, runs=lambda name, runs: _day_runs(conn, hostname, period, name, runs))
    conn.execute("INSERT OR IGNORE INTO rollup_built VALUES (?, ?, ?)", (hostname, span, period))


_SET_BLOCK_INLINE_SQL = (
    "UPDATE rollup SET durations = ? WHERE hostname = ? AND span = ? AND kind = ? AND period = ? AND value = ?"
)


def _merge_block_runs(conn: sqlite3.Connection, hostname: str, span: int, period: int, kind: int, pieces: Plan) -> None:
    """Each value's durations in the block: the merge of its runs in the pieces (inline or stored)."""
    params: dict[str, object] = {"hostname": hostname, "kind": kind}
    inline = _union(
        pieces,
        "SELECT value, durations FROM rollup WHERE hostname = :hostname AND kind = :kind AND durations NOT NULL",
        params,
    )
    stored = _union(
        pieces,
        "SELECT value, rowid, count, width FROM rollup_durations WHERE hostname = :hostname AND kind = :kind",
        params,
    )

    def values() -> Iterator[tuple[str, list[tuple[int, int, int] | bytes]]]:
        small = conn.execute(f"SELECT * FROM ({inline}) ORDER BY 1", params)
        large = conn.execute(f"SELECT * FROM ({stored}) ORDER BY 1", params)
        merged = heapq.merge(
            ((value, blob) for value, blob in small),
            ((value, (rowid, count, width)) for value, rowid, count, width in large),
            key=itemgetter(0),
        )
        for value, parts in groupby(merged, key=itemgetter(0)):
            yield value, [part for _, part in parts]

    updates = []
    for value, parts in values():
        count = sum(len(part) // 8 if isinstance(part, bytes) else part[1] for part in parts)
        if count <= INLINE_DURATIONS:
            durations = sorted(chain.from_iterable(_part_values(conn, part) for part in parts))
            updates.append((pack_inline(durations), hostname, span, kind, period, value))
            if len(updates) >= WRITE_CHUNK:  # a long tail's block has a row per common value: not all held
                conn.executemany(_SET_BLOCK_INLINE_SQL, updates)
                updates.clear()
        elif count <= MERGE_IN_MEMORY:
            durations = sorted(chain.from_iterable(_part_values(conn, part) for part in parts))
            conn.execute(_INSERT_DURATIONS_SQL, _durations_row(hostname, span, period, kind, value, durations))
        else:
            _stream_run(conn, (hostname, span, kind, period, value), parts, count)
    conn.executemany(_SET_BLOCK_INLINE_SQL, updates)


def _part_values(conn: sqlite3.Connection, part: tuple[int, int, int] | bytes) -> Sequence[int]:
    if isinstance(part, bytes):
        return unpack_inline(part)
    rowid, count, width = part
    return unpack(width, read_blob(conn, "rollup_durations", "durations", rowid, 0, count * width))


def _part_iter(conn: sqlite3.Connection, part: tuple[int, int, int] | bytes) -> Iterator[int]:
    """A part's values, read MERGE_CHUNK at a time."""
    if isinstance(part, bytes):
        yield from unpack_inline(part)
        return
    rowid, count, width = part
    for start in range(0, count, MERGE_CHUNK):
        size = min(MERGE_CHUNK, count - start) * width
        yield from unpack(width, read_blob(conn, "rollup_durations", "durations", rowid, start * width, size))


def _part_last(conn: sqlite3.Connection, part: tuple[int, int, int] | bytes) -> int:
    """A part's largest (last) value."""
    if isinstance(part, bytes):
        return unpack_inline(part)[-1]
    rowid, count, width = part
    return unpack(width, read_blob(conn, "rollup_durations", "durations", rowid, (count - 1) * width, width))[0]


def _stream_run(
    conn: sqlite3.Connection, key: tuple[str, int, int, int, str], parts: list[tuple[int, int, int] | bytes], count: int
) -> None:
    """Store the merge of sorted `parts` (`count` values in all) as a rollup_durations row, MERGE_CHUNK
    values at a time: a busy site's 8 days (~2 M values) never sit in memory as Python ints. Python 3.11+
    writes the blob in place; 3.10 (no incremental blob I/O) gathers the packed bytes first (4 bytes a
    value: 8 MB for those 8 days)."""
    width = 4 if max(_part_last(conn, part) for part in parts) < 1 << 32 else 8
    samples: array[int] = array("I" if width == 4 else "Q")
    merged = heapq.merge(*(_part_iter(conn, part) for part in parts))
    chunks = (array(samples.typecode, islice(merged, MERGE_CHUNK)) for _ in range(-(-count // MERGE_CHUNK)))
    if sys.version_info < (3, 11):
        gathered = bytearray()
        written = 0
        for chunk in chunks:
            gathered += _packed_chunk(chunk, samples, written)
            written += len(chunk)
        _, packed_samples = pack(samples, width)
        conn.execute(_INSERT_DURATIONS_SQL, (*key, count, width, packed_samples, bytes(gathered)))
        return
    # The samples are written in place too: an UPDATE of the row rewrites its whole record, and SQLite then
    # held the run twice (a busy site's 8 days: 7.5 MB of durations, 13 MB of SQLite's heap at once).
    cursor = conn.execute(
        "INSERT INTO rollup_durations VALUES (?, ?, ?, ?, ?, ?, ?, zeroblob(?), zeroblob(?))",
        (*key, count, width, count // SAMPLE_STEP * width, count * width),
    )
    rowid = cursor.lastrowid
    assert rowid is not None
    written = 0
    with conn.blobopen("rollup_durations", "durations", rowid) as blob:
        for chunk in chunks:
            blob.write(_packed_chunk(chunk, samples, written))
            written += len(chunk)
    if len(samples) != count // SAMPLE_STEP:  # every SAMPLE_STEP-th of `count` values
        raise RuntimeError(f"{len(samples)} samples of {count} values")
    with conn.blobopen("rollup_durations", "samples", rowid) as blob:
        blob.write(pack(samples, width)[1])


def _packed_chunk(chunk: array[int], samples: array[int], written: int) -> bytes:
    """`chunk` (the values from position `written` on) packed little-endian, its every SAMPLE_STEP-th
    value (counted from the run's start) added to `samples`."""
    first = (-(written + 1)) % SAMPLE_STEP  # index in chunk of the next sampled position
    samples.extend(chunk[first::SAMPLE_STEP])
    if sys.byteorder == "big":
        chunk.byteswap()
    return chunk.tobytes()


def _day_runs(conn: sqlite3.Connection, hostname: str, day: int, name: str, runs: dict[str, array[int]]) -> None:
    """Store a day's durations per value of column `name` (if a kind of DAY_RUN_KINDS) for the rows the
    day block has (common values)."""
    kinds = [kind for kind in DAY_RUN_KINDS if columns.KIND_COLUMNS[kind] == name]
    if not kinds:
        return
    kind = kinds[0]
    inline = []
    for value, durations in runs.items():
        if len(durations) <= INLINE_DURATIONS:
            inline.append((pack_inline(durations), hostname, DAY, kind, day, value))
            if len(inline) >= WRITE_CHUNK:
                conn.executemany(_SET_BLOCK_INLINE_SQL, inline)
                inline.clear()
        elif conn.execute(
            "SELECT 1 FROM rollup WHERE hostname = ? AND span = ? AND kind = ? AND period = ? AND value = ?",
            (hostname, DAY, kind, day, value),
        ).fetchone():
            conn.execute(_INSERT_DURATIONS_SQL, _durations_row(hostname, DAY, day, kind, value, durations))
    conn.executemany(_SET_BLOCK_INLINE_SQL, inline)


def pending(conn: sqlite3.Connection, now_ms: int) -> dict[str, int]:
    """The background work waiting: closed dirty hours, closed queued blocks, built days without a copy."""
    now_hour = now_ms // HOUR_MS
    hours = conn.execute("SELECT COUNT(*) FROM rollup_dirty WHERE hour < ?", (now_hour,)).fetchone()[0]
    blocks = conn.execute("SELECT COUNT(*) FROM rollup_todo WHERE (period + 1) * span <= ?", (now_hour,)).fetchone()[0]
    return {"hours": int(hours), "blocks": int(blocks), "copies": int(columns.has_missing(conn))}


def site_pending(conn: sqlite3.Connection, hostname: str, now_ms: int) -> dict[str, int]:
    """One site's waiting work: closed dirty hours (read raw until rebuilt) and closed queued blocks."""
    now_hour = now_ms // HOUR_MS
    params = {"hostname": hostname, "now": now_hour}
    hours = conn.execute("SELECT COUNT(*) FROM rollup_dirty WHERE hostname = :hostname AND hour < :now", params)
    count = int(hours.fetchone()[0])
    blocks = conn.execute(
        "SELECT COUNT(*) FROM rollup_todo WHERE hostname = :hostname AND (period + 1) * span <= :now", params
    )
    return {"hours": count, "blocks": int(blocks.fetchone()[0])}


# ---- planning -----------------------------------------------------------------------------------------


@dataclass
class Plan:
    """A time range cut into pieces: (span, first period, last period) read from rollups, ms ranges read raw."""

    pieces: list[tuple[int, int, int]] = field(default_factory=list)
    raw: list[tuple[int, int]] = field(default_factory=list)  # inclusive Unix-ms ranges

    def hours(self) -> list[tuple[int, int]]:
        """The hours the pieces cover, as inclusive (first, last) ranges."""
        return merge([(lo * span, (hi + 1) * span - 1) for span, lo, hi in self.pieces])


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
    result.raw, hours = whole_hours(conn, hostname, start, end, whole_days=True)
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
    conn: sqlite3.Connection, hostname: str, start: int | None, end: int | None, whole_days: bool = False
) -> tuple[list[tuple[int, int]], tuple[int, int] | None]:
    """The partial hours at the ends of [start, end] (inclusive Unix ms; None = unbounded), to read raw,
    and the first and last whole hour inside it that the site's rows can be in (None: none). With
    `whole_days`, the site's first and last UTC days count whole (within the range), so that those days'
    blocks fit: after retention a day's raw rows are gone and only its block knows all of it."""
    raw: list[tuple[int, int]] = []
    first = None if start is None else -(-start // HOUR_MS)  # first whole hour
    last = None if end is None else (end + 1) // HOUR_MS - 1  # last whole hour
    if whole_days:
        first, last = _purged_edges(conn, hostname, start, end, first, last)
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
    if whole_days:
        low, high = low // DAY * DAY, (high // DAY + 1) * DAY - 1
    first = low if first is None else max(first, low)  # no row lies outside the site's data hours
    last = high if last is None else min(last, high)
    return raw, None if first > last else (first, last)


def _purged_edges(
    conn: sqlite3.Connection, hostname: str, start: int | None, end: int | None, first: int | None, last: int | None
) -> tuple[int | None, int | None]:
    """The whole hours of [start, end] once the partial hours at its ends that retention purged are settled.

    Below the site's raw floor only the hours' rollups are left, and a partial hour read raw would count
    nothing. There the hour counts in the range that holds its last millisecond: whole when the range
    reaches the hour's end, not at all when it stops inside it. That is what the raw rows gave, unless a
    view lay on the cut millisecond itself. It matters for the previous period of /summary, which starts
    a microsecond after a midnight and so read its first hour raw: after a purge it lost that hour's
    views. Adjacent ranges still share no hour, and `last` needs no change."""
    row = conn.execute(_FLOOR_SQL, {"hostname": hostname}).fetchone()
    if row is None:
        return first, last
    floor_hour = int(row[0]) // HOUR_MS  # the floor is a whole hour (store/sqlite/retention.py)
    reaches_its_end = end is None or (first is not None and end >= first * HOUR_MS - 1)
    if start is not None and first is not None and start < first * HOUR_MS <= floor_hour * HOUR_MS and reaches_its_end:
        first -= 1  # the range reaches the end of the purged hour it starts in: that hour counts whole
    return first, last  # a purged partial hour at the end is read raw, and so counts nothing


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


def _union(the_plan: Plan, select: str, params: dict[str, object], seek: bool = False) -> str:
    """`select` (ending in a WHERE clause) once per piece of the plan, its span and periods bound, UNION ALL.

    With `seek` (a `select` naming a few values), each period is named, so SQLite seeks every
    (period, value) pair instead of reading the pieces' rows of every value (an 8-day block of a
    long tail holds tens of thousands)."""
    parts = []
    for i, (span, lo, hi) in enumerate(the_plan.pieces):
        if seek:
            periods = ", ".join(str(int(period)) for period in range(lo, hi + 1))
            parts.append(f"{select} AND span = {int(span)} AND period IN ({periods})")
            continue
        params.update({f"s{i}": span, f"lo{i}": lo, f"hi{i}": hi})
        parts.append(f"{select} AND span = :s{i} AND period BETWEEN :lo{i} AND :hi{i}")
    return " UNION ALL ".join(parts)


def union(the_plan: Plan, select: str, params: dict[str, object], seek: bool = False) -> str:
    """`_union` for readers elsewhere in the store (a piece's rows of `select`, UNION ALL)."""
    return _union(the_plan, select, params, seek)


def rare_union(the_plan: Plan, select: str, params: dict[str, object], seek: bool = False) -> str:
    """`select` over `rollup_rare r` (ending in a WHERE clause) once per range of hours the plan's pieces
    cover, UNION ALL: the rare values' rows of the range's clean hours. With `seek` (a `select` naming
    a few values), the rows are found by value (a 30-day range holds a long tail's rare rows)."""
    table = "rollup_rare r INDEXED BY rollup_rare_value" if seek else "rollup_rare r"
    select = select.replace("{rare}", table)
    parts = []
    for i, (lo, hi) in enumerate(the_plan.hours()):
        params.update({f"rlo{i}": lo, f"rhi{i}": hi})
        parts.append(f"{select} AND hour BETWEEN :rlo{i} AND :rhi{i}")
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
    """The additive aggregates per common value of `kind` over the plan's rollup pieces (all values for kind 0).

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
    conn: sqlite3.Connection, hostname: str, kind: int, the_plan: Plan, values: Iterable[str], rare: bool = False
) -> dict[str, Runs]:
    """Sorted duration runs of `values` of `kind` over the plan's pieces (RUN_SPANS; days only for DAY_RUN_KINDS):
    the rows' own durations and the stored runs; with `rare`, the rare rows' of the hours the pieces cover too."""
    runs: dict[str, Runs] = {}
    if not the_plan.pieces:
        return runs
    values = list(values)
    params: dict[str, object] = {"hostname": hostname, "kind": kind, "inline": INLINE_RUN}
    in_values = bind_values(params, values)
    where = f"WHERE hostname = :hostname AND kind = :kind AND value IN ({in_values})"
    sql = _union(the_plan, f"SELECT value, {_RUN_COLUMNS} FROM rollup_durations {where}", params, seek=True)
    for value, *row in conn.execute(sql, params):
        runs.setdefault(value, []).append(stored_run(conn, *row))
    sql = _union(the_plan, f"SELECT value, durations FROM rollup {where} AND durations NOT NULL", params, seek=True)
    if rare:
        select = f"SELECT value, durations FROM {{rare}} {where}"
        sql += " UNION ALL " + rare_union(the_plan, select, params, seek=True)
    for value, blob in conn.execute(sql, params):
        if blob is not None:
            runs.setdefault(value, []).append(Run.of(unpack_inline(blob)))
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
        for period, *counts, inline in conn.execute(
            f"SELECT period, {COUNT_NAMES}, durations FROM rollup {where}", params
        ):
            groups[period] = Group(*counts)
            if inline is not None:
                runs[period] = Run.of(unpack_inline(inline))
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
