"""POST /api/event/hit and GET /api/event/ping over a real socket: every status of spec §3.8, stored rows, drops."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import stores
from tests.helpers import Client, LiveServer, live_server, stores_for

SITE = "example.com"
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
)
BROWSER = {"User-Agent": CHROME, "Accept-Language": "en-GB,en;q=0.9", "Content-Type": "text/plain;charset=UTF-8"}


def prepare(
    tmp_path: Path,
    sites: tuple[str, ...] = (SITE,),
    *,
    abusive: bool = False,
    tor: bool = False,
    blocked: tuple[str, ...] = (),
) -> None:
    """Create the app database the server will open: one user, `sites`, and the IP block settings."""
    with stores.app_store(stores_for(tmp_path)[0]) as (conn, meta):
        meta.insert_user(conn, "user_test", "admin", "not-a-hash", 0)
        for site in sites:
            meta.insert_website(conn, site, "user_test", 0)
        meta.set_setting(conn, "block_abusive_ips", "true" if abusive else "false", 0)
        meta.set_setting(conn, "block_tor_exit_nodes", "true" if tor else "false", 0)
        meta.set_setting(conn, "blocked_ips", ",".join(blocked), 0)


def rows(server: LiveServer, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    return stores.analytics_rows(server.config.analyticsdb, sql, params)


def drops(server: LiveServer, expected: list[tuple[Any, ...]], sql: str = "SELECT reason, count FROM drops") -> None:
    """Drop counts are written without holding up the 204, so wait a moment for them."""
    deadline = time.monotonic() + 5
    while rows(server, sql) != expected and time.monotonic() < deadline:
        time.sleep(0.01)
    assert rows(server, sql) == expected


def load(bid: str = "lx1a2b3c4d5e", **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "e": "load",
        "b": bid,
        "u": f"https://{SITE}/blog/post/?utm_source=news&utm_medium=email&utm_campaign=spring%20sale",
        "r": "https://www.google.com/search?q=medama",
        "p": True,
        "q": False,
        "t": "Europe/London",
    }
    body.update(fields)
    return body


def hit(client: Client, body: Any, headers: dict[str, str] | None = None) -> int:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post("/api/event/hit", body=raw, headers={**BROWSER, **(headers or {})}).status


@pytest.fixture
def site(tmp_path: Path) -> Iterator[LiveServer]:
    prepare(tmp_path, (SITE, "other.org"))
    with live_server(tmp_path) as running:
        yield running


@pytest.fixture
def c(site: LiveServer) -> Iterator[Client]:
    client = site.client()
    yield client
    client.close()


# --- ping (spec §3.7) ---


def test_ping_without_if_modified_since_is_zero(c: Client) -> None:
    result = c.get("/api/event/ping")
    assert (result.status, result.body) == (200, b"0")
    assert result.headers["content-type"] == "text/plain; charset=utf-8"
    assert result.headers["cache-control"] == "no-cache"
    assert result.headers["last-modified"].endswith(" 00:00:00 GMT")
    assert "x-api-commit" not in result.headers


def test_ping_revalidated_today_is_one_with_max_age(c: Client) -> None:
    url = "/api/event/ping?u=example.com%2Fblog"
    first = c.get(url)
    second = c.get(url, headers={"If-Modified-Since": first.headers["last-modified"]})
    assert (second.status, second.body) == (200, b"1")
    assert second.headers["last-modified"] == first.headers["last-modified"]
    max_age = int(second.headers["cache-control"].removeprefix("max-age="))
    assert 0 < max_age <= 86_400


def test_ping_with_an_unparseable_date_is_400_json(c: Client) -> None:
    result = c.get("/api/event/ping", headers={"If-Modified-Since": "yesterday"})
    assert result.status == 400
    assert result.json()["error"]["code"] == 400


def test_ping_allows_any_origin(c: Client) -> None:
    result = c.get("/api/event/ping", headers={"Origin": "https://example.com"})
    assert result.headers["access-control-allow-origin"] == "*"


# --- statuses of POST /event/hit (spec §3.8) ---


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "text/plain", "text/plain;charset=UTF-8", "TEXT/PLAIN; charset=latin-1", "Application/JSON"],
)
def test_tracker_and_api_content_types_are_accepted(c: Client, site: LiveServer, content_type: str) -> None:
    assert hit(c, load(), {"Content-Type": content_type}) == 204
    assert rows(site, "SELECT count(*) FROM views") == [(1,)]


@pytest.mark.parametrize("content_type", ["application/xml", "multipart/form-data; boundary=x", "text/html", ""])
def test_other_content_types_are_415(c: Client, content_type: str) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    result = c.post("/api/event/hit", body=json.dumps(load()).encode(), headers={"User-Agent": CHROME, **headers})
    assert result.status == 415
    assert result.json()["error"]["code"] == 415


BAD_BODIES: list[tuple[str, bytes]] = [
    ("empty body", b""),
    ("malformed JSON", b'{"e": "load",'),
    ("not an object", b"[1, 2]"),
    ("unknown e", json.dumps({"e": "click", "b": "x"}).encode()),
    ("missing e", json.dumps({"b": "x"}).encode()),
    ("missing b", json.dumps({k: v for k, v in load().items() if k != "b"}).encode()),
    ("missing p", json.dumps({k: v for k, v in load().items() if k != "p"}).encode()),
    ("bad u", json.dumps(load(u="not a url")).encode()),
    ("u with a broken escape", json.dumps(load(u="https://example.com/%zz")).encode()),
    ("unparseable r", json.dumps(load(r="http://exa mple.com:99999/")).encode()),
    ("m zero", json.dumps({"e": "unload", "b": "x", "m": 0}).encode()),
    ("m negative", json.dumps({"e": "unload", "b": "x", "m": -5}).encode()),
    ("m a string", json.dumps({"e": "unload", "b": "x", "m": "10"}).encode()),
    ("m too large", json.dumps({"e": "unload", "b": "x", "m": 2**40}).encode()),
    ("empty custom d", json.dumps({"e": "custom", "g": SITE, "d": {}}).encode()),
    ("custom d not an object", json.dumps({"e": "custom", "g": SITE, "d": [1]}).encode()),
    ("custom without g", json.dumps({"e": "custom", "d": {"a": "b"}}).encode()),
    ("not UTF-8", b'{"e": "load", "b": "\xff"}'),
]


@pytest.mark.parametrize("body", [b for _, b in BAD_BODIES], ids=[name for name, _ in BAD_BODIES])
def test_malformed_hits_are_400(c: Client, site: LiveServer, body: bytes) -> None:
    result = c.post("/api/event/hit", body=body, headers=BROWSER)
    assert result.status == 400, result.body
    assert result.json()["error"]["code"] == 400
    assert rows(site, "SELECT count(*) FROM views") == [(0,)]


def test_load_for_an_unregistered_site_is_404(c: Client, site: LiveServer) -> None:
    result = c.post("/api/event/hit", body=json.dumps(load(u="https://nope.example/")).encode(), headers=BROWSER)
    assert result.status == 404
    assert result.json() == {"error": {"code": 404, "message": "website not found"}}
    drops(site, [("unknown_site", "nope.example", 1)], "SELECT reason, hostname, count FROM drops")


def test_custom_event_for_an_unregistered_group_is_404(c: Client) -> None:
    assert hit(c, {"e": "custom", "g": "nope.example", "d": {"a": "b"}}) == 404


def test_a_database_failure_is_500(c: Client, site: LiveServer) -> None:
    conn = sqlite3.connect(site.config.analyticsdb)
    conn.execute("ALTER TABLE views RENAME TO views_gone")
    conn.commit()
    conn.close()
    result = c.post("/api/event/hit", body=json.dumps(load()).encode(), headers=BROWSER)
    assert result.status == 500
    assert result.json() == {"error": {"code": 500, "message": "internal server error"}}


# --- what a load stores (spec §3.2) ---


def test_load_is_enriched_and_stored(c: Client, site: LiveServer) -> None:
    assert hit(c, load(d={"plan": "pro", "seats": 3, "trial": False})) == 204
    (view,) = rows(site, "SELECT * FROM views")
    assert view[:16] == (
        "lx1a2b3c4d5e",
        SITE,
        "/blog/post",
        1,
        0,
        "www.google.com",
        "Google",
        "United Kingdom",
        "English",
        "British English",
        "Chrome",
        "Windows",
        "Desktop",
        "news",
        "email",
        "spring sale",
    )
    assert view[16] is None, "duration_ms is NULL until the unload"
    events = rows(site, "SELECT bid, batch_id, group_name, name, value, date_created FROM events ORDER BY name")
    assert [(e[0], e[2], e[3], e[4]) for e in events] == [
        ("lx1a2b3c4d5e", SITE, "plan", "pro"),
        ("lx1a2b3c4d5e", SITE, "seats", "3"),
        ("lx1a2b3c4d5e", SITE, "trial", "false"),
    ]
    assert len({e[1] for e in events}) == 1 and events[0][1].startswith("event_")
    assert events[0][5] == view[17], "events share the view's time"


def test_direct_visit_and_self_referral_store_empty_referrer(c: Client, site: LiveServer) -> None:
    assert hit(c, load("a1", r="")) == 204
    assert hit(c, load("a2", r=f"https://{SITE}/other")) == 204
    assert hit(c, load("a3", r="http://192.0.2.1/")) == 204
    assert rows(site, "SELECT DISTINCT referrer_host, referrer_group FROM views") == [("", "")]


def test_hash_mode_pages_are_stored_under_their_hash_route(c: Client, site: LiveServer) -> None:
    assert hit(c, load("h1", u=f"https://{SITE}/app/#/settings/profile", h=True)) == 204
    assert hit(c, load("h2", u=f"https://{SITE}/app/#/settings/profile")) == 204
    assert rows(site, "SELECT bid, pathname FROM views ORDER BY bid") == [
        ("h1", "/app#/settings/profile"),
        ("h2", "/app"),
    ]


def test_a_repeated_beacon_is_ignored_not_an_error(c: Client, site: LiveServer) -> None:
    assert hit(c, load("dup", p=True)) == 204
    assert hit(c, load("dup", p=False)) == 204
    assert rows(site, "SELECT bid, is_unique_user FROM views") == [("dup", 1)]


def test_the_same_beacon_on_two_sites_is_two_views(c: Client, site: LiveServer) -> None:
    assert hit(c, load("shared")) == 204
    assert hit(c, load("shared", u="https://other.org/")) == 204
    assert rows(site, "SELECT hostname FROM views ORDER BY hostname") == [(SITE,), ("other.org",)]


def test_unload_sets_the_duration_of_every_view_with_the_bid_last_wins(c: Client, site: LiveServer) -> None:
    assert hit(c, load("u1")) == 204
    assert hit(c, load("u1", u="https://other.org/")) == 204
    assert hit(c, {"e": "unload", "b": "u1", "m": 1500}) == 204
    assert hit(c, {"e": "unload", "b": "u1", "m": 2500}) == 204
    assert rows(site, "SELECT duration_ms FROM views") == [(2500,), (2500,)]


def test_unload_of_an_unknown_bid_is_still_204(c: Client) -> None:
    assert hit(c, {"e": "unload", "b": "never-loaded", "m": 10}) == 204


def test_custom_event_rows(c: Client, site: LiveServer) -> None:
    assert hit(c, {"e": "custom", "g": "Example.COM", "b": "c1", "d": {"button": "signup", "n": 2}}) == 204
    assert hit(c, {"e": "custom", "g": SITE, "d": {"x": True}}) == 204
    stored = rows(site, "SELECT bid, group_name, name, value FROM events ORDER BY name")
    assert stored == [("c1", SITE, "button", "signup"), ("c1", SITE, "n", "2"), ("", SITE, "x", "true")]


# --- silent drops (204) and their counts ---

BOT_UA = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


@pytest.mark.parametrize(
    ("body", "headers", "reason"),
    [
        pytest.param(load(), {"User-Agent": BOT_UA}, "bot", id="bot"),
        pytest.param(load(), {"User-Agent": "Mozilla/5.0 (Foo)"}, "too_many_unknowns", id="unknown UA"),
        pytest.param(
            load(t="Etc/UTC"), {"User-Agent": "Mozilla/5.0 (Windows NT 10.0)"}, "too_many_unknowns", id="browser+zone"
        ),
        pytest.param(load(t="UTC"), {"Accept-Language": "!!!"}, "too_many_unknowns", id="zone+language"),
        pytest.param(load(r="https://semalt.com/"), {}, "spam_referrer", id="spam referrer"),
    ],
)
def test_dropped_loads_are_204_and_counted(
    c: Client, site: LiveServer, body: dict[str, Any], headers: dict[str, str], reason: str
) -> None:
    assert hit(c, body, headers) == 204
    assert rows(site, "SELECT count(*) FROM views") == [(0,)]
    drops(site, [(SITE, reason, 1)], "SELECT hostname, reason, count FROM drops")


def test_one_unknown_is_kept(c: Client, site: LiveServer) -> None:
    assert hit(c, load(t="UTC")) == 204
    assert rows(site, "SELECT country FROM views") == [("Unknown",)]


def test_drop_counts_add_up_per_day(c: Client, site: LiveServer) -> None:
    for _ in range(3):
        assert hit(c, load(), {"User-Agent": BOT_UA}) == 204
    drops(site, [(3, 0)], "SELECT count, day % 86400000 FROM drops WHERE reason = 'bot'")


@pytest.mark.parametrize(
    ("body", "counted"),
    [
        (load(), [("blocked_ip", SITE, 2)]),
        ({"e": "unload", "b": "x", "m": 5}, [("blocked_ip", "", 1), ("blocked_ip", SITE, 1)]),  # names no site
        ({"e": "custom", "g": SITE, "d": {"a": "b"}}, [("blocked_ip", SITE, 2)]),
    ],
    ids=["load", "unload", "custom"],
)
def test_a_blocked_ip_gets_204_for_every_event_type(
    tmp_path: Path, body: dict[str, Any], counted: list[tuple[str, str, int]]
) -> None:
    prepare(tmp_path, blocked=("127.0.0.0/8",))
    with live_server(tmp_path) as server:
        client = server.client()
        assert hit(client, load("seen")) == 204
        assert hit(client, body) == 204
        client.close()
    assert rows(server, "SELECT count(*) FROM views") == [(0,)]
    assert rows(server, "SELECT count(*) FROM events") == [(0,)]
    assert rows(server, "SELECT reason, hostname, count FROM drops ORDER BY hostname") == counted


def test_the_presets_do_not_block_local_testing(tmp_path: Path) -> None:
    prepare(tmp_path, abusive=True, tor=True)
    with live_server(tmp_path) as server:
        client = server.client()
        assert hit(client, load("local")) == 204
        client.close()
    assert rows(server, "SELECT bid FROM views") == [("local",)], "loopback is cut out of the FireHOL bogons"


# --- client IP: forwarding headers count only from trusted proxies ---

SPOOF = {"X-Forwarded-For": "203.0.113.9", "X-Real-IP": "203.0.113.9", "CF-Connecting-IP": "203.0.113.9"}


def test_spoofed_forwarding_headers_cannot_dodge_a_block(tmp_path: Path) -> None:
    prepare(tmp_path, blocked=("127.0.0.1",))
    with live_server(tmp_path) as server:
        client = server.client()
        assert hit(client, load("spoof"), SPOOF) == 204
        client.close()
    assert rows(server, "SELECT count(*) FROM views") == [(0,)], "the peer 127.0.0.1 is blocked, XFF is ignored"


def test_spoofed_forwarding_headers_cannot_frame_another_address(tmp_path: Path) -> None:
    prepare(tmp_path, blocked=("203.0.113.9",))
    with live_server(tmp_path) as server:
        client = server.client()
        assert hit(client, load("framed"), SPOOF) == 204
        client.close()
    assert rows(server, "SELECT count(*) FROM views") == [(1,)]


def test_forwarding_headers_from_a_trusted_proxy_are_believed(tmp_path: Path) -> None:
    prepare(tmp_path, blocked=("203.0.113.9",))
    with live_server(tmp_path, trustedproxies=("loopback",)) as server:
        client = server.client()
        assert hit(client, load("proxied-blocked"), {"X-Forwarded-For": "203.0.113.9"}) == 204
        assert hit(client, load("proxied-ok"), {"X-Forwarded-For": "198.51.100.20"}) == 204
        assert hit(client, load("real-ip"), {"X-Real-IP": "203.0.113.9"}) == 204
        client.close()
    assert rows(server, "SELECT bid FROM views") == [("proxied-ok",)]


# --- rate limit on /api/event/* (spec §1.3, §10.2) ---


def test_rate_limit_fires_with_the_json_error_shape(tmp_path: Path) -> None:
    prepare(tmp_path)
    with live_server(tmp_path, ratelimit=3) as server:
        client = server.client()
        assert client.get("/api/event/ping").status == 200
        assert hit(client, load("r1")) == 204
        assert hit(client, load("r2")) == 204
        limited = client.post("/api/event/hit", body=json.dumps(load("r3")).encode(), headers=BROWSER)
        assert limited.status == 429
        assert limited.json() == {"error": {"code": 429, "message": "too many requests"}}
        assert 1 <= int(limited.headers["retry-after"]) <= 60
        assert client.get("/api/event/ping").status == 429
        assert client.get("/api/websites").status != 429, "only /api/event/* is limited"
        client.close()
    assert rows(server, "SELECT bid FROM views ORDER BY bid") == [("r1",), ("r2",)]
    assert rows(server, "SELECT reason, count FROM drops") == [("rate_limited", 1)]


def test_rate_limit_is_per_client_network(tmp_path: Path) -> None:
    prepare(tmp_path)
    with live_server(tmp_path, ratelimit=2, trustedproxies=("loopback",)) as server:
        client = server.client()
        first = {"X-Forwarded-For": "198.51.100.1"}
        same_24 = {"X-Forwarded-For": "198.51.100.200"}
        other_24 = {"X-Forwarded-For": "198.51.101.1"}
        assert hit(client, load("n1"), first) == 204
        assert hit(client, load("n2"), same_24) == 204
        assert hit(client, load("n3"), same_24) == 429, "one /24 shares a budget"
        assert hit(client, load("n4"), other_24) == 204
        v6 = {"X-Forwarded-For": "2001:db8:1:2::1"}
        v6_same_48 = {"X-Forwarded-For": "2001:db8:1:ffff::9"}
        assert hit(client, load("n5"), v6) == 204
        assert hit(client, load("n6"), v6_same_48) == 204
        assert hit(client, load("n7"), v6_same_48) == 429, "one /48 shares a budget"
        client.close()


def test_rate_limit_zero_disables_it(tmp_path: Path) -> None:
    prepare(tmp_path)
    with live_server(tmp_path, ratelimit=0) as server:
        client = server.client()
        assert all(client.get("/api/event/ping").status == 200 for _ in range(200))
        client.close()


def test_shutdown_commits_and_logs_what_ingestion_did(tmp_path: Path) -> None:
    prepare(tmp_path)
    with live_server(tmp_path) as server:
        client = server.client()
        assert hit(client, load("kept")) == 204
        assert hit(client, load(), {"User-Agent": BOT_UA}) == 204
        client.close()
    summary = [json.loads(line) for line in server.log_stream.getvalue().splitlines() if "ingestion stopped" in line]
    assert len(summary) == 1
    assert summary[0]["dropped"] == {"bot": 1}
    assert summary[0]["writes"] == 2, "the stored view and the drop count"
    assert rows(server, "SELECT reason, count FROM drops") == [("bot", 1)], "queued counts are committed on shutdown"
