"""POST /api/event (Plausible's event API) and POST /api/send (Umami's) over a real socket: answers and rows."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api.test_events import BROWSER, drops, prepare, rows
from tests.helpers import Client, LiveServer, live_server

SITE = "example.com"
OTHER = "other.org"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    prepare(tmp_path, (SITE, OTHER))
    with live_server(tmp_path) as live:
        yield live


@pytest.fixture
def client(server: LiveServer) -> Iterator[Client]:
    c = server.client()
    yield c
    c.close()


def plausible(client: Client, body: Any, headers: dict[str, str] | None = None) -> Any:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post("/api/event", body=raw, headers={**BROWSER, **(headers or {})})


def umami(client: Client, payload: dict[str, Any], kind: str = "event", headers: dict[str, str] | None = None) -> Any:
    raw = json.dumps({"type": kind, "payload": payload}).encode()
    return client.post(
        "/api/send", body=raw, headers={**BROWSER, "Content-Type": "application/json", **(headers or {})}
    )


def wait_rows(server: LiveServer, sql: str, count: int) -> list[tuple[Any, ...]]:
    deadline = time.monotonic() + 5
    while len(found := rows(server, sql)) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    return found


VIEW_SQL = "SELECT hostname, pathname, is_unique_user, is_unique_page, referrer_host, country, duration_ms FROM views"


def test_plausible_pageview_engagement_and_custom_event(server: LiveServer, client: Client) -> None:
    page = f"https://www.{SITE}/pricing?utm_source=news"
    result = plausible(client, {"n": "pageview", "u": page, "d": SITE, "r": "https://duckduckgo.com/", "v": 36})
    assert (result.status, result.body, result.headers.get("x-plausible-dropped")) == (202, b"ok", None)
    assert wait_rows(server, VIEW_SQL, 1) == [(SITE, "/pricing", 1, 1, "duckduckgo.com", "Unknown", None)]

    # Two engagement reports for the view: the durations add up (the script resets its clock after each).
    for engaged in (1200, 300):
        time.sleep(engaged / 1000 + 0.1)  # a view is never engaged for longer than it was open
        body = {"n": "engagement", "u": page, "d": SITE, "e": engaged, "sd": 40, "v": 36}
        assert plausible(client, body).status == 202
    deadline = time.monotonic() + 5
    while rows(server, "SELECT duration_ms FROM views") != [(1500,)] and time.monotonic() < deadline:
        time.sleep(0.01)
    assert rows(server, "SELECT duration_ms FROM views") == [(1500,)]

    body = {"n": "Signup", "u": page, "d": SITE, "p": {"plan": "pro"}, "$": {"amount": "9.90", "currency": "EUR"}}
    assert plausible(client, body).status == 202
    events = wait_rows(server, "SELECT e.name, e.value, e.group_name FROM events e JOIN views v USING (bid)", 4)
    assert sorted(events) == sorted(
        [("event", "Signup", SITE), ("plan", "pro", SITE), ("revenue", "9.90", SITE), ("currency", "EUR", SITE)]
    )


def test_plausible_in_site_navigation_is_not_a_new_visitor(server: LiveServer, client: Client) -> None:
    for referrer in ("", f"https://{SITE}/"):
        body = {"n": "pageview", "u": f"https://{SITE}/a{len(referrer)}", "d": SITE, "r": referrer or None}
        assert plausible(client, body).status == 202
    found = wait_rows(server, "SELECT pathname, is_unique_user, referrer_host FROM views ORDER BY pathname", 2)
    assert found == [("/a0", 1, ""), (f"/a{len(f'https://{SITE}/')}", 0, "")]


def test_plausible_several_domains_and_unknown_ones(server: LiveServer, client: Client) -> None:
    body = {"name": "pageview", "url": f"https://{SITE}/", "domain": f"{SITE},www.{SITE},{OTHER},nobody.net"}
    result = plausible(client, body, {"Content-Type": "application/json"})
    assert (result.status, result.headers.get("x-plausible-dropped")) == (202, "1")
    assert sorted(wait_rows(server, "SELECT hostname, bid FROM views", 2))[0][0] == SITE
    hosts = sorted(r[0] for r in rows(server, "SELECT hostname FROM views"))
    assert hosts == [SITE, OTHER]
    drops(server, [("unknown_site", 1)])


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"[]",
        b'{"n": "pageview", "u": "https://example.com/"}',
        b'{"n": "pageview", "u": "ftp://example.com/", "d": "example.com"}',
        b'{"n": "pageview", "u": "https://example.com/", "d": "example.com", "p": [1]}',
        b'{"n": "engagement", "u": "https://example.com/", "d": "example.com", "e": -1}',
        b'{"n": "", "u": "https://example.com/", "d": "example.com"}',
    ],
)
def test_plausible_bad_bodies_are_400(client: Client, body: bytes) -> None:
    assert plausible(client, body).status == 400


def test_plausible_answers_cross_origin_and_bots_are_dropped(server: LiveServer, client: Client) -> None:
    body = {"n": "pageview", "u": f"https://{SITE}/", "d": SITE}
    result = plausible(client, body, {"Origin": f"https://{SITE}", "User-Agent": "Googlebot/2.1"})
    assert (result.status, result.headers.get("access-control-allow-origin")) == (202, "*")
    assert result.headers.get("x-plausible-dropped") == "1"
    drops(server, [("bot", 1)])
    assert plausible(client, body, {"Content-Type": "text/html"}).status == 415


def test_umami_view_event_and_identify(server: LiveServer, client: Client) -> None:
    payload = {
        "website": "0b8a0f4e-5b43-4c0e-b9a7-3f2d7e0c1a11",
        "hostname": SITE,
        "screen": "1920x1080",
        "language": "en-GB",
        "title": "Pricing",
        "url": "/pricing?utm_source=news",
        "referrer": "https://news.ycombinator.com/",
    }
    result = umami(client, payload)
    assert (result.status, result.json()) == (200, {})
    umami(client, {**payload, "url": "/about", "referrer": "/pricing?utm_source=news"})  # 2.10's in-app navigation
    found = wait_rows(server, "SELECT pathname, is_unique_user, referrer_host, utm_source FROM views", 2)
    assert sorted(found) == [("/about", 0, "", ""), ("/pricing", 1, "news.ycombinator.com", "news")]

    result = umami(client, {**payload, "url": "/about", "name": "signup", "data": {"plan": "pro", "seats": 3}})
    assert result.status == 200
    events = wait_rows(server, "SELECT v.pathname, e.name, e.value FROM events e JOIN views v USING (bid)", 3)
    assert sorted(events) == [("/about", "event", "signup"), ("/about", "plan", "pro"), ("/about", "seats", "3")]

    # identify: accepted, nothing of it stored.
    result = umami(client, {**payload, "id": "user@example.com", "data": {"email": "a@b.c"}}, kind="identify")
    assert (result.status, result.json()) == (200, {})
    time.sleep(0.1)
    assert rows(server, "SELECT count(*) FROM events") == [(3,)]
    assert "a@b.c" not in json.dumps(rows(server, "SELECT * FROM events"))


def test_umami_unknown_site_and_bad_bodies(server: LiveServer, client: Client) -> None:
    assert umami(client, {"website": "nope", "hostname": "nobody.net", "url": "/"}).status == 404
    assert umami(client, {"hostname": SITE, "url": "no-slash"}).status == 400
    assert umami(client, {"hostname": SITE}).status == 400
    bad = client.post("/api/send", body=b'{"type": "nope"}', headers={**BROWSER, "Content-Type": "application/json"})
    assert bad.status == 400


def test_umami_preflight_allows_its_cache_header(client: Client) -> None:
    result = client.request(
        "OPTIONS",
        "/api/send",
        headers={
            "Origin": f"https://{SITE}",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,x-umami-cache",
        },
    )
    assert result.status == 204
    assert result.headers["access-control-allow-origin"] == "*"
    assert "x-umami-cache" in result.headers["access-control-allow-headers"].lower()


def test_umami_website_id_alias(tmp_path: Path) -> None:
    website_id = "0b8a0f4e-5b43-4c0e-b9a7-3f2d7e0c1a11"
    with live_server(tmp_path) as live:
        admin = live.client()
        admin.login()
        for host in (SITE, OTHER):
            assert admin.post("/api/websites", json_body={"hostname": host}).status == 201
        admin.patch("/api/tenant/settings", json_body={"blockAbusiveIPs": False})
        assert admin.get(f"/api/websites/{SITE}").json() == {"hostname": SITE}
        result = admin.patch(f"/api/websites/{SITE}", json_body={"umamiWebsiteId": website_id})
        assert result.json() == {"hostname": SITE, "umamiWebsiteId": website_id}
        assert admin.get(f"/api/websites/{SITE}").json() == {"hostname": SITE, "umamiWebsiteId": website_id}
        assert admin.patch(f"/api/websites/{OTHER}", json_body={"umamiWebsiteId": website_id}).status == 409
        assert admin.patch(f"/api/websites/{OTHER}", json_body={"umamiWebsiteId": "a b"}).status == 400

        # The id names the site whatever hostname the page has (a staging copy, say).
        visitor = live.client()
        assert umami(visitor, {"website": website_id, "hostname": "staging.example.net", "url": "/x"}).status == 200
        assert wait_rows(live, "SELECT hostname, pathname FROM views", 1) == [(SITE, "/x")]

        # Renaming the site carries the id; null removes it.
        result = admin.patch(f"/api/websites/{SITE}", json_body={"hostname": "renamed.com"})
        assert result.json() == {"hostname": "renamed.com", "umamiWebsiteId": website_id}
        assert umami(visitor, {"website": website_id, "url": "/y"}).status == 200
        assert ("renamed.com", "/y") in wait_rows(live, "SELECT hostname, pathname FROM views", 2)
        result = admin.patch("/api/websites/renamed.com", json_body={"umamiWebsiteId": None})
        assert result.json() == {"hostname": "renamed.com"}
        assert umami(visitor, {"website": website_id, "url": "/z"}).status == 404
        visitor.close()
        admin.close()


DROPS_SQL = "SELECT hostname, reason, count FROM drops ORDER BY hostname, reason"


def test_foreign_drops_carry_the_reasons_and_sites_of_ours(server: LiveServer, client: Client) -> None:
    """Bodies refused (400, 413, 415) are bad_payload for the site they name, unknown sites are counted by
    name, bots by site: the rows GET /api/drops shows, as for /api/event/hit."""
    page = f"https://{SITE}/"
    assert plausible(client, {"n": "pageview", "u": page, "d": "nobody.net"}).headers["x-plausible-dropped"] == "1"
    assert plausible(client, {"n": "pageview", "u": page, "d": SITE, "p": [1]}).status == 400
    too_many = {f"k{i}": "v" for i in range(11)}
    assert plausible(client, {"n": "Signup", "u": page, "d": SITE, "p": too_many}).status == 413
    assert plausible(client, {"n": "pageview", "u": page, "d": OTHER}, {"Content-Type": "text/html"}).status == 415
    assert umami(client, {"hostname": OTHER, "url": "no-slash"}).status == 400
    assert umami(client, {"website": "nope", "hostname": "www.nobody.net", "url": "/"}).status == 404
    assert umami(client, {"hostname": f"www.{SITE}", "url": "/"}, headers={"User-Agent": "Googlebot/2.1"}).status == 200
    drops(
        server,
        [
            (SITE, "bad_payload", 2),
            (SITE, "bot", 1),
            ("nobody.net", "unknown_site", 1),
            (OTHER, "bad_payload", 2),
            ("www.nobody.net", "unknown_site", 1),
        ],
        DROPS_SQL,
    )
    assert rows(server, "SELECT count(*) FROM views") == [(0,)]


def test_foreign_hits_count_against_the_sites_daily_quota(tmp_path: Path) -> None:
    with live_server(tmp_path) as live:
        admin = live.client()
        admin.login()
        assert admin.post("/api/websites", json_body={"hostname": SITE}).status == 201
        assert admin.patch("/api/tenant/settings", json_body={"site_daily_hit_quota": 2}).status == 200
        admin.close()
        visitor = live.client()
        view = {"n": "pageview", "u": f"https://{SITE}/", "d": SITE}
        assert plausible(visitor, view).headers.get("x-plausible-dropped") is None
        assert umami(visitor, {"hostname": SITE, "url": "/u", "name": "signup"}).status == 200
        assert plausible(visitor, view).headers.get("x-plausible-dropped") == "1"
        assert umami(visitor, {"hostname": SITE, "url": "/v"}).json() == {}
        visitor.close()
        drops(live, [(SITE, "quota", 2)], DROPS_SQL)
        assert rows(live, "SELECT count(*) FROM views") == [(1,)]
        assert rows(live, "SELECT name, value FROM events") == [("event", "signup")]
