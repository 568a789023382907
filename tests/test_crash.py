"""Durability: a hit answered 204 is in the database even if the server is killed right after (kill -9).

The server runs as a real subprocess (`python medama.py start`); threads send load
beacons over keep-alive connections and remember which were acknowledged; the
process is killed mid-load, and every acknowledged beacon must be found on disk.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.api.test_events import BROWSER, SITE, prepare

ROOT = Path(__file__).resolve().parent.parent
SENDERS = 8  # concurrent connections: enough for batches of several hits to form
RUN_BEFORE_KILL_S = 1.5
MIN_ACKED = 100  # acknowledged hits before the kill: the load must be running when it comes
ACK_WAIT_S = 30.0  # for those on a busy machine (1.5 s was once too short at load 8-10)
SEND_LIMIT = 20_000  # per sender: bounds the loop should the kill never come


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start_server(tmp_path: Path, port: int) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, str(ROOT / "medama.py"), "start", "-port", str(port), "-host", "127.0.0.1"]
    cmd += ["-ratelimit", "0", "-level", "warn"]
    cmd += ["-appdb", str(tmp_path / "me_meta.db"), "-analyticsdb", str(tmp_path / "me_analytics.db")]
    log = tmp_path / "server.log"
    with log.open("wb") as stderr:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=stderr)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            assert proc.poll() is None, log.read_text()
            time.sleep(0.05)
    proc.kill()
    raise AssertionError("server did not start")


def send_until_gone(port: int, sender: int, acked: list[str], stop: threading.Event) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        for i in range(SEND_LIMIT):
            if stop.is_set():
                return
            bid = f"crash{sender}x{i}"
            body = json.dumps({"e": "load", "b": bid, "u": f"https://{SITE}/p{i % 50}", "p": True, "q": True,
                               "t": "Europe/Paris"})  # fmt: skip
            conn.request("POST", "/api/event/hit", body=body, headers=BROWSER)
            response = conn.getresponse()
            response.read()
            if response.status == 204:
                acked.append(bid)
    except (OSError, http.client.HTTPException):
        return  # the server is gone
    finally:
        conn.close()


def load_then(tmp_path: Path, end: signal.Signals) -> tuple[list[str], set[str], int | None]:
    prepare(tmp_path)
    port = free_port()
    proc = start_server(tmp_path, port)
    acked: list[str] = []
    stop = threading.Event()
    senders = [threading.Thread(target=send_until_gone, args=(port, n, acked, stop)) for n in range(SENDERS)]
    try:
        for thread in senders:
            thread.start()
        time.sleep(RUN_BEFORE_KILL_S)
        waited_until = time.monotonic() + ACK_WAIT_S
        while len(acked) <= MIN_ACKED and time.monotonic() < waited_until:
            time.sleep(0.05)
        os.kill(proc.pid, end)
        code = proc.wait(30)
    finally:
        stop.set()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for thread in senders:
            thread.join(30)
    conn = sqlite3.connect(tmp_path / "me_analytics.db")
    stored = {row[0] for row in conn.execute("SELECT bid FROM views")}
    conn.close()
    return acked, stored, code


@pytest.mark.slow
def test_kill_9_loses_no_acknowledged_hit(tmp_path: Path) -> None:
    acked, stored, code = load_then(tmp_path, signal.SIGKILL)
    assert code == -signal.SIGKILL
    assert len(acked) > MIN_ACKED, "the load test must have been running when the kill came"
    missing = set(acked) - stored
    assert not missing, f"{len(missing)} of {len(acked)} acknowledged hits lost"
    assert len(stored) >= len(acked)


@pytest.mark.slow
def test_sigterm_commits_every_queued_hit_and_exits_cleanly(tmp_path: Path) -> None:
    acked, stored, code = load_then(tmp_path, signal.SIGTERM)
    assert code == 0
    assert len(acked) > MIN_ACKED
    assert set(acked) <= stored
