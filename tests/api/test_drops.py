"""GET /api/drops (CONTRACT 5): dropped hits per UTC day, site and reason, each counted through real requests.

Every reason is produced by real hits to a running server, from client
networks of their own (behind a trusted proxy), and the expected counts are
written out by hand next to the requests that make them.
"""

from __future__ import annotations

import itertools
import json
import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from medama_core import passwords
from tests import stores
from tests.api.test_auth import error
from tests.api.test_events import BOT_UA, BROWSER, load, rows
from tests.helpers import Client, LiveServer, live_server, stores_for

ADMIN_PASSWORD = "admin-pass"
OTHER_PASSWORD = "other-pass"
BLOCKED_NET = "203.0.113.0/24"
RATE_LIMIT = 3  # requests per minute per network


def prepare(tmp_path: Path) -> None:
    """admin owns example.com and busy.example; other, a viewer, owns and reads theirs.example; one network
    is blocked."""
    with stores.app_store(stores_for(tmp_path)[0]) as (conn, meta):
        for user, password in (("admin", ADMIN_PASSWORD), ("other", OTHER_PASSWORD)):
            role = "viewer" if user == "other" else "admin"
            meta.insert_user(conn, f"user_{user}", user, passwords.hash_password(password), 0, role=role)
        for site, owner in (("example.com", "admin"), ("busy.example", "admin"), ("theirs.example", "other")):
            meta.insert_website(conn, site, f"user_{owner}", 0)
        meta.set_grants(conn, "user_other", ["theirs.example"])
        meta.set_setting(conn, "block_abusive_ips", "false", 0)
        meta.set_setting(conn, "block_tor_exit_nodes", "false", 0)
        meta.set_setting(conn, "blocked_ips", BLOCKED_NET, 0)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    prepare(tmp_path)
    with live_server(tmp_path, ratelimit=RATE_LIMIT, trustedproxies=("loopback",)) as running:
        yield running


class Sender:
    """Posts hits, each from a /24 of its own unless told which address to use."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.networks = itertools.count(1)

    def post(self, body: Any, *, address: str | None = None, **headers: str) -> int:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        forwarded = address or f"198.18.{next(self.networks)}.1"
        all_headers = {**BROWSER, "X-Forwarded-For": forwarded, **headers}
        return self.client.post("/api/event/hit", body=raw, headers=all_headers).status


def signed_in(server: LiveServer, username: str, password: str) -> Client:
    client = server.client()
    client.login(username, password)
    return client


def wait_for(client: Client, path: str, expected: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Drop counts reach the disk without holding up the 204s: poll until they are all there."""
    deadline = time.monotonic() + 5
    answer = client.get(path).json()
    while answer != expected and time.monotonic() < deadline:
        time.sleep(0.02)
        answer = client.get(path).json()
    return answer


def today() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d")


def test_every_reason_is_counted_per_site_and_shown_to_the_sites_owner(server: LiveServer) -> None:
    admin = signed_in(server, "admin", ADMIN_PASSWORD)
    send = Sender(server.client())
    site = "https://example.com"
    # example.com: 2 bots, 1 spam referrer, 1 with too many unknowns.
    assert send.post(load("bot1", u=site + "/"), **{"User-Agent": BOT_UA}) == 204
    assert send.post(load("bot2", u="https://www.example.com/"), **{"User-Agent": BOT_UA}) == 204  # www. twin
    assert send.post(load("spam", u=site + "/", r="https://semalt.com/")) == 204
    assert send.post(load("odd", u=site + "/"), **{"User-Agent": "Mozilla/5.0 (Foo)"}) == 204
    # 2 from a blocked network: a load on the www. name and a custom event.
    assert send.post(load("blocked", u="https://www.example.com/"), address="203.0.113.5") == 204
    assert send.post({"e": "custom", "g": "example.com", "d": {"a": 1}}, address="203.0.113.6") == 204
    # 5 from one network under a limit of 3 a minute: 3 stored, 2 rate limited.
    statuses = [send.post(load(f"rl{i}", u=site + "/"), address="192.0.2.7") for i in range(5)]
    assert statuses == [204] * RATE_LIMIT + [429] * 2
    # 3 bodies refused: 400 (bad field), 415 (content type), 413 (11 properties).
    assert send.post(load("bad", u=site + "/", p="yes")) == 400
    assert send.post(load("html", u=site + "/"), **{"Content-Type": "text/html"}) == 415
    assert send.post(load("big", u=site + "/", d={f"k{i}": i for i in range(11)})) == 413
    # Unregistered names: counted under their own name, or "" when not a host name.
    for i in range(3):
        assert send.post(load(f"typo{i}", u="https://www.exmple.com/")) == 404
    assert send.post({"e": "custom", "g": "typo.example", "d": {"a": 1}}) == 404
    assert send.post(load("under", u="https://exa_mple.com/")) == 404
    # A body that names no site.
    assert send.post(b"garbage") == 400
    # theirs.example (the viewer's site): 1 bot, shown to the viewer and to the admin, who sees every site.
    assert send.post(load("theirbot", u="https://theirs.example/"), **{"User-Agent": BOT_UA}) == 204
    # busy.example: a quota of 4 a day; 3 stored from one network, then 2 more over quota.
    assert admin.patch("/api/tenant/settings", json_body={"site_daily_hit_quota": 4}).status == 200
    assert [send.post(load(f"busy{i}", u="https://busy.example/")) for i in range(6)] == [204] * 6

    day = today()
    expected = [
        ("", "bad_payload", 1),
        ("", "unknown_site", 1),
        ("busy.example", "quota", 2),
        ("example.com", "bad_payload", 3),
        ("example.com", "blocked_ip", 2),
        ("example.com", "bot", 2),
        ("example.com", "rate_limited", 2),
        ("example.com", "spam_referrer", 1),
        ("example.com", "too_many_unknowns", 1),
        ("theirs.example", "bot", 1),
        ("typo.example", "unknown_site", 1),
        ("www.exmple.com", "unknown_site", 3),
    ]
    want = [{"date": day, "hostname": h, "reason": r, "hits": n} for h, r, n in expected]
    assert wait_for(admin, "/api/drops", want) == want
    assert rows(server, "SELECT count(*) FROM views WHERE hostname = 'busy.example'") == [(4,)]

    other = signed_in(server, "other", OTHER_PASSWORD)
    # A viewer sees its granted site's rows, and none of the names no site has: those are an admin's.
    theirs = [row for row in want if row["hostname"] == "theirs.example"]
    assert wait_for(other, "/api/drops", theirs) == theirs
    for client in (admin, other, send.client):
        client.close()


def add_drop(server: LiveServer, day: str, hostname: str, reason: str, count: int) -> None:
    """A row of an earlier day, as ingestion would have written it then."""
    day_ms = int(datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp() * 1000)
    with sqlite3.connect(server.config.analyticsdb) as conn:
        conn.execute(
            "INSERT INTO drops (day, hostname, reason, count) VALUES (:day, :hostname, :reason, :count)",
            {"day": day_ms, "hostname": hostname, "reason": reason, "count": count},
        )


def test_days_are_newest_first_and_the_period_is_the_last_30_days_by_default(server: LiveServer) -> None:
    admin = signed_in(server, "admin", ADMIN_PASSWORD)
    now = datetime.now(UTC)
    yesterday, long_ago = (
        (now - timedelta(days=1)).strftime("%Y-%m-%d"),
        (now - timedelta(days=40)).strftime("%Y-%m-%d"),
    )
    add_drop(server, yesterday, "example.com", "bot", 7)
    add_drop(server, long_ago, "example.com", "bot", 9)
    send = Sender(server.client())
    assert send.post(load("b", u="https://example.com/"), **{"User-Agent": BOT_UA}) == 204
    recent = [
        {"date": today(), "hostname": "example.com", "reason": "bot", "hits": 1},
        {"date": yesterday, "hostname": "example.com", "reason": "bot", "hits": 7},
    ]
    assert wait_for(admin, "/api/drops", recent) == recent
    start = (now - timedelta(days=41)).strftime("%Y-%m-%dT00:00:00Z")
    end = (now - timedelta(days=39)).strftime("%Y-%m-%dT00:00:00") + "%2B00:00"  # +00:00, URL-encoded
    assert admin.get(f"/api/drops?start={start}&end={end}").json() == [
        {"date": long_ago, "hostname": "example.com", "reason": "bot", "hits": 9}
    ]
    send.client.close()
    admin.close()


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("start=yesterday", "start: 'yesterday' is not an RFC 3339 date-time"),
        ("end=2024-13-01T00:00:00Z", "end: '2024-13-01T00:00:00Z' is not a valid date-time"),
        ("start=2024-02-01T00:00:00Z&end=2024-01-01T00:00:00Z", "start: must not be after end"),
        ("start=2020-01-01T00:00:00Z&end=2024-01-01T00:00:00Z", "start, end: at most 400 days"),
    ],
)
def test_bad_periods_are_400(server: LiveServer, query: str, message: str) -> None:
    admin = signed_in(server, "admin", ADMIN_PASSWORD)
    assert error(admin.get(f"/api/drops?{query}")) == (400, message)
    admin.close()


def test_drops_need_a_session(server: LiveServer) -> None:
    client = server.client()
    assert error(client.get("/api/drops")) == (401, "missing security token or cookie")
    client.close()
