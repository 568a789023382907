"""Dirty rollup hours of newly inserted `views`/`events` rows, marked once by the writer that inserted them.

There are no insert triggers on the two tables (analytics migration 17): a trigger ran two statements for
every inserted row, a fifth of the tracker writer's cost per stored view. Instead every writer of rows
(the tracker's batches, imports, transfers, migrations) takes `starts` before its inserts and calls
`mark_since` after them, in the same transaction, which marks in `rollup_dirty` every (site, hour) the
triggers marked: a new view marks its own hour and the hours of its bid's events under its site; a new
event marks its hour under the site of every view of its bid, and those views' own hours (their column
copies hold their events' pairs). Updates and deletes keep their triggers (migrations 3, 9 and 15).

A writer that knows how many rows each table took in its transaction (the tracker's batches, from their INSERTs'
counts) may instead call `mark_inserted` with those counts after its inserts, without `starts`: one statement fewer
a batch, and so one GIL hand-off each way fewer (store/sqlite/hits.py). Its rows' first rowid is worked out from the
table's largest rowid after them, in the marking statement itself (`_NEW_ROWS_FROM`, below).
"""

from __future__ import annotations

import sqlite3
from typing import Final, NamedTuple

__all__ = ["MAX_START_ROWID", "Starts", "mark_inserted", "mark_since", "starts"]

# Once a table's largest rowid is 2**63 - 1, SQLite picks new rowids at random, and "rowid > start" no
# longer means "inserted since". Far below that no load can get there; above it every row is marked.
MAX_START_ROWID: Final = 2**62
_SMALLEST_ROWID: Final = -(2**63)

_LARGEST_ROWIDS: Final = "SELECT (SELECT max(rowid) FROM views), (SELECT max(rowid) FROM events)"
# The new rows are found by rowid range (NOT INDEXED) and drive the joins (CROSS JOIN): without both,
# SQLite's planner scans a whole index per tracker batch. :views and :events are the first rowids that
# may be new.
# Each table's two sets of hours in one statement (UNION): every statement the writer runs gives the GIL up
# and takes it back, a thread switch each way while the event loop runs.
_BY_NEW_VIEWS: Final = (
    "INSERT OR IGNORE INTO rollup_dirty (hostname, hour)"
    " SELECT hostname, date_created / 3600000 FROM views NOT INDEXED WHERE rowid >= :views"
    " UNION SELECT v.hostname, e.date_created / 3600000 FROM views AS v NOT INDEXED CROSS JOIN events AS e"
    " ON e.bid = v.bid WHERE v.rowid >= :views",
)
_BY_NEW_EVENTS: Final = (
    "INSERT OR IGNORE INTO rollup_dirty (hostname, hour)"
    " SELECT v.hostname, e.date_created / 3600000 FROM events AS e NOT INDEXED CROSS JOIN views AS v"
    " ON v.bid = e.bid WHERE e.rowid >= :events"
    " UNION SELECT v.hostname, v.date_created / 3600000 FROM events AS e NOT INDEXED CROSS JOIN views AS v"
    " ON v.bid = e.bid WHERE e.rowid >= :events",
)


# `mark_inserted`'s first new rowid of a table, from its largest rowid after the inserts (`m`) and how many rows the
# transaction inserted (`:new`, at least one). A table's new row takes the largest rowid + 1 (1 in an empty
# table) unless that largest is 2**63 - 1, when SQLite picks rowids at random (https://sqlite.org/autoinc.html).
# The writer holds the write lock from BEGIN IMMEDIATE, and its inserts are the transaction's only ones into the
# table (no insert trigger adds rows), so while the largest before them, m - :new, is under MAX_START_ROWID its
# rows are exactly rowids m - :new + 1 to m: what `starts` would have given (the largest before + 1; for an empty
# table it gave the smallest rowid, the same rows). Else, as `starts`, every row counts as new (and at random,
# m stays 2**63 - 1, so m - :new is past MAX_START_ROWID for any count a transaction can insert).
_NEW_ROWS_FROM: Final = (
    "(SELECT CASE WHEN m - :new < :max_start THEN m - :new + 1 ELSE :smallest END"
    " FROM (SELECT max(rowid) AS m FROM {table}))"
)
_MARK_INSERTED_VIEWS: Final = _BY_NEW_VIEWS[0].replace(":views", _NEW_ROWS_FROM.format(table="views"))
_MARK_INSERTED_EVENTS: Final = _BY_NEW_EVENTS[0].replace(":events", _NEW_ROWS_FROM.format(table="events"))


class Starts(NamedTuple):
    """The first rowid of `views` and of `events` that rows inserted from now on may have."""

    views: int
    events: int


def starts(conn: sqlite3.Connection) -> Starts:
    """Where the rows inserted from now on start (call it inside the transaction that inserts them)."""
    views, events = conn.execute(_LARGEST_ROWIDS).fetchone()
    return Starts(_first_new(views), _first_new(events))


def mark_since(conn: sqlite3.Connection, since: Starts, *, views: bool = True, events: bool = True) -> None:
    """Mark the hours the rows inserted since `since` touched; `views`/`events` False skips the statements
    driven by a table the caller inserted no row into (they would find none)."""
    parameters = since._asdict()
    for statement in (_BY_NEW_VIEWS if views else ()) + (_BY_NEW_EVENTS if events else ()):
        conn.execute(statement, parameters)


def mark_inserted(conn: sqlite3.Connection, views: int, events: int) -> None:
    """Mark the hours touched by the last `views` rows inserted into `views` and the last `events` into `events`
    in this transaction, which must hold the write lock and have inserted exactly those rows into the two tables
    (counts from the INSERTs: a row an upsert ignored is not one); none at all of a table runs no statement."""
    if views:
        conn.execute(_MARK_INSERTED_VIEWS, {"new": views, "max_start": MAX_START_ROWID, "smallest": _SMALLEST_ROWID})
    if events:
        conn.execute(_MARK_INSERTED_EVENTS, {"new": events, "max_start": MAX_START_ROWID, "smallest": _SMALLEST_ROWID})


def _first_new(largest: int | None) -> int:
    if largest is None:
        return _SMALLEST_ROWID
    if largest >= MAX_START_ROWID:  # new rowids may be anywhere: every row counts as new
        return _SMALLEST_ROWID
    return int(largest) + 1
