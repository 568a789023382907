"""The per-site daily hit quota (CONTRACT 8): the tenant setting, the 204 + `quota` drop past it, restarts."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from medama_core import passwords, quota
from medama_core.quota import DailyQuota
from tests.api.test_auth import error
from tests.api.test_events import drops, hit, load, prepare, rows
from tests.helpers import Client, LiveServer, live_server

SITE = "example.com"
DAY_MS = 86_400_000


def test_the_quota_counts_per_site_and_day() -> None:
    table = DailyQuota(limit=2)
    assert [table.take("a", 100) for _ in range(3)] == [True, True, False]
    assert table.take("b", 100), "another site has its own count"
    assert table.take("a", 101), "a new UTC day starts afresh"
    assert table.used("a", 101) == 1 and table.used("a", 100) == 0
    table.limit = 0
    assert all(table.take("a", 101) for _ in range(1000)), "0 means no limit"


def test_seeding_adds_what_was_stored_before_a_restart() -> None:
    table = DailyQuota(limit=5)
    assert table.take("a", 7)
    table.seed(7, {"a": 3, "b": 5})
    assert table.used("a", 7) == 4
    assert table.take("a", 7) and not table.take("a", 7)
    assert not table.take("b", 7)


def login(server: LiveServer) -> Client:
    """The test databases' admin has no usable password hash: give it one, then sign in."""
    with sqlite3.connect(server.config.appdb) as conn:
        conn.execute("UPDATE users SET password = ? WHERE username = 'admin'", (passwords.hash_password("pw-123"),))
    client = server.client()
    client.login("admin", "pw-123")
    return client


def test_the_setting_defaults_to_a_million_and_is_validated(tmp_path: Path) -> None:
    prepare(tmp_path)
    with live_server(tmp_path) as server:
        admin = login(server)
        assert admin.get("/api/tenant/settings").json()["site_daily_hit_quota"] == quota.DEFAULT_SITE_DAILY_HIT_QUOTA
        for bad in (-1, 1.5, "100", True, None, quota.MAX_SITE_DAILY_HIT_QUOTA + 1):
            result = admin.patch("/api/tenant/settings", json_body={"site_daily_hit_quota": bad})
            assert error(result)[0] == 400, bad
        changed = admin.patch("/api/tenant/settings", json_body={"site_daily_hit_quota": 0})
        assert changed.json()["site_daily_hit_quota"] == 0
        assert admin.get("/api/tenant/settings").json()["site_daily_hit_quota"] == 0
        admin.close()


def test_past_the_quota_hits_are_204_counted_as_quota_and_not_stored(tmp_path: Path) -> None:
    prepare(tmp_path, (SITE, "other.org"))
    with live_server(tmp_path) as server:
        admin = login(server)
        assert admin.patch("/api/tenant/settings", json_body={"site_daily_hit_quota": 3}).status == 200
        c = server.client()
        assert hit(c, load("q1")) == 204
        assert hit(c, {"e": "custom", "g": SITE, "d": {"a": 1}}) == 204  # custom events count too
        assert hit(c, {"e": "unload", "b": "q1", "m": 10}) == 204  # unloads store no row: not counted
        assert hit(c, load("q2", u="https://www.example.com/")) == 204  # the www. name is the same site
        assert hit(c, load("q3")) == 204  # over: dropped
        assert hit(c, {"e": "custom", "g": SITE, "d": {"a": 2}}) == 204  # over: dropped
        assert hit(c, load("o1", u="https://other.org/")) == 204  # another site has its own count
        assert rows(server, "SELECT bid FROM views ORDER BY bid") == [("o1",), ("q1",), ("q2",)]
        assert rows(server, "SELECT value FROM events") == [("1",)]
        drops(server, [(SITE, "quota", 2)], "SELECT hostname, reason, count FROM drops")
        # Raising the quota applies at once.
        assert admin.patch("/api/tenant/settings", json_body={"site_daily_hit_quota": 4}).status == 200
        assert hit(c, load("q4")) == 204
        assert rows(server, "SELECT count(*) FROM views WHERE hostname = ?", (SITE,)) == [(3,)]
        c.close()
        admin.close()
    today = int(time.time() * 1000) // DAY_MS * DAY_MS
    assert rows(server, "SELECT day, hostname, hits FROM site_hits ORDER BY hostname") == [
        (today, SITE, 4),
        (today, "other.org", 1),
    ]


def test_a_restart_does_not_reset_the_days_count(tmp_path: Path) -> None:
    prepare(tmp_path)
    with live_server(tmp_path) as server:
        admin = login(server)
        assert admin.patch("/api/tenant/settings", json_body={"site_daily_hit_quota": 2}).status == 200
        admin.close()
        c = server.client()
        assert hit(c, load("r1")) == 204
        assert hit(c, load("r2")) == 204
        c.close()
    with live_server(tmp_path) as server:
        c = server.client()
        assert hit(c, load("r3")) == 204
        c.close()
        drops(server, [(SITE, "quota", 1)], "SELECT hostname, reason, count FROM drops")
    assert rows(server, "SELECT bid FROM views ORDER BY bid") == [("r1",), ("r2",)]


@pytest.mark.parametrize("change", ["rename", "delete"])
def test_the_days_count_moves_and_goes_with_its_site(tmp_path: Path, change: str) -> None:
    prepare(tmp_path)
    with live_server(tmp_path) as server:
        c = server.client()
        assert hit(c, load("m1")) == 204
        c.close()
        admin = login(server)
        if change == "rename":
            assert admin.patch(f"/api/websites/{SITE}", json_body={"hostname": "renamed.example"}).status == 200
        else:
            assert admin.delete(f"/api/websites/{SITE}").status == 204
        admin.close()
    expected = [("renamed.example", 1)] if change == "rename" else []
    assert rows(server, "SELECT hostname, hits FROM site_hits") == expected
