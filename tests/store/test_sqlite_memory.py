"""SQLite's own memory bounded by design (store/sqlite/db.py): the process-wide soft heap limit, each connection's
page cache, and the refresher stepping aside while stats reads run."""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import json
import os
import random
import sqlite3
import subprocess
import sys
import textwrap
import threading
import tracemalloc
from array import array
from collections.abc import Callable
from pathlib import Path

import pytest

from medama_core.backends.sqlite import set_heap_limit
from medama_core.store.sqlite import analytics, columns, db, marking, rollups, scan

ROOT = Path(__file__).resolve().parents[2]


def _libsqlite() -> ctypes.CDLL | None:
    """The SQLite library the sqlite3 module uses, when it is a shared one (memory statistics in C)."""
    name = ctypes.util.find_library("sqlite3")
    if name is None:
        return None
    try:
        return ctypes.CDLL(name)
    except OSError:
        return None


def test_every_connection_kind_has_its_bounds(tmp_path: Path) -> None:
    """A Database sets the soft heap limit when none is set; its writer and readers get their page caches;
    a `memory_limit` setting of 0 (none) brings our bound back instead of lifting every bound."""
    set_heap_limit(0)
    db.limit_heap(1)  # something else set it: a Database opening later leaves it alone
    db.limit_heap(0)
    assert db.heap_limit() == db.SOFT_HEAP_LIMIT
    database = db.Database(str(tmp_path / "a.db"), analytics.MIGRATIONS)
    try:

        def cache(conn: object) -> int:
            assert isinstance(conn, sqlite3.Connection)
            return int(conn.execute("PRAGMA cache_size").fetchone()[0])

        async def both() -> tuple[int, int]:
            return await database.read(cache), await database.write(cache)

        reader, writer = asyncio.run(both())
        assert reader == -db.READER_CACHE_KIB
        assert writer == -db.CACHE_SIZE_KIB
        assert db.heap_limit() == db.SOFT_HEAP_LIMIT
        set_heap_limit(256 << 20)  # a memory_limit setting wins
        assert db.heap_limit() == 256 << 20
        set_heap_limit(0)
        assert db.heap_limit() == db.SOFT_HEAP_LIMIT
    finally:
        database.close()
        db.limit_heap(0)


def test_background_work_waits_for_reads_but_not_forever(tmp_path: Path) -> None:
    """`quiet` returns once the reads in flight (queued or running) are answered, or after its wait."""
    database = db.Database(str(tmp_path / "a.db"), analytics.MIGRATIONS)
    release = threading.Event()

    def blocked(conn: object) -> int:
        release.wait(10)
        return 1

    async def scenario() -> tuple[bool, bool, int]:
        read = asyncio.ensure_future(database.read(blocked))
        await asyncio.sleep(0.05)
        assert database.reads == 1
        await database.quiet(0.1)  # the read still runs: gives up after its wait
        timed_out = not read.done()
        asyncio.get_running_loop().call_later(0.1, release.set)
        await database.quiet(10)  # returns when the read is answered, long before 10 s
        answered = read.done()
        return timed_out, answered, database.reads

    try:
        assert asyncio.run(scenario()) == (True, True, 0)
    finally:
        release.set()
        database.close()


def test_a_unit_of_background_work_never_runs_beside_a_read(tmp_path: Path) -> None:
    """`unit` waits for the read already let in; a read asked for while a unit waits or runs starts after it;
    a write is not held back."""
    database = db.Database(str(tmp_path / "a.db"), analytics.MIGRATIONS)
    release_read, release_unit = threading.Event(), threading.Event()
    log: list[str] = []

    def first_read(conn: object) -> int:
        log.append("read 1 starts")
        release_read.wait(10)
        log.append("read 1 ends")
        return 1

    def unit(conn: object) -> int:
        log.append("unit starts")
        release_unit.wait(10)
        log.append("unit ends")
        return 2

    def second_read(conn: object) -> int:
        log.append("read 2")
        return 3

    def write(conn: object) -> int:
        log.append("write")
        return 4

    async def logged(entry: str) -> None:
        for _ in range(1000):  # a loaded machine may take a while to start a thread's work
            if entry in log:
                return
            await asyncio.sleep(0.01)

    async def scenario() -> list[int]:
        read = asyncio.ensure_future(database.read(first_read))
        await logged("read 1 starts")
        work = asyncio.ensure_future(database.unit(unit))
        await asyncio.sleep(0.05)
        assert database.unit_pending
        assert log == ["read 1 starts"]  # the unit waits for the read let in before it
        assert await database.write(write) == 4  # a write is not held back
        later = asyncio.ensure_future(database.read(second_read))
        await asyncio.sleep(0.05)
        release_read.set()
        await read
        await logged("unit starts")
        await asyncio.sleep(0.05)
        assert "read 2" not in log  # the second read waits for the unit, asked for before it
        release_unit.set()
        return [await work, await later]

    try:
        assert asyncio.run(scenario()) == [2, 3]
        assert log == ["read 1 starts", "write", "read 1 ends", "unit starts", "unit ends", "read 2"]
    finally:
        release_read.set()
        release_unit.set()
        database.close()


def test_reads_and_units_wait_on_a_signal_not_a_timer(tmp_path: Path) -> None:
    """A read held back by a unit, and a unit waiting for a read, wait for the gate's counts to change
    (Database._until): nothing is scheduled on the loop's clock meanwhile (polling every 10 ms scheduled a
    timer per waiter), and each goes on once the other is done."""
    database = db.Database(str(tmp_path / "a.db"), analytics.MIGRATIONS)
    release_read, release_unit, started = threading.Event(), threading.Event(), threading.Event()

    def blocked(release: threading.Event) -> Callable[[object], int]:
        def run(conn: object) -> int:
            started.set()
            release.wait(10)
            return 1

        return run

    async def until_started() -> None:
        await asyncio.get_running_loop().run_in_executor(None, started.wait, 10)
        started.clear()

    async def scenario() -> list[int]:
        loop = asyncio.get_running_loop()
        read = asyncio.ensure_future(database.read(blocked(release_read)))
        await until_started()
        unit = asyncio.ensure_future(database.unit(blocked(release_unit)))
        later = asyncio.ensure_future(database.read(lambda conn: 3))
        quiet = asyncio.ensure_future(database.quiet(10))
        for _ in range(5):
            await asyncio.sleep(0)
        timers = [handle for handle in loop._scheduled if not handle.cancelled()]  # type: ignore[attr-defined]
        assert len(timers) == 1, timers  # quiet's own deadline only
        release_read.set()
        await read
        await until_started()  # the unit runs
        for _ in range(5):
            await asyncio.sleep(0)
        assert not later.done()
        assert [handle for handle in loop._scheduled if not handle.cancelled()] == timers  # type: ignore[attr-defined]
        release_unit.set()
        answers = [await unit, await later]
        await quiet
        return answers

    try:
        assert asyncio.run(scenario()) == [1, 3]
    finally:
        release_read.set()
        release_unit.set()
        database.close()


# Run in a child process: the soft heap limit and SQLite's memory high-water are the whole process's.
_RAW_LONG_TAIL = textwrap.dedent(
    """
    import asyncio, ctypes, ctypes.util, json, random, sys
    from medama_core.store.sqlite import analytics, db, marking, stats
    lib = ctypes.CDLL(ctypes.util.find_library("sqlite3"))
    lib.sqlite3_memory_highwater.restype = ctypes.c_int64
    lib.sqlite3_memory_used.restype = ctypes.c_int64
    path = sys.argv[1]
    database = db.Database(path, analytics.MIGRATIONS)
    T0 = 1_717_200_000_000
    rnd = random.Random(7)
    columns = ("bid hostname pathname is_unique_user is_unique_page referrer_host referrer_group country "
               "language_base language_dialect ua_browser ua_os ua_device_type utm_source utm_medium "
               "utm_campaign duration_ms date_created").split()
    rows = [(f"b{i}", "example.com", f"/article/{rnd.randrange(40_000)}-a-rather-long-slug-of-words", 1, 1,
             "", "", "Unknown", "English", "English", "Chrome", "Linux", "Desktop", "", "", "",
             rnd.randrange(100_000), T0 + i * 7_000) for i in range(60_000)]
    def load(conn):
        with db.Transaction(conn):
            since = marking.starts(conn)
            conn.executemany(f"INSERT INTO views ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                             rows)
            marking.mark_since(conn, since)
    async def run():
        await database.write(load)
        query = stats.Query("example.com", T0 * 1000, (T0 + 60_000 * 7_000) * 1000, ())
        await database.read(lambda conn: 0)  # the reader's connection and its schema, before counting
        idle = lib.sqlite3_memory_used()
        lib.sqlite3_memory_highwater(1)
        answer = await database.read(stats.snapshot, stats.list_stats, query, "pages", False, stats.Page(100))
        return len(answer), lib.sqlite3_memory_highwater(0), lib.sqlite3_memory_used() - idle
    rows_out, high, kept = asyncio.run(run())
    database.close()
    print(json.dumps([rows_out, high, kept]))
    """
)

# SQLite's heap (all connections) at most while a reader groups and sorts 60,000 raw views of a long tail
# (40,000 paths) for a detail table: the reader's 1 MiB cache and a sorter of its size, the writer's cache
# (given back after its load), schemas and statements. Measured 3.8 MB; 9.1 MB with 2 MiB readers' caches
# and nothing given back.
RAW_READ_HEAP: int = 6 << 20
# SQLite memory a reader may keep after a long read beyond what it held before: its prepared statements (a
# few tens of KB each), not its 1 MiB page cache.
KEPT_AFTER_READ: int = 512 << 10


def _run_child(script: str, path: Path) -> subprocess.CompletedProcess[str]:
    """Run `script` in a fresh Python with this checkout importable and `path` as its argument; its output."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-c", script, str(path)], capture_output=True, text=True, env=env, timeout=120, check=True
    )


@pytest.mark.skipif(_libsqlite() is None, reason="SQLite is not a shared library here")
def test_a_raw_long_tail_read_stays_within_its_heap(tmp_path: Path) -> None:
    """A detail table read raw over a long tail (every group sorted by SQLite) keeps SQLite's heap, caches
    and sorter together, within RAW_READ_HEAP; once answered, the reader keeps no more than it did before
    it (its page cache given back: PRAGMA shrink_memory), with room for its statements."""
    done = _run_child(_RAW_LONG_TAIL, tmp_path / "tail.db")
    rows, high, kept = (int(x) for x in done.stdout.strip().strip("[]").split(","))
    assert rows == 100
    assert high <= RAW_READ_HEAP, (high, RAW_READ_HEAP)
    assert kept <= KEPT_AFTER_READ, (kept, KEPT_AFTER_READ)


# A child process: a read scanning 16 MB of pages with a 64 MiB page cache (what a `memory_limit` setting
# may allow) fills its cache until the process-wide soft heap limit makes SQLite reuse pages.
_BIG_CACHE_SCAN = textwrap.dedent(
    """
    import asyncio, ctypes, ctypes.util, sys
    from medama_core.store.sqlite import analytics, db
    lib = ctypes.CDLL(ctypes.util.find_library("sqlite3"))
    lib.sqlite3_memory_highwater.restype = ctypes.c_int64
    database = db.Database(sys.argv[1], analytics.MIGRATIONS)
    def fill(conn):
        conn.execute("CREATE TABLE pad (x BLOB)")
        with db.Transaction(conn):
            conn.execute("INSERT INTO pad WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c "
                         "WHERE i < 16000) SELECT randomblob(1000) FROM c")
    def scan(conn):
        conn.execute("PRAGMA cache_size = -65536")
        return conn.execute("SELECT count(*), sum(length(x)) FROM pad").fetchone()
    async def run():
        await database.write(fill)
        await database.read(lambda conn: 0)
        lib.sqlite3_memory_highwater(1)
        rows, size = await database.read(scan)
        return rows, lib.sqlite3_memory_highwater(0)
    rows, high = asyncio.run(run())
    database.close()
    print(rows, high)
    """
)
# SQLite's heap at most during that scan: the soft limit (4 MiB) and what a statement holds beside the cache.
# Measured 4.2 MB; 8.4 MB with the 8 MiB limit of before.
BIG_CACHE_SCAN_HEAP: int = 5 << 20


@pytest.mark.skipif(_libsqlite() is None, reason="SQLite is not a shared library here")
def test_page_caches_stay_within_the_soft_heap_limit(tmp_path: Path) -> None:
    """A read whose own page cache would hold 16 MB of pages keeps SQLite's heap near SOFT_HEAP_LIMIT."""
    done = _run_child(_BIG_CACHE_SCAN, tmp_path / "pad.db")
    rows, high = (int(x) for x in done.stdout.split())
    assert rows == 16_000
    assert high <= BIG_CACHE_SCAN_HEAP, (high, BIG_CACHE_SCAN_HEAP)


# The end of a child process that measures reads: each of `reads` once (its statements and caches), then again
# with the Python memory it held beyond what it held before printed (tracemalloc), by name, as JSON.
_MEASURE_READS = textwrap.dedent(
    """
    peaks = {}
    tracemalloc.start()
    for name, read in reads.items():
        read()
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        read()
        peaks[name] = tracemalloc.get_traced_memory()[1] - before
    tracemalloc.stop()
    print(json.dumps(peaks))
    """
)


# A child process: a filtered detail table, /time and /summary over a long tail's day (20,000 views, ~8,600
# paths), with the bounds lowered to the test's size: the day read in pieces of 2,048 views, a tally's kept
# durations up to 256 KiB, 1,024 labels counted in memory.
_FILTERED_LONG_TAIL = (
    textwrap.dedent(
        """
    import json, random, sys, tracemalloc
    from medama_core.store.filters import Filter
    from medama_core.store.sqlite import analytics, columns, db, marking, rollups, stats
    columns.DAY_CHUNK_VIEWS = 2048
    stats.TALLY_RUNS_HELD = 256 << 10
    stats.MAX_LABELS_HELD = 1024
    conn = db.open_file(sys.argv[1], analytics.MIGRATIONS)
    DAY = 86_400_000
    T0 = 1_717_200_000_000 // DAY * DAY
    VIEWS = 20_000
    rnd = random.Random(5)
    names = ("bid hostname pathname is_unique_user is_unique_page referrer_host referrer_group country "
             "language_base language_dialect ua_browser ua_os ua_device_type utm_source utm_medium utm_campaign "
             "duration_ms date_created").split()
    rows = [(f"b{i}", "example.com", f"/article/{rnd.randrange(10_000)}-a-rather-long-slug-of-words", 1,
             rnd.randrange(2), "", "", f"Country {rnd.randrange(3)}", "English", "English", "Chrome", "Linux",
             "Desktop", "", "", "", rnd.randrange(100_000), T0 + i * (DAY // VIEWS)) for i in range(VIEWS)]
    with db.Transaction(conn):
        since = marking.starts(conn)
        conn.executemany(f"INSERT INTO views ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})", rows)
        marking.mark_since(conn, since)
    del rows
    rollups.refresh(conn, T0 + 2 * DAY, 10**9)
    while columns.backfill(conn, 100):
        pass
    query = stats.Query("example.com", T0 * 1000, (T0 + DAY) * 1000 - 1, (Filter("country", "eq", "country 1"),))
    reads = {
        "pages": lambda: stats.snapshot(conn, stats.list_stats, query, "pages", False, stats.Page(100)),
        "time": lambda: stats.snapshot(conn, stats.time_stats, query, False, stats.Page(100)),
        "summary": lambda: stats.snapshot(conn, stats.summary, query, False, None),
    }
    """
    )
    + _MEASURE_READS
)
# Python memory (tracemalloc) one such read may hold beyond what it held before: the day's dictionary text
# (~0.4 MB), a piece's planes, masks and keys, the tally's kept durations and counters at their lowered
# bounds. Measured 1.2-1.5 MB; 5.1-5.7 MB with the day read whole (its dictionary parsed, a Run of ~640
# bytes per label kept and counted as 200).
FILTERED_READ_HELD: int = 2_500 << 10


def test_a_filtered_read_of_a_long_tail_holds_pieces_not_the_day(tmp_path: Path) -> None:
    """A filtered detail table, /time and /summary over a long tail's day read the day's copy in pieces
    (columns.DAY_CHUNK_VIEWS), look its dictionary up without parsing it (columns.Dictionary), and keep the
    copies' durations compactly (stats.KeptRuns) and within TALLY_RUNS_HELD: each holds FILTERED_READ_HELD
    at most."""
    peaks = json.loads(_run_child(_FILTERED_LONG_TAIL, tmp_path / "tail.db").stdout)
    assert set(peaks) == {"pages", "time", "summary"}
    assert max(peaks.values()) <= FILTERED_READ_HELD, peaks


# A child process: a page-and-country filtered detail table and /summary over 4 long-tail days (8,000 views
# each, one in 20 on /blog/post-1, the others on ~8,000 long paths: a day's path dictionary is ~620 KB), read in
# pieces of 2,048 views.
_FILTERED_DAYS = (
    textwrap.dedent(
        """
    import json, random, sys, tracemalloc
    from medama_core.store.filters import Filter
    from medama_core.store.sqlite import analytics, columns, db, marking, rollups, stats
    columns.DAY_CHUNK_VIEWS = 2048
    conn = db.open_file(sys.argv[1], analytics.MIGRATIONS)
    DAY = 86_400_000
    T0 = 1_717_200_000_000 // DAY * DAY
    DAYS, VIEWS = 4, 32_000
    rnd = random.Random(5)
    names = ("bid hostname pathname is_unique_user is_unique_page referrer_host referrer_group country "
             "language_base language_dialect ua_browser ua_os ua_device_type utm_source utm_medium utm_campaign "
             "duration_ms date_created").split()
    tail = "-a-rather-long-slug-of-words-about-quite-another-thing-entirely"
    rows = [(f"b{i}", "example.com", "/blog/post-1" if i % 20 == 0 else f"/article/{rnd.randrange(10**6)}{tail}",
             1, rnd.randrange(2), "", "", f"Country {rnd.randrange(3)}", "English", "English", "Chrome", "Linux",
             "Desktop", "", "", "", rnd.randrange(100_000), T0 + i * (DAY // (VIEWS // DAYS))) for i in range(VIEWS)]
    with db.Transaction(conn):
        since = marking.starts(conn)
        conn.executemany(f"INSERT INTO views ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})", rows)
        marking.mark_since(conn, since)
    del rows
    rollups.refresh(conn, T0 + (DAYS + 1) * DAY, 10**9)
    while columns.backfill(conn, 100):
        pass
    assert conn.execute("SELECT COUNT(DISTINCT day) FROM column_days").fetchone()[0] == DAYS
    flts = (Filter("path", "eq", "/blog/post-1"), Filter("country", "eq", "Country 1"))
    query = stats.Query("example.com", T0 * 1000, (T0 + DAYS * DAY) * 1000 - 1, flts)
    reads = {
        "pages": lambda: stats.snapshot(conn, stats.list_stats, query, "pages", False, stats.Page(100)),
        "summary": lambda: stats.snapshot(conn, stats.summary, query, False, None),
    }
    """
    )
    + _MEASURE_READS
)
# Python memory (tracemalloc) such a read may hold beyond what it held before: one day's dictionaries (the
# path's ~620 KB), a piece's planes and masks, the selected views' durations. Measured 845 KiB for both;
# 1,281 KiB (pages) and 1,367 KiB (summary) when the next day's dictionaries were read while the caller still
# held the last piece of the day before (and the summary kept each piece's durations whole for its median).
FILTERED_DAYS_HELD: int = 1_050 << 10


def test_a_filtered_read_holds_one_days_dictionaries_at_a_time(tmp_path: Path) -> None:
    """A filtered detail table and /summary over several long-tail days hold one day's dictionaries at a
    time (columns.load releases them before reading the next day's) and, for the median, only the selected
    views' durations (scan.DayScan.masked_run): each holds FILTERED_DAYS_HELD at most."""
    peaks = json.loads(_run_child(_FILTERED_DAYS, tmp_path / "days.db").stdout)
    assert set(peaks) == {"pages", "summary"}
    assert max(peaks.values()) <= FILTERED_DAYS_HELD, peaks


# Python memory (tracemalloc) a block build may hold beyond what it held before, with the bounds below
# lowered so that 6,000 common paths (18,000 views) are many times each: 256 rows written at a time,
# runs of up to 1,024 values merged in a list, a day's runs of up to 1,024 values per column in memory.
# Measured 0.21-0.23 MB for the 6-hour and 8-day blocks (1.2-1.3 MB when every value's row was held and
# the site's 18,000 durations merged in a list); the day block, which also codes the day's columns (6,000
# paths and as many entry pages, held by design up to columns.PLANE_CODES ** 2 values), 3.3 MB (4.0).
BLOCK_HELD: int = 512 << 10
DAY_BLOCK_HELD: int = 3_700 << 10


def test_block_builders_hold_chunks_not_every_value(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Building the blocks of a long tail's hours (6 hours, a day, 8 days) holds what the bounds allow
    (rollups.WRITE_CHUNK rows written at a time, MERGE_IN_MEMORY values merged in a list, a day's runs
    in memory for columns of up to columns.RUNS_HELD_VALUES values), not a row or run per value."""
    monkeypatch.setattr(rollups, "WRITE_CHUNK", 256)
    monkeypatch.setattr(rollups, "MERGE_IN_MEMORY", 1024)
    monkeypatch.setattr(columns, "RUNS_HELD_VALUES", 1024)
    monkeypatch.setattr(rollups, "SMALL_SITE_VIEWS", 0)
    conn = db.open_file(str(tmp_path / "tail.db"), analytics.MIGRATIONS)
    day = 1_717_200_000_000 // 86_400_000 * 86_400_000
    rnd = random.Random(3)
    names = (
        "bid hostname pathname is_unique_user is_unique_page referrer_host referrer_group country language_base"
        " language_dialect ua_browser ua_os ua_device_type utm_source utm_medium utm_campaign duration_ms"
        " date_created"
    ).split()
    paths = 6_000
    rows = [
        (f"b{i}", "example.com", f"/article/{i % paths}-a-slug", 1, 1, "", "", "Unknown", "English", "English")
        + ("Chrome", "Linux", "Desktop", "", "", "", rnd.randrange(100_000), day + rnd.randrange(6 * 3_600_000))
        for i in range(3 * paths)
    ]
    with db.Transaction(conn):
        since = marking.starts(conn)
        conn.executemany(f"INSERT INTO views ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})", rows)
        marking.mark_since(conn, since)
    del rows
    now = day + 10 * 86_400_000
    while rollups.refresh_hours(conn, now):
        pass
    peaks: dict[int, int] = {}
    due_sql = "SELECT span FROM rollup_todo WHERE (period + 1) * span <= ? ORDER BY span, period LIMIT 1"
    tracemalloc.start()
    try:
        while (due := conn.execute(due_sql, (now // 3_600_000,)).fetchone()) is not None:
            tracemalloc.reset_peak()
            before = tracemalloc.get_traced_memory()[0]
            rollups.build_blocks(conn, now, 1)
            peaks[due[0]] = max(peaks.get(due[0], 0), tracemalloc.get_traced_memory()[1] - before)
    finally:
        tracemalloc.stop()
        conn.close()
    assert set(peaks) >= {6, 24, 192}, peaks
    assert peaks[6] <= BLOCK_HELD and peaks[192] <= BLOCK_HELD, peaks
    assert peaks[24] <= DAY_BLOCK_HELD, peaks


# Run in a child process (SQLite's memory high-water is the whole process's): a block's run of 1.5 M values
# (6 MB packed) merged as a stream from three parts, and SQLite's heap at most meanwhile beyond what it used.
_STREAM_RUN = textwrap.dedent(
    """
    import ctypes, ctypes.util, json, sys
    from medama_core.store.sqlite import analytics, db, rollups
    lib = ctypes.CDLL(ctypes.util.find_library("sqlite3"))
    lib.sqlite3_memory_highwater.restype = ctypes.c_int64
    lib.sqlite3_memory_used.restype = ctypes.c_int64
    conn = db.open_file(sys.argv[1], analytics.MIGRATIONS)
    parts = [rollups.pack_inline(range(start, 1_500_000, 3)) for start in range(3)]
    with db.Transaction(conn):
        idle = lib.sqlite3_memory_used()
        lib.sqlite3_memory_highwater(1)
        rollups._stream_run(conn, ("example.com", 192, 0, 1, ""), parts, 1_500_000)
        high = lib.sqlite3_memory_highwater(0) - idle
    row = conn.execute("SELECT count, width, length(durations), length(samples) FROM rollup_durations").fetchone()
    print(json.dumps([high, *row]))
    """
)
# SQLite's heap a streamed merge may use beyond what it used before: its page cache (2 MiB) and statements.
# Measured 2.0 MB; 14.2 MB when the samples were set by an UPDATE (which rewrote the row, 6 MB run and all).
STREAM_RUN_HEAP: int = 4 << 20


def test_a_streamed_run_is_never_held_by_sqlite(tmp_path: Path) -> None:
    """A block's run merged as a stream (rollups._stream_run) writes its durations and its samples in
    place: SQLite never holds the run (an UPDATE of the row would read and rewrite all of it)."""
    result = _run_child(_STREAM_RUN, tmp_path / "run.db")
    high, count, width, size, samples = json.loads(result.stdout)
    assert (count, width, size, samples) == (1_500_000, 4, 6_000_000, 1_500_000 // 64 * 4)
    assert high <= STREAM_RUN_HEAP, high


# Python memory (tracemalloc) a day's column copy may hold beyond what it held before, for a day of 20,000
# views with ~8,600 paths, as many entry pages and ~8,600 referrers: a chunk of the first pass's codes, flags,
# hours and durations (columns.COPY_CHUNK_VIEWS), a chunk of the long tails' codes (columns.TAIL_CHUNK_VIEWS,
# coded by SQLite), a batch of a dictionary's values and one column's runs. Measured 1.19 MB; 2.75 MB when
# each long-tail column's values, codes and text were held in turn, 6.7 MB when the three were held together.
DAY_COPY_HELD: int = 1_792 << 10


def test_a_day_copy_holds_chunks_not_long_tail_values(tmp_path: Path) -> None:
    """Building a long tail's day copy holds chunks of its views and no long-tail column's values (the
    columns of more than columns.PASS_VALUES values are coded by SQLite), within DAY_COPY_HELD."""
    conn = db.open_file(str(tmp_path / "copy.db"), analytics.MIGRATIONS)
    day = 1_717_200_000_000 // 86_400_000
    rnd = random.Random(5)
    names = (
        "bid hostname pathname is_unique_user is_unique_page referrer_host referrer_group country language_base"
        " language_dialect ua_browser ua_os ua_device_type utm_source utm_medium utm_campaign duration_ms"
        " date_created"
    ).split()
    views = 20_000
    rows = [
        (f"b{i}", "example.com", f"/article/{rnd.randrange(10_000)}-a-rather-long-slug-of-words", 1, rnd.randrange(2))
        + (f"www.site{rnd.randrange(10_000)}.example.net", "", f"Country {rnd.randrange(3)}", "English", "English")
        + ("Chrome", "Linux", "Desktop", "", "", "", rnd.randrange(100_000), day * 86_400_000 + i * 4_320)
        for i in range(views)
    ]
    with db.Transaction(conn):
        since = marking.starts(conn)
        conn.executemany(f"INSERT INTO views ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})", rows)
        marking.mark_since(conn, since)
    del rows
    tracemalloc.start()
    try:
        for _ in range(2):  # the first build's statements and caches are not counted
            tracemalloc.reset_peak()
            before = tracemalloc.get_traced_memory()[0]
            with db.Transaction(conn):
                columns.build_day(conn, "example.com", day)
            held = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    copied = conn.execute("SELECT json_extract(dictionary, '$.rows') FROM column_days WHERE name = ''").fetchone()
    conn.close()
    assert copied == (views,)
    assert held <= DAY_COPY_HELD, held


# What a day's masked run of 300,000 views keeps when it selects 1 view in 100: the positions of the 3,000
# selected (12 KB) and the object. Measured 12.5 KB; the day's byte per view (300 KB) before.
SPARSE_RUN_HELD: int = 32 << 10


def test_a_sparse_masked_run_keeps_positions_not_a_byte_per_view() -> None:
    """A filtered summary keeps a masked run per day for its median (scan.MaskedRun): one that selects
    few views keeps their positions (scan.POSITIONS_RATIO), so the days of a range cost what they select."""
    views = 300_000
    durations = array("I", range(views))
    tracemalloc.start()
    try:
        selected = bytes(0xFF if i % 100 == 7 else 0 for i in range(views))
        before = tracemalloc.get_traced_memory()[0]
        run = scan.MaskedRun((), views, lambda lo, hi: durations[lo:hi], selected, durations)
        del selected
        held = tracemalloc.get_traced_memory()[0] - before + views  # the bytes let go count against it
    finally:
        tracemalloc.stop()
    assert run.count == 3_000 and run.at_most(707) == 8 and (run.low, run.high) == (7, 299_907)
    assert held <= SPARSE_RUN_HELD, held


# What a summary's run for the median keeps of a piece of 300,000 timed views read whole, once the piece is
# let go, when it selects 1 view in 100: the 3,000 selected durations (12 KB) and the object. Measured 12.3 KiB;
# the piece's durations (1.2 MB) and its positions before.
WHOLE_RUN_HELD: int = 32 << 10


def test_a_summarys_run_keeps_the_selected_durations_not_the_pieces() -> None:
    """scan.DayScan.masked_run with `whole` (or few selected) keeps the selected views' durations alone, so
    a filtered summary's runs do not keep each piece's durations alive after the piece is let go."""
    views = 300_000
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        day = columns.Day(0, views, 0, b"", b"", array("I", range(views)), {})
        day_scan = scan.DayScan(day)
        mask = int.from_bytes(bytes(0xFF if i % 100 == 7 else 0 for i in range(views)), "big")
        run = day_scan.masked_run(mask, lambda lo, hi: (), True)
        del day, day_scan, mask
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert run.count == 3_000 and run.at_most(707) == 8 and (run.low, run.high) == (7, 299_907)
    assert held <= WHOLE_RUN_HELD, held


def test_an_uploaded_import_gives_the_writer_its_cache_back(tmp_path: Path) -> None:
    """An import uploaded to the server runs on the writer with a cache of its own size (64 MiB); after it the
    writer, which the refresher's sorts use, has its own again."""
    from medama_core.backends.sqlite import SQLiteAnalytics

    store = SQLiteAnalytics(str(tmp_path / "a.db"))
    data = (ROOT / "tests" / "importers" / "samples" / "goatcounter-export.csv").read_bytes()

    def cache(conn: sqlite3.Connection) -> int:
        return int(conn.execute("PRAGMA cache_size").fetchone()[0])

    async def scenario() -> tuple[list[int], int]:
        results = await store.import_upload("goatcounter", data, "example.com", {}, name="", dry_run=False)
        return [result.stored for result in results], await store.db.write(cache)

    try:
        stored, writer_cache = asyncio.run(scenario())
        assert stored == [5, 1]
        assert writer_cache == -db.CACHE_SIZE_KIB
    finally:
        store.close()
