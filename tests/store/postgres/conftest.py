"""Fixtures for the PostgreSQL store: one throwaway server per session, a fresh database per test."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest

from tests.engines import discard
from tests.pg_harness import PostgresServer, Unavailable, start_postgres

_names = itertools.count(1)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    try:
        server = start_postgres()
    except Unavailable as exc:
        pytest.skip(f"PostgreSQL tests need a PostgreSQL server here: {exc}")
    try:
        yield server
    finally:
        server.stop()
        discard(server.root)


@pytest.fixture
def pg_url(pg_server: PostgresServer) -> Iterator[str]:
    """The TCP URL of a new, empty database, dropped after the test."""
    pytest.importorskip("psycopg")
    name = f"test_{next(_names)}"
    yield pg_server.create_database(name)
    pg_server.drop_database(name)


@pytest.fixture
def pg_conn(pg_url: str) -> Iterator[Any]:
    """An autocommit connection to a new database migrated to the latest meta schema."""
    from medama_core.store.postgres import db, meta
    from medama_core.store.postgres.url import parse_url

    conn = db.connect(parse_url(pg_url))
    db.migrate(conn, meta.MIGRATIONS, meta.COMPONENT)
    yield conn
    conn.close()


@pytest.fixture(scope="module")
def pg_module_conn(pg_server: PostgresServer) -> Iterator[Any]:
    """One migrated database for a whole module, for tests that reset it themselves (hypothesis, case tables)."""
    pytest.importorskip("psycopg")
    from medama_core.store.postgres import db, meta
    from medama_core.store.postgres.url import parse_url

    name = f"test_{next(_names)}"
    conn = db.connect(parse_url(pg_server.create_database(name)))
    db.migrate(conn, meta.MIGRATIONS, meta.COMPONENT)
    yield conn
    conn.close()
    pg_server.drop_database(name)
