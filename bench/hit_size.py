"""Bytes on disk per stored hit: an ordinary tracker beacon, and beacons with every field at its limit.

Starts `medama.py start` as a subprocess on fresh databases (one registered
site), posts N hits of one kind over HTTP, stops the server (SIGTERM), then
measures the analytics database after a WAL checkpoint: its growth over an
empty database, divided by N. A second figure adds what the stats machinery
writes for those hits later, once their hours are closed: the hour and day
rollups and the column copies (store/sqlite/rollups.py, store/sqlite/columns.py), built
here by calling the same functions with a clock two days ahead.

Every hit of a kind is different from the others where the sender controls
it (beacon id, page path, UTM values, referrer host, property values), the
worst case for the rollups, whose rows are per distinct value.

Kinds:
  tracker       what the tracker sends for a page view: a short path, a search referrer, no properties
  limits        every field at its limit in ASCII: 64-character id, 512-byte path, three 128-byte
                UTM values, a 253-character referrer host, 10 properties of 1,024 bytes in all
  limits-utf8   the same with 4-byte characters in the path, UTM values and property values
  custom        a custom event at its limits: 10 properties of 1,024 bytes, a 64-character id

Usage: python bench/hit_size.py [--hits 2000] [--kinds tracker,limits,limits-utf8,custom]
No thresholds are asserted; tests/api/test_hit_size.py checks a bound on a smaller run.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[0] = str(ROOT)  # not bench/, whose http.py would hide the standard library's http

import http.client  # noqa: E402

from medama_core.ingest import hit as limits  # noqa: E402
from medama_core.ingest.referrer import MAX_HOST_BYTES  # noqa: E402
from medama_core.store.sqlite import analytics, columns, db, meta, rollups  # noqa: E402

SITE = "example.com"
CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
HEADERS = {"User-Agent": CHROME, "Accept-Language": "en-GB,en;q=0.9", "Content-Type": "text/plain;charset=UTF-8"}
FOUR_BYTES = "\U0001f600"  # one character, four bytes in UTF-8


def fill(prefix: str, chars: int, char: str = "a") -> str:
    return prefix + char * (chars - len(prefix))


def properties(i: int, char: str) -> dict[str, str]:
    """MAX_PROPERTIES properties whose names and values fill MAX_PROPERTIES_BYTES, half each."""
    count = limits.MAX_PROPERTIES
    key_chars = min(limits.MAX_PROPERTY_KEY_CHARS, limits.MAX_PROPERTIES_BYTES // count // 2)  # half of each share
    per_value_bytes = limits.MAX_PROPERTIES_BYTES // count - key_chars
    value_chars = min(limits.MAX_PROPERTY_VALUE_CHARS, per_value_bytes // len(char.encode()))
    return {fill(f"{k:02d}", key_chars): fill(f"{i}-", value_chars, char) for k in range(count)}


def tracker_hit(i: int) -> dict[str, Any]:
    path = ("/", "/pricing", "/blog/how-we-count", "/docs/install")[i % 4]
    return {"e": "load", "b": f"l{i:08d}x", "u": f"https://{SITE}{path}", "r": "https://www.google.com/",
            "p": i % 3 == 0, "q": True, "t": "Europe/Berlin"}  # fmt: skip


def limits_hit(i: int, char: str = "a") -> dict[str, Any]:
    utm = limits.MAX_UTM_BYTES
    query = "&".join(f"utm_{k}={fill(f'{i}', utm, char)}" for k in ("source", "medium", "campaign"))
    path = "/" + fill(f"{i}-", limits.MAX_PATHNAME_BYTES - 1, char)
    referrer_host = fill(f"r{i}-", MAX_HOST_BYTES - 4) + ".com"
    return {"e": "load", "b": fill(f"{i}-", limits.MAX_BEACON_CHARS), "u": f"https://{SITE}{path}?{query}",
            "r": f"https://{referrer_host}/", "p": True, "q": True, "t": "Europe/Berlin",
            "d": properties(i, char)}  # fmt: skip


def custom_hit(i: int) -> dict[str, Any]:
    return {"e": "custom", "g": SITE, "b": fill(f"{i}-", limits.MAX_BEACON_CHARS), "d": properties(i, "a")}


KINDS: dict[str, Callable[[int], dict[str, Any]]] = {
    "tracker": tracker_hit,
    "limits": limits_hit,
    "limits-utf8": lambda i: limits_hit(i, FOUR_BYTES),
    "custom": custom_hit,
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"nothing listening on port {port}")


def size(path: Path) -> int:
    """The database file's size after folding its WAL in."""
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return path.stat().st_size + sum(p.stat().st_size for p in path.parent.glob(path.name + "-*"))


def measure(kind: str, count: int, workdir: Path) -> tuple[float, float, int]:
    """(bytes per hit as stored, bytes per hit with rollups and column copies, body bytes of one hit)."""
    conn = db.connect(str(workdir / "me_meta.db"))
    db.migrate(conn, meta.MIGRATIONS)
    meta.insert_user(conn, "user_bench", "admin", "not-a-hash", 0)
    meta.insert_website(conn, SITE, "user_bench", 0)
    meta.set_setting(conn, "site_daily_hit_quota", "0", 0)
    conn.close()
    analytics_db = workdir / "me_analytics.db"
    conn = db.connect(str(analytics_db))
    db.migrate(conn, analytics.MIGRATIONS)
    conn.close()
    empty = size(analytics_db)
    port = free_port()
    cmd = [sys.executable, str(ROOT / "medama.py"), "start", "-port", str(port), "-host", "127.0.0.1"]
    cmd += [
        "-level",
        "warn",
        "-ratelimit",
        "0",
        "-appdb",
        str(workdir / "me_meta.db"),
        "-analyticsdb",
        str(analytics_db),
    ]
    server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=workdir)
    body_bytes = 0
    try:
        wait_port(port)
        client = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for i in range(count):
            body = json.dumps(KINDS[kind](i), ensure_ascii=False).encode()
            body_bytes = len(body)
            client.request("POST", "/api/event/hit", body=body, headers=HEADERS)
            response = client.getresponse()
            response.read()
            if response.status != 204:
                raise RuntimeError(f"{kind} hit {i}: {response.status}")
        client.close()
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)
    stored = size(analytics_db)
    conn = db.connect(str(analytics_db))
    later = int(time.time() * 1000) + 2 * rollups.DAY_MS
    while rollups.refresh(conn, later):
        pass
    while columns.backfill(conn):
        pass
    conn.close()
    built = size(analytics_db)
    return (stored - empty) / count, (built - empty) / count, body_bytes


def main() -> int:
    parser = argparse.ArgumentParser(description="bytes on disk per stored hit")
    parser.add_argument("--hits", type=int, default=2000, help="hits per kind")
    parser.add_argument("--kinds", default=",".join(KINDS))
    args = parser.parse_args()
    print(f"{'kind':12} {'hits':>6} {'body B':>7} {'stored B/hit':>13} {'with rollups B/hit':>19}")
    for kind in args.kinds.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            per_hit, with_rollups, body = measure(kind, args.hits, Path(tmp))
        print(f"{kind:12} {args.hits:>6} {body:>7} {per_hit:>13.0f} {with_rollups:>19.0f}")
    print(f"\nloadavg {os.getloadavg()[0]:.2f}; sizes after a WAL checkpoint, over an empty database")
    return 0


if __name__ == "__main__":
    sys.exit(main())
