"""The ClickHouse adapter: AnalyticsStore over store/clickhouse/ (ClickHouse's HTTP interface, standard library only).

The client blocks, so every call runs on a small pool of threads of our own
(the client keeps one keep-alive connection per thread); writes have a pool
of one, so hit batches reach ClickHouse in the order they were taken, as on
SQLite's writer thread.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final, TypeVar

from medama_core.config import ConfigError
from medama_core.store.clickhouse import hits as ch_hits
from medama_core.store.clickhouse import live as ch_live
from medama_core.store.clickhouse import retention as ch_retention
from medama_core.store.clickhouse import schema, site_data
from medama_core.store.clickhouse import stats as ch_stats
from medama_core.store.clickhouse.client import ClickHouseError, Client
from medama_core.store.clickhouse.url import URLError, parse_url
from medama_core.store.protocol import Op, Outcomes, Page, Query, Step, Unsupported

T = TypeVar("T")

DEFAULT_READERS: Final = 2  # concurrent stats queries per node; the server does the work, on its own cores
NOT_YET: Final = "is not available with ClickHouse analytics yet (issue 17); it works on the SQLite analytics store"


class ClickHouseAnalytics:
    """AnalyticsStore on a ClickHouse database."""

    engine = "clickhouse"
    # Full list rows read `views` over the whole period, and /time's quartiles too (store/clickhouse/stats.py):
    # after retention they miss the deleted days, and say so (api/retention.py).
    raw_unfiltered: frozenset[str] = frozenset({"lists", "time"})

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
        self.readers = DEFAULT_READERS
        self._readers = ThreadPoolExecutor(max_workers=self.readers, thread_name_prefix="read-clickhouse")
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="write-clickhouse")
        self.closed = False

    async def _read(self, fn: Callable[..., T], /, *args: object) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._readers, lambda: fn(self.client, *args))

    async def _write(self, fn: Callable[..., T], /, *args: object) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._writer, lambda: fn(self.client, *args))

    def site_hits_on(self, day_ms: int) -> dict[str, int]:
        """Not stored here: after a restart each site's daily quota counts from zero (docs/scale.md)."""
        return {}

    async def write_hits(self, ops: Sequence[Op]) -> Outcomes:
        return await self._write(ch_hits.apply_batch, ops)

    async def summary(self, query: Query, previous: bool, interval: str | None) -> dict[str, Any]:
        return await self._read(ch_stats.summary, query, previous, interval)

    async def list_stats(
        self, query: Query, endpoint: str, summary: bool, page: Page, variant: bool = False
    ) -> list[dict[str, Any]]:
        return await self._read(ch_stats.list_stats, query, endpoint, summary, page, variant)

    async def time_stats(self, query: Query, summary: bool, page: Page) -> list[dict[str, Any]]:
        return await self._read(ch_stats.time_stats, query, summary, page)

    async def properties(self, query: Query, page: Page) -> list[dict[str, Any]]:
        return await self._read(ch_stats.properties, query, page)

    async def visitors_since(self, hostnames: list[str], since_ms: int) -> dict[str, int]:
        return await self._read(site_data.unique_visitors_since, hostnames, since_ms)

    async def site_intervals(
        self, hostnames: list[str], start_us: int, end_us: int, interval: str
    ) -> list[list[dict[str, Any]]]:
        def each(client: Client) -> list[list[dict[str, Any]]]:
            return [
                ch_stats.interval_metrics(client, Query(hostname, start_us, end_us), interval, start_us, end_us)
                for hostname in hostnames
            ]

        return await self._read(each)

    async def live(self, hostname: str, now_ms: int) -> dict[str, Any]:
        return await self._read(ch_live.live, hostname, now_ms)

    async def imported_periods(self, hostname: str) -> list[tuple[str, int, int]]:
        return []  # imports are refused on this engine (import_upload), so no site holds imported days

    async def drop_counts(self, start_day: int, end_day: int) -> list[tuple[int, str, str, int]]:
        return await self._read(ch_hits.drop_counts, start_day, end_day)

    async def rename_site(self, old: str, new: str) -> None:
        await self._write(site_data.rename_site_data, old, new)

    async def delete_sites(self, hostnames: list[str]) -> None:
        await self._write(site_data.delete_site_data, hostnames)

    async def export_page(
        self, hostname: str, *, kind: str, fmt: str, after: tuple[int, int] | None, limit: int, spreadsheet: bool
    ) -> Any:
        raise Unsupported(f"exporting a site's rows {NOT_YET}")

    async def import_upload(
        self, tool: str, data: bytes, hostname: str, umami_ids: dict[str, str], *, name: str, dry_run: bool
    ) -> list[Any]:
        raise Unsupported(f"importing another tool's export {NOT_YET}")

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
