"""Dirty rollup hours of newly inserted `views`/`events` rows, marked once by the writer that inserted them.

There are no insert triggers on the two tables (analytics migration 17): a trigger ran two statements for
every inserted row, a fifth of the tracker writer's cost per stored view. Instead every writer of rows
(the tracker's batches, imports, transfers, migrations) takes `starts` before its inserts and calls
`mark_since` after them, in the same transaction, which marks in `rollup_dirty` every (site, hour) the
triggers marked: a new view marks its own hour and the hours of its bid's events under its site; a new
event marks its hour under the site of every view of its bid, and those views' own hours (their column
copies hold their events' pairs). Updates and deletes keep their triggers (migrations 3, 9 and 15).
"""

from __future__ import annotations

import sqlite3
from typing import Final, NamedTuple

__all__ = ["MAX_START_ROWID", "Starts", "mark_since", "starts"]

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


def _first_new(largest: int | None) -> int:
    if largest is None:
        return _SMALLEST_ROWID
    if largest >= MAX_START_ROWID:  # new rowids may be anywhere: every row counts as new
        return _SMALLEST_ROWID
    return int(largest) + 1
