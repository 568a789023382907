"""The rollups' background work: it rebuilds closed dirty hours a batch per writer call, builds blocks
and column copies, and GET /website/{hostname}/progress says how much is left."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from medama_core.store.sqlite import analytics, rollups
from medama_core.store.sqlite.db import Database
from tests.helpers import LiveServer, live_server
from tests.store.test_stats import COLUMNS, SITE, T0, view
from tests.stores import marked

HOUR = 3_600_000
DEADLINE_S = 20  # generous: the machine running the tests may be busy


@pytest.fixture(autouse=True)
def _tiny_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Build the blocks and copies of these few views (the real thresholds are for real sites)."""
    monkeypatch.setattr(rollups, "MIN_BLOCK_VIEWS", 0)
    monkeypatch.setattr(rollups, "SMALL_SITE_VIEWS", 0)


def count_hour_batches(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The hours each call of rollups.refresh_hours rebuilds, in call order (the real function runs)."""
    real = rollups.refresh_hours
    calls: list[int] = []

    def counted(*args: Any) -> int:
        calls.append(real(*args))
        return calls[-1]

    monkeypatch.setattr(rollups, "refresh_hours", counted)
    return calls


def test_background_work_rebuilds_closed_dirty_hours_in_small_calls(
    server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rollups, "REFRESH_BATCH_VIEWS", 10)  # 60 views in 60 hours: 6 writer calls
    calls = count_hour_batches(monkeypatch)
    client = server.client()
    client.login()
    assert client.post("/api/websites", json_body={"hostname": SITE}).status == 201
    conn = sqlite3.connect(server.config.analyticsdb, isolation_level=None)
    sql = f"INSERT INTO views ({', '.join(COLUMNS)}) VALUES ({', '.join(':' + c for c in COLUMNS)})"
    with marked(conn):
        conn.executemany(sql, [view(date_created=T0 + i * HOUR, duration_ms=1000 + i) for i in range(60)])
    assert conn.execute("SELECT COUNT(*) FROM rollup_dirty").fetchone()[0] == 60
    progress = "/api/website/example.com/progress"
    assert client.get(progress).json() == {"hours": 60, "blocks": 0, "ready": False}
    before = client.get("/api/website/example.com/summary").json()
    deadline = time.monotonic() + DEADLINE_S
    while not client.get(progress).json()["ready"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert client.get(progress).json() == {"hours": 0, "blocks": 0, "ready": True}
    assert [n for n in calls if n] == [10] * 6
    assert conn.execute("SELECT COUNT(*) FROM rollup_built WHERE span = 24").fetchone()[0] >= 1
    assert (
        client.get("/api/website/example.com/summary").json()
        == before
        == {"current": {"visitors": 60, "pageviews": 60, "bounce_percentage": 1.0, "duration": 1030}}
    )
    assert client.get("/api/website/nosuch.example/progress").status == 404
    conn.close()
    client.close()


def test_background_work_starts_with_the_server(tmp_path: Path) -> None:
    """Hours left dirty (an import, an upgrade) are rolled up from start-up, before any stats request."""
    store = Database(str(tmp_path / "me_analytics.db"), analytics.MIGRATIONS)
    sql = f"INSERT INTO views ({', '.join(COLUMNS)}) VALUES ({', '.join(':' + c for c in COLUMNS)})"
    with marked(store.writer_conn):
        store.writer_conn.executemany(sql, [view(date_created=T0 + i * HOUR) for i in range(30)])
    store.close()
    with live_server(tmp_path) as server:
        conn = sqlite3.connect(server.config.analyticsdb, isolation_level=None)
        deadline = time.monotonic() + DEADLINE_S
        while conn.execute("SELECT COUNT(*) FROM rollup_dirty").fetchone()[0] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert conn.execute("SELECT COUNT(*) FROM rollup_dirty").fetchone()[0] == 0
        assert conn.execute("SELECT SUM(pageviews) FROM rollup WHERE span = 1 AND kind = 0").fetchone()[0] == 30
        conn.close()


def test_request_copies_built_days_that_have_no_column_copy(server: LiveServer) -> None:
    """Days built before column copies existed (or whose copies were lost) get copied in the background,
    and filtered answers are the same before and after."""
    client = server.client()
    client.login()
    assert client.post("/api/websites", json_body={"hostname": SITE}).status == 201
    conn = sqlite3.connect(server.config.analyticsdb, isolation_level=None)
    sql = f"INSERT INTO views ({', '.join(COLUMNS)}) VALUES ({', '.join(':' + c for c in COLUMNS)})"
    rows = [view(date_created=T0 + i * 5 * HOUR, country="Spain" if i % 3 else "Chile") for i in range(40)]
    with marked(conn):
        conn.executemany(sql, rows)
    period = "start=2024-01-01T00:00:00Z&end=2030-01-01T00:00:00Z"
    url = f"/api/website/example.com/countries?{period}&country[eq]=spain&summary=true"
    client.get("/api/website/example.com/summary")  # rebuilds the hours and days, and copies them
    deadline = time.monotonic() + DEADLINE_S
    while not client.get("/api/website/example.com/progress").json()["ready"] and time.monotonic() < deadline:
        time.sleep(0.05)
    days = conn.execute("SELECT COUNT(*) FROM rollup_built WHERE span = 24").fetchone()[0]
    assert days >= 8
    copied = "SELECT COUNT(*) FROM column_days WHERE name = ''"
    while conn.execute(copied).fetchone()[0] < days and time.monotonic() < deadline:
        time.sleep(0.05)
    assert conn.execute(copied).fetchone()[0] == days
    conn.execute("DELETE FROM column_days")
    assert client.get(url).json() == [{"country": "Spain", "visitors": 26, "visitors_percentage": 1.0}]
    while conn.execute(copied).fetchone()[0] < days and time.monotonic() < deadline:
        time.sleep(0.05)
    assert conn.execute(copied).fetchone()[0] == days
    assert client.get(url).json() == [{"country": "Spain", "visitors": 26, "visitors_percentage": 1.0}]
    conn.close()
    client.close()


@pytest.mark.parametrize(("read_first", "batches"), [(False, [30, 30]), (True, [10] * 6)])
def test_hour_batches_are_longer_while_no_read_comes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, read_first: bool, batches: list[int]
) -> None:
    """With no stats read for QUIET_BEFORE_LONG_S (none at all here), an hour batch holds
    QUIET_BATCH_VIEWS views; after a read, REFRESH_BATCH_VIEWS, so that the next read waits less."""
    from medama_core.backends import sqlite as backend

    monkeypatch.setattr(rollups, "REFRESH_BATCH_VIEWS", 10)
    monkeypatch.setattr(rollups, "QUIET_BATCH_VIEWS", 30)
    monkeypatch.setattr(backend, "QUIET_BEFORE_LONG_S", 10**9)  # a read, whenever it was, is recent
    calls = count_hour_batches(monkeypatch)
    path = str(tmp_path / "me_analytics.db")
    store = backend.SQLiteAnalytics(path)
    sql = f"INSERT INTO views ({', '.join(COLUMNS)}) VALUES ({', '.join(':' + c for c in COLUMNS)})"
    with marked(store.db.writer_conn):
        store.db.writer_conn.executemany(
            sql, [view(date_created=T0 + i * HOUR, duration_ms=1000 + i) for i in range(60)]
        )

    async def scenario() -> int:
        if read_first:
            await store.db.read(lambda c: c.execute("SELECT 1").fetchone())
        return await store.maintain()

    try:
        assert asyncio.run(scenario()) == 60
    finally:
        store.close()
    assert [n for n in calls if n] == batches
