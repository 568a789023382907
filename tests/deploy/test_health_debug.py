"""GET /api/health, and the -profiler pages: 404 when off, 401 without a session, text when logged in."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest

from medama_core import COMMIT, __version__
from medama_core.api import debug, health
from medama_core.backends.sqlite import SQLiteAnalytics
from medama_core.http.errors import HTTPError
from tests.helpers import Client, live_server


def test_health_needs_no_login_and_reports_both_databases(client: Client) -> None:
    result = client.get("/api/health")
    assert result.status == 200
    assert result.headers["cache-control"] == "no-store"
    body = result.json()
    assert body == {
        "status": "ok",
        "version": __version__,
        "commit": COMMIT,
        "uptime_s": body["uptime_s"],
        "databases": {"meta": "ok", "analytics": "ok"},
    }
    assert isinstance(body["uptime_s"], int) and 0 <= body["uptime_s"] < 60


def test_a_closed_database_is_reported(tmp_path: Path) -> None:
    store = SQLiteAnalytics(str(tmp_path / "a.db"))
    assert asyncio.run(health.check(store)) == "ok"
    store.close()
    assert asyncio.run(health.check(store)).startswith("error: ")


def test_a_hung_database_is_a_timeout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = SQLiteAnalytics(str(tmp_path / "a.db"))
    store.tune(readers=1)
    db = store.db
    busy, release = threading.Event(), threading.Event()
    monkeypatch.setattr(health, "DB_CHECK_TIMEOUT_S", 0.2)

    def hang(conn: object) -> None:
        busy.set()
        release.wait(10)

    async def run() -> str:
        blocker = asyncio.ensure_future(db.read(hang))  # occupies the only reader thread
        await asyncio.to_thread(busy.wait, 10)
        try:
            return await health.check(store)
        finally:
            release.set()
            await blocker

    try:
        assert asyncio.run(run()) == "timeout"
    finally:
        store.close()


@pytest.mark.parametrize("path", ["/debug/profile?seconds=0.1", "/debug/stacks"])
def test_debug_pages_are_404_when_the_profiler_is_off(client: Client, path: str) -> None:
    client.login()
    result = client.get(path)
    assert result.status == 404
    assert result.json() == {"error": {"code": 404, "message": "not found"}}


def test_debug_pages_need_a_session_and_show_profiles_and_stacks(tmp_path: Path) -> None:
    with live_server(tmp_path, profiler=True) as server:
        anonymous = server.client()
        assert anonymous.get("/debug/stacks").status == 401
        assert anonymous.get("/debug/profile?seconds=0.1").status == 401
        anonymous.close()

        user = server.client()
        user.login()
        stacks = user.get("/debug/stacks")
        assert stacks.status == 200 and stacks.headers["content-type"].startswith("text/plain")
        text = stacks.body.decode()
        assert "asyncio tasks" in text and "get_stacks" in text  # the handler sees its own task
        assert "threads" in text and "MainThread" in text

        # Requests served while the profile runs show up in it.
        other = server.client()
        started = time.monotonic()
        done = threading.Event()

        def traffic() -> None:
            while not done.is_set():
                other.get("/api/health")

        thread = threading.Thread(target=traffic)
        thread.start()
        try:
            profile = user.get("/debug/profile?seconds=0.5")
        finally:
            done.set()
            thread.join()
            other.close()
        assert time.monotonic() - started >= 0.5
        assert profile.status == 200
        assert "function calls" in profile.body.decode() and "get_health" in profile.body.decode()
        assert user.get("/debug/profile?seconds=abc").status == 400
        assert user.get("/debug/profile?seconds=0").status == 400
        assert user.get(f"/debug/profile?seconds={debug.MAX_PROFILE_S + 1}").status == 400
        assert user.get("/debug/nothing").status == 404
        user.close()


@pytest.mark.parametrize("value, expected", [(None, debug.DEFAULT_PROFILE_S), ("2.5", 2.5), ("60", 60.0)])
def test_profile_seconds(value: str | None, expected: float) -> None:
    assert debug.profile_seconds(value) == expected


@pytest.mark.parametrize("value", ["-1", "0", "61", "nan", "inf", "x"])
def test_profile_seconds_refused(value: str) -> None:
    with pytest.raises(HTTPError) as caught:
        debug.profile_seconds(value)
    assert caught.value.status == 400
