"""A stored hit's size on disk is bounded: hits with every field at its limit, each value unique, measured.

With 64 custom properties of 1 KiB allowed, 320 hits grew the analytics files
by 26.8 MB (~84 KB each). bench/hit_size.py measures the same on more hits and
more kinds; this checks a bound well above its figures (docs/ingestion.md).
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

from medama_core.ingest import hit as limits
from medama_core.ingest.referrer import MAX_HOST_BYTES
from medama_core.store.sqlite import analytics, columns, db, rollups
from tests.api.test_events import hit, prepare
from tests.helpers import live_server

HITS = 100
FOUR_BYTES = "\U0001f600"
# Measured 5.1-5.2 KB as stored and 19-23 KB once the stats rollups and column copies exist.
MAX_STORED_BYTES_PER_HIT = 8 * 1024
MAX_BUILT_BYTES_PER_HIT = 32 * 1024


def fill(prefix: str, chars: int, char: str = "a") -> str:
    return prefix + char * (chars - len(prefix))


def widest(i: int, char: str) -> dict[str, Any]:
    """A load at every limit (values past the stored cuts are cut by the server), unique per `i`."""
    utm = "&".join(f"utm_{k}={fill(str(i), limits.MAX_UTM_BYTES, char)}" for k in ("source", "medium", "campaign"))
    path = "/" + fill(f"{i}-", limits.MAX_PATHNAME_BYTES, char)
    count = limits.MAX_PROPERTIES
    key_chars = min(limits.MAX_PROPERTY_KEY_CHARS, limits.MAX_PROPERTIES_BYTES // count // 2)  # half of each share
    value_chars = min(limits.MAX_PROPERTY_VALUE_CHARS, limits.MAX_PROPERTIES_BYTES // count - key_chars)
    properties = {fill(f"{k:02d}", key_chars): fill(f"{i}-", value_chars) for k in range(count)}
    return {"e": "load", "b": fill(f"{i}-", limits.MAX_BEACON_CHARS), "u": f"https://example.com{path}?{utm}",
            "r": f"https://{fill(f'r{i}-', MAX_HOST_BYTES - 4)}.com/", "p": True, "q": True, "t": "Europe/Berlin",
            "d": properties}  # fmt: skip


def size(path: Path) -> int:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return path.stat().st_size + sum(p.stat().st_size for p in path.parent.glob(path.name + "-*"))


def test_a_hit_at_every_limit_takes_a_bounded_number_of_bytes(tmp_path: Path) -> None:
    prepare(tmp_path)
    analytics_db = tmp_path / "me_analytics.db"
    conn = db.connect(str(analytics_db))
    db.migrate(conn, analytics.MIGRATIONS)
    conn.close()
    empty = size(analytics_db)
    with live_server(tmp_path, level="warn") as server:
        client = server.client()
        for i in range(HITS):
            assert hit(client, widest(i, "a" if i % 2 else FOUR_BYTES)) == 204
        client.close()
    stored = (size(analytics_db) - empty) / HITS
    conn = db.connect(str(analytics_db))
    later = int(time.time() * 1000) + 2 * rollups.DAY_MS
    while rollups.refresh(conn, later):
        pass
    while columns.backfill(conn):
        pass
    views = conn.execute("SELECT count(*) FROM views").fetchone()[0]
    conn.close()
    built = (size(analytics_db) - empty) / HITS
    print(f"bytes per hit: {stored:.0f} stored, {built:.0f} with rollups and column copies")
    assert views == HITS
    assert stored <= MAX_STORED_BYTES_PER_HIT, stored
    assert built <= MAX_BUILT_BYTES_PER_HIT, built
