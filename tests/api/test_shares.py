"""Share links: a site's stats for whoever has the link, behind an optional password and expiry, limited to
some panels, embeddable only where the owner allows, and under a k-anonymity floor that hides small rows.

The site's visitors here: 8 from France on / with Firefox, 5 from Germany on /pricing with Chrome, 1 from
Iceland on /secret-page with Safari; the French ones sent 6 `plan=pro` events, the Icelander one `plan=rare`.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest

from medama_core import sharelinks
from tests import stores
from tests.helpers import Client, LiveServer, Result, live_server

SITE = "shared.example"
VISITORS = [("France", "/", "Firefox")] * 8 + [("Germany", "/pricing", "Chrome")] * 5
VISITORS += [("Iceland", "/secret-page", "Safari")]


def error(result: Result) -> tuple[int, str]:
    return result.status, result.json()["error"]["message"]


def seed(server: LiveServer) -> None:
    now = int(time.time() * 1000) - 60_000
    views = [
        {
            "bid": f"b{i}",
            "hostname": SITE,
            "pathname": path,
            "is_unique_user": 1,
            "is_unique_page": 1,
            "country": country,
            "ua_browser": browser,
            "ua_os": "Linux",
            "ua_device_type": "Desktop",
            "duration_ms": 2000 + 100 * i,
            "date_created": now - i,
        }
        for i, (country, path, browser) in enumerate(VISITORS)
    ]
    stores.insert_views(server.config.analyticsdb, views)
    events = [(f"b{i}", "pro") for i in range(6)] + [(f"b{len(VISITORS) - 1}", "rare")]
    rows = [
        {"bid": bid, "batch_id": f"e{n}", "group_name": SITE, "name": "plan", "value": value, "date_created": now}
        for n, (bid, value) in enumerate(events)
    ]
    stores.insert_events(server.config.analyticsdb, rows)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, engine: str) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("shares"), level="warn", trustedproxies=("loopback",)) as running:
        client = running.client()
        client.login()
        assert client.post("/api/websites", json_body={"hostname": SITE}).status == 201
        client.close()
        seed(running)
        yield running


@pytest.fixture(scope="module")
def admin(server: LiveServer) -> Iterator[Client]:
    """Signed in once: every attempt, even a right one, counts against the network's sign-in throttle."""
    client = server.client()
    client.login()
    yield client
    client.close()


@pytest.fixture
def visitor(server: LiveServer) -> Iterator[Client]:
    """A browser with no account: a fresh cookie jar."""
    client = server.client()
    yield client
    client.close()


def share(admin: Client, **settings: Any) -> str:
    made = admin.post(f"/api/websites/{SITE}/shares", json_body=settings)
    assert made.status == 201, made.body
    return str(made.json()["id"])


def labels(rows: list[dict[str, Any]], key: str) -> list[str]:
    return [row[key] for row in rows]


def test_an_open_share_answers_as_the_sites_own_stats(admin: Client, visitor: Client) -> None:
    sid = share(admin, k=0, name="public")
    assert visitor.get(f"/api/share/{sid}").json() == {
        "id": sid, "name": "public", "hostname": SITE, "k": 0, "dateExpires": None,
        "panels": ["pages", "time", "referrers", "sources", "mediums", "campaigns", "browsers", "os", "devices",
                   "countries", "languages", "properties", "entries", "exits"],
    }  # fmt: skip
    for name in ("summary", "pages", "countries", "browsers", "properties", "time", "imported", "entries", "exits"):
        for query in ("", "?summary=true", "?country[eq]=Iceland"):
            mine, theirs = (
                admin.get(f"/api/website/{SITE}/{name}{query}"),
                visitor.get(f"/api/share/{sid}/{name}{query}"),
            )
            assert (theirs.status, theirs.json()) == (mine.status, mine.json()), (name, query)
    assert "Iceland" in labels(visitor.get(f"/api/share/{sid}/countries").json(), "country")


def test_the_floor_hides_rows_of_fewer_than_k_visitors_and_keeps_totals_exact(admin: Client, visitor: Client) -> None:
    sid = share(admin, k=5)
    assert visitor.get(f"/api/share/{sid}/summary").json()["current"]["visitors"] == 14
    countries = visitor.get(f"/api/share/{sid}/countries").json()
    assert labels(countries, "country") == ["France", "Germany"]
    assert countries[0]["visitors_percentage"] == pytest.approx(8 / 14, abs=1e-4)  # shares of the exact total
    assert labels(visitor.get(f"/api/share/{sid}/pages?summary=true").json(), "path") == ["/", "/pricing"]
    assert labels(visitor.get(f"/api/share/{sid}/browsers?limit=5").json(), "browser") == ["Firefox", "Chrome"]
    assert visitor.get(f"/api/share/{sid}/browsers?offset=2").json() == []
    assert labels(visitor.get(f"/api/share/{sid}/properties").json(), "name") == ["plan"]  # 7 events
    values = visitor.get(f"/api/share/{sid}/properties?prop_name[eq]=plan").json()
    assert labels(values, "value") == ["pro"]  # `rare` is one event
    # /time's compact rows carry no visitors: they are judged by the full rows.
    strict = share(admin, k=6)
    assert labels(visitor.get(f"/api/share/{strict}/time").json(), "path") == ["/"]
    assert labels(visitor.get(f"/api/share/{strict}/time?summary=true").json(), "path") == ["/"]


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("country[eq]=France", 200),
        ("country[eq]=france", 200),  # filters ignore ASCII case, so does the check
        ("country[in]=France,Germany", 200),
        ("path[eq]=/&country[eq]=France", 200),
        ("prop_name[eq]=plan&prop_value[eq]=pro", 200),
        ("country[eq]=Iceland", 403),  # a value the share hides
        ("country[in]=France,Iceland", 403),
        ("path[eq]=/secret-page", 403),
        ("country[neq]=France", 403),  # a negation or pattern could select hidden values
        ("country[contains]=a", 403),
        ("path[starts_with]=/s", 403),
        ("prop_value[eq]=pro", 403),  # a value filter needs its property's name
        ("prop_name[eq]=plan&prop_value[eq]=rare", 403),
        ("country[eq]=France&browser[eq]=Chrome", 403),  # each shown, together no one: fewer than k
        ("country[eq]=Germany&path[eq]=/pricing&browser[eq]=Chrome", 200),
        ("start=not-a-date&country[eq]=France", 400),
    ],
)
def test_filters_under_the_floor(admin: Client, visitor: Client, query: str, status: int) -> None:
    sid = share(admin, k=5)
    for name in ("summary", "pages", "countries"):
        result = visitor.get(f"/api/share/{sid}/{name}?{query}")
        assert result.status == status, (name, query, result.body)


def test_a_share_shows_only_its_panels(admin: Client, visitor: Client) -> None:
    sid = share(admin, k=0, panels=["pages"])
    assert visitor.get(f"/api/share/{sid}").json()["panels"] == ["pages"]
    assert visitor.get(f"/api/share/{sid}/pages").status == 200
    assert visitor.get(f"/api/share/{sid}/summary").status == 200  # the totals always
    assert error(visitor.get(f"/api/share/{sid}/countries")) == (403, "this share does not show countries")
    assert error(visitor.get(f"/api/share/{sid}/pages?country[eq]=France"))[0] == 403  # nor filters on them


def test_a_password_opens_the_share_for_that_browser_only(server: LiveServer, admin: Client, visitor: Client) -> None:
    sid = share(admin, password="open-sesame")
    other = share(admin, password="other-pass")
    assert error(visitor.get(f"/api/share/{sid}/summary")) == (401, "this share needs its password")
    assert error(visitor.post(f"/api/share/{sid}/auth", json_body={"password": "wrong-one"})) == (
        401, "share password is wrong")  # fmt: skip
    opened = visitor.post(f"/api/share/{sid}/auth", json_body={"password": "open-sesame"})
    assert opened.status == 204
    cookie = opened.header_values("set-cookie")[0]
    assert cookie.startswith(f"{sharelinks.COOKIE_NAME}=") and f"Path=/api/share/{sid};" in cookie
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert visitor.get(f"/api/share/{sid}/summary").status == 200
    assert visitor.get(f"/api/share/{other}/summary").status == 401  # that cookie opens its own share only
    # The owner changes nothing by re-creating a share: its cookie is keyed to the stored password.
    assert admin.delete(f"/api/websites/{SITE}/shares/{sid}").status == 204
    assert error(visitor.get(f"/api/share/{sid}/summary")) == (404, "share not found")


def test_share_passwords_are_throttled(server: LiveServer, admin: Client, visitor: Client) -> None:
    sid = share(admin, password="open-sesame")
    headers = {"X-Forwarded-For": "203.0.113.77"}
    statuses = [
        visitor.post(f"/api/share/{sid}/auth", json_body={"password": f"guess-{i}"}, headers=headers).status
        for i in range(7)
    ]
    assert statuses[:5] == [401] * 5 and set(statuses[5:]) == {429}
    right = visitor.post(f"/api/share/{sid}/auth", json_body={"password": "open-sesame"}, headers=headers)
    assert right.status == 429


def test_an_expired_share_is_refused(server: LiveServer, admin: Client, visitor: Client) -> None:
    sid = share(admin, password="open-sesame", dateExpires=int(time.time()) + 60)
    assert visitor.post(f"/api/share/{sid}/auth", json_body={"password": "open-sesame"}).status == 204
    assert visitor.get(f"/api/share/{sid}/pages").status == 200
    with sqlite3.connect(server.config.appdb) as conn:
        conn.execute("UPDATE shares SET date_expires = ? WHERE id = ?", (int(time.time()) - 1, sid))
    conn.close()
    for path in ("", "/summary", "/pages"):
        assert error(visitor.get(f"/api/share/{sid}{path}")) == (404, "this share link has expired")
    assert error(visitor.post(f"/api/share/{sid}/auth", json_body={"password": "open-sesame"}))[0] == 404


def test_frames_only_where_the_owner_allows(admin: Client, visitor: Client) -> None:
    framed = share(admin, frameAncestors=["https://blog.example.org", "'self'"])
    closed = share(admin)
    page = visitor.get(f"/share/{framed}")
    assert page.status == 200 and b'<div id="app">' in page.body
    policy = page.headers["content-security-policy"]
    assert "frame-ancestors https://blog.example.org 'self';" in policy and "script-src 'self'" in policy
    assert "x-frame-options" not in page.headers
    for path in (f"/share/{closed}", "/share/unknown-share-id-00000", f"/share/{framed}x", f"/api/share/{framed}"):
        result = visitor.get(path)
        assert "frame-ancestors 'none'" in result.headers["content-security-policy"], path
        assert result.headers["x-frame-options"] == "DENY", path
    assert len(page.header_values("content-security-policy")) == 1


@pytest.mark.parametrize(
    "body",
    [
        {"k": -1},
        {"k": 1001},
        {"k": "5"},
        {"password": "abc"},
        {"dateExpires": 5},
        {"panels": ["summary"]},
        {"panels": ["pages", "pages"]},
        {"frameAncestors": ["*"]},
        {"frameAncestors": ["https://x.example/path"]},
        {"frameAncestors": ["javascript:alert(1)"]},
        {"name": "x" * 65},
    ],
)
def test_bad_share_settings_are_400(admin: Client, body: dict[str, Any]) -> None:
    assert error(admin.post(f"/api/websites/{SITE}/shares", json_body=body))[0] == 400


def test_the_owner_lists_shares_without_their_passwords(admin: Client) -> None:
    sid = share(admin, password="open-sesame", name="for the board", panels=["countries"], k=3)
    listed = {item["id"]: item for item in admin.get(f"/api/websites/{SITE}/shares").json()}
    assert listed[sid] | {"dateCreated": 0} == {
        "id": sid, "name": "for the board", "hostname": SITE, "path": f"/share/{sid}", "k": 3,
        "panels": ["countries"], "frameAncestors": [], "passwordProtected": True, "dateCreated": 0,
        "dateExpires": None,
    }  # fmt: skip
    assert b"open-sesame" not in admin.get(f"/api/websites/{SITE}/shares").body
    assert quote(sid) == sid and sharelinks.well_formed_id(sid)
