"""bench/floor.py's `schema` level stores what it acknowledges: loads and unloads over real sockets, then the file.

The bench measures the CPU of a minimal server that answers a hit only after
its batch's COMMIT into medama's analytics database; this checks that the 204s
it counts are for rows and durations really in that SQLite file.
"""

from __future__ import annotations

import json
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# A fresh interpreter importing the store and bench/ingest.py: ~1 s here, far more on a loaded machine.
START_TIMEOUT_S = 30.0
USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def floor(tmp_path: Path) -> Iterator[int]:
    """A `--serve schema` server on a free port with its database in tmp_path; yields the port."""
    port = free_port()
    cmd = [sys.executable, str(ROOT / "bench" / "floor.py"), "--serve", "schema", "--port", str(port)]
    server = subprocess.Popen([*cmd, "--dir", str(tmp_path)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1.0).close()
                break
            except OSError:
                assert server.poll() is None, server.communicate()[1].decode()
                assert time.monotonic() < deadline, "the floor server did not listen"
                time.sleep(0.05)
        yield port
    finally:
        server.terminate()
        _out, err = server.communicate(timeout=30)
    assert not err, err.decode()  # a failed batch is written to stderr


def post(sock: socket.socket, beacon: dict[str, object]) -> bytes:
    """Send one beacon on a kept-alive connection; the answer's status line and headers."""
    body = json.dumps(beacon).encode()
    head = (
        f"POST /api/event/hit HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: {USER_AGENT}\r\n"
        f"Accept-Language: de-DE,de;q=0.9\r\nContent-Type: text/plain\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    sock.sendall(head.encode() + body)
    answer = b""
    while b"\r\n\r\n" not in answer:
        chunk = sock.recv(4096)
        assert chunk, "the server closed the connection"
        answer += chunk
    return answer


def load(bid: str, path: str) -> dict[str, object]:
    url, ref = f"https://example.com{path}", "https://www.google.com/"
    return {"b": bid, "e": "load", "u": url, "r": ref, "p": True, "q": False, "t": "Europe/Berlin"}


def test_schema_level_answers_after_storing(floor: int, tmp_path: Path) -> None:
    with (
        socket.create_connection(("127.0.0.1", floor), timeout=10) as one,
        socket.create_connection(("127.0.0.1", floor), timeout=10) as two,
    ):
        answers = [post(one, load("floor-a", "/a")), post(two, load("floor-b", "/b?utm_source=news"))]
        answers.append(post(one, {"b": "floor-a", "e": "unload", "m": 1500}))
        answers.append(post(two, load("floor-c", "/c")))
        refused = post(one, {"b": "floor-d", "e": "load", "u": "https://example.com/d"})  # no "p" nor "q"
    assert all(answer.startswith(b"HTTP/1.1 204 ") for answer in answers), answers
    assert refused.startswith(b"HTTP/1.1 400 "), refused

    # Each 204 came after its batch's COMMIT, so a connection of our own sees every row now.
    conn = sqlite3.connect(tmp_path / "me_analytics.db")
    try:
        columns = "bid, pathname, utm_source, duration_ms, country"
        views = conn.execute(f"SELECT {columns} FROM views ORDER BY bid").fetchall()
        counted = conn.execute("SELECT hostname, hits FROM site_hits").fetchall()
    finally:
        conn.close()
    assert views == [
        ("floor-a", "/a", "", 1500, "DE"),
        ("floor-b", "/b", "news", None, "DE"),
        ("floor-c", "/c", "", None, "DE"),
    ]
    assert counted == [("example.com", 3)]
