"""store/sqlite/bulk.py: what it sets aside comes back exactly, and it refuses what it does not know."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from medama_core.store.sqlite import analytics, bulk, db, hits

VIEW = ("b1", "example.com", "/", 1, 0, "", "", "Unknown", "English", "English", "Firefox", "Linux", "Desktop",
        "", "", "", None, 7_200_000)  # fmt: skip


def fresh(path: Path) -> sqlite3.Connection:
    conn = db.connect(str(path))
    db.migrate(conn, analytics.MIGRATIONS)
    return conn


def schema(conn: sqlite3.Connection) -> list[tuple[str, str, str, str]]:
    return sorted(conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master"))


def test_the_known_triggers_are_every_trigger_of_the_schema(tmp_path: Path) -> None:
    conn = fresh(tmp_path / "a.db")
    for table, names in bulk.KNOWN_TRIGGERS.items():
        found = {
            row[0]
            for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ?", (table,))
        }
        assert found == names, "a new trigger on this table: teach store/sqlite/bulk.py what it does"
    inserting = conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' AND sql LIKE '%AFTER INSERT ON%'")
    assert inserting.fetchall() == [], "writers mark their rows' hours (store/sqlite/marking.py): no insert trigger"
    conn.close()


@pytest.mark.parametrize("table", ["views", "events"])
def test_suspend_and_resume_give_back_the_same_schema_and_statistics(tmp_path: Path, table: str) -> None:
    conn = fresh(tmp_path / "a.db")
    hits.apply_batch(conn, [hits.NewView(VIEW, [("b1", "event_1", "example.com", "plan", "pro", 3_600_000)])])
    conn.execute("ANALYZE")
    before = schema(conn), sorted(conn.execute("SELECT * FROM sqlite_stat1"))
    with db.Transaction(conn):
        suspended = bulk.suspend(conn, table)
        assert suspended is not None
        left = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE tbl_name = ?", (table,))}
        if table == "views":
            assert left == {
                "views",
                "views_bid_hostname",
                "views_rollup_update",
                "views_rollup_move",
                "views_rollup_delete",
            }
        else:
            assert left == {"events", "events_rollup_update", "events_rollup_delete"}
        bulk.resume(conn, suspended)
    assert (schema(conn), sorted(conn.execute("SELECT * FROM sqlite_stat1"))) == before
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    conn.close()


def test_a_rollback_after_suspend_restores_everything(tmp_path: Path) -> None:
    conn = fresh(tmp_path / "a.db")
    before = schema(conn)
    conn.execute("BEGIN IMMEDIATE")
    assert bulk.suspend(conn, "views") is not None
    conn.execute("ROLLBACK")
    assert schema(conn) == before
    conn.close()


def test_suspend_refuses_a_table_with_an_unknown_trigger(tmp_path: Path) -> None:
    conn = fresh(tmp_path / "a.db")
    conn.execute("CREATE TABLE audit (bid TEXT)")
    conn.execute("CREATE TRIGGER views_audit AFTER INSERT ON views BEGIN INSERT INTO audit VALUES (NEW.bid); END")
    before = schema(conn)
    with db.Transaction(conn):
        assert bulk.suspend(conn, "views") is None
    assert schema(conn) == before, "nothing dropped"
    conn.close()


def test_suspend_needs_a_transaction_and_a_known_table(tmp_path: Path) -> None:
    conn = fresh(tmp_path / "a.db")
    with pytest.raises(RuntimeError, match="transaction"):
        bulk.suspend(conn, "views")
    with pytest.raises(ValueError, match="no bulk loading"):
        bulk.largest_rowid(conn, "drops")
    conn.close()
