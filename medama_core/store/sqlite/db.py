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
import pwd
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Final, ParamSpec, TypeVar

from medama_core.store.door import CACHE_SIZE_KIB as CACHE_SIZE_KIB
from medama_core.store.door import READ_TIME_LIMIT_S as READ_TIME_LIMIT_S
from medama_core.store.door import SQLITE_INTERRUPT, error_code
from medama_core.store.door import Migration as Migration
from medama_core.store.door import QueryTimeout as QueryTimeout
from medama_core.store.door import is_disk_full as is_disk_full
from medama_core.store.files import create_private, make_private_dirs
from medama_core.store.sqlite import malloc
from medama_core.store.sqlite.checkpointer import Checkpointer

P = ParamSpec("P")
T = TypeVar("T")

BUSY_TIMEOUT_MS = 5000  # how long a connection waits on another process's lock before SQLITE_BUSY
DEFAULT_READERS = 2  # one per core on the 2-core machines we target; reads are CPU-bound
# A reader's page cache (a cap under a memory limit too). Stats reads touch few pages more than once, and
# SQLite sizes a sorter (GROUP BY / ORDER BY) by the cache, at least 1 MiB: each holds up to a cache's
# worth before writing a sorted run to its temporary file. With 8 MiB a raw read held ~7-21 MB, with 2 MiB
# ~5-8 MB, with 1 MiB ~3.5-5 MB (SQLite's heap high-water: a month of 1 M views raw, 200k paths), and the
# settled panels measured as fast (bench/stats.py; docs/storage.md).
READER_CACHE_KIB: Final = 1024
# SQLite's own heap, all connections of the process together (page caches, sorters, temporary tables and
# ephemeral b-trees, prepared statements), when no `memory_limit` setting gives one. Past it SQLite takes the
# least recently used page of any connection's cache instead of allocating a new one, and a sorter writes
# the batch it holds to its temporary file (a file: TEMP_STORE) instead of growing. The refresher and the
# reads no longer run at once (Database.unit), so one operation's cache and sorter (1-2 MiB each) and every
# connection's schema and statements (~1.4 MB at rest) fit: 8 MiB let SQLite reach 9 MB during a raw read
# right after an import, the largest part of the server's peak (docs/storage.md, *Memory bounds*).
SOFT_HEAP_LIMIT: Final = 4 << 20
# SQLite virtual-machine steps between two looks at the clock: about a millisecond of work, so a
# runaway query stops within a few ms of its limit and the check costs well under 1%.
PROGRESS_STEPS = 10_000


class UnusableFile(Exception):
    """A database file that cannot be opened here, or is not the database expected; says why and what to do."""


def read_blob(conn: sqlite3.Connection, table: str, column: str, rowid: int, offset: int, size: int) -> bytes:
    """`size` bytes from `offset` of a BLOB value, without reading the rest of it.

    `table` and `column` are names from our own code, never from a request.
    """
    if sys.version_info >= (3, 11):
        with conn.blobopen(table, column, rowid, readonly=True) as blob:
            blob.seek(offset)
            return blob.read(size)
    # Connection.blobopen is Python 3.11+; substr() on a BLOB also reads only the pages it needs.
    row = conn.execute(f"SELECT substr({column}, :start, :size) FROM {table} WHERE rowid = :rowid",
                       {"start": offset + 1, "size": size, "rowid": rowid}).fetchone()  # fmt: skip
    return bytes(row[0]) if row is not None and row[0] is not None else b""


def limit_heap(limit_bytes: int = 0) -> int:
    """Set SQLite's process-wide soft heap limit: `limit_bytes`, or SOFT_HEAP_LIMIT for 0; returns it."""
    limit = limit_bytes or SOFT_HEAP_LIMIT
    conn = sqlite3.connect(":memory:")  # the limit is the library's, not a connection's: any one sets it
    try:
        conn.execute(f"PRAGMA soft_heap_limit = {int(limit)}")
    finally:
        conn.close()
    return limit


def heap_limit() -> int:
    """SQLite's process-wide soft heap limit now (0: none)."""
    conn = sqlite3.connect(":memory:")
    try:
        return int(conn.execute("PRAGMA soft_heap_limit").fetchone()[0])
    finally:
        conn.close()


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


DUCKDB_MAGIC = b"DUCK"  # bytes 8-11 of a DuckDB file (upstream's me_analytics.db is one)


def _user() -> str:
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:  # a uid without a name, e.g. systemd's DynamicUser seen from elsewhere
        return str(os.geteuid())


def file_problem(path: str) -> str | None:
    """Why SQLite could not use `path` as a database here (creating its folder if missing), or None.

    WAL mode writes `-wal` and `-shm` files beside the database, so its folder
    must be writable as well as the file.
    """
    if os.path.isdir(path):
        return "it is a folder, not a file"
    directory = os.path.dirname(os.path.abspath(path))
    try:
        make_private_dirs(directory)  # each folder made is 0700 (store/files.py)
    except OSError as exc:
        return f"cannot create its folder {directory} ({exc.strerror}); create it for user {_user()}, or choose another"
    if not os.access(directory, os.W_OK | os.X_OK):
        return (
            f"user {_user()} cannot write in its folder {directory}, where SQLite keeps the database's journal; "
            f"`sudo chown {_user()} {directory}`, or choose a folder it can write"
        )
    if os.path.exists(path) and not os.access(path, os.R_OK | os.W_OK):
        return f"user {_user()} cannot read and write it; `sudo chown {_user()} {path}`, or choose another path"
    return None


def _not_sqlite(path: str, exc: sqlite3.Error) -> str:
    try:
        with open(path, "rb") as file:
            head = file.read(12)
    except OSError:
        head = b""
    if head[8:12] == DUCKDB_MAGIC:
        return (
            "it is a DuckDB file (upstream medama's analytics database?), not SQLite; give this flag a new file "
            "and load that one with `medama import --from-medama FILE`"
        )
    return f"it is not a SQLite database ({exc}); point the flag at medama's file, or move this one away"


def open_file(path: str, migrations: Sequence[Migration], marker: str | None = None) -> sqlite3.Connection:
    """Open (creating if needed) and migrate a database file; raises UnusableFile saying what is wrong.

    With `marker`, a file that already holds tables but not that one is refused
    rather than migrated: it belongs to something else, or is the other database.
    """
    problem = file_problem(path)
    if problem is not None:
        raise UnusableFile(problem)
    conn: sqlite3.Connection | None = None
    try:
        conn = connect(path)
        if marker is not None:
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if tables and marker not in tables:
                raise UnusableFile(
                    f"it is a SQLite database, but not the one expected (it has no {marker} table): another "
                    "program's, or medama's other database (are -appdb and -analyticsdb swapped?)"
                )
        migrate(conn, migrations)
    except sqlite3.DatabaseError as exc:
        if conn is not None:
            conn.close()
        if str(exc) == "file is not a database":
            raise UnusableFile(_not_sqlite(path, exc)) from None
        raise UnusableFile(f"SQLite cannot open it: {exc}") from None
    except UnusableFile:
        if conn is not None:
            conn.close()
        raise
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

    def __init__(
        self,
        path: str,
        migrations: Sequence[Migration],
        *,
        readers: int = DEFAULT_READERS,
        marker: str | None = None,
    ) -> None:
        """Open and migrate `path` (see `open_file`, which may raise UnusableFile)."""
        if path == ":memory:":
            raise ValueError("Database needs a file: reader threads cannot share an in-memory database")
        malloc.limit_arenas()  # before this file's threads start (the first Database: before any)
        malloc.fix_mmap_threshold()
        if heap_limit() == 0:  # a `memory_limit` setting applied since the first Database opened stays
            limit_heap()
        self.path = path
        self.writer_conn = open_file(path, migrations, marker)
        self.version = int(self.writer_conn.execute("PRAGMA user_version").fetchone()[0])
        self._local = threading.local()
        self._reader_conns: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"write-{os.path.basename(path)}")
        self._readers = ThreadPoolExecutor(max_workers=readers, thread_name_prefix=f"read-{os.path.basename(path)}")
        self.readers = readers
        self.cache_kib = CACHE_SIZE_KIB  # each thread applies a change to its own connection on its next call
        self._writer_cache_kib = CACHE_SIZE_KIB
        self.checkpointer: Checkpointer | None = None  # `checkpoint_beside`
        self.closed = False
        self.reads = 0  # reads asked for and not yet answered, queued ones included (event loop thread only)
        self.reads_let_in = 0  # of those, the ones past the gate of `unit` (event loop thread only)
        self.unit_pending = False  # a unit of background work waits or runs: reads wait (event loop thread only)
        self.read_ended = -math.inf  # time.monotonic() when the last read ended (event loop thread only)
        # Set when `reads`, `reads_let_in` or `unit_pending` change, then replaced: what `read`, `unit` and
        # `quiet` wait on instead of looking every few ms. Bound to the loop that made it (event loop thread).
        self._changed: tuple[asyncio.AbstractEventLoop, asyncio.Event] | None = None

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

    def checkpoint_beside(self, pages: int, wal_pages: int) -> None:
        """Checkpoint the WAL on a thread of its own once `pages` frames wait (store/sqlite/checkpointer.py),
        not in the writer's commits; the writer's wal_autocheckpoint, `wal_pages` (larger), stays as the
        WAL's bound. Call before the first write."""
        self.writer_conn.execute(f"PRAGMA wal_autocheckpoint = {int(wal_pages)}")
        if self.checkpointer is None:
            self.checkpointer = Checkpointer(self.path, pages, wal_pages)

    async def write(self, fn: Callable[..., T], /, *args: object) -> T:
        """Run `fn(conn, *args)` on the writer thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._writer, self._call_writer, fn, args)

    def _signal(self) -> None:
        """Wake whatever waits for the gate's counts to change (`_until`)."""
        if self._changed is not None:
            self._changed[1].set()
            self._changed = None

    async def _until(self, done: Callable[[], bool]) -> None:
        """Return once `done()` holds, looking again each time the gate's counts change (`_signal`)."""
        while not done():
            loop = asyncio.get_running_loop()
            if self._changed is None or self._changed[0] is not loop:
                self._changed = (loop, asyncio.Event())
            await self._changed[1].wait()

    async def read(self, fn: Callable[..., T], /, *args: object) -> T:
        """Run `fn(conn, *args)` on a reader thread with a read-only connection, once no unit of background
        work is waiting or running (`unit`)."""
        loop = asyncio.get_running_loop()
        self.reads += 1
        try:
            await self._until(lambda: not self.unit_pending)
            self.reads_let_in += 1
            try:
                return await loop.run_in_executor(self._readers, self._call_reader, fn, args)
            finally:
                self.reads_let_in -= 1
                self._signal()
        finally:
            self.reads -= 1
            self.read_ended = time.monotonic()
            self._signal()

    def quiet_for(self) -> float:
        """Seconds since the last read ended (infinite if none came yet); 0 while a read is queued or runs."""
        return 0.0 if self.reads else time.monotonic() - self.read_ended

    async def unit(self, fn: Callable[..., T], /, *args: object) -> T:
        """Run `fn(conn, *args)` on the writer thread as a unit of background work, never beside a read: it
        waits for the reads already let in (each stops at READ_TIME_LIMIT_S), and reads asked for
        meanwhile wait for it, so that its memory and theirs are not held at the same moment (docs/storage.md,
        *Memory bounds*). Call `quiet` between units, or the reads held back would wait for the next one
        too. Writes are not held back."""
        self.unit_pending = True
        try:
            await self._until(lambda: not self.reads_let_in)
            return await self.write(fn, *args)
        finally:
            self.unit_pending = False
            self._signal()

    async def quiet(self, wait_s: float) -> None:
        """Return once no read is queued or running, or after `wait_s` seconds (background work calls it
        between its units, so that its memory and a read's are not held at the same moment)."""
        try:
            await asyncio.wait_for(self._until(lambda: not self.reads), wait_s)
        except asyncio.TimeoutError:
            pass

    def _call_reader(self, fn: Callable[..., T], args: tuple[object, ...]) -> T:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.path, readonly=True)
            deadline = self._local.deadline = [math.inf]  # monotonic time the current read must end by
            conn.set_progress_handler(lambda: time.monotonic() > deadline[0], PROGRESS_STEPS)
            self._local.conn = conn
            with self._lock:
                self._reader_conns.append(conn)
        wanted = min(self.cache_kib, READER_CACHE_KIB)
        if getattr(self._local, "cache_kib", CACHE_SIZE_KIB) != wanted:
            self._local.cache_kib = _set_cache_size(conn, wanted)
        limit = READ_TIME_LIMIT_S
        started = time.monotonic()
        self._local.deadline[0] = started + limit
        try:
            return fn(conn, *args)
        except sqlite3.OperationalError as exc:
            if error_code(exc) == SQLITE_INTERRUPT:
                raise QueryTimeout(
                    f"the query took longer than {limit:g} s and was stopped; narrow the date range or filters"
                ) from None
            raise
        finally:
            self._local.deadline[0] = math.inf
            _trim_after(started, conn)

    def _call_writer(self, fn: Callable[..., T], args: tuple[object, ...]) -> T:
        if self._writer_cache_kib != self.cache_kib:
            self._writer_cache_kib = _set_cache_size(self.writer_conn, self.cache_kib)
        started = time.monotonic()
        try:
            return fn(self.writer_conn, *args)
        finally:
            if self.checkpointer is not None:
                self.checkpointer.nudge()
            _trim_after(started, self.writer_conn)

    def close(self) -> None:
        """Finish queued work, then close every connection (checkpointing the WAL)."""
        if self.closed:
            return
        self.closed = True
        self._readers.shutdown(wait=True)
        self._writer.shutdown(wait=True)
        if self.checkpointer is not None:
            self.checkpointer.stop()
        with self._lock:
            for conn in self._reader_conns:
                conn.close()
        try:
            self.writer_conn.execute("PRAGMA optimize")
        except sqlite3.Error:
            pass
        self.writer_conn.close()
        if self.checkpointer is not None:
            self.checkpointer.close_index()  # last: it would end the connections' locks on the -shm file


def _trim_after(started: float, conn: sqlite3.Connection) -> None:
    """After a long operation (it likely freed megabytes), hand freed memory back: the connection's page
    cache (its pages are read again from the OS's cache when next needed: ~1 ms for a reader's 1 MiB) and
    the allocator's free pages (malloc.py). Between operations a connection then holds its schema and
    statements only, not a cache filled by the last big read or refresher step."""
    if time.monotonic() - started >= malloc.TRIM_AFTER_S:
        try:
            conn.execute("PRAGMA shrink_memory")
        except sqlite3.Error:  # closed, or busy in a way that makes freeing pointless: nothing lost
            pass
        malloc.trim()


def _set_cache_size(conn: sqlite3.Connection, cache_kib: int) -> int:
    """Run on the thread that owns `conn`; returns the value set."""
    conn.execute(f"PRAGMA cache_size = -{int(cache_kib)}")
    return cache_kib
