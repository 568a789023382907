"""Copying app data between a SQLite me_meta.db and PostgreSQL: both ways, whole, or not at all."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from medama_core.store.sqlite import db as sqlite_db
from medama_core.store.sqlite import meta as sqlite_meta

psycopg = pytest.importorskip("psycopg")

from medama_core.meta_copy import (  # noqa: E402
    BATCH_ROWS,
    TABLES,
    CopyError,
    postgres_to_sqlite,
    sqlite_to_postgres,
)
from medama_core.store.postgres import meta as pg_meta  # noqa: E402

SESSIONS = BATCH_ROWS * 2 + 7  # more than two batches


def fresh_sqlite(path: Path) -> sqlite3.Connection:
    conn = sqlite_db.connect(str(path))
    sqlite_db.migrate(conn, sqlite_meta.MIGRATIONS)
    return conn


def fill(conn: sqlite3.Connection) -> None:
    sqlite_meta.insert_user(conn, "user_a", "ålice 🙂", "$argon2id$v=19$m=65536,t=1,p=2$c2FsdA$a2V5", 100)
    sqlite_meta.insert_user(conn, "user_b", "'; DROP TABLE users; --", "scrypt$x", 200)
    sqlite_meta.update_user(conn, "user_b", 300, settings='{"language":"ja"}')
    for host in ("b.example", "a.example", "ünï.example"):
        sqlite_meta.insert_website(conn, host, "user_a", 100)
    sqlite_meta.insert_website(conn, "c.example", "user_b", 100)
    sqlite_meta.set_settings(conn, {"script_type": "default", "blocked_ips": "10.0.0.0/8\n192.0.2.1"}, 100)
    sqlite_meta.set_password_is_default(conn, "user_a", True)
    conn.execute("UPDATE users SET password_is_default = NULL WHERE id = 'user_b'")  # not known yet
    sqlite_meta.set_umami_id(conn, "a.example", "0b8a0f4e-5b43-4c0e-b9a7-3f2d7e0c1a11")
    sqlite_meta.update_site_settings(conn, "a.example", {"outbound_links": True, "page_events": False}, 100)
    changes = {"download_extensions": ("pdf", "7z"), "retention_days": 400, "timezone": "Europe/Paris"}
    sqlite_meta.update_site_settings(conn, "ünï.example", changes, 100)
    for note_id, host, start, end in (
        ("note_1", "a.example", "2024-06-01", None),
        ("note_2", "c.example", "2024-06-02", "2024-06-09"),
    ):
        note = sqlite_meta.Annotation(note_id, host, start, end, 'Launch 🚀, "quoted"\nsecond line', 150)
        assert sqlite_meta.insert_annotation(conn, note, 10)
    with sqlite_db.Transaction(conn):
        for i in range(SESSIONS):
            sqlite_meta.insert_session(conn, hashlib.sha256(str(i).encode()).digest(), "user_a", i, i + 1000)
    # Roles, grants, keys, two-factor login and shares (migration 6), with the NULL dates that mean "never".
    sqlite_meta.insert_user(conn, "user_v", "viewer", "scrypt$v", 300, role="viewer")
    sqlite_meta.set_grants(conn, "user_v", ["a.example", "c.example"])
    sqlite_meta.insert_api_key(conn, sqlite_meta.ApiKey("key_1", "user_a", "ci", "read", 100), b"k" * 32)
    sqlite_meta.insert_api_key(conn, sqlite_meta.ApiKey("key_2", "user_v", "x", "admin", 100, 900, 500), b"j" * 32)
    sqlite_meta.set_totp_secret(conn, "user_a", "JBSWY3DPEHPK3PXP", 100)
    sqlite_meta.enable_totp(conn, "user_a", 55, [b"r" * 32, b"s" * 32])
    sqlite_meta.set_totp_secret(conn, "user_v", "KRSXG5DSNFXGOIDB", 100)  # pending, not enabled
    share = sqlite_meta.Share(
        "sh1", "a.example", "public", None, 5, ("pages", "countries"), ("https://x.example",), 100
    )
    sqlite_meta.insert_share(conn, share)
    sqlite_meta.insert_share(conn, sqlite_meta.Share("sh2", "c.example", "", "scrypt$p", 0, (), (), 100, 999))
    # Goals (migration 7): a page goal and an event goal with and without a value.
    for goal in (
        sqlite_meta.Goal("goal_1", "a.example", "Pricing «pro»", "/pricing/*", None, None, 100),
        sqlite_meta.Goal("goal_2", "a.example", "Signup", None, "plan", "pro", 110),
        sqlite_meta.Goal("goal_3", "ünï.example", "Any download", None, "file-download", None, 120),
    ):
        assert sqlite_meta.insert_goal(conn, goal, 10)


def dump(conn: Any) -> dict[str, list[tuple[Any, ...]]]:
    """Every copied row of every table, sorted, bytes as bytes, whichever engine."""
    out = {}
    for table, columns in TABLES:
        rows = conn.execute(f"SELECT {', '.join(columns)} FROM {table}").fetchall()
        out[table] = sorted(tuple(bytes(v) if isinstance(v, memoryview) else v for v in row) for row in rows)
    return out


def test_round_trip_sqlite_postgres_sqlite(tmp_path: Path, pg_conn: Any) -> None:
    source = fresh_sqlite(tmp_path / "a.db")
    fill(source)
    counts = sqlite_to_postgres(source, pg_conn)
    assert counts == {
        "users": 3, "websites": 4, "umami_ids": 1, "site_grants": 2, "tenant_settings": 2, "sessions": SESSIONS,
        "website_settings": 2, "annotations": 2, "api_keys": 2, "totp": 2, "recovery_codes": 2, "shares": 2,
        "goals": 3,
    }  # fmt: skip
    assert dump(pg_conn) == dump(source)
    user = pg_meta.get_user(pg_conn, "user_a")
    assert user is not None and user.password_is_default is True and user.totp and user.role == "admin"
    assert pg_meta.list_api_keys(pg_conn, "user_a") == sqlite_meta.list_api_keys(source, "user_a")
    assert pg_meta.list_api_keys(pg_conn, "user_a")[0].date_expires is None  # "never" stays never
    assert pg_meta.get_share(pg_conn, "sh1") == sqlite_meta.get_share(source, "sh1")
    assert pg_meta.umami_ids(pg_conn) == {"0b8a0f4e-5b43-4c0e-b9a7-3f2d7e0c1a11": "a.example"}
    # The copy is usable as it stands: a session logs its user in, the sites list in code-point order.
    user_session = pg_meta.session_user(pg_conn, hashlib.sha256(b"5").digest())
    assert user_session is not None and user_session[0].username == "ålice 🙂"
    assert pg_meta.list_hostnames(pg_conn) == ["a.example", "b.example", "c.example", "ünï.example"]
    assert pg_meta.list_site_settings(pg_conn) == sqlite_meta.list_site_settings(source)
    assert pg_meta.list_annotations(pg_conn, "c.example") == sqlite_meta.list_annotations(source, "c.example")
    assert pg_meta.list_goals(pg_conn, "a.example") == sqlite_meta.list_goals(source, "a.example")
    back = fresh_sqlite(tmp_path / "b.db")
    assert postgres_to_sqlite(pg_conn, back) == counts
    assert dump(back) == dump(source)


def test_round_trip_postgres_sqlite_postgres(tmp_path: Path, pg_conn: Any, pg_server: Any) -> None:
    staging = fresh_sqlite(tmp_path / "a.db")
    fill(staging)
    sqlite_to_postgres(staging, pg_conn)
    middle = fresh_sqlite(tmp_path / "b.db")
    postgres_to_sqlite(pg_conn, middle)
    from medama_core.store.postgres import db
    from medama_core.store.postgres.url import parse_url

    other = db.connect(parse_url(pg_server.create_database("copy_target")))
    try:
        db.migrate(other, pg_meta.MIGRATIONS, pg_meta.COMPONENT)
        sqlite_to_postgres(middle, other)
        assert dump(other) == dump(pg_conn)
    finally:
        other.close()
        pg_server.drop_database("copy_target")


def test_a_target_with_data_is_refused_unless_replaced(tmp_path: Path, pg_conn: Any) -> None:
    source = fresh_sqlite(tmp_path / "a.db")
    fill(source)
    pg_meta.insert_user(pg_conn, "user_x", "admin", "h", 1)
    with pytest.raises(CopyError, match=r"already holds app data \(1 users\)"):
        sqlite_to_postgres(source, pg_conn)
    assert [u for (u,) in pg_conn.execute("SELECT username FROM users")] == ["admin"]
    sqlite_to_postgres(source, pg_conn, replace=True)
    assert dump(pg_conn) == dump(source)

    target = fresh_sqlite(tmp_path / "b.db")
    sqlite_meta.set_setting(target, "k", "v", 1)
    with pytest.raises(CopyError, match=r"already holds app data \(1 tenant_settings\)"):
        postgres_to_sqlite(pg_conn, target)
    postgres_to_sqlite(pg_conn, target, replace=True)
    assert dump(target) == dump(source)


def test_a_row_postgres_cannot_store_leaves_the_target_unchanged(tmp_path: Path, pg_conn: Any) -> None:
    source = fresh_sqlite(tmp_path / "a.db")
    fill(source)
    sqlite_meta.set_setting(source, "k", "nul\x00inside", 1)  # SQLite takes it; PostgreSQL text cannot
    with pytest.raises(CopyError, match="a tenant_settings row cannot be stored"):
        sqlite_to_postgres(source, pg_conn)
    assert all(rows == [] for rows in dump(pg_conn).values())  # the users and websites copied first: rolled back
    assert not source.in_transaction


def test_upstream_null_dates_become_zero(tmp_path: Path, pg_conn: Any) -> None:
    """A me_meta.db written by the Go server allows NULL website dates; PostgreSQL's columns do not."""
    path = tmp_path / "upstream.db"
    conn = sqlite3.connect(path)
    conn.executescript(
        """
        CREATE TABLE users (id TEXT PRIMARY KEY, username TEXT NOT NULL UNIQUE, password TEXT NOT NULL,
            date_created INTEGER NOT NULL, date_updated INTEGER NOT NULL, settings JSON NOT NULL DEFAULT '{}');
        CREATE TABLE websites (hostname TEXT PRIMARY KEY, user_id TEXT NOT NULL, date_created INTEGER,
            date_updated INTEGER, settings JSON NOT NULL DEFAULT '{}', FOREIGN KEY (user_id) REFERENCES users(id));
        INSERT INTO users VALUES ('user_1', 'admin', 'x', 1, 1, '{}');
        INSERT INTO websites VALUES ('example.com', 'user_1', NULL, NULL, '{}');
        """
    )
    conn.close()
    source = fresh_sqlite(path)
    sqlite_to_postgres(source, pg_conn)
    assert pg_conn.execute("SELECT hostname, date_created, date_updated FROM websites").fetchall() == [
        ("example.com", 0, 0)
    ]


def test_both_sides_must_be_at_the_latest_schema(tmp_path: Path, pg_conn: Any, pg_url: str) -> None:
    old = sqlite_db.connect(str(tmp_path / "old.db"))
    sqlite_db.migrate(old, sqlite_meta.MIGRATIONS[:1])
    with pytest.raises(CopyError, match="SQLite app database is at schema version 1"):
        sqlite_to_postgres(old, pg_conn)
    from medama_core.store.postgres import db
    from medama_core.store.postgres.url import parse_url

    unmigrated = db.connect(parse_url(pg_url))
    unmigrated.execute("DROP TABLE medama_schema")
    try:
        with pytest.raises(CopyError, match="PostgreSQL app database is at schema version 0"):
            postgres_to_sqlite(unmigrated, fresh_sqlite(tmp_path / "new.db"))
    finally:
        unmigrated.close()


def test_every_app_data_table_and_column_is_copied(pg_conn: Any) -> None:
    """Adding a column or table to both schemas without adding it to TABLES fails here."""
    sqlite_conn = sqlite_db.connect(":memory:")
    sqlite_db.migrate(sqlite_conn, sqlite_meta.MIGRATIONS)
    listed = {table: set(columns) for table, columns in TABLES}
    in_sqlite = {
        table: {row[1] for row in sqlite_conn.execute(f"PRAGMA table_info({table})")}
        for (table,) in sqlite_conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
    }
    in_postgres: dict[str, set[str]] = {}
    for table, column in pg_conn.execute(
        "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public'"
    ):
        in_postgres.setdefault(table, set()).add(column)
    bookkeeping = {"medama_schema", "meta_changes"}  # per-database state, not app data
    assert {t: c for t, c in in_postgres.items() if t not in bookkeeping} == listed
    assert in_sqlite == listed
