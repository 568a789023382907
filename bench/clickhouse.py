"""ClickHouse benchmark: load N views into a real clickhouse-server, time the dashboard's overview set, and ingestion.

The rows are bench/stats.py's (N page views over 90 days, 401 paths, custom
events on 13%). The views are loaded through the import path
(store/clickhouse/bulk.py: the duplicate check and the INSERTs), their events
beside them with their view's site and dimensions, as ingestion writes a
load's events (the import of an events file looks each view up instead). Then the overview set of bench/stats.py
(summary with previous and day interval, every list with summary=true&limit=5,
/time, /properties) over the last 30 and 90 days, without and with filters,
each timed --runs times (median shown) from this process through the HTTP
client, as the server would run them.

Ingestion: --ingest-rows more views written as the tracker writes them,
through hits.apply_batch in batches of --batch ops: loads with their events,
then the unloads of 70% of them in later batches. Reported: rows/s, and this
process's CPU per hit (time.process_time: the client's cost, apart from the
server's).

The server is started here (tests/engines.py: temporary data folder, free
ports) unless --url names one. Numbers from a shared 2-core machine are noisy.

Usage: python bench/clickhouse.py [--rows 10000000] [--runs 5] [--filters no,page,other,prop]
       [--url clickhouse://... | --chdb]
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[0] = str(ROOT)  # not bench/ itself: its http.py would hide the standard library's http package
# bench/stats.py: the row generator and the overview set's bounds (bench/ is not a package, and holds an http.py).
_spec = importlib.util.spec_from_file_location("bench_stats", ROOT / "bench" / "stats.py")
assert _spec is not None and _spec.loader is not None
data = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(data)

from medama_core.store.clickhouse import bulk, hits, schema  # noqa: E402
from medama_core.store.clickhouse import stats as ch_stats  # noqa: E402
from medama_core.store.clickhouse.client import Client, HTTPTransport  # noqa: E402
from medama_core.store.clickhouse.url import parse_url  # noqa: E402
from medama_core.store.stats import Page, Query  # noqa: E402
from tests.engines import clickhouse_server, fresh_client  # noqa: E402

LIMIT = 5  # the dashboard's panels ask for five rows


def events_of(chunk: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """bench/stats.py's (bid, site, name, value, at) as the events columns."""
    return [(bid, "b", site, name, value, at) for bid, site, name, value, at in chunk]


def load(client: Client, n: int) -> None:
    """The views through the import path; their events beside them, as a load's events are written."""
    started, cpu = time.perf_counter(), time.process_time()
    views = events = 0
    for chunk_views, chunk_events in data.generate(n):
        views += bulk.insert_views(client, chunk_views)
        of_bid = {view[0]: view for view in chunk_views}
        rows = [row for event in events_of(chunk_events) for row in hits.event_rows([event], of_bid[event[0]])]
        events += client.insert("events", hits.EVENT_TABLE_COLUMNS, rows)
    elapsed = time.perf_counter() - started
    print(
        f"loaded {views:,} views and {events:,} events in {elapsed:.1f} s ({views / elapsed:,.0f} views/s;"
        f" client CPU {time.process_time() - cpu:.1f} s, generator included)",
        flush=True,
    )


def panel(client: Client, endpoint: str, q: Query) -> Callable[[], Any]:
    page = Page(LIMIT)
    if endpoint == "summary":
        return lambda: ch_stats.summary(client, q, True, "day")
    if endpoint == "time":
        return lambda: ch_stats.time_stats(client, q, True, page)
    if endpoint == "properties":
        return lambda: ch_stats.properties(client, q, page)
    return lambda: ch_stats.list_stats(client, q, endpoint, True, page)


def measure(client: Client, runs: int, filter_sets: list[str]) -> None:
    for filters in filter_sets:
        for days in (30, 90):
            q = data.case_query(days, filters)
            times = {}
            for endpoint in data.ENDPOINTS:
                call = panel(client, endpoint, q)
                samples = []
                for _ in range(runs):
                    started = time.perf_counter()
                    call()
                    samples.append((time.perf_counter() - started) * 1000)
                times[endpoint] = statistics.median(samples)
            worst = max(times, key=lambda e: times[e])
            cells = "  ".join(f"{e} {ms:.0f}" for e, ms in times.items())
            print(
                f"{days:>2} days, filters={filters:<5} set {sum(times.values()):6.0f} ms, slowest {worst}"
                f" {times[worst]:.0f} ms | {cells}",
                flush=True,
            )


def ingest(client: Client, n: int, batch: int) -> None:
    """Views written after the loaded ones, as the tracker writes them; unloads for 70% in later batches."""
    loads: list[hits.Op] = []
    unloads: list[hits.Op] = []
    for chunk_views, chunk_events in data.generate(n, seed=3):
        by_bid: dict[str, list[tuple[Any, ...]]] = {}
        for event in events_of(chunk_events):
            by_bid.setdefault(f"i{event[0]}", []).append((f"i{event[0]}", *event[1:]))
        for row in chunk_views:
            bid = f"i{row[0]}"
            view = (bid, *row[1:16], None, row[17] + data.DAY)
            loads.append(hits.NewView(view, by_bid.get(bid, [])))
            if row[16] is not None:
                unloads.append(hits.Duration(bid, row[16]))
    ops = interleave(loads, unloads, batch)
    started, cpu = time.perf_counter(), time.process_time()
    for start in range(0, len(ops), batch):
        outcomes = hits.apply_batch(client, ops[start : start + batch])
        assert not any(outcomes), outcomes
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    print(
        f"ingest: {len(ops):,} ops ({len(loads):,} views with their events, {len(unloads):,} unloads) in batches of"
        f" {batch}: {len(ops) / elapsed:,.0f} ops/s, client CPU {cpu / len(ops) * 1e6:.0f} µs per op",
        flush=True,
    )


def interleave(loads: list[hits.Op], unloads: list[hits.Op], batch: int) -> list[hits.Op]:
    """Each batch of loads followed, one batch later, by the unloads of the views it brought."""
    out: list[hits.Op] = []
    pending: list[hits.Op] = []
    by_bid = {op.bid: op for op in unloads if isinstance(op, hits.Duration)}
    for start in range(0, len(loads), batch):
        chunk = loads[start : start + batch]
        out += pending + chunk
        pending = [by_bid[op.view[0]] for op in chunk if isinstance(op, hits.NewView) and op.view[0] in by_bid]
    return out + pending


def connect(url: str | None, chdb: bool) -> Iterator[Client]:
    if url is not None:
        yield Client(HTTPTransport(parse_url(url)))
        return
    if chdb:  # a current release in this process: no HTTP, and the server's CPU shows as the client's
        print("chDB (ClickHouse in-process, chdb-core)", flush=True)
        yield fresh_client("chdb", None)
        return
    with clickhouse_server() as server:
        server.query("CREATE DATABASE bench")
        print(f"clickhouse-server {server.version} on port {server.http_port}", flush=True)
        yield Client(HTTPTransport(server.url("bench")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--filters", default="no,page,other,prop")
    parser.add_argument("--ingest-rows", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--url", help="an existing server's database (default: start clickhouse-server here)")
    parser.add_argument("--chdb", action="store_true", help="run on chDB (a current release, in-process) instead")
    args = parser.parse_args()
    for client in connect(args.url, args.chdb):
        schema.migrate(client, int(time.time() * 1000))
        if not client.rows("SELECT count() FROM views")[0][0]:
            load(client, args.rows)
        print(f"query parameters: {'server-side' if client.server_params else 'escaped literals'}", flush=True)
        measure(client, args.runs, args.filters.split(","))
        ingest(client, args.ingest_rows, args.batch)
        client.close()


if __name__ == "__main__":
    main()
