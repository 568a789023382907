"""`medama start -workers N` (issue 19): real processes on one port, one SQLite writer in the parent.

Each test starts `python medama.py start -workers N` on temp files and talks to it over real sockets.
The parent answers no request; which child answers a connection is the kernel's choice, so hits go out
on fresh connections (each one is accepted anew) and the children's own "worker stopped" lines say how
many each stored.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from medama_core.config import MAX_WORKERS, ConfigError, option, parse_args
from tests.api.test_events import BROWSER, SITE, prepare
from tests.engines import Stack, running_stack
from tests.helpers import TEST_CLICKHOUSE_LINGER_MS, Client
from tests.test_crash import free_port

ROOT = Path(__file__).resolve().parent.parent
START_S = 30.0  # a worker starts in about a second; a loaded 2-core machine gets room
PROPAGATION_S = 5.0  # the bound for a change made through one worker to reach every other
STOP_S = 20.0  # SIGTERM: requests finish within 5 s (SHUTDOWN_GRACE_S), children within 10 s more


@dataclass
class Server:
    port: int
    proc: subprocess.Popen[bytes]
    log: Path
    dir: Path

    def lines(self) -> list[dict[str, Any]]:
        found = []
        for line in self.log.read_text().splitlines():
            if line.startswith("{"):
                found.append(json.loads(line))
        return found

    def children(self) -> dict[int, int]:
        """Worker number -> pid of the latest child that said it is serving."""
        return {line["worker"]: line["pid"] for line in self.lines() if line["message"] == "worker is serving"}

    def wait_children(self, count: int, *, besides: frozenset[int] = frozenset()) -> dict[int, int]:
        deadline = time.monotonic() + START_S
        while True:
            children = self.children()
            if len(children) == count and not besides & set(children.values()):
                return children
            assert self.proc.poll() is None, self.log.read_text()
            assert time.monotonic() < deadline, f"the children did not start:\n{self.log.read_text()}"
            time.sleep(0.05)

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(STOP_S)


@contextmanager
def workers(
    tmp_path: Path,
    count: int,
    databases: tuple[str, str] | None = None,
    *,
    ratelimit: int = 0,
    tls: tuple[Path, Path] | None = None,
) -> Iterator[Server]:
    """`medama start -workers count` on `databases` (by default tmp_path's SQLite files), once every child
    serves; killed if left running. With `tls` (certificate and key files) the port is the HTTPS port."""
    port = free_port()
    app, analytics = databases or (str(tmp_path / "me_meta.db"), str(tmp_path / "me_analytics.db"))
    cmd = [sys.executable, str(ROOT / "medama.py"), "start", "-host", "127.0.0.1", "-port", str(port)]
    cmd += ["-workers", str(count), "-ratelimit", str(ratelimit), "-appdb", app, "-analyticsdb", analytics]
    cmd += ["-clickhouselinger", str(TEST_CLICKHOUSE_LINGER_MS)]
    if tls is not None:
        cmd += ["-tlscert", str(tls[0]), "-tlskey", str(tls[1]), "-httpsport", str(port), "-httpport", "0"]
    log = tmp_path / "server.log"
    with log.open("wb") as stderr:
        proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True)
    server = Server(port, proc, log, tmp_path)
    try:
        server.wait_children(count)
        yield server
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        for pid in server.children().values():
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie waiting for a reaper does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def hit_body(bid: str, path: str = "/") -> bytes:
    return json.dumps({"e": "load", "b": bid, "u": f"https://{SITE}{path}", "p": True, "q": True}).encode()


def fresh_hit(port: int, bid: str) -> int:
    """One hit on a connection of its own, so the kernel picks a process for it anew."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", "/api/event/hit", body=hit_body(bid), headers={**BROWSER, "Connection": "close"})
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def send_in_threads(port: int, prefix: str, count: int, threads: int = 8) -> list[int]:
    statuses: list[int] = []

    def run(thread: int) -> None:
        for i in range(thread, count, threads):
            statuses.append(fresh_hit(port, f"{prefix}{i:05d}"))

    running = [threading.Thread(target=run, args=(n,)) for n in range(threads)]
    for thread in running:
        thread.start()
    for thread in running:
        thread.join(60)
    return statuses


def stored_by(server: Server) -> dict[int, int]:
    """Hits each child stored (answered 204 once committed), from its "worker stopped" line."""
    return {line["worker"]: line["hits_stored"] for line in server.lines() if line["message"] == "worker stopped"}


def bids(tmp_path: Path) -> set[str]:
    conn = sqlite3.connect(tmp_path / "me_analytics.db")
    try:
        return {row[0] for row in conn.execute("SELECT bid FROM views")}
    finally:
        conn.close()


def test_two_workers_serve_and_every_hit_is_stored_once(tmp_path: Path) -> None:
    prepare(tmp_path)
    with workers(tmp_path, 2) as server:
        client = Client(server.port)
        assert client.get("/api/event/ping").status == 200
        client.close()
        statuses = send_in_threads(server.port, "both", 300)
        assert statuses == [204] * 300
        assert server.stop() == 0
    stored = stored_by(server)
    assert sorted(stored) == [1, 2] and min(stored.values()) > 0, f"both children must have served: {stored}"
    assert sum(stored.values()) == len(bids(tmp_path)) == 300


def test_the_summary_counts_hits_from_both_workers_exactly(tmp_path: Path) -> None:
    with workers(tmp_path, 2) as server:
        admin = Client(server.port)
        admin.login()
        assert admin.post("/api/websites", json_body={"hostname": SITE}).status == 201
        time.sleep(PROPAGATION_S)  # by then every worker knows the site
        assert send_in_threads(server.port, "count", 200) == [204] * 200
        summary = admin.get(f"/api/website/{SITE}/summary").json()["current"]
        assert summary["pageviews"] == len(bids(tmp_path)) == 200, summary
        admin.close()
        assert server.stop() == 0
    assert min(stored_by(server).values()) > 0


def test_a_change_through_one_worker_reaches_the_others_within_5_s(tmp_path: Path) -> None:
    with workers(tmp_path, 3) as server:
        admin = Client(server.port)
        admin.login()
        # A session is a row of the app database: every process knows it at once.
        for _ in range(12):
            fresh = Client(server.port)
            fresh.cookies = dict(admin.cookies)
            assert fresh.get("/api/user", headers={"Connection": "close"}).status == 200
            fresh.close()
        # A new site: each process learns of it from the app database's change watch. Which child takes
        # a connection is the kernel's choice, so a child may take none of a round: once a round is all
        # 204, the next round after the 5 s bound must be too.
        assert admin.post("/api/websites", json_body={"hostname": SITE}).status == 201
        added = time.monotonic()
        while send_in_threads(server.port, f"site{time.monotonic_ns()}-", 24) != [204] * 24:
            assert time.monotonic() - added < PROPAGATION_S, "the new site did not reach every worker in time"
        time.sleep(max(0.0, added + PROPAGATION_S - time.monotonic()))
        assert send_in_threads(server.port, "site-after-5s-", 24) == [204] * 24
        # A block list: once every process follows it, no hit from 127.0.0.1 is stored any more.
        result = admin.patch("/api/tenant/settings", json_body={"blockedIPs": ["127.0.0.1"]})
        assert result.status == 200, result.body
        blocked = time.monotonic()
        while True:
            before = len(bids(tmp_path))
            assert send_in_threads(server.port, f"blocked{time.monotonic_ns()}-", 24) == [204] * 24
            if len(bids(tmp_path)) == before:
                break
            assert time.monotonic() - blocked < PROPAGATION_S, "the block list did not reach every worker in time"
        time.sleep(max(0.0, blocked + PROPAGATION_S - time.monotonic()))
        before = len(bids(tmp_path))
        assert send_in_threads(server.port, "blocked-after-5s-", 24) == [204] * 24
        assert len(bids(tmp_path)) == before
        admin.close()
        assert server.stop() == 0
    # The site was added through one child; hits stored by two prove another one learned of it.
    stored = stored_by(server)
    assert sorted(stored) == [1, 2, 3] and sum(1 for count in stored.values() if count) >= 2, stored


def send_until_stopped(port: int, sender: int, acked: list[str], stop: threading.Event) -> None:
    """Hits on keep-alive connections, a new connection every 20 (or when one breaks), until `stop`."""
    i = 0
    while not stop.is_set():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            for _ in range(20):
                bid = f"kill{sender}x{i}"
                i += 1
                conn.request("POST", "/api/event/hit", body=hit_body(bid, f"/p{i % 50}"), headers=BROWSER)
                response = conn.getresponse()
                response.read()
                if response.status == 204:
                    acked.append(bid)
        except (OSError, http.client.HTTPException):
            pass  # the process that had this connection was killed
        finally:
            conn.close()


def test_kill_9_of_a_child_loses_no_acknowledged_hit_and_it_is_started_again(tmp_path: Path) -> None:
    prepare(tmp_path)
    with workers(tmp_path, 2) as server:
        child = server.children()[1]
        acked: list[str] = []
        stop = threading.Event()
        senders = [threading.Thread(target=send_until_stopped, args=(server.port, n, acked, stop)) for n in range(8)]
        for thread in senders:
            thread.start()
        try:
            time.sleep(1.5)
            os.kill(child, signal.SIGKILL)
            time.sleep(0.5)
        finally:
            stop.set()
            for thread in senders:
                thread.join(60)
        restarted = server.wait_children(2, besides=frozenset({child}))
        assert alive(restarted[1])
        assert any(line["message"] == "a worker stopped; starting it again" for line in server.lines())
        assert fresh_hit(server.port, "after-restart") == 204
        assert server.stop() == 0
    assert len(acked) > 100, "the load must have been running when the kill came"
    missing = set(acked) - bids(tmp_path)
    assert not missing, f"{len(missing)} of {len(acked)} acknowledged hits lost"


def test_sigterm_stops_every_process_and_commits_what_they_acknowledged(tmp_path: Path) -> None:
    prepare(tmp_path)
    with workers(tmp_path, 3) as server:
        children = server.children()
        acked: list[str] = []
        stop = threading.Event()
        senders = [threading.Thread(target=send_until_stopped, args=(server.port, n, acked, stop)) for n in range(8)]
        for thread in senders:
            thread.start()
        try:
            time.sleep(1.0)
            assert server.stop() == 0
        finally:
            stop.set()
            for thread in senders:
                thread.join(60)
        assert not [pid for pid in children.values() if alive(pid)], "a child outlived its parent"
    assert set(stored_by(server)) == {1, 2, 3}, "every child must have stopped on its own, its hits handed over"
    assert len(acked) > 50
    missing = set(acked) - bids(tmp_path)
    assert not missing, f"{len(missing)} of {len(acked)} acknowledged hits lost"


def test_a_parent_killed_takes_its_children_down_and_loses_no_acknowledged_hit(tmp_path: Path) -> None:
    prepare(tmp_path)
    with workers(tmp_path, 3) as server:
        children = server.children()
        acked: list[str] = []
        stop = threading.Event()
        senders = [threading.Thread(target=send_until_stopped, args=(server.port, n, acked, stop)) for n in range(8)]
        for thread in senders:
            thread.start()
        try:
            time.sleep(1.5)
            server.proc.kill()  # SIGKILL: no handler runs; the children see their pipe's end of file
            server.proc.wait()
            deadline = time.monotonic() + STOP_S
            while [pid for pid in children.values() if alive(pid)]:
                assert time.monotonic() < deadline, "children outlived a killed parent"
                time.sleep(0.05)
        finally:
            stop.set()
            for thread in senders:
                thread.join(60)
    assert len(acked) > 100, "the load must have been running when the kill came"
    missing = set(acked) - bids(tmp_path)
    assert not missing, f"{len(missing)} of {len(acked)} acknowledged hits lost"


def test_the_rate_limit_is_shared_out_among_the_workers(tmp_path: Path) -> None:
    prepare(tmp_path)
    with workers(tmp_path, 2, ratelimit=10) as server:
        statuses = send_in_threads(server.port, "limited", 60)
        assert server.stop() == 0
    # Each process allows 10 / 2 = 5 a minute to the one network (127.0.0.1's /24): 10 in all, not 20.
    assert statuses.count(204) == 10 and statuses.count(429) == 50, statuses
    assert stored_by(server) == {1: 5, 2: 5}


@pytest.mark.parametrize("value", ["0", "-1", str(MAX_WORKERS + 1), "1000000", "two", "1.5", ""])
def test_a_bad_worker_count_is_refused_with_its_bound(value: str) -> None:
    with pytest.raises(ConfigError) as refused:
        parse_args(["-workers", value], {})
    message = str(refused.value)
    assert message.startswith(f"invalid value {value!r} for -workers: ")
    if value.lstrip("-").isdigit():
        assert f"from 1 to {MAX_WORKERS} (MAX_WORKERS:" in message


def test_the_command_line_says_a_bad_worker_count_in_one_line(tmp_path: Path) -> None:
    cmd = [sys.executable, str(ROOT / "medama.py"), "start", "-workers", "0", "-appdb", str(tmp_path / "m.db")]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=30, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"ERROR: invalid value '0' for -workers: must be from 1 to {MAX_WORKERS} "
        "(MAX_WORKERS: one process per core is the most that helps)"
    ]
    assert not (tmp_path / "m.db").exists()
    assert parse_args(["-workers", "8"], {}).workers == 8
    assert parse_args(["-env"], {"WORKERS": "3"}).workers == 3


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    yield from running_stack()


def test_on_postgresql_and_clickhouse_every_worker_inserts_its_own_hits(tmp_path: Path, stack: Stack) -> None:
    with workers(tmp_path, 2, stack.urls()) as server:
        admin = Client(server.port)
        admin.login()
        assert admin.post("/api/websites", json_body={"hostname": SITE}).status == 201
        added = time.monotonic()
        stored = 0
        while True:  # until both processes know the site (PostgreSQL's change counter, polled every second)
            statuses = send_in_threads(server.port, f"probe{time.monotonic_ns()}-", 16)
            stored += statuses.count(204)
            if statuses == [204] * 16:
                break
            assert time.monotonic() - added < PROPAGATION_S, "the new site did not reach every worker in time"
        assert send_in_threads(server.port, "count", 100) == [204] * 100
        summary = admin.get(f"/api/website/{SITE}/summary").json()["current"]
        assert summary["pageviews"] == stored + 100, summary
        admin.close()
        assert server.stop() == 0
    assert sorted(stored_by(server)) == [1, 2] and min(stored_by(server).values()) > 0


def test_two_workers_serve_tlscert_and_a_sighup_to_the_parent_reloads_every_child(tmp_path: Path) -> None:
    pytest.importorskip("cryptography")
    from tests.deploy.certs import CA
    from tests.deploy.test_https import NamedHTTPS, serial_of

    ca = CA.create()
    cafile = tmp_path / "ca.pem"
    cafile.write_bytes(ca.pem())
    cert, key, first = ca.write(tmp_path, "stats.example")
    prepare(tmp_path)
    with workers(tmp_path, 2, tls=(cert, key)) as server:
        assert {serial_of(server.port, cafile) for _ in range(10)} == {first}
        _, _, second = ca.write(tmp_path, "stats.example")
        server.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + PROPAGATION_S
        while sum(line["message"] == "reloaded certificate" for line in server.lines()) < 3:  # parent, children
            assert time.monotonic() < deadline, server.log.read_text()
            time.sleep(0.05)
        # Every handshake on a fresh connection, whichever child accepts it, gets the new chain ...
        assert {serial_of(server.port, cafile) for _ in range(20)} == {second}

        # ... and both children take hits over HTTPS (each on a connection of its own).
        statuses: list[int] = []

        def send(thread: int) -> None:
            for i in range(thread, 100, 4):
                conn = NamedHTTPS(server.port, cafile)
                try:
                    headers = {**BROWSER, "Connection": "close"}
                    conn.request("POST", "/api/event/hit", body=hit_body(f"tls{i:05d}"), headers=headers)
                    response = conn.getresponse()
                    response.read()
                    statuses.append(response.status)
                finally:
                    conn.close()

        threads = [threading.Thread(target=send, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert statuses == [204] * 100
        assert server.stop() == 0
    stored = stored_by(server)
    assert sorted(stored) == [1, 2] and min(stored.values()) > 0, f"both children must have served: {stored}"
    assert sum(stored.values()) == len(bids(tmp_path)) == 100


@given(st.one_of(st.text(max_size=12), st.integers(-(10**6), 10**6).map(str)))
def test_any_worker_count_text_is_a_count_in_bounds_or_a_config_error(text: str) -> None:
    try:
        count = option("workers").parse(text)
    except ConfigError:
        return
    assert isinstance(count, int) and 1 <= count <= MAX_WORKERS


def test_drops_counted_by_every_worker_reach_the_drops_table(tmp_path: Path) -> None:
    with workers(tmp_path, 2) as server:
        admin = Client(server.port)
        admin.login()
        assert send_in_threads(server.port, "nosite", 40) == [404] * 40  # no site registered: unknown_site drops
        deadline = time.monotonic() + PROPAGATION_S  # each child hands its counts over within a second
        while True:
            rows = admin.get("/api/drops").json()
            if sum(row["hits"] for row in rows if row["reason"] == "unknown_site") == 40:
                break
            assert time.monotonic() < deadline, rows
            time.sleep(0.2)
        admin.close()
        assert server.stop() == 0
    assert sorted(stored_by(server)) == [1, 2]
