"""The PostgreSQL door: start-up errors in one line, migrations, the thread pools, timeouts and reconnection."""

from __future__ import annotations

import asyncio
import inspect
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from medama_core.store.door import Migration, QueryTimeout
from medama_core.store.postgres import open_meta
from medama_core.store.postgres.errors import BadURL, ConnectFailed, StartupError, Unavailable
from medama_core.store.postgres.url import parse_url
from tests.pg_harness import PASSWORD, PostgresServer, start_postgres
from tests.pg_harness import Unavailable as NoServer

psycopg = pytest.importorskip("psycopg")

from medama_core.store.postgres import db, meta  # noqa: E402
from medama_core.store.postgres.db import Database  # noqa: E402

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def database(pg_url: str) -> Iterator[Database]:
    opened = open_meta(pg_url)
    yield opened
    opened.close()


def schema_dump(conn: Any) -> list[tuple[Any, ...]]:
    """Every column, index, trigger and recorded version: enough to tell two schemas apart."""
    columns = conn.execute(
        "SELECT table_name, column_name, data_type, is_nullable, column_default, collation_name"
        " FROM information_schema.columns WHERE table_schema = 'public' ORDER BY 1, 2"
    ).fetchall()
    indexes = conn.execute("SELECT indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1").fetchall()
    triggers = conn.execute("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal ORDER BY 1").fetchall()
    versions = conn.execute("SELECT component, version FROM medama_schema ORDER BY 1").fetchall()
    return [*columns, *indexes, *triggers, *versions]


# Start-up: every way to fail is one line, and says what to fix.


@pytest.mark.parametrize(
    ("make_url", "message"),
    [
        (lambda s: s.url("postgres", password="wrong"), 'password authentication failed for user "postgres"'),
        (lambda s: s.url("no_such_db"), 'database "no_such_db" does not exist'),
        (lambda s: "postgres://postgres@127.0.0.1:1/x", "Connection refused"),
        (lambda s: "postgres://postgres@no-such-host.invalid/x", "no-such-host.invalid"),
        (lambda s: s.url("postgres") + "?sslmode=require", "SSL"),
        (lambda s: s.url("postgres") + "?sslmode=sometimes", "sslmode"),
        (lambda s: s.url("postgres").replace("postgres://", "postgres://x%zz"), "hex digits"),
    ],
    ids=["wrong password", "no database", "refused", "unknown host", "no TLS", "bad sslmode", "bad escape"],
)
def test_start_up_failures_are_one_clear_line(pg_server: PostgresServer, make_url: Any, message: str) -> None:
    with pytest.raises(StartupError) as caught:
        open_meta(make_url(pg_server))
    text = str(caught.value)
    assert message in text and "\n" not in text and PASSWORD not in text and "wrong" not in text
    assert isinstance(caught.value, (BadURL, ConnectFailed))


def test_a_missing_driver_is_one_line_naming_the_package_and_sqlite_never_needs_it() -> None:
    """Run with psycopg unimportable: the URL parser works, opening says what to install."""
    script = """
import sys
sys.modules["psycopg"] = None  # as if not installed
import medama_core.store.postgres as postgres
from medama_core.store.sqlite import meta, db
postgres.parse_url("postgres://h/d")
try:
    postgres.open_meta("postgres://h/d")
except postgres.driver.DriverMissing as exc:
    print(exc)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("\n") == 1 and "pip install 'psycopg[binary]'" in done.stdout


def test_socket_url_connects(pg_server: PostgresServer, pg_url: str) -> None:
    name = parse_url(pg_url).database
    assert name is not None
    opened = open_meta(pg_server.socket_url(name))
    try:
        assert opened.version == max(m.version for m in meta.MIGRATIONS)
        assert opened.call(meta.count_users) == 0
    finally:
        opened.close()


# Migrations.


def test_migrations_are_idempotent(pg_url: str) -> None:
    url = parse_url(pg_url)
    conn = db.connect(url)
    try:
        latest = max(m.version for m in meta.MIGRATIONS)
        assert db.schema_version(conn, meta.COMPONENT) == 0
        assert db.migrate(conn, meta.MIGRATIONS, meta.COMPONENT) == latest
        schema = schema_dump(conn)
        assert db.migrate(conn, meta.MIGRATIONS, meta.COMPONENT) == latest
        assert schema_dump(conn) == schema
        assert db.schema_version(conn, meta.COMPONENT) == latest
    finally:
        conn.close()


def test_two_nodes_migrating_at_once_apply_each_migration_once(pg_url: str) -> None:
    """The advisory lock: the second node waits for the first, then finds nothing to do."""
    migrations = (
        Migration(1, ("CREATE TABLE applied (node text)",)),
        Migration(2, ("SELECT pg_sleep(0.3)", "INSERT INTO applied VALUES (current_setting('application_name'))")),
    )
    conns = [db.connect(parse_url(pg_url)) for _ in range(4)]
    start = threading.Barrier(len(conns))
    results: list[int] = []

    def node(conn: Any) -> None:
        start.wait()
        results.append(db.migrate(conn, migrations, "race"))

    threads = [threading.Thread(target=node, args=(conn,)) for conn in conns]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert results == [2, 2, 2, 2]
        assert conns[0].execute("SELECT count(*) FROM applied").fetchone()[0] == 1
        # The lock is released and the timeouts are back to the connection's own.
        assert conns[0].execute("SELECT pg_try_advisory_lock(%s)", (db.MIGRATION_LOCK_KEY,)).fetchone()[0]
        assert conns[1].execute("SHOW lock_timeout").fetchone()[0] == f"{db.LOCK_TIMEOUT_S}s"
    finally:
        for conn in conns:
            conn.close()


def test_a_failed_migration_rolls_back_and_stays_pending(pg_url: str) -> None:
    conn = db.connect(parse_url(pg_url))
    broken = (Migration(1, ("CREATE TABLE a (x int)",)), Migration(2, ("CREATE TABLE b (x int)", "NOT SQL")))
    try:
        with pytest.raises(psycopg.errors.SyntaxError):
            db.migrate(conn, broken, "broken")
        tables = {row[0] for row in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
        assert tables == {"a", "medama_schema"} and db.schema_version(conn, "broken") == 1
        assert conn.execute("SELECT pg_try_advisory_lock(%s)", (db.MIGRATION_LOCK_KEY,)).fetchone()[0]
    finally:
        conn.close()


def test_a_failed_migration_at_start_is_one_line(pg_url: str) -> None:
    with pytest.raises(StartupError) as caught:
        Database(parse_url(pg_url), (Migration(1, ("NOT SQL",)),), component="broken")
    assert "migrating the PostgreSQL schema" in str(caught.value) and "\n" not in str(caught.value)


def test_a_schema_newer_than_the_code_is_left_alone(pg_url: str) -> None:
    """A node of the previous release restarting after a newer one migrated keeps working (rolling upgrades)."""
    conn = db.connect(parse_url(pg_url))
    try:
        db.migrate(conn, (*meta.MIGRATIONS, Migration(99, ("ALTER TABLE users ADD COLUMN extra text",))), "meta")
        assert db.migrate(conn, meta.MIGRATIONS, "meta") == 99
        meta.insert_user(conn, "user_a", "alice", "h", 1)
        assert meta.get_user(conn, "user_a") is not None
    finally:
        conn.close()


# The door.


def test_read_and_write_run_store_functions_on_worker_threads(database: Database) -> None:
    async def scenario() -> tuple[Any, ...]:
        await database.write(meta.insert_user, "user_a", "alice", "h1", 100)
        await database.write(meta.insert_website, "a.example", "user_a", 100)
        user = await database.read(meta.get_user_by_username, "alice")
        hostnames = await database.read(meta.list_hostnames)
        threads = await asyncio.gather(*(database.read(lambda c: threading.current_thread().name) for _ in range(8)))
        return user, hostnames, set(threads)

    user, hostnames, threads = asyncio.run(scenario())
    assert user is not None and user.username == "alice" and hostnames == ["a.example"]
    assert all(name.startswith("read-postgres") for name in threads) and len(threads) <= database.readers


def test_readers_cannot_write(database: Database) -> None:
    with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        asyncio.run(database.read(meta.insert_user, "user_a", "alice", "h1", 100))
    assert database.call(meta.count_users) == 0


def test_a_transaction_left_open_is_rolled_back_before_the_connection_is_reused(database: Database) -> None:
    def leave_open(conn: Any) -> None:
        conn.execute("BEGIN")
        meta.insert_user(conn, "user_a", "alice", "h1", 100)

    database.call(leave_open)
    assert database.call(lambda conn: conn.info.transaction_status) == psycopg.pq.TransactionStatus.IDLE
    assert database.call(meta.count_users) == 0


def test_timeouts_become_query_timeout(database: Database, pg_url: str) -> None:
    def slow_read(conn: Any) -> None:
        with conn.transaction():
            conn.execute("SET LOCAL statement_timeout = 50")
            conn.execute("SELECT pg_sleep(5)")

    with pytest.raises(QueryTimeout, match="did not answer"):
        asyncio.run(database.read(slow_read))

    other = db.connect(parse_url(pg_url))
    try:
        database.call(meta.set_setting, "k", "v", 1)
        with other.transaction():
            other.execute("SELECT * FROM tenant_settings FOR UPDATE")

            def blocked_write(conn: Any) -> None:
                with conn.transaction():
                    conn.execute("SET LOCAL lock_timeout = 50")
                    meta.set_setting(conn, "k", "w", 2)

            with pytest.raises(QueryTimeout, match="busy"):
                asyncio.run(database.write(blocked_write))
    finally:
        other.close()
    assert asyncio.run(database.read(meta.get_settings)) == {"k": "v"}  # the pool is still usable


def terminate_all(pg_server: PostgresServer, pg_url: str) -> None:
    """What a server restart or failover does to our connections."""
    name = parse_url(pg_url).database
    # With a timeout, pg_terminate_backend waits for each backend to exit (its FATAL message sent).
    pg_server.psql(f"SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE datname = '{name}'")


def test_dropped_connections_are_replaced(database: Database, pg_server: PostgresServer, pg_url: str) -> None:
    async def warm() -> None:  # every pooled connection opened and idle
        await asyncio.gather(*(database.read(meta.count_users) for _ in range(4)))
        await asyncio.gather(*(database.write(meta.count_users) for _ in range(4)))

    asyncio.run(warm())
    terminate_all(pg_server, pg_url)
    assert asyncio.run(database.read(meta.count_users)) == 0  # found dead, run again on a fresh connection
    # The read's discovery marks every older connection suspect: the write pings first and reconnects.
    asyncio.run(database.write(meta.insert_user, "user_a", "alice", "h1", 100))
    terminate_all(pg_server, pg_url)
    # Just used, so no idle check: the server's goodbye waiting on the socket tells the write to reconnect.
    asyncio.run(database.write(meta.insert_user, "user_b", "bob", "h2", 100))
    assert database.call(meta.count_users) == 2


def test_a_write_whose_connection_drops_midway_is_reported_not_retried(database: Database) -> None:
    calls: list[int] = []

    def dies_midway(conn: Any) -> None:
        calls.append(1)
        meta.insert_user(conn, f"user_{len(calls)}", f"u{len(calls)}", "h", 100)
        conn.execute("SELECT pg_terminate_backend(pg_backend_pid())")

    with pytest.raises(Unavailable, match="may or may not have been saved"):
        asyncio.run(database.write(dies_midway))
    assert calls == [1] and database.call(meta.count_users) == 1


def test_a_read_whose_connection_drops_runs_once_more(database: Database) -> None:
    calls: list[int] = []

    def dies_once(conn: Any) -> int:
        calls.append(1)
        if len(calls) == 1:
            conn.execute("SELECT pg_terminate_backend(pg_backend_pid())")
        return meta.count_users(conn)

    assert asyncio.run(database.read(dies_once)) == 0 and len(calls) == 2


@pytest.fixture
def own_server() -> Iterator[PostgresServer]:
    try:
        server = start_postgres()
    except NoServer as exc:
        pytest.skip(str(exc))
    yield server
    server.stop()
    shutil.rmtree(server.root, ignore_errors=True)


def test_a_server_restart_gives_503s_then_service_resumes(own_server: PostgresServer) -> None:
    opened = open_meta(own_server.url())
    try:
        opened.call(meta.insert_user, "user_a", "alice", "h1", 100)
        own_server.stop(mode="fast")  # a clean shutdown, as a restart or failover: nothing committed is lost
        for call in (lambda: opened.call(meta.count_users), lambda: asyncio.run(opened.read(meta.count_users))):
            with pytest.raises(Unavailable):
                call()
        with pytest.raises(Unavailable, match="unreachable|cannot connect"):  # fails fast while down
            asyncio.run(opened.read(meta.count_users))
        own_server.start()
        asyncio.run(asyncio.sleep(db.RECONNECT_PAUSE_S))
        assert asyncio.run(opened.read(meta.count_users)) == 1
        assert opened.call(meta.count_users) == 1
    finally:
        opened.close()


def test_close_closes_every_connection(pg_server: PostgresServer, pg_url: str) -> None:
    opened = open_meta(pg_url)
    asyncio.run(opened.read(meta.count_users))
    asyncio.run(opened.write(meta.count_users))
    opened.close()
    name = parse_url(pg_url).database
    deadline = time.monotonic() + 5  # a backend exits a moment after its client closes
    while pg_server.psql(f"SELECT count(*) FROM pg_stat_activity WHERE datname = '{name}'") != "0":
        assert time.monotonic() < deadline, "connections left open"
        time.sleep(0.05)


def test_the_door_has_the_sqlite_doors_shape(database: Database) -> None:
    """read, write, configure and close take what the SQLite door's take, so the API layer can hold either."""
    from medama_core.store.sqlite import db as sqlite_db

    for name in ("read", "write", "configure", "close"):
        ours = inspect.signature(getattr(Database, name))
        theirs = inspect.signature(getattr(sqlite_db.Database, name))
        assert ours == theirs, name
    assert isinstance(database.readers, int) and database.version == max(m.version for m in meta.MIGRATIONS)


def test_configure_changes_the_reader_count(database: Database) -> None:
    async def reads() -> set[int]:
        pids = await asyncio.gather(*(database.read(lambda c: c.info.backend_pid) for _ in range(12)))
        return set(pids)

    assert len(asyncio.run(reads())) <= 2
    database.configure(readers=1, cache_kib=1024)  # the cache is the server's: accepted, unused
    assert database.readers == 1
    assert len(asyncio.run(reads())) == 1
