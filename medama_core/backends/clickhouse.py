"""The ClickHouse adapter: AnalyticsStore over store/clickhouse/ (ClickHouse's HTTP interface, standard library only).

The client blocks, so every call runs on a small pool of threads of our own
(the client keeps one keep-alive connection per thread); writes have a pool
of one, so hit batches reach ClickHouse in the order they were taken, as on
SQLite's writer thread.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final, TypeVar

from medama_core import transfer
from medama_core.config import ConfigError
from medama_core.store import imported_stats
from medama_core.store.clickhouse import entries as ch_entries
from medama_core.store.clickhouse import goal_counts as ch_goals
from medama_core.store.clickhouse import hits as ch_hits
from medama_core.store.clickhouse import imported as ch_imported
from medama_core.store.clickhouse import live as ch_live
from medama_core.store.clickhouse import retention as ch_retention
from medama_core.store.clickhouse import schema, site_data
from medama_core.store.clickhouse import stats as ch_stats
from medama_core.store.clickhouse.client import ClickHouseError, Client
from medama_core.store.clickhouse.url import URLError, parse_url
from medama_core.store.protocol import Filter, Op, Outcomes, Page, Query, Step

T = TypeVar("T")

DEFAULT_READERS: Final = 2  # concurrent stats queries per node; the server does the work, on its own cores
_IMPORTED: Final = ch_imported.ENGINE  # the stats answers with imported daily totals added (store/imported_stats.py)


# A node's batches of hits on ClickHouse are larger than SQLite's (writer.MAX_BATCH_OPS): each batch is up
# to seven INSERTs (store/clickhouse/hits.py), and the one into `views` writes eight more tables through their
# materialized views, a part per table and month that merges rewrite, so a batch costs the server ~31 ms of
# CPU plus ~10 us per view (docs/scale.md, "Measured"): SQLite's CPU per hit needs thousands per batch.
# The bound is memory: a batch's ops and the rows and INSERT bodies made of them stay in the node until it
# is written, at most WRITE_BATCH_BYTES, a quarter of a 256 MB VM (the node itself and its queue, MAX_PENDING_OPS,
# take the rest). A row (a view, or a custom property, which copies its view's dimensions) takes at most
# WORST_ROW_BYTES of it: measured with every text at its cap (ingest/hit.py), a view 7.5 KiB (2.9 queued,
# 4.6 while encoded), a view with ten properties 6.8 KiB per row; a typical view ~1 KiB. So a batch holds
# at most WRITE_BATCH_ROWS rows, an op weighing the rows it writes (`hits.op_rows`).
WRITE_BATCH_BYTES: Final = 64 * 1024 * 1024
WORST_ROW_BYTES: Final = 8 * 1024
WRITE_BATCH_ROWS: Final = WRITE_BATCH_BYTES // WORST_ROW_BYTES  # 8,192


class ClickHouseAnalytics:
    """AnalyticsStore on a ClickHouse database."""

    engine = "clickhouse"
    # A short batch waits -clickhouselinger after the previous one (config.DEFAULT_CLICKHOUSE_LINGER_MS):
    # ClickHouse advises about one INSERT per table per second.
    write_lingers = True
    write_batch_ops: int | None = WRITE_BATCH_ROWS
    # Full list rows read `views` over the whole period, and /time's quartiles too (store/clickhouse/stats.py),
    # and entry and exit pages (store/clickhouse/entries.py): after retention they miss the deleted days, and
    # say so (api/retention.py).
    raw_unfiltered: frozenset[str] = frozenset({"lists", "time", "entries"})

    def __init__(self, url: str, flag: str = "-analyticsdb", *, client: Client | None = None) -> None:
        if client is None:
            try:
                parsed = parse_url(url)
            except URLError as exc:
                raise ConfigError(f"{flag}: {exc}") from None
            client = Client.connect(parsed)
            self.location = parsed.redacted()
        else:
            self.location = url
        self.client = client
        try:
            schema.migrate(client, int(time.time() * 1000))  # also the check that the server answers and lets us in
        except ClickHouseError as exc:
            client.close()
            raise ConfigError(f"{flag}: {exc}") from None
        self.write_weight: Callable[[Op], int] | None = ch_hits.op_rows
        self.readers = DEFAULT_READERS
        self._readers = ThreadPoolExecutor(max_workers=self.readers, thread_name_prefix="read-clickhouse")
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="write-clickhouse")
        self.closed = False

    async def _read(self, fn: Callable[..., T], /, *args: object) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._readers, lambda: fn(self.client, *args))

    async def _write(self, fn: Callable[..., T], /, *args: object) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._writer, lambda: fn(self.client, *args))

    def site_hits_on(self, day_ms: int) -> dict[str, int]:
        """Counted from the day's stored views and custom events, every node's (docs/scale.md)."""
        return site_data.hits_on(self.client, day_ms)

    async def site_hits(self, day_ms: int) -> dict[str, int]:
        return await self._read(site_data.hits_on, day_ms)

    async def write_hits(self, ops: Sequence[Op]) -> Outcomes:
        return await self._write(ch_hits.apply_batch, ops)

    async def summary(self, query: Query, previous: bool, interval: str | None) -> dict[str, Any]:
        return await self._read(imported_stats.summary, query, previous, interval, _IMPORTED)

    async def list_stats(
        self, query: Query, endpoint: str, summary: bool, page: Page, variant: bool = False
    ) -> list[dict[str, Any]]:
        return await self._read(imported_stats.list_stats, query, endpoint, summary, page, variant, _IMPORTED)

    async def time_stats(self, query: Query, summary: bool, page: Page) -> list[dict[str, Any]]:
        return await self._read(ch_stats.time_stats, query, summary, page)

    async def properties(self, query: Query, page: Page) -> list[dict[str, Any]]:
        return await self._read(ch_stats.properties, query, page)

    async def goal_counts(self, query: Query, goals: Sequence[tuple[Filter, ...]]) -> tuple[int, list[tuple[int, int]]]:
        return await self._read(ch_goals.goal_counts, query, goals)

    async def entries(self, query: Query, summary: bool, page: Page) -> list[dict[str, Any]]:
        return await self._read(ch_entries.entries, query, summary, page)

    async def exits(self, query: Query, summary: bool, page: Page) -> list[dict[str, Any]]:
        return await self._read(ch_entries.exits, query, summary, page)

    async def visitors_since(self, hostnames: list[str], since_ms: int) -> dict[str, int]:
        return await self._read(imported_stats.visitors_since, hostnames, since_ms, _IMPORTED)

    async def site_intervals(
        self, hostnames: list[str], start_us: int, end_us: int, interval: str
    ) -> list[list[dict[str, Any]]]:
        return await self._read(imported_stats.site_intervals, hostnames, start_us, end_us, interval, _IMPORTED)

    async def live(self, hostname: str, now_ms: int) -> dict[str, Any]:
        return await self._read(ch_live.live, hostname, now_ms)

    async def imported_periods(self, hostname: str) -> list[tuple[str, int, int]]:
        return await self._read(ch_imported.periods, hostname)

    async def drop_counts(self, start_day: int, end_day: int) -> list[tuple[int, str, str, int]]:
        return await self._read(ch_hits.drop_counts, start_day, end_day)

    async def rename_site(self, old: str, new: str) -> None:
        await self._write(site_data.rename_site_data, old, new)

    async def delete_sites(self, hostnames: list[str]) -> None:
        await self._write(site_data.delete_site_data, hostnames)

    async def export_page(
        self, hostname: str, *, kind: str, fmt: str, after: tuple[int, int] | None, limit: int, spreadsheet: bool
    ) -> transfer.ExportPage:
        read = functools.partial(
            transfer.export_page_clickhouse, kind=kind, fmt=fmt, after=after, limit=limit, spreadsheet=spreadsheet
        )
        return await self._read(read, hostname)

    async def import_upload(
        self, tool: str, data: bytes, hostname: str, umami_ids: dict[str, str], *, name: str, dry_run: bool
    ) -> list[transfer.ImportResult]:
        """On the writer thread, in order with the hit batches (which need not wait for it: ClickHouse takes
        concurrent INSERTs, but one writer keeps a node's writes in the order they were taken)."""
        fn = functools.partial(transfer.import_upload_clickhouse, name=name, dry_run=dry_run)
        return await self._write(fn, tool, data, hostname, umami_ids)

    async def progress(self, hostname: str, now_ms: int) -> dict[str, int]:
        return {"hours": 0, "blocks": 0}  # nothing waits: `hourly` is written with every INSERT

    async def purge_step(self, hostname: str, before_ms: int) -> Step:
        return await self._write(ch_retention.purge_step, hostname, before_ms)

    async def raw_floor(self, hostname: str) -> int | None:
        return await self._read(ch_retention.raw_floor, hostname)

    async def maintain(self) -> int:
        return 0  # the materialized view keeps `hourly` current on every INSERT; merges are the server's

    async def health(self) -> None:
        await self._read(lambda client: client.rows("SELECT 1"))

    async def size(self) -> int | None:
        try:
            return await self._read(schema.database_bytes)
        except ClickHouseError:  # system.parts refused (a user without access to it): say unknown, not 0
            return None

    def tune(self, *, readers: int | None = None, cache_kib: int | None = None, heap_limit: int | None = None) -> None:
        """`readers` sets how many stats queries run at once; memory belongs to the server."""
        if readers is not None and readers != self.readers:
            old = self._readers
            self._readers = ThreadPoolExecutor(max_workers=readers, thread_name_prefix="read-clickhouse")
            self.readers = readers
            old.shutdown(wait=False)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._readers.shutdown(wait=True)
        self._writer.shutdown(wait=True)
        self.client.close()
