"""PostgreSQL connections: options and timeouts, numbered migrations under an advisory lock, and the async door.

Store functions are synchronous and take a `psycopg.Connection` in autocommit mode
(a function that needs several statements to be atomic opens `conn.transaction()`),
like the SQLite store. The event loop reaches them through `Database.read` and
`Database.write`, the same shape as the SQLite door (store/sqlite/db.py): each runs
`fn(conn, *args)` on a worker thread with a pooled connection. Readers' connections
refuse writes (`default_transaction_read_only`), as the SQLite readers' `query_only`.

Unlike SQLite, writes need no single writer: PostgreSQL serialises them itself, and
other nodes write to the same database anyway.

A dropped connection (server restart, failover, idle connection cut by a firewall)
is replaced on the next call. A read that finds its connection dead runs again on a
fresh one. A write is retried only if its connection was found dead before the write
was sent (a ping before any write on a connection idle for a while, or opened before
another connection was found dead); if the connection drops while the write runs,
whether it committed is unknown, so the caller gets `Unavailable` (a 503) rather than
a blind retry.
"""

from __future__ import annotations

import asyncio
import queue
import select
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import psycopg
from psycopg import errors as pg_errors
from psycopg.pq import TransactionStatus

from medama_core.store.door import READ_TIME_LIMIT_S, Migration, QueryTimeout
from medama_core.store.postgres.errors import ConnectFailed, StartupError, Unavailable
from medama_core.store.postgres.url import PostgresURL

T = TypeVar("T")
Connection = psycopg.Connection[Any]

APPLICATION_NAME = "medama"  # shown in pg_stat_activity, so an operator can tell our sessions apart
# A server that has not completed the handshake within 5 s is down for our purposes: start-up fails
# with one line instead of hanging, and a call during an outage gives up (503) instead of piling up.
CONNECT_TIMEOUT_S = 5
STATEMENT_TIMEOUT_S = READ_TIME_LIMIT_S  # as the SQLite readers' limit; app-data statements take milliseconds
LOCK_TIMEOUT_S = 5  # as SQLite's busy timeout: waiting longer on another node's lock gives a 503
# A node frozen or killed mid-transaction releases its locks after this; our transactions take milliseconds.
IDLE_IN_TRANSACTION_TIMEOUT_S = 60
# TCP keepalive: a silently vanished server (no FIN, as after a network partition) is noticed within
# about 30 + 3 x 10 s on an idle connection, and within 30 s when data is waiting for its ACK.
KEEPALIVE_IDLE_S, KEEPALIVE_INTERVAL_S, KEEPALIVE_COUNT = 30, 10, 3
TCP_USER_TIMEOUT_MS = 30_000
# A write's connection that has been idle this long is pinged first (one round trip): a server restart
# or a cut idle connection is then found before the write is sent, and the write goes to a fresh one.
IDLE_CHECK_S = 5.0
# After a failed connect, calls fail fast for this long instead of each waiting up to CONNECT_TIMEOUT_S.
RECONNECT_PAUSE_S = 1.0
# Migrations: the advisory lock every node takes before reading the schema version, so two nodes
# starting at once apply each migration once. "medama" in ASCII, unlikely to clash with other apps'.
MIGRATION_LOCK_KEY = 0x6D6564616D61
MIGRATION_WAIT_S = 300  # another node may hold the lock while it migrates; a meta migration takes seconds
SCHEMA_TABLE = "medama_schema"  # one row per set of migrations (component): its version


def one_line(exc: BaseException) -> str:
    """A driver error as one line: libpq's multi-line messages joined, its `connection failed:` prefix dropped."""
    text = " ".join(str(exc).split())
    return text.removeprefix("connection failed: ") or type(exc).__name__


def connect(url: PostgresURL, *, read_only: bool = False) -> Connection:
    """An autocommit connection with our timeouts (the URL's `options` are added after ours, so they win)."""
    kwargs: dict[str, Any] = url.connect_kwargs()
    options = [
        f"-c statement_timeout={int(STATEMENT_TIMEOUT_S * 1000)}",
        f"-c lock_timeout={LOCK_TIMEOUT_S * 1000}",
        f"-c idle_in_transaction_session_timeout={IDLE_IN_TRANSACTION_TIMEOUT_S * 1000}",
    ]
    if read_only:
        options.append("-c default_transaction_read_only=on")
    if url.param("options"):
        options.append(kwargs["options"])
    kwargs["options"] = " ".join(options)
    kwargs.setdefault("connect_timeout", CONNECT_TIMEOUT_S)
    kwargs.setdefault("application_name", APPLICATION_NAME)
    if not url.is_socket:
        kwargs |= {
            "keepalives": 1,
            "keepalives_idle": KEEPALIVE_IDLE_S,
            "keepalives_interval": KEEPALIVE_INTERVAL_S,
            "keepalives_count": KEEPALIVE_COUNT,
            "tcp_user_timeout": TCP_USER_TIMEOUT_MS,
        }
    conn: Connection = psycopg.connect(autocommit=True, **kwargs)
    return conn


def migrate(conn: Connection, migrations: Sequence[Migration], component: str) -> int:
    """Apply `component`'s migrations newer than its recorded version, each atomically; return the new version.

    Every node runs this at start: the advisory lock makes a second node wait until the
    first is done, then find nothing left to do. A failed migration is rolled back with
    its version bump and the error propagates: the schema stays at the last good step.
    A schema newer than `migrations` (a newer node migrated first) is left as it is.
    """
    conn.execute("SELECT set_config('lock_timeout', %s, false)", (str(MIGRATION_WAIT_S * 1000),))
    conn.execute("SELECT set_config('statement_timeout', '0', false)")
    conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_KEY,))
    try:
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS {SCHEMA_TABLE} ("
            " component text PRIMARY KEY, version integer NOT NULL, date_updated bigint NOT NULL)"
        )
        row = conn.execute(f"SELECT version FROM {SCHEMA_TABLE} WHERE component = %s", (component,)).fetchone()
        current = int(row[0]) if row else 0
        for migration in sorted(migrations, key=lambda m: m.version):
            if migration.version <= current:
                continue
            with conn.transaction():
                for statement in migration.statements:
                    conn.execute(statement)
                conn.execute(
                    f"INSERT INTO {SCHEMA_TABLE} (component, version, date_updated) VALUES (%s, %s, %s)"
                    " ON CONFLICT (component) DO UPDATE SET version = excluded.version,"
                    " date_updated = excluded.date_updated",
                    (component, migration.version, int(time.time())),
                )
            current = migration.version
        return current
    finally:
        if not conn.closed:
            conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_KEY,))
            conn.execute("RESET lock_timeout")
            conn.execute("RESET statement_timeout")


def schema_version(conn: Connection, component: str) -> int:
    """The recorded version of `component`'s schema; 0 before its first migration."""
    exists = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (SCHEMA_TABLE,)).fetchone()
    if not exists or not exists[0]:
        return 0
    row = conn.execute(f"SELECT version FROM {SCHEMA_TABLE} WHERE component = %s", (component,)).fetchone()
    return int(row[0]) if row else 0


@dataclass
class _Slot:
    """A pooled connection, the connection epoch it was opened in, and when it was last returned."""

    conn: Connection
    epoch: int
    last_used: float


def _has_input(conn: Connection) -> bool:
    """True if an idle connection has bytes waiting (it is idle: normally nothing is owed) or is at EOF."""
    try:
        readable, _, _ = select.select([conn.fileno()], [], [], 0)
    except (OSError, ValueError, psycopg.Error):
        return True
    return bool(readable)


class _Pool:
    """Idle connections of one kind (read-only or not); a worker takes one per call and gives it back."""

    def __init__(self, url: PostgresURL, *, read_only: bool, capacity: int) -> None:
        self.url = url
        self.read_only = read_only
        self.capacity = capacity
        self.closed = False
        self._idle: queue.LifoQueue[_Slot] = queue.LifoQueue()  # the most recent is the likeliest alive
        self._down_until = 0.0  # monotonic time before which a new connection is not even tried

    def acquire(self, epoch: int) -> _Slot:
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            pass
        if time.monotonic() < self._down_until:
            raise Unavailable(f"PostgreSQL at {self.url.describe()} is unreachable; retrying shortly")
        try:
            conn = connect(self.url, read_only=self.read_only)
        except psycopg.Error as exc:
            self._down_until = time.monotonic() + RECONNECT_PAUSE_S
            raise Unavailable(f"cannot connect to PostgreSQL at {self.url.describe()}: {one_line(exc)}") from None
        return _Slot(conn, epoch, time.monotonic())

    def release(self, slot: _Slot) -> None:
        conn = slot.conn
        if not conn.closed and conn.info.transaction_status != TransactionStatus.IDLE:
            try:
                conn.rollback()  # a function left a transaction open: never hand it to the next caller
            except psycopg.Error:
                conn.close()
        if conn.closed or conn.broken or self.closed or self._idle.qsize() >= self.capacity:
            conn.close()
            return
        slot.last_used = time.monotonic()
        self._idle.put(slot)

    def trim(self, capacity: int) -> None:
        """Keep at most `capacity` connections from now on, closing idle ones beyond it."""
        self.capacity = capacity
        while self._idle.qsize() > capacity:
            try:
                self._idle.get_nowait().conn.close()
            except queue.Empty:
                return

    def close(self) -> None:
        self.closed = True
        self.trim(0)


class Database:
    """A PostgreSQL database behind worker threads: `read` on read-only connections, `write` on the others."""

    def __init__(
        self,
        url: PostgresURL,
        migrations: Sequence[Migration],
        *,
        component: str,
        readers: int = 2,
        writers: int = 2,
    ) -> None:
        self.url = url
        self.readers = readers
        self.writers = writers
        self._epoch = 0  # bumped whenever a connection is found dead: older connections are then checked first
        self._epoch_lock = threading.Lock()
        try:
            conn = connect(url)
        except psycopg.Error as exc:
            raise ConnectFailed(f"cannot connect to PostgreSQL at {url.describe()}: {one_line(exc)}") from None
        try:
            self.version = migrate(conn, migrations, component)
        except psycopg.Error as exc:
            conn.close()
            raise StartupError(f"migrating the PostgreSQL schema at {url.describe()} failed: {one_line(exc)}") from exc
        self._write_pool = _Pool(url, read_only=False, capacity=writers)
        self._write_pool.release(_Slot(conn, self._epoch, time.monotonic()))
        self._read_pool = _Pool(url, read_only=True, capacity=readers)
        self._writer = ThreadPoolExecutor(max_workers=writers, thread_name_prefix="write-postgres")
        self._reader = ThreadPoolExecutor(max_workers=readers, thread_name_prefix="read-postgres")
        self.closed = False

    def configure(self, *, readers: int | None = None, cache_kib: int | None = None) -> None:
        """As the SQLite door's: change the reader-thread count. The cache is the server's, so `cache_kib` is unused."""
        if readers is not None and readers != self.readers:
            old = self._reader
            self._reader = ThreadPoolExecutor(max_workers=readers, thread_name_prefix="read-postgres")
            self._read_pool.trim(readers)
            self.readers = readers
            old.shutdown(wait=False)

    async def write(self, fn: Callable[..., T], /, *args: object) -> T:
        """Run `fn(conn, *args)` on a writer thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._writer, self._run, self._write_pool, fn, args)

    async def read(self, fn: Callable[..., T], /, *args: object) -> T:
        """Run `fn(conn, *args)` on a reader thread with a read-only connection."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._reader, self._run, self._read_pool, fn, args)

    def call(self, fn: Callable[..., T], /, *args: object) -> T:
        """Run `fn(conn, *args)` on a writer thread and wait for it: for start-up code outside the event loop."""
        return self._writer.submit(self._run, self._write_pool, fn, args).result()

    def _run(self, pool: _Pool, fn: Callable[..., T], args: tuple[object, ...]) -> T:
        for attempt in range(2):
            slot = self._acquire_live(pool)
            try:
                result = fn(slot.conn, *args)
            except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
                if slot.conn.closed or slot.conn.broken:
                    pool.release(slot)
                    self._connection_lost()
                    if pool.read_only and attempt == 0:
                        continue  # nothing was written: run the read again on a fresh connection
                    lost = "a read" if pool.read_only else "a write, which may or may not have been saved"
                    raise Unavailable(f"the connection to PostgreSQL dropped during {lost} ({one_line(exc)})") from None
                pool.release(slot)
                if isinstance(exc, pg_errors.QueryCanceled):
                    raise QueryTimeout(f"the database did not answer within {STATEMENT_TIMEOUT_S:g} s") from None
                if isinstance(exc, pg_errors.LockNotAvailable):
                    raise QueryTimeout(f"the database was busy: a lock was held for over {LOCK_TIMEOUT_S} s") from None
                raise
            except BaseException:
                pool.release(slot)
                raise
            pool.release(slot)
            return result
        raise Unavailable(f"the connection to PostgreSQL at {self.url.describe()} keeps dropping")

    def _acquire_live(self, pool: _Pool) -> _Slot:
        """A pooled connection not known to be dead (each dead idle one found is dropped), or a new one."""
        while True:
            slot = pool.acquire(self._epoch)
            if self._alive(slot, pool.read_only):
                return slot
            pool.release(slot)  # closed by `_alive`, so not pooled again

    def _alive(self, slot: _Slot, read_only: bool) -> bool:
        """False if a connection that may be stale fails a ping; it is then closed.

        Stale: the server has sent something while it sat idle (a restart, failover or
        pg_terminate_backend sends a FATAL message before closing: readable at no cost), or
        it was opened before some connection was found dead (a restart kills them all), or,
        for a write, it has been idle for IDLE_CHECK_S (a cut that sent nothing). Reads skip
        that last check: they can be run again.
        """
        fresh = slot.epoch == self._epoch and (read_only or time.monotonic() - slot.last_used < IDLE_CHECK_S)
        if fresh and not _has_input(slot.conn):
            return True
        try:
            slot.conn.execute("SELECT 1")
        except (psycopg.OperationalError, psycopg.InterfaceError):
            if slot.conn.closed or slot.conn.broken:
                slot.conn.close()
                self._connection_lost()
                return False
            raise
        slot.epoch = self._epoch
        return True

    def _connection_lost(self) -> None:
        with self._epoch_lock:
            self._epoch += 1

    def close(self) -> None:
        """Finish queued work, then close every connection."""
        if self.closed:
            return
        self.closed = True
        self._reader.shutdown(wait=True)
        self._writer.shutdown(wait=True)
        self._read_pool.close()
        self._write_pool.close()


def database_size(conn: Connection) -> int:
    """Bytes the connection's database takes on the server's disk (pg_database_size: tables, indexes, TOAST)."""
    row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
    assert row is not None  # one row, always
    return int(row[0])


def open_connection(url: PostgresURL, migrations: Sequence[Migration], component: str) -> Connection:
    """One migrated autocommit connection, for a command-line tool: ConnectFailed or StartupError (one line)."""
    try:
        conn = connect(url)
    except psycopg.Error as exc:
        raise ConnectFailed(f"cannot connect to PostgreSQL at {url.describe()}: {one_line(exc)}") from None
    try:
        migrate(conn, migrations, component)
    except psycopg.Error as exc:
        conn.close()
        raise StartupError(f"migrating the PostgreSQL schema at {url.describe()} failed: {one_line(exc)}") from exc
    return conn
