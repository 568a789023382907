"""Plausible's and Umami's own trackers, unchanged, pointed at us in Chromium, against our own tracker.

Each visit is the same on every tracker: arrive at /app/ from a search engine,
move to /app/about in the page (pushState), sign up (a custom event with a
property), leave. The site is `site.test` and the server `medama.test`, two
origins on 127.0.0.1 (Chromium's --host-resolver-rules), so the trackers run
as on a real site. The numbers the dashboard reads must be equal, except what
docs/migrate.md says is approximated: a Plausible visit's in-page views keep
the search engine as referrer, so each counts as a visitor; time on page is
measured by each script its own way.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.helpers import Client, LiveServer, live_server

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = pytest.mark.browser

FIXTURES = Path(__file__).resolve().parent / "fixtures"
SITE = "site.test"
MEDAMA = "medama.test"
UMAMI_ID = "0b8a0f4e-5b43-4c0e-b9a7-3f2d7e0c1a11"
GOOGLE = "https://www.google.com/"
USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{major}.0.0.0 Safari/537.36"
WAIT_S = 8.0


@dataclass
class Harness:
    server: LiveServer
    client: Client
    site_port: int

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        with closing(sqlite3.connect(self.server.config.analyticsdb, timeout=5)) as db:
            return db.execute(sql).fetchall()

    def wait_rows(self, sql: str, count: int) -> list[tuple[Any, ...]]:
        deadline = time.monotonic() + WAIT_S
        while len(found := self.rows(sql)) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(found) >= count, f"waited for {count} rows of {sql!r}, got {found}"
        return found

    def stats(self, path: str) -> Any:
        result = self.client.get(f"/api/website/{SITE}/{path}")
        assert result.status == 200, result.body
        return result.json()


def _site_server(tool: str, medama: str) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = urllib.parse.urlsplit(self.path).path
            if path.startswith("/vendor/"):
                file = FIXTURES / "vendor" / path.removeprefix("/vendor/")
                body, kind = file.read_bytes(), "text/javascript"
            elif path.startswith("/app"):
                text = (FIXTURES / tool / "index.html").read_text(encoding="utf-8")
                for key, value in (("medama", medama), ("umami_id", UMAMI_ID), ("site_port", str(port))):
                    text = text.replace("{{" + key + "}}", value)
                body, kind = text.encode(), "text/html; charset=utf-8"
            else:
                body, kind = b"elsewhere", "text/plain"
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-cache")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port = httpd.server_address[1]
    return httpd


@pytest.fixture
def harness(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Harness]:
    tool = request.param
    with live_server(tmp_path) as server:
        client = server.client()
        client.login()
        assert client.post("/api/websites", json_body={"hostname": SITE}).status == 201
        # The abusive-IP preset blocks 127.0.0.0/8; the full build has the click events.
        settings = {"blockAbusiveIPs": False, "script_type": ["click-events", "page-events"]}
        assert client.patch("/api/tenant/settings", json_body=settings).status == 200
        assert client.patch(f"/api/websites/{SITE}", json_body={"umamiWebsiteId": UMAMI_ID}).status == 200
        httpd = _site_server(tool, f"{MEDAMA}:{server.port}")
        thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        try:
            yield Harness(server, client, httpd.server_address[1])
        finally:
            httpd.shutdown()
            httpd.server_close()
            client.close()


def visit(browser: Browser, harness: Harness, tool: str) -> Page:
    """The visit every tracker sees: landing from Google, an in-page move, a sign-up, leaving."""
    major = browser.version.split(".", 1)[0]
    context = browser.new_context(
        user_agent=USER_AGENT.format(major=major), locale="en-GB", timezone_id="Europe/London"
    )
    context.add_init_script("window.__plausible = true")  # Plausible's script skips automated browsers without it
    page = context.new_page()
    page.goto(f"http://{SITE}:{harness.site_port}/app/", referer=GOOGLE, wait_until="load")
    harness.wait_rows("SELECT bid FROM views", 1)
    page.wait_for_timeout(400)
    page.evaluate("go('/app/about')")
    harness.wait_rows("SELECT bid FROM views", 2)
    page.click("#signup")
    harness.wait_rows("SELECT name FROM events WHERE value = 'Signup'", 1)
    return page


def dashboard(harness: Harness) -> dict[str, Any]:
    """What the dashboard shows of today."""
    today = time.strftime("%Y-%m-%d", time.gmtime())
    period = f"start={today}T00:00:00Z&end={today}T23:59:59Z"
    summary = harness.stats(f"summary?{period}")["current"]
    return {
        "pageviews": summary["pageviews"],
        "visitors": summary["visitors"],
        "pages": [(p["path"], p["pageviews"]) for p in harness.stats(f"pages?{period}")],
        "referrers": [(r["referrer"], r["visitors"]) for r in harness.stats(f"referrers?{period}")],
        "browsers": [(b["browser"], b["visitors"]) for b in harness.stats(f"browsers?{period}")],
        "properties": sorted((p["name"], p["events"]) for p in harness.stats(f"properties?{period}")),
    }


OURS = {
    "pageviews": 2,
    "visitors": 1,
    "pages": [("/app", 1), ("/app/about", 1)],
    "referrers": [("Google", 1), ("", 0)],
    "browsers": [("Chrome", 1)],
    "properties": [("event", 1), ("plan", 1)],
}


@pytest.mark.parametrize("harness", ["ours"], indirect=True)
def test_our_tracker_gives_the_reference_numbers(browser: Browser, harness: Harness) -> None:
    page = visit(browser, harness, "ours")
    assert dashboard(harness) == OURS
    page.context.close()


@pytest.mark.parametrize("harness", ["plausible"], indirect=True)
def test_plausible_tracker(browser: Browser, harness: Harness) -> None:
    page = visit(browser, harness, "plausible")
    # Leaving the page (hidden) sends an engagement event: the time lands on the view it was measured on.
    page.evaluate(
        """() => {
            Object.defineProperty(document, "visibilityState", {configurable: true, get: () => "hidden"});
            document.dispatchEvent(new Event("visibilitychange"));
        }"""
    )
    timed = harness.wait_rows("SELECT pathname, duration_ms FROM views WHERE duration_ms > 0 ORDER BY pathname", 2)
    assert [path for path, _ in timed] == ["/app", "/app/about"]
    # An outbound link click: stored as our tracker's outbound-links build stores one (the Links panel's rows).
    page.evaluate('() => Object.defineProperty(document, "visibilityState", {get: () => "visible"})')
    href = page.get_attribute("#out", "href")
    assert href
    page.click("#out")
    outbound = harness.wait_rows("SELECT name, value FROM events WHERE name LIKE 'outbound-%' ORDER BY name", 2)
    assert outbound == [("outbound-host", urllib.parse.urlsplit(href).hostname), ("outbound-link", href.split("#")[0])]
    numbers = dashboard(harness)
    expected = dict(OURS)
    # Approximated (docs/migrate.md): the in-page view keeps Google as referrer, so it counts as a visit.
    expected["visitors"] = 2
    expected["referrers"] = [("Google", 2)]
    expected["browsers"] = [("Chrome", 2)]
    expected["properties"] = [("event", 1), ("outbound-host", 1), ("outbound-link", 1), ("plan", 1)]
    assert numbers == expected
    page.context.close()


@pytest.mark.parametrize("harness", ["umami"], indirect=True)
def test_umami_tracker(browser: Browser, harness: Harness) -> None:
    page = visit(browser, harness, "umami")
    assert dashboard(harness) == OURS
    # Every send answered 200 (its JSON body needs a preflight, answered 204; from the second send on the
    # script echoes our first answer, the constant "{}", in X-Umami-Cache, which the preflight allows).
    log = [json.loads(line) for line in harness.server.log_stream.getvalue().splitlines()]
    sends = [(r["method"], r["status"]) for r in log if r.get("message") == "request" and r.get("path") == "/api/send"]
    assert {status for method, status in sends if method == "POST"} == {200}
    assert sum(method == "POST" for method, _ in sends) == 3 and ("OPTIONS", 204) in sends
    page.context.close()
