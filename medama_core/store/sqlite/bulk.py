"""Bulk loading of `views` or `events`: set the secondary indexes and insert triggers aside, then restore them.

Inside the caller's transaction, `suspend` drops a table's non-unique indexes
and its insert trigger (remembering their exact SQL and any `sqlite_stat1`
rows), and `resume` recreates them, restores the statistics and marks in
`rollup_dirty` every (site, hour) the dropped trigger would have marked for
the rows inserted in between. CREATE INDEX sorts once, which is several
times cheaper than keeping the indexes up to date row by row. Unique indexes
stay, so `ON CONFLICT` keeps working while the others are gone. Readers of
other connections keep seeing the committed schema (WAL), and a rollback
undoes all of it.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Final

__all__ = ["Suspended", "largest_rowid", "resume", "suspend"]

# Every trigger on the two tables (store/sqlite/analytics.py, migrations 3 and 15). A table with any other
# trigger is never suspended: its effect on a bulk insert is unknown here. Only the insert triggers fire on
# a bulk load; the update and delete ones (migration 15 split the views update trigger in two) stay in place.
KNOWN_TRIGGERS: Final = {
    "views": frozenset({"views_rollup_insert", "views_rollup_update", "views_rollup_move", "views_rollup_delete"}),
    "events": frozenset({"events_rollup_insert", "events_rollup_update", "events_rollup_delete"}),
}
# The triggers an INSERT fires; `MARK_DIRTY` does their work for all the rows inserted while suspended.
INSERT_TRIGGERS: Final = {"views": ("views_rollup_insert",), "events": ("events_rollup_insert",)}
# What the insert triggers do, for every row with rowid > :start at once. views_rollup_insert marks
# the view's own hour and the hours of the events of its bid; events_rollup_insert marks the event's
# hour for the site of every view of its bid, and those views' own hours (migration 9).
MARK_DIRTY: Final = {
    "views": (
        "INSERT OR IGNORE INTO rollup_dirty (hostname, hour)"
        " SELECT DISTINCT hostname, date_created / 3600000 FROM views WHERE rowid > :start",
        "INSERT OR IGNORE INTO rollup_dirty (hostname, hour)"
        " SELECT DISTINCT v.hostname, e.date_created / 3600000 FROM views v JOIN events e ON e.bid = v.bid"
        " WHERE v.rowid > :start",
    ),
    "events": (
        "INSERT OR IGNORE INTO rollup_dirty (hostname, hour)"
        " SELECT DISTINCT v.hostname, e.date_created / 3600000 FROM events e JOIN views v ON v.bid = e.bid"
        " WHERE e.rowid > :start",
        "INSERT OR IGNORE INTO rollup_dirty (hostname, hour)"
        " SELECT DISTINCT v.hostname, v.date_created / 3600000 FROM events e JOIN views v ON v.bid = e.bid"
        " WHERE e.rowid > :start",
    ),
}
# Once a table's largest rowid is 2**63 - 1, SQLite picks new rowids at random, and "rowid > start"
# no longer means "inserted since". Far below that, a bulk load cannot get there.
MAX_START_ROWID: Final = 2**62


@dataclass(frozen=True)
class Suspended:
    """What `suspend` set aside: the SQL to recreate it, in schema order, and the statistics to restore."""

    table: str
    start: int  # the largest rowid before the bulk insert; every row above it is new
    statements: tuple[str, ...]
    stats: tuple[tuple[str, str, str], ...]  # sqlite_stat1 rows (tbl, idx, stat) of the dropped indexes


def largest_rowid(conn: sqlite3.Connection, table: str) -> int:
    """The largest rowid of `views` or `events` (0 when empty): a cheap upper bound of its row count."""
    _check(table)
    value = conn.execute(f"SELECT max(rowid) FROM {table}").fetchone()[0]
    return int(value or 0)


def suspend(conn: sqlite3.Connection, table: str) -> Suspended | None:
    """Drop the non-unique indexes and insert triggers of `table`; None (nothing dropped) if that is unsafe.

    Must run inside a write transaction, which `resume` must end in before it commits.
    """
    _check(table)
    if not conn.in_transaction:
        raise RuntimeError("suspend needs an open write transaction")
    triggers = {
        name: sql
        for name, sql in conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = :table", {"table": table}
        )
    }
    start = largest_rowid(conn, table)
    if not set(triggers) <= KNOWN_TRIGGERS[table] or start >= MAX_START_ROWID:
        return None
    unique = {row[1] for row in conn.execute(f"PRAGMA index_list({table})") if row[2]}
    indexes = [
        (name, sql)
        for name, sql in conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = :table AND sql IS NOT NULL"
            " ORDER BY rowid",
            {"table": table},
        )
        if name not in unique
    ]
    dropped = [(name, sql) for name, sql in triggers.items() if name in INSERT_TRIGGERS[table]]
    stats: list[tuple[str, str, str]] = []
    if indexes and conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'").fetchone():
        for name, _ in indexes:
            stats += conn.execute("SELECT tbl, idx, stat FROM sqlite_stat1 WHERE idx = :idx", {"idx": name}).fetchall()
    for name, _ in indexes:
        conn.execute(f'DROP INDEX "{name}"')
    for name, _ in dropped:
        conn.execute(f'DROP TRIGGER "{name}"')
    statements = tuple(sql for _, sql in indexes) + tuple(sql for _, sql in dropped)
    return Suspended(table, start, statements, tuple(stats))


def resume(conn: sqlite3.Connection, suspended: Suspended) -> None:
    """Recreate what `suspend` dropped, restore its statistics, and mark the hours its triggers would have."""
    for statement in suspended.statements:
        conn.execute(statement)
    if suspended.stats:
        conn.executemany(
            "INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES (:tbl, :idx, :stat)",
            [{"tbl": tbl, "idx": idx, "stat": stat} for tbl, idx, stat in suspended.stats],
        )
    for statement in MARK_DIRTY[suspended.table]:
        conn.execute(statement, {"start": suspended.start})


def _check(table: str) -> None:
    if table not in KNOWN_TRIGGERS:
        raise ValueError(f"no bulk loading for table {table!r}")
