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

Usage: python bench/ch_batches.py [--batch 128] [--batches 40] [--data /dev/shm]
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

from medama_core.store.clickhouse import hits, schema  # noqa: E402
from medama_core.store.clickhouse.client import Client, HTTPTransport  # noqa: E402
from medama_core.store.rows import Duration, NewView, Op  # noqa: E402
from tests.engines import clickhouse_server  # noqa: E402

START_MS = 1_750_000_000_000
STEP_MS = 500  # two views a second: a batch of 128 within one hour, as live traffic at ~7,000 views an hour
PATHS = 50
WARMUP_BATCHES = 3  # a new server's first INSERTs cost it more (bench/ingest.py's warm-up)


def view(k: int) -> NewView:
    row = (f"b{k:010d}", "example.com", f"/p{k % PATHS}", 1, 1, "", "", "DE", "en", "en-US", "Firefox", "Linux")
    return NewView((*row, "desktop", "", "", "", None, START_MS + k * STEP_MS))


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--data", default=tempfile.gettempdir(), help="the filesystem for the server's data")
    args = parser.parse_args()
    data = tempfile.mkdtemp(prefix="medama-ch-batches-", dir=args.data)
    try:
        with clickhouse_server(data) as server:
            server.query("CREATE DATABASE bench")
            client = Client(HTTPTransport(server.url("bench")))
            schema.migrate(client, int(time.time() * 1000))
            for ops in batches("load", 10**9, args.batch, WARMUP_BATCHES):
                hits.apply_batch(client, ops)
            print(f"clickhouse-server {server.version}, data in {args.data}, batches of {args.batch}", flush=True)
            for n, kind in enumerate(("load", "pairs")):
                todo = batches(kind, n * 10**8, args.batch, args.batches)
                ops = sum(len(batch) for batch in todo)
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
            client.close()
    finally:
        shutil.rmtree(data, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
