"""The SQLite adapters: MetaStore over me_meta.db and AnalyticsStore over me_analytics.db (the default engine)."""

from __future__ import annotations

import asyncio
import functools
import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Final

from medama_core.backends.meta import MetaAdapter
from medama_core.config import StartupError
from medama_core.store.protocol import Filter, Op, Outcomes, Page, Query, Step
from medama_core.store.sqlite import analytics, hits, imported, live, meta
from medama_core.store.sqlite.checkpointer import CHECKPOINT_PAGES
from medama_core.store.sqlite.db import Database, Migration, UnusableFile, limit_heap

if TYPE_CHECKING:
    from medama_core import transfer  # imported by the export and import calls: the importers are slow to load

# Between two units of background work (an hour batch, a few blocks, a day's copy), how long the refresher
# lets queued and running stats reads finish first; then the unit waits for the reads let in and holds new
# ones back (Database.unit), so that its memory (a block's merge, a day's copy: up to ~6 MB of Python at
# 1 M views, more at 10 M) and a read's are never held at once (docs/storage.md, *Memory bounds*). Bounded,
# so that a stream of reads slows the catching up but never stops it, and the reads held back by a unit
# get their turn before the next.
YIELD_TO_READS_S: Final = 1.0
# How long no stats read has come before an hour batch may hold rollups.QUIET_BATCH_VIEWS views instead of
# REFRESH_BATCH_VIEWS: panels a dashboard asks for come within a second or two of each other, so while
# someone looks, reads wait behind short batches, and with nobody looking (an import settling, a night)
# the refresher takes longer, cheaper ones.
QUIET_BEFORE_LONG_S: Final = 5.0

# Pages the analytics database's WAL takes before a commit copies them into the database (wal_autocheckpoint;
# SQLite's default is 1,000, ~4 MB, which me_meta.db, written little, keeps): the refresher's units each
# write a few thousand scattered index pages, so at 1,000 nearly every commit checkpointed (and fsynced)
# pages the next units write again. At 16,000 (~64 MB of WAL on disk, which stays that size) the commits
# of the background work after an import of 1 M views / 200k paths cost 3.7 s of CPU instead of 5.75
# (bench/settle.py --sql); a read finds a page in the WAL's index whatever its length. A checkpointer on a
# thread of its own (store/sqlite/checkpointer.py) copies the frames first, every CHECKPOINT_PAGES, and stands
# aside at this length: the writer's autocheckpoint then copies only the last few and restarts the WAL.
WAL_CHECKPOINT_PAGES: Final = 16_000

# The stats layer (store.stats, rollups, columns, scan, entries, retention and their helpers, ~50 ms of
# start-up on a busy machine) is imported by the calls that use it, the first after the server listens: the
# background work starts then, and a tracker hit or a login needs none of it (tests/test_lazy_imports.py).


def open_database(path: str, migrations: tuple[Migration, ...], marker: str, flag: str) -> Database:
    """A Database, or a StartupError naming the file, its flag, the cause and the fix."""
    try:
        return Database(path, migrations, marker=marker)
    except UnusableFile as exc:
        raise StartupError(f"cannot use {os.path.abspath(path)} ({flag}): {exc}") from None


def _probe(conn: sqlite3.Connection) -> None:
    conn.execute("select count(*) from sqlite_master").fetchone()


def file_size(path: str) -> int | None:
    """Bytes of a SQLite database with its write-ahead log (None if it cannot be read)."""
    total = 0
    for name in (path, path + "-wal"):
        try:
            total += os.path.getsize(name)
        except FileNotFoundError:
            continue
        except OSError:
            return None
    return total


def set_heap_limit(limit_bytes: int) -> None:
    """SQLite's soft heap limit is process-wide: a `memory_limit` setting, or without one (0) our bound
    (store/sqlite/db.py SOFT_HEAP_LIMIT), never none."""
    limit_heap(limit_bytes)


class SQLiteMeta(MetaAdapter):
    """MetaStore on me_meta.db."""

    def __init__(self, path: str, flag: str = "-appdb") -> None:
        db = open_database(path, meta.MIGRATIONS, meta.MARKER_TABLE, flag)
        super().__init__("sqlite", db, meta, lambda fn, *args: fn(db.writer_conn, *args))
        self.db = db
        self.location = os.path.abspath(path)

    async def health(self) -> None:
        await self.db.read(_probe)

    async def size(self) -> int | None:
        return await asyncio.to_thread(file_size, self.location)

    def tune(self, *, cache_kib: int, heap_limit: int | None = None) -> None:
        self.db.configure(cache_kib=cache_kib)
        if heap_limit is not None:
            set_heap_limit(heap_limit)

    def close(self) -> None:
        self.db.close()


class SQLiteAnalytics:
    """AnalyticsStore on me_analytics.db: the stats read in one snapshot each, with the imported days added."""

    engine = "sqlite"
    write_lingers = False  # a transaction of one hit costs little: no batch waits (writer.py)
    write_batch_ops: int | None = None  # writer.MAX_BATCH_OPS
    write_weight: Callable[[Op], int] | None = None
    raw_unfiltered: frozenset[str] = frozenset()  # every unfiltered answer of a rolled-up hour is from rollups

    def __init__(self, path: str, flag: str = "-analyticsdb") -> None:
        self.db = open_database(path, analytics.MIGRATIONS, analytics.MARKER_TABLE, flag)
        self.db.checkpoint_beside(CHECKPOINT_PAGES, WAL_CHECKPOINT_PAGES)
        self.location = os.path.abspath(path)

    @property
    def readers(self) -> int:
        return self.db.readers

    def site_hits_on(self, day_ms: int) -> dict[str, int]:
        return hits.site_hits_on(self.db.writer_conn, day_ms)

    async def site_hits(self, day_ms: int) -> dict[str, int]:
        return await self.db.read(hits.site_hits_on, day_ms)

    async def write_hits(self, ops: Sequence[Op]) -> Outcomes:
        return await self.db.write(hits.apply_batch, ops)

    async def summary(self, query: Query, previous: bool, interval: str | None) -> dict[str, Any]:
        from medama_core.store import imported_stats
        from medama_core.store.sqlite import imported_merge, stats

        return await self.db.read(
            stats.snapshot, imported_stats.summary, query, previous, interval, imported_merge.ENGINE
        )

    async def list_stats(
        self, query: Query, endpoint: str, summary: bool, page: Page, variant: bool = False
    ) -> list[dict[str, Any]]:
        from medama_core.store import imported_stats
        from medama_core.store.sqlite import imported_merge, stats

        return await self.db.read(
            stats.snapshot, imported_stats.list_stats, query, endpoint, summary, page, variant, imported_merge.ENGINE
        )

    async def time_stats(self, query: Query, summary: bool, page: Page) -> list[dict[str, Any]]:
        from medama_core.store.sqlite import stats

        return await self.db.read(stats.snapshot, stats.time_stats, query, summary, page)

    async def properties(self, query: Query, page: Page) -> list[dict[str, Any]]:
        from medama_core.store.sqlite import stats

        return await self.db.read(stats.snapshot, stats.properties, query, page)

    async def goal_counts(self, query: Query, goals: Sequence[tuple[Filter, ...]]) -> tuple[int, list[tuple[int, int]]]:
        from medama_core.store.sqlite import goal_counts, stats

        return await self.db.read(stats.snapshot, goal_counts.goal_counts, query, goals)

    async def entries(self, query: Query, summary: bool, page: Page) -> list[dict[str, Any]]:
        from medama_core.store.sqlite import entries as entry_stats
        from medama_core.store.sqlite import stats

        return await self.db.read(stats.snapshot, entry_stats.entries, query, summary, page)

    async def exits(self, query: Query, summary: bool, page: Page) -> list[dict[str, Any]]:
        from medama_core.store.sqlite import entries as entry_stats
        from medama_core.store.sqlite import stats

        return await self.db.read(stats.snapshot, entry_stats.exits, query, summary, page)

    async def visitors_since(self, hostnames: list[str], since_ms: int) -> dict[str, int]:
        from medama_core.store import imported_stats
        from medama_core.store.sqlite import imported_merge, stats

        return await self.db.read(
            stats.snapshot, imported_stats.visitors_since, hostnames, since_ms, imported_merge.ENGINE
        )

    async def site_intervals(
        self, hostnames: list[str], start_us: int, end_us: int, interval: str
    ) -> list[list[dict[str, Any]]]:
        from medama_core.store import imported_stats
        from medama_core.store.sqlite import imported_merge, stats

        return await self.db.read(
            stats.snapshot, imported_stats.site_intervals, hostnames, start_us, end_us, interval, imported_merge.ENGINE
        )

    async def live(self, hostname: str, now_ms: int) -> dict[str, Any]:
        return await self.db.read(live.live, hostname, now_ms)

    async def imported_periods(self, hostname: str) -> list[tuple[str, int, int]]:
        return await self.db.read(imported.periods, hostname)

    async def drop_counts(self, start_day: int, end_day: int) -> list[tuple[int, str, str, int]]:
        return await self.db.read(hits.drop_counts, start_day, end_day)

    async def rename_site(self, old: str, new: str) -> None:
        from medama_core.store.sqlite import site_data

        await self.db.write(site_data.rename_site_data, old, new)

    async def delete_sites(self, hostnames: list[str]) -> None:
        from medama_core.store.sqlite import site_data

        await self.db.write(site_data.delete_site_data, hostnames)

    async def export_page(
        self, hostname: str, *, kind: str, fmt: str, after: tuple[int, int] | None, limit: int, spreadsheet: bool
    ) -> transfer.ExportPage:
        from medama_core import transfer

        read = functools.partial(
            transfer.export_page, kind=kind, fmt=fmt, after=after, limit=limit, spreadsheet=spreadsheet
        )
        return await self.db.read(read, hostname)

    async def import_upload(
        self, tool: str, data: bytes, hostname: str, umami_ids: dict[str, str], *, name: str, dry_run: bool
    ) -> list[transfer.ImportResult]:
        from medama_core import transfer

        cache_kib = self.db.cache_kib

        def upload(conn: sqlite3.Connection) -> list[transfer.ImportResult]:
            try:
                return transfer.import_upload(conn, tool, data, hostname, umami_ids, name=name, dry_run=dry_run)
            finally:
                # The import sized the writer's cache for itself (transfer.IMPORT_CACHE_KIB, 64 MiB), and a
                # sorter holds up to its connection's cache: the refresher's sorts after it would too.
                conn.execute(f"PRAGMA cache_size = -{int(cache_kib)}")

        return await self.db.write(upload)

    async def progress(self, hostname: str, now_ms: int) -> dict[str, int]:
        from medama_core.store.sqlite import rollups

        return await self.db.read(rollups.site_pending, hostname, now_ms)

    async def purge_step(self, hostname: str, before_ms: int) -> Step:
        from medama_core.store.sqlite import retention

        return await self.db.write(retention.purge_step, hostname, before_ms)

    async def raw_floor(self, hostname: str) -> int | None:
        from medama_core.store.sqlite import retention

        return await self.db.read(retention.raw_floor, hostname)

    async def maintain(self) -> int:
        """The rollups' background work until none is left: closed dirty hours first (a batch of about
        rollups.REFRESH_BATCH_VIEWS views per writer call, so hit batches get the writer in between, or
        QUIET_BATCH_VIEWS when no read came for QUIET_BEFORE_LONG_S), then
        the queued blocks, today's column copies, and copies of built days that have none. Returns the
        hours rebuilt."""
        from medama_core.store.sqlite import columns, rollups

        done = 0
        while not self.db.closed:
            await self.db.quiet(YIELD_TO_READS_S)
            now_ms = int(time.time() * 1000)
            quiet = self.db.quiet_for() >= QUIET_BEFORE_LONG_S
            views = rollups.QUIET_BATCH_VIEWS if quiet else rollups.REFRESH_BATCH_VIEWS
            rebuilt = await self.db.unit(rollups.refresh_hours, now_ms, views)
            done += rebuilt
            if rebuilt:
                continue
            if await self.db.unit(rollups.build_blocks, now_ms):
                continue
            # Today's hours just rebuilt: copy today's closed hours again, a few sites per writer call.
            if done and await self.db.unit(columns.refresh_open, now_ms) >= columns.BACKFILL_DAYS_PER_CALL:
                continue
            if await self.db.unit(columns.backfill, columns.BACKFILL_DAYS_PER_CALL):
                continue
            break
        return done

    @property
    def closed(self) -> bool:
        return self.db.closed

    async def health(self) -> None:
        await self.db.read(_probe)

    async def size(self) -> int | None:
        return await asyncio.to_thread(file_size, self.location)

    def tune(self, *, readers: int | None = None, cache_kib: int | None = None, heap_limit: int | None = None) -> None:
        self.db.configure(readers=readers, cache_kib=cache_kib)
        if heap_limit is not None:
            set_heap_limit(heap_limit)

    def close(self) -> None:
        self.db.close()
