"""Numbered migrations: fresh databases, idempotence, upgrades, atomicity, upstream files."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from medama_core.store.sqlite import analytics, hits, meta
from medama_core.store.sqlite.db import Database, Migration, migrate


def latest(migrations: tuple[Migration, ...]) -> int:
    return max(m.version for m in migrations)


@pytest.mark.parametrize("migrations", [meta.MIGRATIONS, analytics.MIGRATIONS], ids=["meta", "analytics"])
def test_fresh_database_reaches_latest_and_rerun_is_noop(migrations: tuple[Migration, ...]) -> None:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    assert migrate(conn, migrations) == latest(migrations)
    schema = conn.execute("SELECT sql FROM sqlite_master ORDER BY name").fetchall()
    assert migrate(conn, migrations) == latest(migrations)
    assert conn.execute("SELECT sql FROM sqlite_master ORDER BY name").fetchall() == schema


def test_older_database_upgrades_step_by_step() -> None:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    migrate(conn, meta.MIGRATIONS[:1])
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    assert migrate(conn, meta.MIGRATIONS) == latest(meta.MIGRATIONS)
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"users", "websites", "tenant_settings", "sessions"} <= tables


def test_failed_migration_rolls_back_and_stays_pending() -> None:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    broken = (Migration(1, ("CREATE TABLE a (x)",)), Migration(2, ("CREATE TABLE b (x)", "NOT SQL")))
    with pytest.raises(sqlite3.OperationalError):
        migrate(conn, broken)
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    assert tables == {"a"} and conn.execute("PRAGMA user_version").fetchone()[0] == 1


def test_upstream_meta_database_opens_unchanged(tmp_path: Path) -> None:
    """A me_meta.db written by the Go server (its own `migrations` table, user_version 0) keeps its rows."""
    path = tmp_path / "me_meta.db"
    conn = sqlite3.connect(path)
    conn.executescript(
        """
        CREATE TABLE users (id TEXT PRIMARY KEY, username TEXT NOT NULL UNIQUE, password TEXT NOT NULL,
            date_created INTEGER NOT NULL, date_updated INTEGER NOT NULL, settings JSON NOT NULL DEFAULT '{}');
        CREATE TABLE websites (hostname TEXT PRIMARY KEY, user_id TEXT NOT NULL, date_created INTEGER,
            date_updated INTEGER, settings JSON NOT NULL DEFAULT '{}', FOREIGN KEY (user_id) REFERENCES users(id));
        CREATE TABLE tenant_settings (key TEXT PRIMARY KEY, value TEXT NOT NULL, date_updated INTEGER NOT NULL);
        CREATE TABLE migrations (id INTEGER PRIMARY KEY, name TEXT, type TEXT, created_at DATETIME);
        INSERT INTO users VALUES ('user_1', 'admin', '$argon2id$v=19$m=65536,t=1,p=2$c2FsdA$a2V5', 1, 1, '{}');
        INSERT INTO websites VALUES ('example.com', 'user_1', 1, 1, '{}');
        """
    )
    conn.close()
    db = Database(str(path), meta.MIGRATIONS)
    try:
        assert db.version == latest(meta.MIGRATIONS)
        assert meta.list_hostnames(db.writer_conn) == ["example.com"]
        assert meta.count_users(db.writer_conn) == 1
    finally:
        db.close()


def test_database_uses_wal_and_reader_threads(tmp_path: Path) -> None:
    import asyncio

    db = Database(str(tmp_path / "a.db"), analytics.MIGRATIONS)

    def count(conn: sqlite3.Connection) -> int:
        return int(conn.execute("SELECT count(*) FROM views").fetchone()[0])

    def readonly_write(conn: sqlite3.Connection) -> None:
        conn.execute("DELETE FROM views")

    async def scenario() -> tuple[str, int]:
        mode = await db.write(lambda c: c.execute("PRAGMA journal_mode").fetchone()[0])
        return mode, await db.read(count)

    try:
        assert asyncio.run(scenario()) == ("wal", 0)
        with pytest.raises(sqlite3.OperationalError):
            asyncio.run(db.read(readonly_write))
    finally:
        db.close()


def test_analytics_wal_is_checkpointed_less_often(tmp_path: Path) -> None:
    """The analytics writer lets its WAL grow to WAL_CHECKPOINT_PAGES before a checkpoint; me_meta.db keeps
    SQLite's default."""
    from medama_core.backends import sqlite as backend

    store = backend.SQLiteAnalytics(str(tmp_path / "me_analytics.db"))
    other = Database(str(tmp_path / "me_meta.db"), meta.MIGRATIONS)
    try:
        assert store.db.writer_conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == backend.WAL_CHECKPOINT_PAGES
        assert other.writer_conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 1000
    finally:
        store.close()
        other.close()


def _dirty_after(statements: list[str], version: int | None = None) -> set[tuple[str, int]]:
    """The (site, hour) pairs marked dirty by `statements` on a fresh database at `version` (default: latest)."""
    conn = sqlite3.connect(":memory:", isolation_level=None)
    migrate(conn, [m for m in analytics.MIGRATIONS if version is None or m.version <= version])
    hour = 3_600_000
    conn.execute(
        "INSERT INTO views (bid, hostname, pathname, is_unique_user, is_unique_page, referrer_host, referrer_group,"
        " country, language_base, language_dialect, ua_browser, ua_os, ua_device_type, utm_source, utm_medium,"
        " utm_campaign, duration_ms, date_created) VALUES"
        " ('b1', 'a.com', '/', 1, 1, '', '', 'X', 'en', '', 'C', 'W', 'D', '', '', '', NULL, :t),"
        " ('b2', 'a.com', '/', 1, 1, '', '', 'X', 'en', '', 'C', 'W', 'D', '', '', '', NULL, :t)",
        {"t": 10 * hour},
    )
    conn.execute(
        "INSERT INTO events (bid, batch_id, group_name, name, value, date_created) VALUES ('b1', 'e', 'a.com', 'k',"
        " 'v', :t)",
        {"t": 12 * hour},
    )
    conn.execute("DELETE FROM rollup_dirty")
    for statement in statements:
        conn.execute(statement)
    return set(conn.execute("SELECT * FROM rollup_dirty").fetchall())


@pytest.mark.parametrize(
    "statements",
    [
        ["UPDATE views SET duration_ms = 5 WHERE bid = 'b1'"],  # an unload
        ["UPDATE views SET hostname = 'b.com' WHERE hostname = 'a.com'"],  # a rename
        ["UPDATE views SET date_created = date_created + 7200000, duration_ms = 1 WHERE bid = 'b1'"],
        ["UPDATE views SET bid = 'b3' WHERE bid = 'b1'"],
        ["UPDATE views SET bid = 'b1', hostname = 'c.com' WHERE bid = 'b2'"],
        ["UPDATE views SET hostname = 'a.com', duration_ms = 2 WHERE bid = 'b1'"],  # sets the site, keeps it
        ["UPDATE views SET date_created = 36000000"],  # sets every view's time, the one it had
    ],
)
def test_view_updates_mark_the_same_hours_as_before_migration_15(statements: list[str]) -> None:
    """Migration 15 splits the views update trigger (one statement for an unload), and 17 runs its move half only
    for updates that set site, time or bid; the hours marked dirty are the ones the trigger of migration 14
    marked, for updates that keep or move site, time and bid."""
    assert _dirty_after(statements) == _dirty_after(statements, version=14)
    assert _dirty_after(statements)


def test_migration_17_drops_the_insert_triggers_of_an_existing_database(tmp_path: Path) -> None:
    """A database written at 16 keeps its rows and dirty hours; after 17 no trigger marks an INSERT, the writer does."""
    conn = sqlite3.connect(tmp_path / "a.db", isolation_level=None)
    migrate(conn, analytics.MIGRATIONS[:16])
    hour = 3_600_000
    view = "('{bid}', 'a.com', '/', 1, 1, '', '', 'X', 'en', '', 'C', 'W', 'D', '', '', '', NULL, {t})"
    insert = f"INSERT INTO views ({', '.join(hits.VIEW_COLUMNS)}) VALUES "
    conn.execute(insert + view.format(bid="b1", t=3 * hour))
    assert conn.execute("SELECT * FROM rollup_dirty").fetchall() == [("a.com", 3)], "marked by the trigger at 16"
    assert migrate(conn, analytics.MIGRATIONS) == latest(analytics.MIGRATIONS)
    triggers = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
    assert triggers == {"views_rollup_update", "views_rollup_move", "views_rollup_delete", "events_rollup_update",
                        "events_rollup_delete"}  # fmt: skip
    assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'rollup_marking'").fetchall() == []
    assert conn.execute("SELECT bid FROM views").fetchall() == [("b1",)]
    conn.execute(insert + view.format(bid="b2", t=5 * hour))
    assert conn.execute("SELECT * FROM rollup_dirty").fetchall() == [("a.com", 3)], "no trigger marked hour 5"
    row = ("b3", "a.com", "/", 1, 1, "", "", "X", "en", "", "C", "W", "D", "", "", "", None, 7 * hour)
    assert hits.apply_batch(conn, [hits.NewView(row)]) == [None]
    assert conn.execute("SELECT * FROM rollup_dirty ORDER BY hour").fetchall() == [("a.com", 3), ("a.com", 7)]
    conn.close()
