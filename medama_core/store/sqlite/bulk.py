"""Bulk loading of `views` or `events`: set the secondary indexes aside, then restore them.

Inside the caller's transaction, `suspend` drops a table's non-unique indexes
(remembering their exact SQL and any `sqlite_stat1` rows), and `resume`
recreates them and restores the statistics. CREATE INDEX sorts once, which
is several times cheaper than keeping the indexes up to date row by row.
Unique indexes stay, so `ON CONFLICT` keeps working while the others are
gone. Readers of other connections keep seeing the committed schema (WAL),
and a rollback undoes all of it. The caller marks the rollup hours its rows
touched (store/sqlite/marking.py), as every writer of rows does.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Final

__all__ = ["Suspended", "largest_rowid", "resume", "suspend"]

# Every trigger on the two tables (store/sqlite/analytics.py, migrations 9, 15 and 17: none fires on an
# INSERT). A table with any other trigger is never suspended: its effect on a bulk insert is unknown here.
KNOWN_TRIGGERS: Final = {
    "views": frozenset({"views_rollup_update", "views_rollup_move", "views_rollup_delete"}),
    "events": frozenset({"events_rollup_update", "events_rollup_delete"}),
}


@dataclass(frozen=True)
class Suspended:
    """What `suspend` set aside: the SQL to recreate it, in schema order, and the statistics to restore."""

    table: str
    statements: tuple[str, ...]
    stats: tuple[tuple[str, str, str], ...]  # sqlite_stat1 rows (tbl, idx, stat) of the dropped indexes


def largest_rowid(conn: sqlite3.Connection, table: str) -> int:
    """The largest rowid of `views` or `events` (0 when empty): a cheap upper bound of its row count."""
    _check(table)
    value = conn.execute(f"SELECT max(rowid) FROM {table}").fetchone()[0]
    return int(value or 0)


def suspend(conn: sqlite3.Connection, table: str) -> Suspended | None:
    """Drop the non-unique indexes of `table`; None (nothing dropped) if that is unsafe (a trigger unknown here).

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
    if not set(triggers) <= KNOWN_TRIGGERS[table]:
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
    stats: list[tuple[str, str, str]] = []
    if indexes and conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'").fetchone():
        for name, _ in indexes:
            stats += conn.execute("SELECT tbl, idx, stat FROM sqlite_stat1 WHERE idx = :idx", {"idx": name}).fetchall()
    for name, _ in indexes:
        conn.execute(f'DROP INDEX "{name}"')
    return Suspended(table, tuple(sql for _, sql in indexes), tuple(stats))


def resume(conn: sqlite3.Connection, suspended: Suspended) -> None:
    """Recreate what `suspend` dropped and restore its statistics."""
    for statement in suspended.statements:
        conn.execute(statement)
    if suspended.stats:
        conn.executemany(
            "INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES (:tbl, :idx, :stat)",
            [{"tbl": tbl, "idx": idx, "stat": stat} for tbl, idx, stat in suspended.stats],
        )


def _check(table: str) -> None:
    if table not in KNOWN_TRIGGERS:
        raise ValueError(f"no bulk loading for table {table!r}")
