"""The per-site daily hit quota (CONTRACT 8): the tenant setting, the 204 + `quota` drop past it, restarts.

On both engines, but for the tests that read SQLite's `site_hits` table (tests/pgch.py); on ClickHouse a
restart counts the day's hits from the stored views and custom events."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from medama_core import app, passwords, quota
from medama_core.quota import DailyQuota
from tests import stores
from tests.api.test_auth import error
from tests.api.test_events import drops, hit, load, prepare, rows
from tests.helpers import Client, LiveServer, live_server, stores_for

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


def test_catching_up_raises_counts_to_the_stores_and_never_lowers_them() -> None:
    table = DailyQuota(limit=5)
    assert table.take("a", 7) and table.take("a", 7) and table.take("b", 7)
    table.catch_up(7, {"a": 1, "b": 4, "c": 5})  # a: this node's own 2 are not stored yet
    assert (table.used("a", 7), table.used("b", 7), table.used("c", 7)) == (2, 4, 5)
    assert not table.take("c", 7)
    table.catch_up(8, {"a": 3})  # a new day starts from the store's count
    assert (table.used("a", 8), table.used("b", 8)) == (3, 0)


def login(server: LiveServer) -> Client:
    """The test databases' admin has no usable password hash: give it one, then sign in."""
    with stores.app_store(server.config.appdb) as (conn, meta):
        user = meta.get_user_by_username(conn, "admin")
        meta.update_user(conn, user.id, 1, password_hash=passwords.hash_password("pw-123"))
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
    """A view with properties counts once, a custom event once; after a restart the day goes on from there."""
    prepare(tmp_path)
    with live_server(tmp_path) as server:
        admin = login(server)
        assert admin.patch("/api/tenant/settings", json_body={"site_daily_hit_quota": 3}).status == 200
        admin.close()
        c = server.client()
        assert hit(c, load("r1", d={"plan": "pro", "theme": "dark"})) == 204
        assert hit(c, {"e": "custom", "g": SITE, "b": "r1", "d": {"signup": "yes"}}) == 204
        c.close()
    with live_server(tmp_path) as server:
        c = server.client()
        assert hit(c, load("r2")) == 204  # the third hit of the day
        assert hit(c, load("r3")) == 204  # over
        c.close()
        drops(server, [(SITE, "quota", 1)], "SELECT hostname, reason, count FROM drops")
    assert rows(server, "SELECT bid FROM views ORDER BY bid") == [("r1",), ("r2",)]
    assert len(rows(server, "SELECT name FROM events")) == 3


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


def test_nodes_on_the_same_stores_share_a_sites_quota(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two servers on the same stores (two nodes): hits stored through one count against the other's quota
    once it has caught up with the store (app.QUOTA_SYNC_INTERVAL_S)."""
    monkeypatch.setattr(app, "QUOTA_SYNC_INTERVAL_S", 0.05)
    prepare(tmp_path)
    with stores.app_store(stores_for(tmp_path)[0]) as (conn, meta):
        meta.set_setting(conn, "site_daily_hit_quota", "2", 0)
    with live_server(tmp_path) as first, live_server(tmp_path) as second:
        c = first.client()
        assert hit(c, load("n1")) == 204
        assert hit(c, load("n2")) == 204  # the site's quota, all taken on the first node
        c.close()
        time.sleep(0.5)  # ten rounds of the second node's catching up
        c = second.client()
        assert hit(c, load("n3")) == 204  # over the quota: dropped
        c.close()
        drops(second, [(SITE, "quota", 1)], "SELECT hostname, reason, count FROM drops")
    assert rows(first, "SELECT bid FROM views ORDER BY bid") == [("n1",), ("n2",)]
