"""Numbered migrations: fresh databases, idempotence, upgrades, atomicity, upstream files."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from medama_core.store import analytics, meta
from medama_core.store.db import Database, Migration, migrate


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
