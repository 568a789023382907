"""One SQLite file: connections, pragmas, numbered migrations, and the async door to its threads.

Store functions everywhere are synchronous and take a `sqlite3.Connection`.
The event loop reaches them only through `Database.write` (one writer thread,
so writes are serialised without locks) and `Database.read` (a small pool of
reader threads, each with its own connection; WAL lets them read while the
writer commits).
"""

from __future__ import annotations

import asyncio
import math
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import ParamSpec, TypeVar

from medama_core.store.files import create_private

P = ParamSpec("P")
T = TypeVar("T")

BUSY_TIMEOUT_MS = 5000  # how long a connection waits on another process's lock before SQLITE_BUSY
DEFAULT_READERS = 2  # one per core on the 2-core machines we target; reads are CPU-bound
CACHE_SIZE_KIB = 8 * 1024  # page cache per connection; larger measured no faster and costs RSS on small VMs
# How long one read may run before it is interrupted (QueryTimeout, a 503 for the client). A raw scan of
# 90 days at 10 M views takes 1-2 s (docs/storage.md); a read still running after 10x that is a
# pathological query, and it holds one of the DEFAULT_READERS threads every dashboard call queues for.
READ_TIME_LIMIT_S = 15.0
# SQLite virtual-machine steps between two looks at the clock: about a millisecond of work, so a
# runaway query stops within a few ms of its limit and the check costs well under 1%.
PROGRESS_STEPS = 10_000


class QueryTimeout(Exception):
    """A read ran past READ_TIME_LIMIT_S and was interrupted; the database is unharmed."""


def is_disk_full(exc: BaseException) -> bool:
    """True for SQLite's "database or disk is full" (SQLITE_FULL), whatever statement hit it."""
    code = getattr(exc, "sqlite_errorcode", None)
    return isinstance(exc, sqlite3.Error) and code is not None and code & 0xFF == sqlite3.SQLITE_FULL


@dataclass(frozen=True)
class Migration:
    """One schema step: its statements run in a single transaction with the version bump."""

    version: int
    statements: tuple[str, ...]


def connect(path: str, *, readonly: bool = False) -> sqlite3.Connection:
    """Open a connection in autocommit mode (we issue BEGIN ourselves) with our pragmas."""
    if path != ":memory:":
        create_private(path)  # 0600 before SQLite writes a byte; its -wal and -shm take the same mode
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute(f"PRAGMA cache_size = -{CACHE_SIZE_KIB}")
    conn.execute("PRAGMA foreign_keys = ON")
    if path != ":memory:" and not readonly:
        conn.execute("PRAGMA journal_mode = WAL")
        # In WAL mode, NORMAL loses no committed transaction on a process crash (kill -9); only an
        # OS crash or power loss can roll back the last transactions. FULL would fsync every commit.
        conn.execute("PRAGMA synchronous = NORMAL")
    if readonly:
        conn.execute("PRAGMA query_only = ON")
    return conn


def migrate(conn: sqlite3.Connection, migrations: Sequence[Migration]) -> int:
    """Apply the migrations newer than `PRAGMA user_version`, each atomically; return the new version.

    If a statement fails, that migration's changes are rolled back, the version is
    not bumped and the error propagates: the database stays at the last good step.
    """
    current: int = conn.execute("PRAGMA user_version").fetchone()[0]
    for migration in sorted(migrations, key=lambda m: m.version):
        if migration.version <= current:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in migration.statements:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {int(migration.version)}")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        current = migration.version
    return current


class Transaction:
    """`with Transaction(conn):` runs the block in BEGIN IMMEDIATE … COMMIT, rolling back on error."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            try:
                self.conn.execute("COMMIT")
            except BaseException:
                # A COMMIT that failed (disk full, I/O error) can leave the transaction open, and
                # then every later BEGIN on this connection would fail: end it here.
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                raise
        elif self.conn.in_transaction:
            self.conn.execute("ROLLBACK")


class Database:
    """A SQLite file with one writer thread and a pool of reader threads."""

    def __init__(self, path: str, migrations: Sequence[Migration], *, readers: int = DEFAULT_READERS) -> None:
        if path == ":memory:":
            raise ValueError("Database needs a file: reader threads cannot share an in-memory database")
        self.path = path
        self.writer_conn = connect(path)
        self.version = migrate(self.writer_conn, migrations)
        self._local = threading.local()
        self._reader_conns: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"write-{os.path.basename(path)}")
        self._readers = ThreadPoolExecutor(max_workers=readers, thread_name_prefix=f"read-{os.path.basename(path)}")
        self.readers = readers
        self.cache_kib = CACHE_SIZE_KIB  # each thread applies a change to its own connection on its next call
        self._writer_cache_kib = CACHE_SIZE_KIB
        self.closed = False

    def configure(self, *, readers: int | None = None, cache_kib: int | None = None) -> None:
        """Change the reader-thread count and the per-connection page cache at run time.

        Call from the event loop thread. Work already queued finishes on the old readers.
        """
        if cache_kib is not None:
            self.cache_kib = cache_kib
        if readers is not None and readers != self.readers:
            old = self._readers
            name = f"read-{os.path.basename(self.path)}"
            self._readers = ThreadPoolExecutor(max_workers=readers, thread_name_prefix=name)
            self.readers = readers
            old.shutdown(wait=False)

    async def write(self, fn: Callable[..., T], /, *args: object) -> T:
        """Run `fn(conn, *args)` on the writer thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._writer, self._call_writer, fn, args)

    async def read(self, fn: Callable[..., T], /, *args: object) -> T:
        """Run `fn(conn, *args)` on a reader thread with a read-only connection."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._readers, self._call_reader, fn, args)

    def _call_reader(self, fn: Callable[..., T], args: tuple[object, ...]) -> T:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.path, readonly=True)
            deadline = self._local.deadline = [math.inf]  # monotonic time the current read must end by
            conn.set_progress_handler(lambda: time.monotonic() > deadline[0], PROGRESS_STEPS)
            self._local.conn = conn
            with self._lock:
                self._reader_conns.append(conn)
        if getattr(self._local, "cache_kib", CACHE_SIZE_KIB) != self.cache_kib:
            self._local.cache_kib = _set_cache_size(conn, self.cache_kib)
        limit = READ_TIME_LIMIT_S
        self._local.deadline[0] = time.monotonic() + limit
        try:
            return fn(conn, *args)
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode == sqlite3.SQLITE_INTERRUPT:
                raise QueryTimeout(
                    f"the query took longer than {limit:g} s and was stopped; narrow the date range or filters"
                ) from None
            raise
        finally:
            self._local.deadline[0] = math.inf

    def _call_writer(self, fn: Callable[..., T], args: tuple[object, ...]) -> T:
        if self._writer_cache_kib != self.cache_kib:
            self._writer_cache_kib = _set_cache_size(self.writer_conn, self.cache_kib)
        return fn(self.writer_conn, *args)

    def close(self) -> None:
        """Finish queued work, then close every connection (checkpointing the WAL)."""
        if self.closed:
            return
        self.closed = True
        self._readers.shutdown(wait=True)
        self._writer.shutdown(wait=True)
        with self._lock:
            for conn in self._reader_conns:
                conn.close()
        try:
            self.writer_conn.execute("PRAGMA optimize")
        except sqlite3.Error:
            pass
        self.writer_conn.close()


def _set_cache_size(conn: sqlite3.Connection, cache_kib: int) -> int:
    """Run on the thread that owns `conn`; returns the value set."""
    conn.execute(f"PRAGMA cache_size = -{int(cache_kib)}")
    return cache_kib
