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
then the unloads of 70% of them in later batches. The views are live hits,
in time order at --ingest-per-hour (10 M in 90 days by default). Reported:
ops/s, this process's CPU per op (time.process_time: the client's cost) and
the server's (its process's CPU, during the writes and until the merges
they caused are done). Then the same ops through the SQLite store's writer,
its CPU per op alone and with the rollup refresh of the hours they touched.

The server is started here (tests/engines.py: free ports, its data folder
kept in --data), or chDB runs in this process (--chdb). Numbers from a shared 2-core machine are noisy.

Usage: python bench/clickhouse.py [--rows 10000000] [--runs 5] [--filters no,page,other,browser,referrer,prop]
       [--days 30,90] [--skip queries,ingest,sqlite] [--chdb] [--database bench_<digest>_<rows>]
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

ROOT = Path(__file__).resolve().parent.parent
sys.path[0] = str(ROOT)  # not bench/ itself: its http.py would hide the standard library's http package
# bench/stats.py: the row generator and the overview set's bounds (bench/ is not a package, and holds an http.py).
_spec = importlib.util.spec_from_file_location("bench_stats", ROOT / "bench" / "stats.py")
assert _spec is not None and _spec.loader is not None
data = importlib.util.module_from_spec(_spec)
sys.modules["bench_stats"] = data  # its dataclasses look their module up while it runs
_spec.loader.exec_module(data)

from medama_core.store.clickhouse import hits, schema  # noqa: E402
from medama_core.store.clickhouse import stats as ch_stats  # noqa: E402
from medama_core.store.clickhouse.client import Client, HTTPTransport  # noqa: E402
from medama_core.store.clickhouse.schema import HOUR_MS  # noqa: E402
from medama_core.store.query import Page, Query  # noqa: E402
from medama_core.store.rows import VIEW_COLUMNS, Duration, NewView, Op  # noqa: E402
from medama_core.store.sqlite import analytics, db, marking, rollups  # noqa: E402
from medama_core.store.sqlite import columns as column_copies  # noqa: E402
from medama_core.store.sqlite import hits as sqlite_hits  # noqa: E402
from tests.engines import ChdbTransport, chdb_session, clickhouse_server  # noqa: E402

# Days of rows per INSERT ... SELECT of a load: 110,000 views, under the 60 s query timeout also on a busy
# machine (3 days timed out at load 14).
LOAD_DAYS = 1
LIMIT = 5  # the dashboard's panels ask for five rows


def events_of(chunk: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """bench/stats.py's (bid, site, name, value, at) as the events columns."""
    return [(bid, "b", site, name, value, at) for bid, site, name, value, at in chunk]


def raw_database(server: Engine, n: int) -> str:
    """A database holding bench/stats.py's n views and their events as stored rows, generated once.

    Its tables are plain MergeTrees in the columns the store writes (VIEW_COLUMNS, EVENT_TABLE_COLUMNS):
    every schema under test loads from them with INSERT ... SELECT, in seconds instead of the minutes
    the generator takes. It lives in the server's data folder, which --data keeps between runs.
    """
    name = f"raw_{n}"
    if server.query(f"EXISTS TABLE {name}.complete").strip() == "1":
        return name
    server.query(f"DROP DATABASE IF EXISTS {name}")
    server.query(f"CREATE DATABASE {name}")
    client = server.client(name)
    types = {"is_unique_user": "UInt8", "is_unique_page": "UInt8", "duration_ms": "Nullable(Int64)"}
    types |= {"date_created": "Int64"}
    for table, columns in (("views", VIEW_COLUMNS), ("events", hits.EVENT_TABLE_COLUMNS)):
        fields = ", ".join(f"{c} {types.get(c, 'String')}" for c in columns)
        client.command(f"CREATE TABLE {table} ({fields}) ENGINE = MergeTree ORDER BY date_created")
    started = time.perf_counter()
    for chunk_views, chunk_events in data.generate(data.Shape(rows=n)):
        client.insert("views", VIEW_COLUMNS, chunk_views)
        of_bid = {view[0]: view for view in chunk_views}
        rows = [row for event in events_of(chunk_events) for row in hits.event_rows([event], of_bid[event[0]])]
        client.insert("events", hits.EVENT_TABLE_COLUMNS, rows)
    client.command("CREATE TABLE complete (n UInt64) ENGINE = TinyLog")
    print(f"generated {n:,} views in {time.perf_counter() - started:.0f} s into {name}", flush=True)
    client.close()
    return name


def schema_digest() -> str:
    """Names a loaded database after the schema it was loaded into: a changed schema loads anew."""
    text = repr(schema.MIGRATIONS).encode()
    return hashlib.sha256(text).hexdigest()[:10]


def load_from(client: Client, raw: str, limit: int | None = None) -> None:
    """The raw rows into a migrated database, as the store writes them (views with their keys, events and
    their views' times).

    In slices of LOAD_DAYS days, each one INSERT ... SELECT under the client's query timeout.
    """
    started = time.perf_counter()
    views, keys = ", ".join(VIEW_COLUMNS), "bid, hostname, date_created"
    events = ", ".join(hits.EVENT_TABLE_COLUMNS)
    prop_views = ", ".join(schema.PROP_VIEW_COLUMNS)
    statements = (
        f"INSERT INTO views ({views}, sign, version) SELECT {views}, 1, 0 FROM {raw}.views WHERE {{when}}",
        f"INSERT INTO view_keys ({keys}) SELECT {keys} FROM {raw}.views WHERE {{when}}",
        f"INSERT INTO events ({events}) SELECT {events} FROM {raw}.events WHERE {{when}}",
        # Each event's view's time and flags (schema migration 7; its dimensions are the event's copies): the
        # generator dates an event 1-3 s after its view.
        f"INSERT INTO prop_views ({prop_views}) SELECT {prop_views} FROM {raw}.events ANY INNER JOIN"
        " (SELECT bid, hostname AS site, date_created AS view_created, is_unique_user, is_unique_page"
        f" FROM {raw}.views WHERE {{before}}) AS v USING (bid, site) WHERE {{when}}",
    )
    first, last = client.rows(f"SELECT min(date_created), max(date_created) FROM {raw}.views")[0]
    if limit is not None:
        last = client.rows(
            f"SELECT max(date_created) FROM (SELECT date_created FROM {raw}.views ORDER BY date_created LIMIT {limit})"
        )[0][0]
    step = LOAD_DAYS * data.DAY
    for lo in range(int(first), int(last) + 1, step):
        hi = min(lo + step, int(last) + 1)
        for statement in statements:
            when = f"date_created >= {lo} AND date_created < {hi}"
            client.command(
                statement.format(when=when, before=f"date_created >= {lo - data.DAY} AND date_created < {hi}")
            )
    schema.backfill_prop_durations(client)  # the durations of the views with events, by property (migration 9)
    schema.backfill_views_by_prop(client)  # the views with events again under each property (migration 15)
    schema.backfill_prop_sets(client)  # and once more under each view's key set (migration 18)
    print(f"loaded {raw} in {time.perf_counter() - started:.0f} s (INSERT ... SELECT on the server)", flush=True)


def bench_database(server: Engine, raw: str, n: int, reuse: str = "") -> Client:
    """A migrated database with the raw rows loaded, reused while the schema is unchanged (or `reuse`, a database
    loaded by an earlier schema, migrated to this one: its migrations fill the new tables from the stored rows)."""
    if reuse:
        client = server.client(reuse)
        started = time.perf_counter()
        schema.migrate(client, int(time.time() * 1000))
        print(f"database {reuse} (migrated in {time.perf_counter() - started:.0f} s)", flush=True)
        return client
    name = f"bench_{schema_digest()}_{n}"
    if server.query(f"EXISTS TABLE {name}.bench_complete").strip() != "1":
        server.query(f"DROP DATABASE IF EXISTS {name}")
        server.query(f"CREATE DATABASE {name}")
        client = server.client(name)
        schema.migrate(client, int(time.time() * 1000))
        load_from(client, raw)
        client.command("CREATE TABLE bench_complete (n UInt64) ENGINE = TinyLog")
    else:
        client = server.client(name)
    print(f"database {name}", flush=True)
    return client


def settle(client: Client, limit_s: float = 600) -> None:
    """Wait until the background merges of the load are done (a live site's parts are merged too)."""
    started = time.perf_counter()
    while time.perf_counter() - started < limit_s:
        merging = client.rows("SELECT count() FROM system.merges WHERE database = currentDatabase()")[0][0]
        if not merging:
            break
        time.sleep(2)
    parts = client.rows(
        "SELECT table, count() FROM system.parts WHERE database = currentDatabase() AND active GROUP BY table"
        " ORDER BY table"
    )
    print("active parts: " + ", ".join(f"{t} {c}" for t, c in parts), flush=True)


def panel(client: Client, endpoint: str, q: Query) -> Callable[[], Any]:
    page = Page(LIMIT)
    if endpoint == "summary":
        return lambda: ch_stats.summary(client, q, True, "day")
    if endpoint == "time":
        return lambda: ch_stats.time_stats(client, q, True, page)
    if endpoint == "properties":
        return lambda: ch_stats.properties(client, q, page)
    return lambda: ch_stats.list_stats(client, q, endpoint, True, page)


def read_bytes(client: Client) -> int:
    """Bytes the server has decompressed from the tables' parts since it started (system.events'
    CompressedReadBufferBytes; 18.16 counts no rows read there, and has no query_log here): a panel's count is the
    difference around it, which the machine's load does not move (this process is the server's only client)."""
    found = client.rows("SELECT sum(value) FROM system.events WHERE event = 'CompressedReadBufferBytes'")
    return int(found[0][0]) if found and found[0][0] is not None else 0


def measure(engine: Engine, client: Client, runs: int, filter_sets: list[str], periods: list[int]) -> None:
    """Each panel's median wall time, and the server's median CPU time for it (which moves far less with the
    machine's load: on an idle 2-core machine, wall time is between CPU / 2 and CPU, plus the client's part),
    then the MB it decompressed (read_bytes: the same every run)."""
    for filters in filter_sets:
        for days in periods:
            q = data.case_query(data.SITE, days, filters, data.Panel("summary"))
            times, cpus, decompressed = {}, {}, {}
            for endpoint in data.ENDPOINTS:
                call = panel(client, endpoint, q)
                samples, cpu = [], []
                for _ in range(runs):
                    started, before = time.perf_counter(), engine.cpu()
                    call()
                    samples.append((time.perf_counter() - started) * 1000)
                    cpu.append((engine.cpu() - before) * 1000)
                times[endpoint], cpus[endpoint] = statistics.median(samples), statistics.median(cpu)
                read = read_bytes(client)
                call()
                decompressed[endpoint] = read_bytes(client) - read
            worst = max(times, key=lambda e: times[e])
            cells = "  ".join(f"{e} {ms:.0f}/{cpus[e]:.0f}/{decompressed[e] / 1e6:.1f}" for e, ms in times.items())
            print(
                f"{days:>2} days, filters={filters:<5} set {sum(times.values()):6.0f} ms (server CPU"
                f" {sum(cpus.values()):5.0f} ms, {sum(decompressed.values()) / 1e6:,.0f} MB read), slowest {worst}"
                f" {times[worst]:.0f} ms | wall ms/CPU ms/MB: {cells}",
                flush=True,
            )


def ingest_ops(n: int, per_hour: int) -> tuple[list[Op], list[Op]]:
    """bench/stats.py's n views as live hits after the loaded ones: loads with their events, and unloads.

    Live hits arrive in time order at the site's rate, so a batch holds one hour or two (the generator
    spreads its rows over 90 days: 1,000 of them would touch ~1,000 hours, and the pre-aggregates would
    write a row per view where live traffic writes one per value and hour).
    """
    loads: list[Op] = []
    unloads: list[Op] = []
    step = HOUR_MS / per_hour
    at = data.END
    for chunk_views, chunk_events in data.generate(data.Shape(rows=n, seed=3)):
        by_bid: dict[str, list[tuple[Any, ...]]] = {}
        for event in events_of(chunk_events):
            by_bid.setdefault(event[0], []).append(event)
        for row in chunk_views:
            bid, when = f"i{row[0]}", int(at + len(loads) * step)
            view = (bid, *row[1:16], None, when)
            events = [(bid, *event[1:5], when) for event in by_bid.get(row[0], [])]
            loads.append(NewView(view, events))
            if row[16] is not None:
                unloads.append(Duration(bid, row[16]))
    return loads, unloads


def ingest(server: Engine, raw: str, ops: list[Op], views: int, batch: int, prefill: int) -> None:
    """`ops` written as the tracker writes them, in batches of `batch`; the server's CPU counted during the
    writes and until the merges they caused are done.

    They go to a database of their own, prefilled with `prefill` of the raw views, and dropped after:
    the loaded one stays as it was for the next run.
    """
    name = f"ingest_{schema_digest()}"
    server.query(f"DROP DATABASE IF EXISTS {name}")
    server.query(f"CREATE DATABASE {name}")
    client = server.client(name)
    schema.migrate(client, int(time.time() * 1000))
    load_from(client, raw, prefill)
    settle(client)  # the prefill's merges would otherwise count as the ingestion's CPU
    started, cpu, server_cpu = time.perf_counter(), time.process_time(), server.cpu()
    slowest = 0.0
    for start in range(0, len(ops), batch):
        began = time.perf_counter()
        outcomes = hits.apply_batch(client, ops[start : start + batch])
        slowest = max(slowest, time.perf_counter() - began)
        assert not any(outcomes), outcomes
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    during = server.cpu() - server_cpu
    settle(client)
    merged = server.cpu() - server_cpu
    print(
        f"ingest, ClickHouse: {len(ops):,} ops ({views:,} views with their events, {len(ops) - views:,} unloads)"
        f" in batches of {batch}: {len(ops) / elapsed:,.0f} ops/s, slowest batch {slowest * 1000:.0f} ms; CPU per"
        f" op: client {cpu / len(ops) * 1e6:.0f} µs, server {during / len(ops) * 1e6:.0f} µs during the writes,"
        f" {merged / len(ops) * 1e6:.0f} µs with the merges after; per view (client + server with merges)"
        f" {(cpu + merged) / views * 1e6:.0f} µs",
        flush=True,
    )
    client.close()
    server.query(f"DROP DATABASE {name}")


def ingest_sqlite(ops: list[Op], views: int, batch: int, prefill: int) -> None:
    """The same ops through the SQLite store's writer (store/sqlite/hits.py, the process's CPU), then the rollup and
    column-copy refresh that the SQLite store runs later for the hours they touched (the work ClickHouse's
    materialized views do at insert). The database is prefilled with `prefill` generated views."""
    with tempfile.TemporaryDirectory() as folder:
        conn = db.connect(os.path.join(folder, "analytics.db"))
        db.migrate(conn, analytics.MIGRATIONS)
        for chunk_views, chunk_events in data.generate(data.Shape(rows=prefill, seed=2)):
            with db.Transaction(conn):
                since = marking.starts(conn)
                conn.executemany(data.INSERT_VIEW, chunk_views)
                conn.executemany(data.INSERT_EVENT, chunk_events)
                marking.mark_since(conn, since)
        now = max(cast(int, op.view[-1]) for op in ops if isinstance(op, NewView)) + 2 * HOUR_MS
        rollups.refresh(conn, data.END, 10**9)
        while column_copies.backfill(conn, 10**6):
            pass
        started, cpu = time.perf_counter(), time.process_time()
        for start in range(0, len(ops), batch):
            outcomes = sqlite_hits.apply_batch(conn, ops[start : start + batch])
            assert not any(outcomes), outcomes
        elapsed, written = time.perf_counter() - started, time.process_time() - cpu
        hours = rollups.refresh(conn, now, 10**9)
        while column_copies.backfill(conn, 10**6):
            pass
        maintained = time.process_time() - cpu
        conn.close()
    print(
        f"ingest, SQLite: {len(ops):,} ops in batches of {batch}: {len(ops) / elapsed:,.0f} ops/s; CPU per op:"
        f" writer {written / len(ops) * 1e6:.0f} µs, {maintained / len(ops) * 1e6:.0f} µs with the refresh of"
        f" {hours} hours rebuilt after; per view {maintained / views * 1e6:.0f} µs",
        flush=True,
    )


def interleave(loads: list[Op], unloads: list[Op], batch: int) -> list[Op]:
    """Each batch of loads followed, one batch later, by the unloads of the views it brought."""
    out: list[Op] = []
    pending: list[Op] = []
    by_bid = {op.bid: op for op in unloads if isinstance(op, Duration)}
    for start in range(0, len(loads), batch):
        chunk = loads[start : start + batch]
        out += pending + chunk
        pending = [by_bid[op.view[0]] for op in chunk if isinstance(op, NewView) and op.view[0] in by_bid]
    return out + pending


class Engine:
    """Where the benchmark runs: a clickhouse-server (started here, or at --url), or chDB in this process."""

    def __init__(self, query: Callable[[str], str], client: Callable[[str], Client], pid: int | None) -> None:
        self.query = query  # a statement as the default user, its answer as text
        self.client = client  # a Client on one database
        self.pid = pid

    def cpu(self) -> float:
        """The server's CPU seconds so far (user and system; 0 when it is not a process of this machine)."""
        if self.pid is None:
            return 0.0
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def engines(data_dir: str, chdb: bool) -> Iterator[Engine]:
    if chdb:  # a current release in this process: no HTTP, and the server's CPU shows as the client's
        session = chdb_session()
        print("chDB (ClickHouse in-process, chdb-core)", flush=True)
        yield Engine(
            lambda sql: session.query(sql, "TabSeparated").bytes().decode(),
            lambda name: Client(ChdbTransport(session, name)),
            None,
        )
        return
    with clickhouse_server(data_dir) as server:
        print(f"clickhouse-server {server.version} on port {server.http_port}, data in {data_dir}", flush=True)
        yield Engine(server.query, lambda name: Client(HTTPTransport(server.url(name))), server.proc.pid)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--filters", default="no,page,other,prop")
    parser.add_argument("--days", default="30,90")
    parser.add_argument("--ingest-rows", type=int, default=50_000)
    parser.add_argument("--ingest-prefill", type=int, default=1_000_000)
    parser.add_argument("--ingest-per-hour", type=int, default=4630, help="live views per hour (10 M in 90 days)")
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--data", default="/tmp/medama-chbench", help="the server's data folder, kept between runs")
    parser.add_argument("--chdb", action="store_true", help="run on chDB (a current release, in-process) instead")
    parser.add_argument("--database", default="", help="a loaded database to reuse, migrated to the current schema")
    parser.add_argument("--skip", default="", help="comma-separated: queries, ingest, sqlite")
    args = parser.parse_args()
    skip = set(args.skip.split(","))
    print(f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}", flush=True)
    for engine in engines(args.data, args.chdb):
        raw = raw_database(engine, args.rows)
        if "queries" not in skip:
            client = bench_database(engine, raw, args.rows, args.database)
            settle(client)
            print(f"query parameters: {'server-side' if client.server_params else 'escaped literals'}", flush=True)
            measure(engine, client, args.runs, args.filters.split(","), [int(d) for d in args.days.split(",")])
            client.close()
        if "ingest" not in skip:
            loads, unloads = ingest_ops(args.ingest_rows, args.ingest_per_hour)
            ops = interleave(loads, unloads, args.batch)
            ingest(engine, raw, ops, len(loads), args.batch, args.ingest_prefill)
            if "sqlite" not in skip:
                ingest_sqlite(ops, len(loads), args.batch, args.ingest_prefill)
    print(f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}", flush=True)


if __name__ == "__main__":
    main()
