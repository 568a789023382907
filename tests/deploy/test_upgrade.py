"""Zero-downtime upgrade drill: a new process joins the port with SO_REUSEPORT, the old one drains on SIGTERM.

A load generator keeps opening fresh connections (the worst case for a
hand-over: every request needs an accept) while the new process starts on
the same database files and the old one is stopped. Every request must be
answered, and with the hit endpoint every hit answered 204 must be stored.
"""

from __future__ import annotations

import http.client
import json
import sqlite3
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest

from medama_core.app import META_POLL_INTERVAL_S, ROUTES
from tests.deploy.conftest import Proc, free_port
from tests.helpers import Client

pytestmark = pytest.mark.slow

HITS = any(route.method == "POST" and route.path == "/event/hit" for route in ROUTES)
SITE = "drill.example"
UA = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
PHASE_S = 1.5  # load before the new process, with both, and after the old one left


class Load(threading.Thread):
    """One request per fresh connection, as fast as the server answers; records every outcome."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.stop = threading.Event()
        self.outcomes: Counter[str] = Counter()
        self.sent = 0

    def request(self) -> str:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            if HITS:
                body = {"e": "load", "b": uuid.uuid4().hex, "u": f"https://{SITE}/", "p": True, "q": True}
                body["t"] = "Europe/London"
                headers = {"Content-Type": "text/plain", "User-Agent": UA, "Accept-Language": "en-GB"}
                conn.request("POST", "/api/event/hit", json.dumps(body), headers)
            else:
                conn.request("GET", "/api/health")
            response = conn.getresponse()
            response.read()
            return str(response.status)
        except OSError as exc:
            return type(exc).__name__
        finally:
            conn.close()

    def run(self) -> None:
        while not self.stop.is_set():
            self.sent += 1
            self.outcomes[self.request()] += 1


def args(port: int, data: Path, workers: int = 1) -> list[str]:
    return [
        "start",
        "-workers",
        str(workers),
        "-reuseport",
        "-port",
        str(port),
        "-host",
        "127.0.0.1",
        "-appdb",
        str(data / "me_meta.db"),
        "-analyticsdb",
        str(data / "me_analytics.db"),
        "-ratelimit",
        "0",
        "-level",
        "debug",  # successful reads are logged at debug only; `served` counts their lines
    ]


def wait_for_commit(port: int, commit: str, timeout: float = 30.0) -> None:
    """Poll /api/health until an answer comes from the build stamped `commit` (SO_REUSEPORT spreads the polls)."""
    deadline = time.monotonic() + timeout
    client = Client(port)
    try:
        while time.monotonic() < deadline:
            client.close()  # a fresh connection each time, so the kernel may pick either process
            if client.get("/api/health").json()["commit"] == commit:
                return
            time.sleep(0.05)
    finally:
        client.close()
    raise AssertionError(f"no answer from {commit} within {timeout} s")


def served(proc: Proc) -> int:
    return sum(1 for line in proc.log().splitlines() if '"message": "request"' in line)


@pytest.mark.parametrize("workers", [1, 2])  # 2: two instances of a parent and its children (-workers)
def test_two_processes_hand_over_the_port_without_losing_a_request(
    pyz: Path, next_pyz: Path, tmp_path: Path, procs: list[Proc], workers: int
) -> None:
    data = tmp_path / "data"
    port = free_port()
    old = Proc(pyz, args(port, data, workers), tmp_path / "old.log")
    procs.append(old)
    old.wait_for('"medama is running"')
    if HITS:
        admin = Client(port)
        admin.login()
        assert admin.post("/api/websites", json_body={"hostname": SITE}).status == 201
        # The abusive-IP preset (FireHOL level 1) lists loopback, where the load comes from.
        assert admin.patch("/api/tenant/settings", json_body={"blockAbusiveIPs": False}).status == 200
        admin.close()
        if workers > 1:
            time.sleep(2 * META_POLL_INTERVAL_S)  # the other children follow the new site and setting

    loads = [Load(port) for _ in range(2)]
    for load in loads:
        load.start()
    time.sleep(PHASE_S)
    new = Proc(next_pyz, args(port, data, workers), tmp_path / "new.log")
    procs.append(new)
    wait_for_commit(port, "nextrelease")  # the readiness check docs/deploy.md gives
    time.sleep(PHASE_S)  # both processes accept on the port
    assert old.terminate() == 0  # drains its in-flight requests, then exits
    time.sleep(PHASE_S)
    for load in loads:
        load.stop.set()
        load.join(30)

    outcomes = sum((load.outcomes for load in loads), Counter[str]())
    sent = sum(load.sent for load in loads)
    expected = "204" if HITS else "200"
    assert outcomes == Counter({expected: sent}), outcomes
    assert served(old) > 0 and served(new) > 0  # the kernel really spread connections over both
    client = Client(port)
    assert {client.get("/api/health").json()["commit"] for _ in range(5)} == {"nextrelease"}
    client.close()
    assert new.terminate() == 0
    if HITS:
        with sqlite3.connect(data / "me_analytics.db") as conn:
            stored = conn.execute("select count(*) from views where hostname = ?", (SITE,)).fetchone()[0]
        conn.close()
        assert stored == sent
