"""PostgreSQL driver benchmark: the app-data queries a node runs most, with each driver on the same server.

Starts a throwaway PostgreSQL 15 (tests/pg_harness.py), migrates the app-data schema,
fills it with 1,000 users and 10,000 sessions, and then, each driver in its own worker
process, runs the same SQL:

  session     the lookup behind every logged-in API call (meta.session_user: sessions JOIN users)
  login       a login's queries: the user by name, then a new session (an INSERT, autocommit)
  session x4  the session lookup on 4 threads, one connection each (what the GIL allows)

over TCP (127.0.0.1) and over the Unix socket, and prints calls/s and the worker's CPU
per call (user + system, which moves less than wall time when other processes share the
machine). Then, with psycopg, the same lookup through the door the API layer uses
(store/postgres/db.Database.read from asyncio: thread hop included), sequential and 16
at a time, beside the SQLite door on a file for scale. Medians of --repeat runs. No
thresholds: the numbers are for reading (the machine is shared).

Drivers: psycopg 3 (its C build, psycopg_binary; and its pure-Python build, which needs
the system libpq), pg8000 (pure Python), psycopg2. A driver that is not installed is
skipped with a note.

Usage: python bench/postgres.py [--calls 5000] [--repeat 3] [--url postgres://...  (an existing, empty database)]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

USERS = 1_000
SESSIONS = 10_000
THREADS = 4
CONCURRENT = 16  # door calls in flight at once, as a dashboard's burst of API calls

SESSION_SQL = (
    "SELECT u.id, u.username, u.password, u.date_created, u.date_updated, u.settings, s.date_expires"
    " FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = %(hash)s"
)
USER_SQL = (
    "SELECT u.id, u.username, u.password, u.date_created, u.date_updated, u.settings"
    " FROM users u WHERE u.username = %(username)s"
)
INSERT_SQL = (
    "INSERT INTO sessions (token_hash, user_id, date_created, date_expires)"
    " VALUES (%(hash)s, %(user_id)s, %(now)s, %(expires)s)"
)
DRIVERS = ("psycopg", "psycopg-python", "pg8000", "psycopg2")


def token(i: int) -> bytes:
    return hashlib.sha256(f"session {i}".encode()).digest()


# Each driver behind one call shape: query(sql, params) -> rows. pg8000's native API takes :name.


def open_driver(name: str, url: str) -> Callable[[], Callable[[str, dict[str, Any]], list[Any]]]:
    parts = urllib.parse.urlsplit(url)
    query = dict(urllib.parse.parse_qsl(parts.query))
    host = query.get("host") or parts.hostname or "127.0.0.1"
    port = parts.port or 5432
    user = urllib.parse.unquote(parts.username or "postgres")
    password = urllib.parse.unquote(parts.password) if parts.password else None
    database = urllib.parse.unquote(parts.path.lstrip("/"))

    if name in ("psycopg", "psycopg-python"):
        import psycopg

        def connect_psycopg() -> Callable[[str, dict[str, Any]], list[Any]]:
            conn = psycopg.connect(host=host, port=port, user=user, password=password, dbname=database, autocommit=True)

            def query(sql: str, params: dict[str, Any]) -> list[Any]:
                cursor = conn.execute(sql, params)
                return cursor.fetchall() if cursor.description else []

            return query

        return connect_psycopg
    if name == "pg8000":
        import pg8000.native

        def connect_pg8000() -> Callable[[str, dict[str, Any]], list[Any]]:
            if host.startswith("/"):
                conn = pg8000.native.Connection(user, unix_sock=f"{host}/.s.PGSQL.{port}", database=database)
            else:
                conn = pg8000.native.Connection(user, host=host, port=port, password=password, database=database)

            def query(sql: str, params: dict[str, Any]) -> list[Any]:
                for key in params:
                    sql = sql.replace(f"%({key})s", f":{key}")
                return conn.run(sql, **params) or []

            return query

        return connect_pg8000
    if name == "psycopg2":
        import psycopg2

        def connect_psycopg2() -> Callable[[str, dict[str, Any]], list[Any]]:
            conn = psycopg2.connect(host=host, port=port, user=user, password=password, dbname=database)
            conn.autocommit = True
            cursor = conn.cursor()

            def query(sql: str, params: dict[str, Any]) -> list[Any]:
                cursor.execute(sql, params)
                return cursor.fetchall() if cursor.description else []

            return query

        return connect_psycopg2
    raise ValueError(name)


def timed(fn: Callable[[], int]) -> tuple[float, float]:
    """(calls per second, CPU microseconds per call) of `fn`, which returns how many calls it made."""
    wall, cpu = time.perf_counter(), time.process_time()
    calls = fn()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return calls / wall, cpu / calls * 1e6


def worker(name: str, url: str, calls: int, run: int) -> dict[str, tuple[float, float]]:
    connect = open_driver(name, url)
    query = connect()
    offset = run * calls * (THREADS + 2)  # new session tokens for each run's logins

    def sessions() -> int:
        for i in range(calls):
            rows = query(SESSION_SQL, {"hash": token(i % SESSIONS)})
            assert len(rows) == 1
        return calls

    def logins() -> int:
        for i in range(calls // 2):
            (user,) = query(USER_SQL, {"username": f"user{i % USERS}"})
            query(INSERT_SQL, {"hash": token(SESSIONS + offset + i), "user_id": user[0], "now": 1, "expires": 2})
        return calls // 2 * 2

    def threaded() -> int:
        queries = [connect() for _ in range(THREADS)]
        threads = [
            threading.Thread(target=lambda q=q: [q(SESSION_SQL, {"hash": token(i % SESSIONS)}) for i in range(calls)])
            for q in queries
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return calls * THREADS

    sessions()  # warm up: prepared statements, caches
    return {"session": timed(sessions), "login": timed(logins), "session x4": timed(threaded)}


def door_worker(url: str, sqlite_path: str, calls: int) -> dict[str, tuple[float, float]]:
    from medama_core.store.postgres import meta, open_meta
    from medama_core.store.sqlite import db as sqlite_db
    from medama_core.store.sqlite import meta as sqlite_meta

    results = {}
    postgres = open_meta(url)
    sqlite = sqlite_db.Database(sqlite_path, sqlite_meta.MIGRATIONS)
    for label, door, module in (("postgres", postgres, meta), ("sqlite", sqlite, sqlite_meta)):

        async def sequential(door: Any = door, module: Any = module) -> int:
            for i in range(calls):
                assert await door.read(module.session_user, token(i % SESSIONS)) is not None
            return calls

        async def concurrent(door: Any = door, module: Any = module) -> int:
            for start in range(0, calls, CONCURRENT):
                await asyncio.gather(
                    *(door.read(module.session_user, token(i % SESSIONS)) for i in range(start, start + CONCURRENT))
                )
            return calls // CONCURRENT * CONCURRENT

        asyncio.run(sequential())
        results[f"door {label}"] = timed(lambda s=sequential: asyncio.run(s()))
        results[f"door {label} x{CONCURRENT}"] = timed(lambda c=concurrent: asyncio.run(c()))
    postgres.close()
    sqlite.close()
    return results


def fill(url: str, sqlite_path: str) -> None:
    """The app-data schema in PostgreSQL (and a SQLite file) with USERS users and SESSIONS sessions."""
    from medama_core.store.postgres import db, meta
    from medama_core.store.postgres.url import parse_url
    from medama_core.store.sqlite import db as sqlite_db
    from medama_core.store.sqlite import meta as sqlite_meta

    conn = db.connect(parse_url(url))
    db.migrate(conn, meta.MIGRATIONS, meta.COMPONENT)
    lite = sqlite_db.connect(sqlite_path)
    sqlite_db.migrate(lite, sqlite_meta.MIGRATIONS)
    with conn.transaction(), sqlite_db.Transaction(lite):
        for i in range(USERS):
            for module, target in ((meta, conn), (sqlite_meta, lite)):
                module.insert_user(target, f"user_{i}", f"user{i}", "scrypt$x", 1)
        for i in range(SESSIONS):
            for module, target in ((meta, conn), (sqlite_meta, lite)):
                module.insert_session(target, token(i), f"user_{i % USERS}", 1, 2_000_000_000)
    conn.execute("VACUUM ANALYZE")
    conn.close()
    lite.close()


def run_worker(args: list[str], env: dict[str, str] | None = None) -> dict[str, Any] | None:
    done = subprocess.run(
        [sys.executable, __file__, *args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=1800
    )
    if done.returncode != 0:
        print(f"note: {' '.join(args[:2])} failed: {done.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
        return None
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def median(runs: list[dict[str, Any]], key: str) -> tuple[float, float]:
    return statistics.median(r[key][0] for r in runs), statistics.median(r[key][1] for r in runs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--calls", type=int, default=5000, help="calls per measurement")
    parser.add_argument("--repeat", type=int, default=3, help="runs per driver; medians are printed")
    parser.add_argument("--url", help="an existing, empty database (default: start a throwaway server)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--sqlite", help=argparse.SUPPRESS)
    parser.add_argument("--run", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker == "door":
        print(json.dumps(door_worker(args.url, args.sqlite, args.calls)))
        return 0
    if args.worker:
        print(json.dumps(worker(args.worker, args.url, args.calls, args.run)))
        return 0

    from tests.pg_harness import postgres_server

    with postgres_server() as server:
        url = args.url or server.create_database("bench")
        socket_url = server.socket_url("bench") if not args.url else None
        sqlite_path = str(server.root / "me_meta.db")
        fill(url, sqlite_path)
        print(f"PostgreSQL {server.psql('SHOW server_version')}, Python {sys.version.split()[0]},")
        print(f"{USERS} users, {SESSIONS} sessions, {args.calls} calls per measurement, median of {args.repeat} runs")
        print(f"{'driver':<16} {'over':<6} {'measurement':<14} {'calls/s':>9} {'CPU us/call':>12}")
        run = 0
        for name in DRIVERS:
            env = dict(os.environ, PSYCOPG_IMPL="python") if name == "psycopg-python" else None
            for over, target in (("tcp", url), ("socket", socket_url)):
                if target is None:
                    continue
                runs = []
                for _ in range(args.repeat):
                    run += 1
                    common = ["--url", target, "--calls", str(args.calls), "--run", str(run)]
                    result = run_worker(["--worker", name, *common], env)
                    if result is None:
                        break
                    runs.append(result)
                for key in runs[0] if runs else ():
                    rate, cpu = median(runs, key)
                    print(f"{name:<16} {over:<6} {key:<14} {rate:>9.0f} {cpu:>12.1f}")
        runs = [
            r
            for r in (
                run_worker(["--worker", "door", "--url", url, "--sqlite", sqlite_path, "--calls", str(args.calls)])
                for _ in range(args.repeat)
            )
            if r is not None
        ]
        print(f"\n{'door (API layer)':<16} {'over':<6} {'measurement':<14} {'calls/s':>9} {'CPU us/call':>12}")
        for key in runs[0] if runs else ():
            rate, cpu = median(runs, key)
            engine, over = ("postgres", "tcp") if "postgres" in key else ("sqlite", "file")
            label = "session" + key.rpartition(engine)[2]
            print(f"{engine:<16} {over:<6} {label:<14} {rate:>9.0f} {cpu:>12.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
