"""Write tracker hits to the analytics database in batches, and count the hits dropped.

The unit of work is an `Op`: a new page view (with its custom properties), a
duration for the views of a beacon id, a set of custom events, or one dropped
hit. `apply_batch` writes a list of them in one transaction, a few multi-row
INSERTs for the views and events and a few multi-row UPDATEs for the
durations, which is what makes ingestion fast; the batch also adds its page views and custom
events to each site's count for the day (`site_hits`, the quota's). Every
statement is idempotent or additive (a repeated (bid, hostname) view is
ignored by `ON CONFLICT DO NOTHING`), so no well-formed row can abort a batch;
if a batch fails anyway it is retried op by op, each under its own savepoint,
so one bad op fails alone and the others still commit.
"""

from __future__ import annotations

import functools
import itertools
import operator
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Final, cast

from medama_core.store.rows import EVENT_COLUMNS, VIEW_COLUMNS, DropCount, Duration, NewEvents, NewView, Op, Row
from medama_core.store.sqlite import marking
from medama_core.store.sqlite.db import Transaction

__all__ = [
    "EVENT_COLUMNS",
    "TRACKED_VIEW_COLUMNS",
    "VIEW_COLUMNS",
    "DropCount",
    "Duration",
    "NewEvents",
    "NewView",
    "Op",
    "apply_batch",
    "drop_counts",
    "event_row",
    "site_hits_on",
    "insert_sql",
    "view_row",
]

# The hot path binds rows by position: with the GIL held, binding 18 named parameters from a
# dict measured twice the cost of binding a tuple (~4 µs more per row on the 2-core target),
# time the event loop waits for. The column lists above fix the positions.
_TABLE_COLUMNS: Final = {"views": VIEW_COLUMNS, "events": EVENT_COLUMNS}


def insert_sql(table: str, rows: int = 1) -> str:
    """INSERT of `rows` rows into `views` or `events`, values by position in the column order above.

    A (bid, hostname) pair is one page view: a repeated beacon (or imported row) is ignored, never an error.
    """
    columns = _TABLE_COLUMNS[table]
    values = ", ".join([f"({', '.join('?' * len(columns))})"] * rows)
    conflict = " ON CONFLICT (bid, hostname) DO NOTHING" if table == "views" else ""
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES {values}{conflict}"


INSERT_VIEW: Final = insert_sql("views")
# The tracker's views also carry the path of an internal referrer (analytics migration 13), which
# export, import and the bulk copies do not know: '' (the column's default) for every row they write.
TRACKED_VIEW_COLUMNS: Final = (*VIEW_COLUMNS, "referrer_path")


# A multi-row INSERT that may stop part-way (a NOT NULL column given NULL: the default conflict resolution,
# ABORT) makes SQLite keep a statement journal of every page it changes, to undo its own rows alone; past
# 64 KiB (16 pages: a chunk of views touches more) that journal goes to a temporary file, created, written
# and deleted: about one tracker batch in two did, ~40 writes and ~113 KB a batch (strace, branch hot6w). A batch
# needs none: any error rolls the whole transaction back and the ops are replayed one by one. So its
# statements say OR FAIL (a failing row stops the statement with the same error and leaves the rows before it,
# which the rollback takes), and the replay, where each op has a savepoint of its own, keeps the plain ones.
# (OR FAIL would override the conflict clause of a trigger's statements too; these tables have no insert
# trigger since analytics migration 17. The upsert on (bid, hostname) keeps its DO NOTHING.)
WHOLE_BATCH: Final = "INSERT OR FAIL INTO"
ONE_OP: Final = "INSERT INTO"


@functools.cache
def _insert_tracked_views_sql(rows: int, columns: tuple[str, ...] = TRACKED_VIEW_COLUMNS, verb: str = ONE_OP) -> str:
    """INSERT of `rows` tracker views, values by position in `columns` order (a repeated (bid, hostname) is
    ignored, as by `insert_sql`); `verb` WHOLE_BATCH or ONE_OP (above)."""
    values = ", ".join([f"({', '.join('?' * len(columns))})"] * rows)
    return f"{verb} views ({', '.join(columns)}) VALUES {values} ON CONFLICT (bid, hostname) DO NOTHING"


# A tracker's new view has no duration yet. Python's sqlite3 runs every parameter that is not exactly an int,
# float, str or bytearray through its adapter lookup (~3,300 instructions each, with the GIL held): a view's
# two booleans and its NULL duration were ~10,000 of the ~75,000 a load row cost the writer thread. So a batch
# whose views all lack a duration binds them without that column (NULL, its default, all the same) and with
# the booleans as the integers SQLite stores for them anyway. The flags go last, after the row's other values
# taken in one C call (`_untimed_values`), so a row is two tuples joined, not sliced three times and rebuilt.
_FLAG_COLUMNS: Final = ("is_unique_user", "is_unique_page")
_UNTIMED_KEPT: Final = tuple(
    i for i, column in enumerate(VIEW_COLUMNS) if column not in (*_FLAG_COLUMNS, "duration_ms")
)
_untimed_values: Final = operator.itemgetter(*_UNTIMED_KEPT)
_UNTIMED_VIEW_COLUMNS: Final = (*(VIEW_COLUMNS[i] for i in _UNTIMED_KEPT), *_FLAG_COLUMNS, "referrer_path")
_insert_untimed_views_sql: Final = functools.partial(_insert_tracked_views_sql, columns=_UNTIMED_VIEW_COLUMNS)
# Most views carry no UTM tag, and SQLite copies every bound string, '' too (~850 instructions each on the writer
# thread, with the GIL held): a batch of untimed views none of which has one binds them without the three UTM
# columns ('' is their default). Whether one has is found by a scan in C that stops at the first tagged view.
_UTM_COLUMNS: Final = ("utm_source", "utm_medium", "utm_campaign")
_utm_values: Final = operator.itemgetter(*(VIEW_COLUMNS.index(column) for column in _UTM_COLUMNS))
_view_of: Final = operator.attrgetter("view")
_UNTAGGED_KEPT: Final = tuple(i for i in _UNTIMED_KEPT if VIEW_COLUMNS[i] not in _UTM_COLUMNS)
_untagged_values: Final = operator.itemgetter(*_UNTAGGED_KEPT)
_UNTAGGED_VIEW_COLUMNS: Final = (*(VIEW_COLUMNS[i] for i in _UNTAGGED_KEPT), *_FLAG_COLUMNS, "referrer_path")
_insert_untagged_views_sql: Final = functools.partial(_insert_tracked_views_sql, columns=_UNTAGGED_VIEW_COLUMNS)
_insert_events_sql: Final = functools.cache(functools.partial(insert_sql, "events"))


@functools.cache
def _insert_batch_events_sql(rows: int) -> str:
    """`insert_sql("events", rows)` as a whole batch's statement (WHOLE_BATCH)."""
    return WHOLE_BATCH + insert_sql("events", rows).removeprefix(ONE_OP)


# The statements that insert a batch's views (full, untimed, untagged) and events, for the batch as a whole and
# for one op of the replay.
_BATCH_SQL: Final = (
    functools.partial(_insert_tracked_views_sql, verb=WHOLE_BATCH),
    functools.partial(_insert_tracked_views_sql, columns=_UNTIMED_VIEW_COLUMNS, verb=WHOLE_BATCH),
    functools.partial(_insert_tracked_views_sql, columns=_UNTAGGED_VIEW_COLUMNS, verb=WHOLE_BATCH),
    _insert_batch_events_sql,
)
_ONE_OP_SQL: Final = (
    _insert_tracked_views_sql,
    _insert_untimed_views_sql,
    _insert_untagged_views_sql,
    _insert_events_sql,
)
INSERT_TRACKED_VIEW: Final = _insert_tracked_views_sql(1)
INSERT_EVENT: Final = insert_sql("events")
ADD_DROPS: Final = (
    "INSERT INTO drops (day, hostname, reason, count) VALUES (:day, :hostname, :reason, :count)"
    " ON CONFLICT (day, hostname, reason) DO UPDATE SET count = count + excluded.count"
)

ADD_SITE_HITS: Final = (
    "INSERT INTO site_hits (day, hostname, hits) VALUES (:day, :hostname, :hits)"
    " ON CONFLICT (day, hostname) DO UPDATE SET hits = hits + excluded.hits"
)
DAY_MS: Final = 24 * 60 * 60 * 1000


# A batch's (day, site) counts up to this many go in as one statement of exactly that many rows (a batch holds
# the sites that had hits in its few ms: one for most installs, a handful for many); more, in CHUNK_SIZES. At
# most this many statements of the kind stay prepared.
SITE_COUNTS_AT_ONCE: Final = 16


@functools.cache
def _add_site_hits_sql(rows: int) -> str:
    """ADD_SITE_HITS for `rows` (day, hostname, hits) rows by position, of distinct (day, hostname)s: a batch's
    counts in one statement, as `executemany` stepped SQLite (and gave the GIL up and took it back: a thread
    switch while the event loop runs) once per row."""
    values = ", ".join(["(?, ?, ?)"] * rows)
    return (
        f"INSERT INTO site_hits (day, hostname, hits) VALUES {values}"
        " ON CONFLICT (day, hostname) DO UPDATE SET hits = hits + excluded.hits"
    )


# Positions in those rows of what a hit is counted under: its site and its time.
_VIEW_HOSTNAME, _VIEW_DATE = VIEW_COLUMNS.index("hostname"), VIEW_COLUMNS.index("date_created")
_VIEW_DURATION: Final = VIEW_COLUMNS.index("duration_ms")
_VIEW_UNIQUE_USER: Final = VIEW_COLUMNS.index("is_unique_user")
_VIEW_UNIQUE_PAGE: Final = _VIEW_UNIQUE_USER + 1  # `_untimed_rows` takes them as neighbours, before the duration
assert VIEW_COLUMNS[_VIEW_UNIQUE_PAGE] == "is_unique_page" and _VIEW_UNIQUE_PAGE < _VIEW_DURATION
_VIEW_WIDTH: Final = len(VIEW_COLUMNS)
_EVENT_GROUP, _EVENT_DATE = EVENT_COLUMNS.index("group_name"), EVENT_COLUMNS.index("date_created")

# Unloads are applied as one UPDATE … FROM (VALUES …) join per chunk of these sizes, largest first
# (84 unloads: 64 + 16 and a last chunk of 4), instead of one UPDATE per unload: measured 24 -> 12 µs per unload
# on the writer thread. Powers of two make at most one statement per size (tens of unloads: 16 + 8 + 4 + 2, not
# 16 + 4 + 4 + 4 + 1 + 1): 0.2-0.9 µs less per load+unload pair in batches of 27-30 pairs (bench: several µs a
# statement). The writer's inserts are chunked the same way: one multi-row INSERT per chunk
# instead of an `executemany` (one sqlite3_step per row, the GIL given up and taken back around each):
# 74,800 -> 66,200 instructions per load row in batches of 64 (callgrind, bench/hot_instructions.py's
# notes). 256 views bind 4,864 values, far below SQLite's 32,766.
CHUNK_SIZES: Final = (256, 128, 64, 32, 16)
# What is left under the smallest size goes in as one statement of exactly that many rows, not in powers of two:
# every statement gives the GIL up and takes it back (a thread switch each way while the event loop runs), and
# a batch of 64-127 rows took 4 statements on average in powers of two down to 1, 2.9 this way. So a kind of
# statement has 5 + 15 sizes, which Python's per-connection statement cache (128) keeps prepared for the
# tracker's kinds (untimed and untagged views, events, durations), as it did the 9 sizes before.
EXACT_CHUNK_BELOW: Final = CHUNK_SIZES[-1]


@functools.cache
def _update_durations_sql(rows: int) -> str:
    # Every view of each beacon id (hash-mode pages may share one): one join, driven by the VALUES
    # rows, each finding its views through views_bid_hostname.
    values = ", ".join(["(?, ?)"] * rows)
    return (
        "UPDATE views SET duration_ms = d.ms"
        f" FROM (SELECT column1 AS bid, column2 AS ms FROM (VALUES {values})) AS d WHERE views.bid = d.bid"
    )


def _run_chunked(conn: sqlite3.Connection, sql_for: Callable[[int], str], rows: Sequence[Row]) -> int:
    """Execute `sql_for(k)` over `rows` in chunks of CHUNK_SIZES, and the rest in one chunk of its size (fewer than
    EXACT_CHUNK_BELOW rows), each binding k rows' values in order; return
    how many rows the statements changed (SQLite's count: an upsert's ignored row is not one).

    Raises ValueError when the rows differ in length: chained, a short row and a long one would shift
    their neighbours' values into the wrong columns without any error from SQLite.
    """
    if len({len(row) for row in rows}) > 1:
        raise ValueError("rows of different lengths in one batch")
    start = changed = 0
    for size in CHUNK_SIZES:
        while len(rows) - start >= size:
            chunk = rows[start : start + size]
            changed += conn.execute(sql_for(size), list(itertools.chain.from_iterable(chunk))).rowcount
            start += size
    if rest := len(rows) - start:
        changed += conn.execute(sql_for(rest), list(itertools.chain.from_iterable(rows[start:]))).rowcount
    return changed


def view_row(values: Mapping[str, object]) -> Row:
    """A `views` row from a mapping of column names (duration_ms may be left out)."""
    return tuple(values.get(column) if column == "duration_ms" else values[column] for column in VIEW_COLUMNS)


def event_row(values: Mapping[str, object]) -> Row:
    """An `events` row from a mapping of column names."""
    return tuple(values[column] for column in EVENT_COLUMNS)


def apply_batch(conn: sqlite3.Connection, ops: Sequence[Op]) -> list[Exception | None]:
    """Write `ops` in one transaction; return, per op, None or the error that kept it out.

    Views and events are inserted before durations are set, so an unload that
    arrives in the same batch as its load still finds its row. If the fast
    path fails, the batch is rolled back and replayed op by op in arrival
    order. An error from COMMIT itself propagates: then nothing was written.
    """
    try:
        with Transaction(conn):
            # The batch's hours are marked from how many rows its INSERTs took (`marking.mark_inserted`), not
            # from the largest rowids read before them: one statement fewer a batch.
            marking.mark_inserted(conn, *_write_rows(conn, _Batch(ops), _BATCH_SQL))
        return [None] * len(ops)
    except Exception:
        pass
    errors: list[Exception | None] = []
    with Transaction(conn):
        since = marking.starts(conn)
        for op in ops:
            conn.execute("SAVEPOINT op")
            try:
                _write_rows(conn, _Batch((op,)))
            except Exception as exc:
                conn.execute("ROLLBACK TO op")
                errors.append(exc)
            else:
                errors.append(None)
            conn.execute("RELEASE op")
        marking.mark_since(conn, since)
    return errors


_Statements = tuple[Callable[[int], str], Callable[[int], str], Callable[[int], str], Callable[[int], str]]


class _Batch:
    """A batch's ops sorted into the rows each statement writes, in arrival order."""

    __slots__ = ("custom", "drops", "durations", "events", "views")

    def __init__(self, ops: Iterable[Op]) -> None:
        self.views: list[NewView] = []
        self.events: list[Row] = []
        self.custom: list[Row] = []  # the first row of each custom event: its site and time
        # Beacon id -> duration: the last unload of an id wins, as it would row by row, in the order of
        # each id's first unload; one row per id for the join.
        self.durations: dict[str, int] = {}
        self.drops: Counter[tuple[int, str, str]] = Counter()
        for op in ops:
            if type(op) is NewView:
                self.views.append(op)
                self.events.extend(op.events)
            elif type(op) is Duration:
                self.durations[op.bid] = op.duration_ms
            elif type(op) is NewEvents:
                self.events.extend(op.events)
                if op.events:
                    self.custom.append(op.events[0])
            elif type(op) is DropCount:
                self.drops[(op.day, op.hostname, op.reason)] += op.count


def _write_rows(conn: sqlite3.Connection, batch: _Batch, statements: _Statements = _ONE_OP_SQL) -> tuple[int, int]:
    """Write `batch`'s rows with `statements` (_BATCH_SQL inside a transaction rolled back whole on any error,
    else _ONE_OP_SQL); return how many rows went into `views` and into `events`."""
    views, events, custom, durations, drops = batch.views, batch.events, batch.custom, batch.durations, batch.drops
    tracked_sql, untimed_sql, untagged_sql, events_sql = statements
    new_views = new_events = 0
    if views:
        if all(op.view[_VIEW_DURATION] is None for op in views):
            if any(itertools.chain.from_iterable(map(_utm_values, map(_view_of, views)))):
                new_views = _run_chunked(conn, untimed_sql, _untimed_rows(views, _untimed_values))
            else:
                new_views = _run_chunked(conn, untagged_sql, _untimed_rows(views, _untagged_values))
        else:
            new_views = _run_chunked(conn, tracked_sql, [(*op.view, op.referrer_path) for op in views])
    if events:
        new_events = _run_chunked(conn, events_sql, events)
    if durations:
        _run_chunked(conn, _update_durations_sql, list(durations.items()))
    if drops:
        conn.executemany(
            ADD_DROPS,
            ({"day": day, "hostname": host, "reason": reason, "count": n} for (day, host, reason), n in drops.items()),
        )
    if views or custom:  # counted once their rows went in, so a malformed row fails on its INSERT as before
        stored: dict[tuple[int, object], int] = {}  # (day as Unix ms of 00:00 UTC, site) -> hits
        get = stored.get
        for op in views:  # no call per row but the dict's (this runs for every stored load)
            view = op.view
            date: int = view[_VIEW_DATE]  # type: ignore[assignment]
            key = (date // DAY_MS * DAY_MS, view[_VIEW_HOSTNAME])
            stored[key] = get(key, 0) + 1
        for first in custom:
            key = (cast(int, first[_EVENT_DATE]) // DAY_MS * DAY_MS, first[_EVENT_GROUP])
            stored[key] = get(key, 0) + 1
        counts = [(day, host, n) for (day, host), n in stored.items()]
        if len(counts) <= SITE_COUNTS_AT_ONCE:
            conn.execute(_add_site_hits_sql(len(counts)), list(itertools.chain.from_iterable(counts)))
        else:
            _run_chunked(conn, _add_site_hits_sql, counts)
    return new_views, new_events


def _untimed_rows(ops: Iterable[NewView], values: Callable[[Row], Row]) -> list[Row]:
    """Views without their durations (None), their `values` (the untimed or the untagged columns: their getter)
    then the flags, True and False as 1 and 0, and the internal referrer's path. (A row of the wrong length stays
    one: `_run_chunked` or the binding refuses it.)"""
    rows: list[Row] = []
    append = rows.append
    for op in ops:  # one loop, no Python call per row: this is the writer's share of every stored load
        v = op.view
        user, page = v[_VIEW_UNIQUE_USER], v[_VIEW_UNIQUE_PAGE]
        user = 1 if user is True else 0 if user is False else user
        page = 1 if page is True else 0 if page is False else page
        if len(v) == _VIEW_WIDTH:
            append(values(v) + (user, page, op.referrer_path))
        else:  # the getter would drop a long row's extra values: kept, so the row is refused as before
            append((*v[:_VIEW_UNIQUE_USER], *v[_VIEW_UNIQUE_PAGE + 1 : _VIEW_DURATION], *v[_VIEW_DURATION + 1 :], user,
                    page, op.referrer_path))  # fmt: skip
    return rows


def drop_counts(conn: sqlite3.Connection, start_day: int, end_day: int) -> list[tuple[int, str, str, int]]:
    """(day, hostname, reason, count) rows with `start_day <= day <= end_day` (Unix ms), oldest first."""
    return conn.execute(
        "SELECT day, hostname, reason, count FROM drops WHERE day BETWEEN :start AND :end"
        " ORDER BY day, hostname, reason",
        {"start": start_day, "end": end_day},
    ).fetchall()


def site_hits_on(conn: sqlite3.Connection, day: int) -> dict[str, int]:
    """Hits stored per site on `day` (Unix ms of 00:00 UTC): where the quota starts after a restart."""
    rows = conn.execute("SELECT hostname, hits FROM site_hits WHERE day = :day", {"day": day})
    return {str(hostname): int(hits) for hostname, hits in rows}
