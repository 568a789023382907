"""The ClickHouse writer's batches alone: the node's CPU per op (requests apart) and the server's per batch.

Starts a clickhouse-server (tests/engines.py) with its data in a new folder
in --data (a tmpfs such as /dev/shm leaves out the filesystem's cost of
creating each part's files; docs/scale.md), migrates a database, and writes
--batches batches of --batch ops through hits.apply_batch, as the tracker's
writer thread does: "load" batches of new views of one site, then "pairs"
batches (half new views, half the unloads of the batch before's views).
Printed per kind: the calling thread's CPU per op (time.thread_time), the
part of it spent in requests (Client._send: building, sending, reading an
answer), the requests per batch, and the server's user and system CPU per
batch (its process, during the writes). No threshold: the numbers are for reading.

With --statements, each kind's statements from the server's own
`system.query_log` (written for this run: log_queries=1), grouped by the
table they write or read: how many, user and system CPU (ProfileEvents
UserTimeMicroseconds, SystemTimeMicroseconds), rows read and written, peak
memory; an INSERT's figures include the materialized views it runs; what the
server's process spent outside them (background merges of the new parts,
the logs) is printed apart. With --views, then, each materialized view on
`views` is dropped in turn (the bench's own server), and --batches load
batches before each drop give the INSERT's cost with the views still there:
each view's share is the difference from the line before.

With --props N each new view carries N custom properties (`events`,
`prop_views`, `views_by_prop` and the views on it are written too).

Usage: python bench/ch_batches.py [--batch 128] [--batches 40] [--data /dev/shm] [--statements] [--views]
       [--props N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[0] = str(ROOT)  # not bench/ itself: its http.py would hide the standard library http package

from medama_core.store.clickhouse import client as client_module  # noqa: E402
from medama_core.store.clickhouse import hits, schema  # noqa: E402
from medama_core.store.clickhouse.client import Client, HTTPTransport  # noqa: E402
from medama_core.store.rows import Duration, NewView, Op  # noqa: E402
from tests.engines import Server, clickhouse_server  # noqa: E402

START_MS = 1_750_000_000_000
STEP_MS = 500  # two views a second: a batch of 128 within one hour, as live traffic at ~7,000 views an hour
PATHS = 50
WARMUP_BATCHES = 3  # a new server's first INSERTs cost it more (bench/ingest.py's warm-up)


PROPS = [0]  # custom properties per new view (--props)


def view(k: int) -> NewView:
    bid, at = f"b{k:010d}", START_MS + k * STEP_MS
    row = (bid, "example.com", f"/p{k % PATHS}", 1, 1, "", "", "DE", "en", "en-US", "Firefox", "Linux")
    events = [(bid, f"e{k}", "example.com", f"prop{p}", f"v{k % (3 + p)}", at) for p in range(PROPS[0])]
    return NewView((*row, "desktop", "", "", "", None, at), events)


def batches(kind: str, first: int, size: int, count: int) -> list[list[Op]]:
    out: list[list[Op]] = []
    for b in range(count):
        base = first + b * size
        if kind == "load":
            out.append([view(k) for k in range(base, base + size)])
        else:  # half new views, half the unloads of the views of the batch before
            half = size // 2
            ops: list[Op] = [view(k) for k in range(base, base + half)]
            if b:
                ops += [Duration(f"b{k:010d}", 1000 + k % 60_000) for k in range(base - size, base - size + half)]
            out.append(ops)
    return out


def server_cpu(pid: int) -> tuple[float, float]:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def timed_sends(client: Client) -> list[float]:
    """Count the thread CPU and the number of Client._send calls into the returned [seconds, calls]."""
    spent = [0.0, 0.0]
    send: Callable[[str, Mapping[str, str], bytes | None], bytes] = client._send

    def counted(sql: str, params: Mapping[str, str], rows: bytes | None = None) -> bytes:
        began = time.thread_time()
        try:
            return send(sql, params, rows)
        finally:
            spent[0] += time.thread_time() - began
            spent[1] += 1

    client._send = counted  # type: ignore[method-assign]
    return spent


# Per statement kind of the writer's user (not the bench's own `default` user), since a query_log time:
# the table an INSERT writes or a SELECT reads first, and the query_log figures summed.
_STATEMENTS = """SELECT
    if(query LIKE 'INSERT%', concat('INSERT ', extract(query, 'INSERT INTO ([a-z_]+)')),
       concat('SELECT ', extract(query, 'FROM ([a-z_]+)'))) AS what,
    count(), sum(ProfileEvents.Values[indexOf(ProfileEvents.Names, 'UserTimeMicroseconds')]),
    sum(ProfileEvents.Values[indexOf(ProfileEvents.Names, 'SystemTimeMicroseconds')]),
    sum(read_rows), sum(written_rows), max(memory_usage)
FROM system.query_log
WHERE type = 2 AND user != 'default' AND event_time >= toDateTime({since}) AND query NOT LIKE '%query_log%'
GROUP BY what ORDER BY what FORMAT TabSeparated"""


def statements(server: Server, since: int, batches: int) -> float:
    """Print each statement kind's share of the server's work since `since` (Unix s), per batch; return the
    statements' CPU seconds."""
    server.query("SYSTEM FLUSH LOGS")
    total = 0.0
    for line in server.query(_STATEMENTS.format(since=since)).splitlines():
        what, count, user, system, read, written, memory = line.split("\t")
        total += (int(user) + int(system)) / 1e6
        print(
            f"    {what:28} {int(count) / batches:4.1f} per batch: user {int(user) / batches / 1e3:6.2f} ms,"
            f" system {int(system) / batches / 1e3:6.2f} ms, read {int(read) / batches:8.0f} rows,"
            f" written {int(written) / batches:7.0f} rows, memory {int(memory) / 2**20:5.1f} MiB",
            flush=True,
        )
    return total


def next_second() -> int:
    """The next whole Unix second, once it began: query_log's event_time has seconds, so statements from then on
    are told apart from those before."""
    time.sleep(1.0 - time.time() % 1.0 + 0.01)
    return int(time.time())


def views_shares(server: Server, client: Client, size: int, count: int) -> None:
    """Drop each materialized view on `views` in turn, `count` load batches before each drop (and after the last):
    the INSERT into `views` per batch from query_log, and the server's CPU per batch from /proc."""
    found = server.query("SELECT dependencies_table FROM system.tables WHERE database = 'bench' AND name = 'views'")
    views = [name.strip("'") for name in found.strip().strip("[]").split(",") if name]
    for step, dropped in enumerate([None, *views]):
        if dropped is not None:
            server.query(f"DROP TABLE bench.{dropped}")
        since = next_second()
        before = server_cpu(server.proc.pid)
        for batch in batches("load", 5 * 10**8 + step * 10**7, size, count):
            assert not any(hits.apply_batch(client, batch))
        after = server_cpu(server.proc.pid)
        server.query("SYSTEM FLUSH LOGS")
        cpu = server.query(
            "SELECT sum(ProfileEvents.Values[indexOf(ProfileEvents.Names, 'UserTimeMicroseconds')]"
            " + ProfileEvents.Values[indexOf(ProfileEvents.Names, 'SystemTimeMicroseconds')]) FROM system.query_log"
            f" WHERE type = 2 AND user != 'default' AND event_time >= toDateTime({since})"
            " AND query LIKE 'INSERT INTO views %'"
        )
        process = (after[0] - before[0] + after[1] - before[1]) / count * 1e3
        print(
            f"    {'views as migrated' if dropped is None else 'without ' + dropped:36} INSERT into views"
            f" {int(cpu) / count / 1e3:6.2f} ms per batch; the server's process {process:5.1f} ms;"
            f" load {os.getloadavg()[0]:.1f}",
            flush=True,
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--data", default=tempfile.gettempdir(), help="the filesystem for the server's data")
    parser.add_argument("--statements", action="store_true", help="each statement kind's share (system.query_log)")
    parser.add_argument("--views", action="store_true", help="each materialized view's share of the INSERT")
    parser.add_argument("--props", type=int, default=0, help="custom properties per new view")
    args = parser.parse_args()
    PROPS[0] = args.props
    if args.statements or args.views:
        client_module._SETTINGS["log_queries"] = "1"
    data = tempfile.mkdtemp(prefix="medama-ch-batches-", dir=args.data)
    try:
        with clickhouse_server(data) as server:
            server.query("CREATE DATABASE bench")
            client = Client(HTTPTransport(server.url("bench")))
            schema.migrate(client, int(time.time() * 1000))
            for warmup in batches("load", 10**9, args.batch, WARMUP_BATCHES):
                hits.apply_batch(client, warmup)
            print(
                f"clickhouse-server {server.version}, data in {args.data}, batches of {args.batch},"
                f" {args.props} properties per new view",
                flush=True,
            )
            for n, kind in enumerate(("load", "pairs")):
                todo = batches(kind, n * 10**8, args.batch, args.batches)
                ops = sum(len(batch) for batch in todo)
                since = next_second()
                spent = timed_sends(client)
                user, system = server_cpu(server.proc.pid)
                began = time.thread_time()
                for batch in todo:
                    assert not any(hits.apply_batch(client, batch))
                cpu = time.thread_time() - began
                after = server_cpu(server.proc.pid)
                user, system = after[0] - user, after[1] - system
                del client._send  # the class's own again
                print(
                    f"{kind:5}: node {cpu / ops * 1e6:5.1f} µs per op, of which requests"
                    f" {spent[0] / args.batches * 1e3:.2f} ms per batch ({spent[1] / args.batches:.1f} requests),"
                    f" the rest {(cpu - spent[0]) / args.batches * 1e3:.2f} ms; server {user / args.batches * 1e3:.1f}"
                    f" ms user + {system / args.batches * 1e3:.1f} ms system per batch; load {os.getloadavg()[0]:.1f}",
                    flush=True,
                )
                if args.statements:
                    inside = statements(server, since, args.batches)
                    outside = (user + system - inside) / args.batches * 1e3
                    print(f"    outside the statements (merges, logs): {outside:.1f} ms per batch", flush=True)
            if args.views:
                views_shares(server, client, args.batch, args.batches)
            client.close()
    finally:
        shutil.rmtree(data, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
