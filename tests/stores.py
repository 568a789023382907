"""Test set-up and checks straight on the stores, whichever engine a server runs (SQLite files, or
PostgreSQL and ClickHouse by URL): rows written before a request, rows looked at after one."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import ModuleType
from typing import Any, Final

from medama_core.store.clickhouse import bulk as ch_bulk
from medama_core.store.clickhouse.client import Client
from medama_core.store.clickhouse.url import parse_url
from medama_core.store.rows import EVENT_COLUMNS, VIEW_COLUMNS
from medama_core.store.sqlite import db, marking, meta

_FLAGS = {"is_unique_user", "is_unique_page", "date_created"}


def is_clickhouse(analyticsdb: str) -> bool:
    return analyticsdb.startswith(("clickhouse://", "clickhouses://"))


def is_postgres(appdb: str) -> bool:
    return appdb.startswith(("postgres://", "postgresql://"))


def _default(column: str) -> object:
    return None if column == "duration_ms" else 0 if column in _FLAGS else ""


@contextmanager
def marked(conn: sqlite3.Connection) -> Iterator[None]:
    """Rows inserted into `views`/`events` inside mark the rollup hours they touch, as the store's writers do
    (store/sqlite/marking.py: no trigger marks them)."""
    since = marking.starts(conn)
    yield
    marking.mark_since(conn, since)


@contextmanager
def clickhouse(analyticsdb: str) -> Iterator[Client]:
    client = Client.connect(parse_url(analyticsdb))
    try:
        yield client
    finally:
        client.close()


def insert_views(analyticsdb: str, rows: Sequence[dict[str, Any]]) -> None:
    """Views (column -> value; columns left out get plain defaults) into the analytics store."""
    if not rows:
        return
    if is_clickhouse(analyticsdb):
        with clickhouse(analyticsdb) as client:
            ch_bulk.insert_views(client, [tuple(row.get(c, _default(c)) for c in VIEW_COLUMNS) for row in rows])
        return
    columns = list(rows[0])
    sql = f"INSERT INTO views ({', '.join(columns)}) VALUES ({', '.join(':' + c for c in columns)})"
    with sqlite3.connect(analyticsdb, timeout=30) as conn, marked(conn):
        conn.executemany(sql, rows)
    conn.close()


def insert_events(analyticsdb: str, rows: Sequence[dict[str, Any]]) -> None:
    """Custom events (EVENT_COLUMNS) into the analytics store."""
    if not rows:
        return
    if is_clickhouse(analyticsdb):
        with clickhouse(analyticsdb) as client:
            ch_bulk.insert_events(client, [tuple(row[c] for c in EVENT_COLUMNS) for row in rows])
        return
    columns = list(rows[0])
    sql = f"INSERT INTO events ({', '.join(columns)}) VALUES ({', '.join(':' + c for c in columns)})"
    with sqlite3.connect(analyticsdb, timeout=30) as conn, marked(conn):
        conn.executemany(sql, rows)
    conn.close()


@contextmanager
def app_store(appdb: str) -> Iterator[tuple[Any, ModuleType]]:
    """(connection, meta module) of the app store: store/sqlite/meta.py's functions on SQLite, store/postgres/meta.py's
    (the same names and arguments) on PostgreSQL; the schema is migrated first, so it works before a start."""
    if is_postgres(appdb):
        from medama_core.store.postgres import db as pg_db
        from medama_core.store.postgres import meta as pg_meta
        from medama_core.store.postgres.url import parse_url as parse_pg_url

        conn = pg_db.connect(parse_pg_url(appdb))
        try:
            pg_db.migrate(conn, pg_meta.MIGRATIONS, pg_meta.COMPONENT)
            yield conn, pg_meta
        finally:
            conn.close()
        return
    sqlite_conn = db.connect(appdb)
    try:
        db.migrate(sqlite_conn, meta.MIGRATIONS)
        yield sqlite_conn, meta
    finally:
        sqlite_conn.close()


# The rows a SQLite `views`, `events` or `drops` holds, as ClickHouse has them: the current state of each view
# (unload pairs collapsed), and the drop counts summed (its SummingMergeTree merges them in the background).
_CURRENT: Final = {
    "views": f"(SELECT {', '.join(VIEW_COLUMNS)} FROM views FINAL WHERE sign = 1)",
    "events": f"(SELECT {', '.join(EVENT_COLUMNS)} FROM events)",
    "drops": "(SELECT day, hostname, reason, sum(count) AS count FROM drops GROUP BY day, hostname, reason)",
}
_TABLE: Final = re.compile(
    r"\b(FROM|JOIN) (views|events|drops)\b(?: (?!(?:WHERE|ORDER|GROUP|JOIN|LIMIT|USING|ON|LEFT|INNER)\b)(\w+))?", re.I
)


def analytics_rows(analyticsdb: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """A SELECT over views, events or drops in SQLite's terms, run on the analytics store of either engine
    (on ClickHouse: `?` parameters are not supported, and each table stands for its current rows)."""
    if not is_clickhouse(analyticsdb):
        conn = sqlite3.connect(analyticsdb)
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()
    assert not params, "analytics_rows takes no parameters on ClickHouse"
    statement = _TABLE.sub(
        lambda m: f"{m.group(1)} {_CURRENT[m.group(2)]} AS {m.group(3) or m.group(2)}",
        sql,
    )
    with clickhouse(analyticsdb) as client:
        return [tuple(row) for row in client.rows(statement)]
