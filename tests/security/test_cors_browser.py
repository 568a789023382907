"""CORS in a real browser: a page on another origin posts a custom event with fetch and a JSON body.

A JSON `Content-Type` makes the POST non-simple, so Chromium sends a preflight first and refuses
the POST unless the answer allows it. The preflight answer used to carry
`Access-Control-Allow-Origin` twice ("*, *", an invalid value), and the page's fetch failed with
"Failed to fetch" (issue 14). Two origins on loopback come from `--host-resolver-rules`: the page
is on http://site.test:<port>, medama on http://medama.test:<port>.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import closing
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING

import pytest

from tests.browser import CHROMIUM, CHROMIUM_ARGS
from tests.helpers import LiveServer, live_server

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # requirements-dev.txt has it; without it only this test skips
    sync_playwright = None

if TYPE_CHECKING:
    from playwright.sync_api import Browser

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(sync_playwright is None, reason="playwright is not installed"),
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing (apt-get install chromium)"),
]

SITE = "site.test"
MEDAMA = "medama.test"
PAGE = b"<!doctype html><meta charset=utf-8><title>a site with medama</title><p>hello</p>"

# Posts one custom event the way a site's own script would, and reports what the page saw.
POST_EVENT = """async ([url, event]) => {
    try {
        const response = await fetch(url, {
            method: "POST",
            headers: {"Content-Type": "application/json"},
            body: JSON.stringify(event),
        });
        return {status: response.status};
    } catch (error) {
        return {error: String(error)};
    }
}"""


class _PageHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def site_port() -> Iterator[int]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _PageHandler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield httpd.server_address[1]
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert sync_playwright is not None
    rules = f"--host-resolver-rules=MAP {SITE} 127.0.0.1, MAP {MEDAMA} 127.0.0.1"
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=[*CHROMIUM_ARGS, rules])
        yield chromium
        chromium.close()


@pytest.fixture(scope="module", params=[(), ("https://dash.example",)], ids=["plain", "corsorigins"])
def medama(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("cors-browser"), level="warn", corsorigins=request.param) as server:
        client = server.client()
        client.login()
        assert client.post("/api/websites", json_body={"hostname": SITE}).status == 201
        client.close()
        yield server


def stored_events(analyticsdb: str) -> list[tuple[str, str, str]]:
    with closing(sqlite3.connect(analyticsdb)) as conn:
        rows = conn.execute("select group_name, name, value from events order by date_created").fetchall()
    return [(str(g), str(n), str(v)) for g, n, v in rows]


def test_a_page_on_another_origin_posts_a_custom_event_with_a_json_body(
    browser: Browser, medama: LiveServer, site_port: int
) -> None:
    page = browser.new_page()
    try:
        page.goto(f"http://{SITE}:{site_port}/")
        event = {"b": "corsbrowsertest0001", "e": "custom", "g": SITE, "d": {"plan": "pro", "seats": 3}}
        seen = page.evaluate(POST_EVENT, [f"http://{MEDAMA}:{medama.port}/api/event/hit", event])
    finally:
        page.close()
    assert seen == {"status": 204}, seen
    assert sorted(stored_events(medama.config.analyticsdb)) == [(SITE, "plan", "pro"), (SITE, "seats", "3")]


def test_preflight_answers_carry_each_cors_header_once(medama: LiveServer) -> None:
    """What Chromium refused, checked on the wire for every kind of route."""
    client = medama.client()
    try:
        for path in ("/api/event/hit", "/api/event/ping", "/api/websites", "/script.js", "/"):
            for origin in (f"http://{SITE}", "https://dash.example"):
                headers = {"Origin": origin, "Access-Control-Request-Method": "POST",
                           "Access-Control-Request-Headers": "content-type"}  # fmt: skip
                result = client.request("OPTIONS", path, headers=headers)
                names = [name.lower() for name, _ in result.raw_headers if name.lower().startswith("access-control-")]
                assert len(names) == len(set(names)), (path, origin, result.raw_headers)
                if path.startswith("/api/event/"):
                    assert "access-control-allow-origin" in names, (path, origin)
    finally:
        client.close()
