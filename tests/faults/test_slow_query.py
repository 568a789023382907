"""A stuck stats query is stopped at the read time limit (503) and never holds up ingestion.

Reads run on reader threads with their own connections; hits go through the
writer thread. A query that never ends (an unbounded recursive CTE) stands in
for a pathological stats query: the progress handler on reader connections
stops it at `READ_TIME_LIMIT_S`, and while it runs, hits are answered as fast
as ever.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from medama_core.store import imported_stats
from medama_core.store.sqlite import db
from tests.helpers import LiveServer, live_server

SITE = "example.com"
TEST_LIMIT_S = 1.0  # the limit the test runs with: long enough to overlap many hits, short enough to wait for
ENDLESS = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"
HIT_BUDGET_S = 0.25  # a hit on an idle server takes ~1 ms; this is "not blocked", with room for a busy CI machine
CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
HEADERS = {"User-Agent": CHROME, "Accept-Language": "en-GB", "Content-Type": "text/plain;charset=UTF-8"}


def hit_body(bid: str) -> bytes:
    body = {"e": "load", "b": bid, "u": f"https://{SITE}/p", "r": "", "p": True, "q": True, "t": "Europe/Paris"}
    return json.dumps(body).encode()


def endless(conn: sqlite3.Connection, *args: object) -> object:
    return conn.execute(ENDLESS).fetchone()


def test_reader_stops_an_endless_query_and_stays_usable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    monkeypatch.setattr(db, "READ_TIME_LIMIT_S", 0.3)
    database = db.Database(str(tmp_path / "x.db"), ())

    async def scenario() -> tuple[float, int]:
        started = time.monotonic()
        with pytest.raises(db.QueryTimeout, match="longer than 0.3 s"):
            await database.read(endless)
        took = time.monotonic() - started
        value: int = (await database.read(lambda conn: conn.execute("SELECT 41 + 1").fetchone()))[0]
        return took, value

    try:
        took, value = asyncio.run(scenario())
    finally:
        database.close()
    assert 0.3 <= took < 2.0
    assert value == 42


def test_the_writer_has_no_time_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only reads are bounded: a long write (a migration, a rollup rebuild) must finish."""
    import asyncio

    monkeypatch.setattr(db, "READ_TIME_LIMIT_S", 0.05)
    database = db.Database(str(tmp_path / "x.db"), ())
    slow_sum = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3000000) SELECT sum(x) FROM c"
    try:
        total = asyncio.run(database.write(lambda conn: conn.execute(slow_sum).fetchone()[0]))
    finally:
        database.close()
    assert total == 3_000_000 * 3_000_001 // 2


@pytest.fixture
def slow_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveServer]:
    monkeypatch.setattr(db, "READ_TIME_LIMIT_S", TEST_LIMIT_S)
    # Every list endpoint now runs a query that never ends (the SQLite adapter reads lists through the
    # imported-days merge, which holds its own reference to stats.list_stats).
    monkeypatch.setattr(imported_stats, "list_stats", endless)
    with live_server(tmp_path, level="warn") as server:
        client = server.client()
        client.login()
        assert client.post("/api/websites", json_body={"hostname": SITE}).status == 201
        # The first hit builds the block lists and warms the parsers (~0.5 s); that is start-up, not blocking.
        assert client.post("/api/event/hit", body=hit_body("warm-up"), headers=HEADERS).status == 204
        client.close()
        yield server


def test_stuck_stats_queries_get_503_while_hits_flow(slow_site: LiveServer) -> None:
    answers: list[tuple[int, dict[str, str], bytes, float]] = []

    def stuck_query(endpoint: str) -> None:
        client = slow_site.client()
        client.login()
        started = time.monotonic()
        result = client.get(f"/api/website/{SITE}/{endpoint}")
        answers.append((result.status, result.headers, result.body, time.monotonic() - started))
        client.close()

    # One stuck query per reader thread: every reader is busy until the limit stops them.
    readers = [threading.Thread(target=stuck_query, args=(name,)) for name in ("pages", "browsers")]
    for thread in readers:
        thread.start()
    time.sleep(0.5)  # both have logged in and are stuck in their query
    hits = slow_site.client()
    latencies = []
    try:
        for i in range(60):
            started = time.monotonic()
            status = hits.post("/api/event/hit", body=hit_body(f"slow{i}"), headers=HEADERS).status
            latencies.append(time.monotonic() - started)
            assert status == 204
            time.sleep(0.01)
    finally:
        hits.close()
        for thread in readers:
            thread.join(30)
    assert max(latencies) < HIT_BUDGET_S, f"a hit waited {max(latencies):.3f} s behind a stuck query"
    assert len(answers) == 2
    for status, headers, body, took in answers:
        assert status == 503
        assert "took longer than 1 s" in json.loads(body)["error"]["message"]
        assert headers["retry-after"].isdigit()
        assert TEST_LIMIT_S <= took < TEST_LIMIT_S + 3
    assert "query time limit reached" in slow_site.log_stream.getvalue()
