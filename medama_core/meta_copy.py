"""Copy every app-data row from a SQLite me_meta.db into PostgreSQL, or back: streaming, in one transaction.

Both sides must be at their engine's latest schema (open them with medama, or
`db.migrate`, first). The rows stream through in batches of BATCH_ROWS, and
the target's writes form one transaction: a failure anywhere leaves the target
as it was. The source is read in one snapshot. A target that already holds app
data is refused unless `replace` is given, which deletes its rows first (in the
same transaction). Sessions are copied too, so people stay logged in.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import psycopg

from medama_core.store.postgres import meta
from medama_core.store.postgres.db import Connection, one_line, schema_version
from medama_core.store.sqlite import meta as sqlite_meta
from medama_core.store.sqlite.db import Transaction

# Every app-data table and the columns copied, parents before children (foreign keys). A new column or
# table in both schemas is added here too; a test compares this with both engines' schemas.
TABLES: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "users",
        ("id", "username", "password", "date_created", "date_updated", "settings", "password_is_default", "role"),
    ),
    ("websites", ("hostname", "user_id", "date_created", "date_updated", "settings")),
    ("umami_ids", ("website_id", "hostname")),
    ("site_grants", ("user_id", "hostname")),
    ("tenant_settings", ("key", "value", "date_updated")),
    ("sessions", ("token_hash", "user_id", "date_created", "date_expires")),
    ("website_settings", ("hostname", *meta.SITE_SETTING_FIELDS, "date_updated")),
    ("annotations", ("id", "hostname", "start_date", "end_date", "text", "date_created")),
    ("api_keys", ("id", "user_id", "name", "key_hash", "scope", "date_created", "date_expires", "date_used")),
    ("totp", ("user_id", "secret", "enabled", "last_step", "date_created")),
    ("recovery_codes", ("user_id", "code_hash")),
    (
        "shares",
        ("id", "hostname", "name", "password", "k", "panels", "frame_ancestors", "date_created", "date_expires"),
    ),
    ("goals", ("id", "hostname", "name", "page", "prop_name", "prop_value", "date_created")),
)
UPSTREAM_TABLES = frozenset({"users", "websites", "tenant_settings"})  # the tables the Go server writes too
BATCH_ROWS = 1000  # rows in memory at once: well under a megabyte for these tables


class CopyError(Exception):
    """The copy cannot start or a row cannot be stored; the target is unchanged. The message says why."""


def sqlite_to_postgres(source: sqlite3.Connection, target: Connection, *, replace: bool = False) -> dict[str, int]:
    """Copy all app data from SQLite into PostgreSQL; the rows copied per table."""
    _check_versions(source, target)
    counts: dict[str, int] = {}
    began = not source.in_transaction
    if began:
        source.execute("BEGIN")  # one read snapshot of every table
    try:
        with target.transaction():
            _clear(target, replace, "the PostgreSQL database")
            for table, columns in TABLES:
                counts[table] = 0
                try:
                    with target.cursor().copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                        for row in _sqlite_rows(source, table, columns):
                            copy.write_row(row)
                            counts[table] += 1
                except psycopg.DataError as exc:  # text with a NUL character, which SQLite allows
                    raise CopyError(f"a {table} row cannot be stored in PostgreSQL: {one_line(exc)}") from None
    finally:
        if began:
            source.execute("COMMIT")
    return counts


def postgres_to_sqlite(source: Connection, target: sqlite3.Connection, *, replace: bool = False) -> dict[str, int]:
    """Copy all app data from PostgreSQL into SQLite; the rows copied per table."""
    _check_versions(target, source)
    counts: dict[str, int] = {}
    with source.transaction():
        source.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")  # one snapshot
        with Transaction(target):
            _clear(target, replace, "the SQLite database")
            for table, columns in TABLES:
                insert = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})"
                counts[table] = 0
                with source.cursor(name=f"medama_copy_{table}") as cursor:
                    cursor.execute(f"SELECT {', '.join(columns)} FROM {table} ORDER BY 1")
                    while batch := cursor.fetchmany(BATCH_ROWS):
                        target.executemany(insert, batch)
                        counts[table] += len(batch)
    return counts


def _sqlite_rows(source: sqlite3.Connection, table: str, columns: tuple[str, ...]) -> Iterator[tuple[object, ...]]:
    # A me_meta.db written by the Go server may hold NULL dates (its websites' date columns allow them);
    # ours never do, and PostgreSQL's columns are NOT NULL, so such a date becomes 0 (1970, "unknown").
    # Only upstream's tables: ours mean "never" by a NULL date (a key's or a share's expiry, a key's last use).
    upstream = table in UPSTREAM_TABLES
    selected = ", ".join(f"coalesce({c}, 0)" if upstream and c.startswith("date_") else c for c in columns)
    cursor = source.execute(f"SELECT {selected} FROM {table} ORDER BY 1")
    while batch := cursor.fetchmany(BATCH_ROWS):
        yield from batch


def _check_versions(sqlite_conn: sqlite3.Connection, pg_conn: Connection) -> None:
    want_sqlite = max(m.version for m in sqlite_meta.MIGRATIONS)
    have_sqlite = int(sqlite_conn.execute("PRAGMA user_version").fetchone()[0])
    if have_sqlite != want_sqlite:
        raise CopyError(
            f"the SQLite app database is at schema version {have_sqlite}, not {want_sqlite}: "
            "open it with this medama once so it is migrated"
        )
    want_pg = max(m.version for m in meta.MIGRATIONS)
    have_pg = schema_version(pg_conn, meta.COMPONENT)
    if have_pg != want_pg:
        raise CopyError(
            f"the PostgreSQL app database is at schema version {have_pg}, not {want_pg}: "
            "open it with this medama once so it is migrated"
        )


def _clear(conn: sqlite3.Connection | Connection, replace: bool, name: str) -> None:
    """Refuse a target that holds app data unless `replace`; then delete its rows, children first."""
    if replace:
        for table, _ in reversed(TABLES):
            conn.execute(f"DELETE FROM {table}")
        return
    held = []
    for table, _ in TABLES:
        row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
        if row is not None and row[0]:
            held.append(f"{row[0]} {table}")
    if held:
        raise CopyError(f"{name} already holds app data ({', '.join(held)}); copy into an empty one or replace it")
