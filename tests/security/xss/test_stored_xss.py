"""Stored XSS: strangers' strings in every stored field render as text in every dashboard view, in Chromium.

Each hostile value is an `<img>` whose `onerror` would set `window.__xss` to the
field's name and which carries `data-xss`. The page path, UTM tags and custom
properties arrive through the real ingestion endpoint; the fields ingestion
derives itself (referrer host and group, browser, OS, device, country,
languages) are written into the database as an import could. Every view is
then opened twice: as served, under the server's Content-Security-Policy, and
with CSP bypassed, so the rendering alone is proven safe. In each: no script
ran, no element was injected, no CSP violation was reported (under the policy
the dashboard itself must run without one), and the hostile text is shown as
text.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from medama_core.app import DASHBOARD_CSP
from tests.dashboard.calls import wait_idle
from tests.helpers import Client, LiveServer, live_server
from tests.stores import marked

pytestmark = pytest.mark.browser

SITE = "example.com"
USERNAME, DEFAULT_PASSWORD = "admin", "CHANGE_ME_ON_FIRST_LOGIN"
PASSWORD = "xss-test-password"  # set first: with the first-start one the dashboard asks only for a new one
CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
# Records what would show an attack: a CSP violation report, a dialog, or the payload's global.
WATCH = "window.__csp = []; document.addEventListener('securitypolicyviolation', e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));"  # noqa: E501
INJECTED = "[data-xss], img[src='x'], [onerror], [onload], iframe, object, embed, script:not([src^='/assets/'])"


def payload(field: str) -> str:
    return f'<img src=x data-xss="{field}" onerror="window.__xss=\'{field}\'">'


def text_of(field: str) -> str:
    """What the page must show for the field: the markup itself, as characters."""
    return f'data-xss="{field}"'


INGESTED = ("path", "utm_source", "utm_medium", "utm_campaign", "prop_name", "prop_value", "custom_name")
SEEDED = ("referrer_host", "referrer_group", "browser", "os", "device", "country", "language_base", "language_dialect")


@dataclass
class Hostile:
    server: LiveServer
    api: Client

    @property
    def base(self) -> str:
        return f"http://localhost:{self.server.port}"


def ingest(api: Client) -> None:
    headers = {"User-Agent": CHROME, "Accept-Language": "en-GB", "Content-Type": "text/plain;charset=UTF-8"}
    utm = "&".join(f"{name}={quote(payload(name), safe='')}" for name in ("utm_source", "utm_medium", "utm_campaign"))
    for i in range(3):  # a few visitors, so the rows pass the panels' thresholds
        load = {"e": "load", "b": f"xss{i}", "u": f"https://{SITE}/{quote(payload('path'), safe='')}?{utm}",
                "r": "", "p": True, "q": True, "t": "Europe/Berlin",
                "d": {payload("prop_name"): payload("prop_value")}}  # fmt: skip
        assert api.post("/api/event/hit", body=json.dumps(load).encode(), headers=headers).status == 204
        unload = {"e": "unload", "b": f"xss{i}", "m": 2500 + i * 1000}
        assert api.post("/api/event/hit", body=json.dumps(unload).encode(), headers=headers).status == 204
    custom = {"e": "custom", "g": SITE, "b": "xss0", "d": {payload("custom_name"): "clicked"}}
    assert api.post("/api/event/hit", body=json.dumps(custom).encode(), headers=headers).status == 204


def seed(db_path: Path) -> None:
    now = int(time.time() * 1000) - 60_000
    rows = []
    for i in range(3):
        rows.append(
            {
                "bid": f"seeded{i}",
                "hostname": SITE,
                "pathname": "/plain",
                "is_unique_user": 1,
                "is_unique_page": 1,
                "referrer_host": payload("referrer_host"),
                "referrer_group": payload("referrer_group") if i else "",
                "country": payload("country"),
                "language_base": payload("language_base"),
                "language_dialect": payload("language_dialect"),
                "ua_browser": payload("browser"),
                "ua_os": payload("os"),
                "ua_device_type": payload("device"),
                "utm_source": "",
                "utm_medium": "",
                "utm_campaign": "",
                "duration_ms": 3000 + i,
                "date_created": now + i,
            }
        )
    with sqlite3.connect(db_path, timeout=30) as conn, marked(conn):
        columns = ", ".join(rows[0])
        conn.executemany(f"INSERT INTO views ({columns}) VALUES ({', '.join(':' + c for c in rows[0])})", rows)
    conn.close()


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hostile]:
    with live_server(tmp_path_factory.mktemp("xss"), level="warn") as server:
        api = server.client()
        api.login(USERNAME, DEFAULT_PASSWORD)
        changed = api.patch("/api/user", json_body={"password": PASSWORD, "currentPassword": DEFAULT_PASSWORD})
        assert changed.status == 200
        assert api.post("/api/websites", json_body={"hostname": SITE}).status == 201
        ingest(api)
        seed(Path(server.config.analyticsdb))
        yield Hostile(server, api)
        api.close()


def views() -> list[tuple[str, tuple[str, ...]]]:
    """(path and query, fields whose hostile text the view must show)."""
    period = "period=24h"
    overview = f"/{SITE}?{period}"
    tabs = [
        ("", ("path", "referrer_group", "browser", "country")),
        ("&panel[pages]=time&panel[sources]=sources&panel[devices]=os&panel[geo]=languages",
         ("path", "utm_source", "os", "language_base")),
        ("&panel[sources]=mediums&panel[devices]=devices", ("utm_medium", "device")),
        ("&panel[sources]=campaigns", ("utm_campaign",)),
    ]  # fmt: skip
    found = [(overview + extra, fields) for extra, fields in tabs]
    details = {
        "pages": ("path",),
        "time": ("path",),
        "referrers": ("referrer_group",),
        "sources": ("utm_source",),
        "mediums": ("utm_medium",),
        "campaigns": ("utm_campaign",),
        "browsers": ("browser",),
        "os": ("os",),
        "devices": ("device",),
        "countries": ("country",),
        "languages": ("language_base",),
        "properties": ("prop_name", "custom_name"),
    }
    found += [(f"/{SITE}/{name}?{period}", fields) for name, fields in details.items()]
    filters = [
        ({"prop_name[eq]": payload("prop_name")}, ("prop_name", "prop_value")),  # the property's values
        ({"referrer[eq]": payload("referrer_host")}, ("referrer_host",)),  # raw hosts, not groups
        ({"language[eq]": payload("language_base"), "panel[geo]": "languages"}, ("language_base", "language_dialect")),
        ({"path[eq]": payload("path"), "utm_source[contains]": payload("utm_source")}, ("path", "utm_source")),
    ]
    for query, fields in filters:
        found.append((f"/{SITE}?{period}&{urlencode(query)}", fields))
    found.append((f"/{SITE}/referrers?{period}&{urlencode({'referrer[eq]': payload('referrer_host')})}",
                  ("referrer_host",)))  # fmt: skip
    found.append((f"/{SITE}/languages?{period}&{urlencode({'language[eq]': payload('language_base')})}",
                  ("language_dialect",)))  # fmt: skip
    return found


def login(page: Page, site: Hostile) -> None:
    page.goto(site.base + "/login")
    page.fill("#login-username", USERNAME)
    page.fill("#login-password", PASSWORD)
    page.click("form button[type=submit]")
    page.wait_for_url(lambda url: "/login" not in url)


def check_view(page: Page, site: Hostile, target: str, shown: tuple[str, ...], enforced: bool) -> None:
    response = page.goto(site.base + target)
    assert response is not None and response.status == 200
    if enforced:
        assert response.headers.get("content-security-policy") == DASHBOARD_CSP
    wait_idle(page)
    expect(page.locator("main")).to_be_visible()
    body = page.locator("body").inner_text()
    for field in shown:
        assert text_of(field) in body, f"{target}: the hostile {field} is not shown as text"
    assert page.evaluate("window.__xss") is None, f"{target}: a payload ran"
    assert page.locator(INJECTED).count() == 0, f"{target}: an element was injected"
    for link in page.locator("a[href]").all():
        href = link.get_attribute("href") or ""
        assert not href.strip().lower().startswith(("javascript:", "data:", "vbscript:")), href
    assert page.evaluate("window.__csp") == [], f"{target}: CSP violations"


@pytest.fixture(params=["csp", "no-csp"])
def context(request: pytest.FixtureRequest, browser: Browser) -> Iterator[tuple[BrowserContext, bool]]:
    enforced = request.param == "csp"
    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, timezone_id="Europe/Berlin",
                              bypass_csp=not enforced)  # fmt: skip
    ctx.set_default_timeout(15_000)
    ctx.add_init_script(WATCH)
    yield ctx, enforced
    ctx.close()


def test_every_view_renders_hostile_strings_as_text(context: tuple[BrowserContext, bool], hostile: Hostile) -> None:
    ctx, enforced = context
    page = ctx.new_page()
    dialogs: list[str] = []
    errors: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    login(page, hostile)
    for target, shown in views():
        check_view(page, hostile, target, shown, enforced)
    assert not dialogs and not errors, (dialogs, errors)


def test_security_headers(hostile: Hostile) -> None:
    """The dashboard is framed by nobody and sniffed by nobody; the tracker and events stay embeddable."""
    client = hostile.server.client()
    try:
        for path in ("/", f"/{SITE}/pages", "/login", "/openapi.yaml", "/api/user", "/api/health", "/nope/x"):
            result = client.get(path)
            assert result.headers.get("content-security-policy") == DASHBOARD_CSP, path
            assert result.headers.get("x-frame-options") == "DENY", path
            assert result.headers.get("x-content-type-options") == "nosniff", path
            assert result.headers.get("referrer-policy") in ("same-origin", "no-referrer"), path
        assets = [p for p in client.get("/").body.decode().split('"') if p.startswith("/assets/")]
        assert assets and all(client.get(a).headers.get("x-content-type-options") == "nosniff" for a in assets)
        for path, method in (("/script.js", "GET"), ("/scripts/default.js", "GET"), ("/api/event/ping", "GET"),
                             ("/api/event/hit", "POST")):  # fmt: skip
            result = client.request(method, path, body=b"{}", headers={"Origin": "https://customer.example"})
            assert "content-security-policy" not in result.headers, path
            assert "x-frame-options" not in result.headers, path
            assert result.headers.get("x-content-type-options") == "nosniff", path
            assert result.headers.get("access-control-allow-origin") == "*", path
    finally:
        client.close()
