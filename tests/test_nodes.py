"""Two real `medama start` processes on one PostgreSQL and one ClickHouse behave as one server (issue 17):
log in on one, add a site there, send hits to the other, read the stats on the first."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.engines import Stack, free_port
from tests.helpers import Client

ROOT = Path(__file__).resolve().parent.parent
START_S = 30.0  # a node starts in about a second; a loaded 2-core CI machine gets room
PROPAGATION_S = 5.0  # the bound for a change made on one node to reach every other
BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


@pytest.fixture(scope="module")
def servers() -> Iterator[Stack]:
    from tests.pg_harness import Unavailable

    try:
        running = Stack()
    except (FileNotFoundError, Unavailable) as exc:
        pytest.skip(f"NOT RUN: PostgreSQL or clickhouse-server missing: {exc}")
    try:
        yield running
    finally:
        running.stop()


@contextmanager
def node(cwd: Path, app: str, analytics: str) -> Iterator[int]:
    """A `medama start` process on a free port; its port once /api/health answers. Stopped with SIGTERM."""
    port = free_port()
    cmd = [sys.executable, str(ROOT / "medama.py"), "start", "-host", "127.0.0.1", "-port", str(port)]
    cmd += ["-appdb", app, "-analyticsdb", analytics, "-ratelimit", "0"]
    log = open(cwd / f"node-{port}.log", "w")  # noqa: SIM115  (closed below, after the process)
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + START_S
        while True:
            assert proc.poll() is None, (cwd / f"node-{port}.log").read_text()
            try:
                probe = Client(port)
                status = probe.get("/api/health").status
                probe.close()
                if status == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "the node did not start"
            time.sleep(0.1)
        yield port
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        log.close()


def hit(client: Client, bid: str, path: str) -> int:
    body = {"e": "load", "b": bid, "u": f"https://example.com{path}", "r": "", "p": True, "q": True}
    headers = {"Content-Type": "application/json", "User-Agent": BROWSER}
    return client.post("/api/event/hit", body=json.dumps(body).encode(), headers=headers).status


def test_two_nodes_behave_as_one_server(tmp_path: Path, servers: Stack) -> None:
    app, analytics = servers.urls()
    with node(tmp_path, app, analytics) as first_port, node(tmp_path, app, analytics) as second_port:
        first, second = Client(first_port), Client(second_port)
        first.login()
        # The session lives in PostgreSQL: the other node knows it at once.
        second.cookies = dict(first.cookies)
        assert second.get("/api/user").json()["username"] == "admin"
        assert first.post("/api/websites", json_body={"hostname": "example.com"}).status == 201
        added = time.monotonic()
        # A node answers a hit for a site it does not know 404; the second node learns of the new site
        # from PostgreSQL's change counter (polled every second).
        sent = 0
        while hit(second, f"node{sent:06d}", "/from-the-second-node") != 204:
            sent += 1
            assert time.monotonic() - added < PROPAGATION_S, "the new site did not reach the second node in time"
            time.sleep(0.05)
        assert first.get("/api/website/example.com/summary").json()["current"]["visitors"] == 1
        pages = first.get("/api/website/example.com/pages").json()
        assert [row["path"] for row in pages] == ["/from-the-second-node"]
        # A change on the second node (a rename) reaches the first, which then drops the old name's hits.
        assert second.patch("/api/websites/example.com", json_body={"hostname": "example.org"}).status == 200
        assert [site["hostname"] for site in first.get("/api/websites").json()] == ["example.org"]
        assert first.get("/api/website/example.org/pages").json()[0]["visitors"] == 1
        renamed = time.monotonic()
        while hit(first, "node-old-name", "/gone") != 404:
            assert time.monotonic() - renamed < PROPAGATION_S, "the rename did not reach the first node in time"
            time.sleep(0.05)
        first.close()
        second.close()
