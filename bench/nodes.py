"""Two `medama start` nodes ingesting at once on one PostgreSQL and one clickhouse-server: hits/s and CPU per hit.

PostgreSQL 15 and clickhouse-server are started here (tests/engines.Stack:
temporary folders, free ports), then two nodes (tests/test_nodes.node_process),
a site added on the first. For --seconds, --connections keep-alive connections
per node (threads of this process) send load hits as fast as they are answered,
each waiting for its 204 (a hit is acknowledged after ClickHouse took its
INSERT). Reported per node: hits acknowledged, hits/s, the node's CPU per hit;
then the clickhouse-server's CPU per hit, whether ClickHouse holds exactly
the acknowledged hits, and the arithmetic for N nodes from these numbers.

This machine runs the clients, both nodes and both databases on 2 cores shared
with other work: the load average is printed, and the rates are what was left
over, not what a node does alone. The CPU per hit is the steadier number.

Usage: python bench/nodes.py [--seconds 20] [--connections 16]
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[0] = str(ROOT)  # not bench/ itself: its http.py would hide the standard library's http package

import http.client  # noqa: E402

from tests.engines import Stack  # noqa: E402
from tests.helpers import Client  # noqa: E402
from tests.test_nodes import hit, node_process  # noqa: E402


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Sender(threading.Thread):
    def __init__(self, port: int, prefix: str, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.port, self.prefix, self.stop = port, prefix, stop
        self.acked = 0
        self.failed = 0

    def run(self) -> None:
        client = Client(self.port)
        n = 0
        try:
            while not self.stop.is_set():
                if hit(client, f"{self.prefix}{n:07d}", f"/p{n % 50}") == 204:
                    self.acked += 1
                else:
                    self.failed += 1
                n += 1
        except (OSError, http.client.HTTPException):
            self.failed += 1
        finally:
            client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    stack = Stack()
    folder = Path(stack.pg.root) / "nodes"
    folder.mkdir()
    try:
        from medama_core.store.clickhouse.client import Client as ClickHouse
        from medama_core.store.clickhouse.url import parse_url

        app, analytics = stack.urls()
        with (
            node_process(folder, app, analytics) as (port_a, proc_a),
            node_process(folder, app, analytics) as (
                port_b,
                proc_b,
            ),
        ):
            admin = Client(port_a)
            admin.login()
            assert admin.post("/api/websites", json_body={"hostname": "example.com"}).status == 201
            admin.close()
            probe = Client(port_b)
            while hit(probe, "probe", "/") != 204:  # the second node learns of the site
                time.sleep(0.1)
            probe.close()
            stop = threading.Event()
            nodes = {"A": (port_a, proc_a.pid), "B": (port_b, proc_b.pid)}
            senders = {
                name: [Sender(port, f"{name}{i}-", stop) for i in range(args.connections)]
                for name, (port, _) in nodes.items()
            }
            ch_pid = stack.ch.proc.pid
            before = {name: cpu_s(pid) for name, (_, pid) in nodes.items()}
            ch_before, started = cpu_s(ch_pid), time.perf_counter()
            for group in senders.values():
                for sender in group:
                    sender.start()
            time.sleep(args.seconds)
            stop.set()
            for group in senders.values():
                for sender in group:
                    sender.join(60)
            elapsed = time.perf_counter() - started
            used = {name: cpu_s(pid) - before[name] for name, (_, pid) in nodes.items()}
            ch_used = cpu_s(ch_pid) - ch_before
        acked = {name: sum(s.acked for s in group) for name, group in senders.items()}
        failed = sum(s.failed for group in senders.values() for s in group)
        total = sum(acked.values())
        print(f"{args.connections} connections per node, {elapsed:.1f} s, load average {os.getloadavg()[0]:.1f}")
        for name in nodes:
            print(
                f"node {name}: {acked[name]:,} hits, {acked[name] / elapsed:,.0f} hits/s,"
                f" {used[name] / max(acked[name], 1) * 1e6:,.0f} µs CPU per hit"
            )
        print(f"clickhouse-server: {ch_used / max(total, 1) * 1e6:,.0f} µs CPU per hit; refused or failed: {failed}")
        ch = ClickHouse.connect(parse_url(analytics))
        try:
            stored = int(ch.rows("SELECT sum(sign) FROM views WHERE bid != 'probe'")[0][0] or 0)
            doubled = int(
                ch.rows("SELECT count() FROM (SELECT bid FROM views GROUP BY bid HAVING sum(sign) > 1)")[0][0]
            )
        finally:
            ch.close()
        print(f"ClickHouse holds {stored:,} views for {total:,} acknowledged hits; {doubled} doubled")
        node_us = sum(used.values()) / max(total, 1) * 1e6
        ch_us = ch_used / max(total, 1) * 1e6
        print(
            f"N nodes: each node core takes up to {1e6 / node_us:,.0f} hits/s (1 s / {node_us:,.0f} µs), so N"
            f" single-core nodes {1e6 / node_us:,.0f}·N hits/s, until ClickHouse's {ch_us:,.0f} µs per hit fills"
            f" its cores at {1e6 / ch_us:,.0f} hits/s per ClickHouse core"
        )
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
