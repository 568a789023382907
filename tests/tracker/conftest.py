"""Browser fixtures for the tracker: one Chromium per session, a fresh context per test, and a harness.

The harness runs the real Medama server (`localhost` registered, the full
tracker build selected) and a second small HTTP server for the fixture pages
in `fixtures/`, which embed the tracker from the Medama server. Pages are
served by a real server, not `page.route`: routing in Playwright turns off
Chromium's HTTP cache, and the "unique today" pings are answered by that cache.

`Wire` records what a page sends and receives (hit bodies, ping answers,
statuses); `Medama` reads the rows the server stored and its request log,
which also sees the beacons a page sends while it unloads (DevTools does not
report those).
"""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.browser import CHROMIUM, CHROMIUM_ARGS, EXPECT_TIMEOUT_MS, PLAYWRIGHT_SCOPE
from tests.helpers import Client, LiveServer, live_server

try:
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import expect, sync_playwright
except ImportError:  # requirements-dev.txt has it; without it only the browser tests skip
    sync_playwright = None
    PlaywrightError = Exception
else:
    expect.set_options(timeout=EXPECT_TIMEOUT_MS)

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page, Playwright, Request, Response

# Playwright turns the back/forward cache off by default (so that go_back waits for a load);
# real browsers have it on, and one test needs it.
NO_BFCACHE_ARG = "--disable-back-forward-cache"

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
SCRIPTS = ROOT / "medama_core" / "static" / "scripts"
FULL_BUILD = ["click-events", "page-events"]

# Headless Chromium says "HeadlessChrome", a bot token (spec §3.3), so the server would drop every
# page view; a desktop Chrome of the same major version is what a visitor looks like. The locale
# and zone make the enrichment known (English, United Kingdom), so no view is dropped as "unknown".
USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{major}.0.0.0 Safari/537.36"
LOCALE = "en-GB"
TIMEZONE = "Europe/London"

WAIT_S = 15.0  # the longest any expected beacon or row may take to show up (on a loaded 2-core CI machine)
POLL_MS = 20

# base36(Date.now()) (8 digits until 2059), then base36 digits of Math.random().
BEACON_ID = re.compile(r"[0-9a-z]{8}[0-9a-z]{1,14}")


def wait_until(condition: Callable[[], Any], what: str, *, page: Page | None = None, timeout: float = WAIT_S) -> Any:
    """Poll `condition` until it is truthy and return its value; fail naming `what` after `timeout`.

    With a `page`, the wait goes through Playwright, which is when the sync API delivers events.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        if page is not None and not page.is_closed():
            page.wait_for_timeout(POLL_MS)
        else:
            time.sleep(POLL_MS / 1000)


# --- Chromium -------------------------------------------------------------------------------------


@pytest.fixture(scope=PLAYWRIGHT_SCOPE)
def playwright() -> Iterator[Playwright]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing (install Debian's chromium package to run the browser tests)")
    if sync_playwright is None:
        pytest.skip("the playwright package is not installed (pip install -r requirements-dev.txt)")
    with sync_playwright() as pw:
        yield pw


def _chromium_major() -> str:
    """The installed Chromium's major version, as `chromium --version` says it ("Chromium 156.0...")."""
    said = subprocess.run([str(CHROMIUM), "--version"], capture_output=True, text=True, check=True).stdout
    found = re.search(r"(\d+)\.\d+", said)
    assert found, said
    return found.group(1)


def _launch(pw: Playwright, *, bfcache: bool) -> Browser:
    # launch() gives the browser a fresh temporary profile (user-data dir) and deletes it on close.
    # The desktop user agent is the browser's own too, not only the contexts': a tab the page opens (Ctrl+click)
    # may send its first requests before Playwright applies the context's, and then said "HeadlessChrome", which
    # the server drops as a bot (seen about one run in three on a loaded machine).
    return pw.chromium.launch(
        executable_path=str(CHROMIUM),
        args=[*CHROMIUM_ARGS, f"--user-agent={USER_AGENT.format(major=_chromium_major())}"],
        ignore_default_args=[NO_BFCACHE_ARG] if bfcache else None,
    )


@pytest.fixture(scope=PLAYWRIGHT_SCOPE)
def browser(playwright: Playwright) -> Iterator[Browser]:
    chromium = _launch(playwright, bfcache=False)
    yield chromium
    chromium.close()


@pytest.fixture(scope=PLAYWRIGHT_SCOPE)
def bfcache_browser(playwright: Playwright) -> Iterator[Browser]:
    """A Chromium with the back/forward cache on, as in a real browser."""
    chromium = _launch(playwright, bfcache=True)
    yield chromium
    chromium.close()


def new_context(chromium: Browser) -> BrowserContext:
    """A fresh context: its own HTTP cache, cookies and storage, like a new visitor."""
    major = chromium.version.split(".", 1)[0]
    return chromium.new_context(user_agent=USER_AGENT.format(major=major), locale=LOCALE, timezone_id=TIMEZONE)


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    ctx = new_context(browser)
    yield ctx
    ctx.close()


# --- The Medama server ----------------------------------------------------------------------------


@dataclass
class Medama:
    """The server under test, with `localhost` registered and the IP block presets off."""

    server: LiveServer
    client: Client

    @property
    def host(self) -> str:
        return f"localhost:{self.server.port}"

    @property
    def api(self) -> str:
        return f"http://{self.host}/api/"

    def _rows(self, sql: str) -> list[dict[str, Any]]:
        with closing(sqlite3.connect(self.server.config.analyticsdb, timeout=5)) as db:
            db.row_factory = sqlite3.Row
            return [dict(row) for row in db.execute(sql)]

    def views(self) -> list[dict[str, Any]]:
        """Every stored page view, oldest first."""
        return self._rows("SELECT * FROM views ORDER BY date_created, rowid")

    def events(self) -> list[dict[str, Any]]:
        """Every stored custom event property, oldest first."""
        return self._rows("SELECT * FROM events ORDER BY date_created, rowid")

    def properties(self) -> dict[str, dict[str, str]]:
        """Stored custom properties per beacon id."""
        found: dict[str, dict[str, str]] = {}
        for row in self.events():
            found.setdefault(row["bid"], {})[row["name"]] = row["value"]
        return found

    def drops(self) -> list[dict[str, Any]]:
        return self._rows("SELECT * FROM drops")

    def wait_views(self, condition: Callable[[list[dict[str, Any]]], bool], what: str) -> list[dict[str, Any]]:
        """The views once `condition(views)` holds (the writer commits in batches)."""
        box: list[list[dict[str, Any]]] = []

        def check() -> bool:
            box[:] = [self.views()]
            return condition(box[0])

        try:
            wait_until(check, what)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; views: {box[0] if box else None}") from None
        return box[0]

    def wait_events(self, count: int) -> list[dict[str, Any]]:
        box: list[list[dict[str, Any]]] = []

        def check() -> bool:
            box[:] = [self.events()]
            return len(box[0]) >= count

        wait_until(check, f"{count} events rows")
        return box[0]

    def logged(self, method: str, path: str) -> list[int]:
        """Statuses of the requests for `path` (query not included) in the server's log so far."""
        statuses = []
        for line in self.server.log_stream.getvalue().splitlines():
            record = json.loads(line)
            if record.get("message") == "request" and record.get("method") == method and record.get("path") == path:
                statuses.append(record["status"])
        return statuses

    def wait_logged(self, method: str, path: str, statuses: list[int]) -> None:
        """Wait until the server's log holds exactly these statuses for `path`."""
        try:
            wait_until(lambda: self.logged(method, path) == statuses, f"{method} {path} logged as {statuses}")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; logged: {self.logged(method, path)}") from None

    def set_tenant(self, **settings: Any) -> None:
        result = self.client.patch("/api/tenant/settings", json_body=settings)
        assert result.status == 200, result.body


@pytest.fixture
def medama(tmp_path: Path) -> Iterator[Medama]:
    with live_server(tmp_path) as server:
        client = server.client()
        try:
            client.login()
            assert client.post("/api/websites", json_body={"hostname": "localhost"}).status == 201
            # The abusive-IP preset (on by default, as upstream) holds the bogons, 127.0.0.0/8
            # included: left on, every hit from this machine is dropped.
            medama = Medama(server, client)
            medama.set_tenant(script_type=FULL_BUILD, blockAbusiveIPs=False)
            yield medama
        finally:
            client.close()


# --- The fixture site -----------------------------------------------------------------------------


class _SiteHandler(BaseHTTPRequestHandler):
    """Serves fixtures/ with `{{medama}}` (and `{{other}}`, this server under another host name) filled in;
    `/cdn/<build>.js` serves a committed tracker build; `/missing/...` is a real 404 page with the tracker."""

    medama_host = ""  # set on the per-test subclass

    def do_GET(self) -> None:
        path = urllib.parse.urlsplit(self.path).path
        if path == "/favicon.ico":
            self._send(204, b"", "image/x-icon")
            return
        if path.startswith("/cdn/"):
            build = SCRIPTS / path.removeprefix("/cdn/")
            if build.parent == SCRIPTS and build.is_file():
                self._send(200, build.read_bytes(), "text/javascript")
                return
        elif path.startswith("/history/"):
            self._page(FIXTURES / "history" / "index.html")  # the SPA's fallback: every route is the app
            return
        elif path.startswith("/missing/"):
            self._page(FIXTURES / "notfound" / "404.html", status=404)
            return
        else:
            file = (FIXTURES / path.lstrip("/")).resolve()
            if file.is_dir():
                file = file / "index.html"
            if file.is_relative_to(FIXTURES) and file.is_file():
                self._page(file)
                return
        self._send(404, b"not found", "text/plain")

    def _page(self, file: Path, status: int = 200) -> None:
        html = file.read_text(encoding="utf-8").replace("{{medama}}", self.medama_host)
        html = html.replace("{{other}}", f"127.0.0.1:{self.server.server_address[1]}")
        self._send(status, html.encode(), "text/html; charset=utf-8")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet


@dataclass
class Site:
    port: int

    def url(self, path: str) -> str:
        return f"http://localhost:{self.port}{path}"


@pytest.fixture
def site(medama: Medama) -> Iterator[Site]:
    handler = type("Handler", (_SiteHandler,), {"medama_host": medama.host})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield Site(httpd.server_address[1])
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


# --- What a page sends and receives ---------------------------------------------------------------


@dataclass
class Hit:
    """One POST /api/event/hit as Chromium sent it."""

    url: str
    body: dict[str, Any]
    content_type: str
    request: Request
    status: int | None = None  # None until (or unless) DevTools reports the response

    @property
    def kind(self) -> str:
        return str(self.body["e"])

    @property
    def bid(self) -> str:
        return str(self.body["b"])

    def expect_load(self, **expected: Any) -> None:
        """The body is a load of exactly `expected`, plus a well-formed beacon id and the context's zone."""
        body = dict(self.body)
        assert BEACON_ID.fullmatch(body.pop("b")), self.body
        assert body == {"e": "load", "t": TIMEZONE, **expected}


@dataclass
class Ping:
    """One GET /api/event/ping and its answer (possibly from Chromium's HTTP cache)."""

    url: str
    status: int
    body: str | None  # None: the page had navigated away before the answer could be read
    request_headers: dict[str, str]
    response_headers: list[tuple[str, str]]

    @property
    def key(self) -> str | None:
        """The `u` query value, or None for the "unique today" ping."""
        values = urllib.parse.parse_qs(urllib.parse.urlsplit(self.url).query).get("u")
        return values[0] if values else None

    def header(self, name: str) -> str | None:
        return next((value for key, value in self.response_headers if key == name), None)


_SET_VISIBILITY = """hidden => {
    for (const [name, value] of [["hidden", hidden], ["visibilityState", hidden ? "hidden" : "visible"]]) {
        Object.defineProperty(document, name, {configurable: true, get: () => value});
    }
    document.dispatchEvent(new Event("visibilitychange"));
}"""


@dataclass
class Wire:
    """Records a page's tracker traffic: hit bodies with their statuses, and ping answers."""

    page: Page
    api: str
    hits: list[Hit] = field(default_factory=list)
    pings: list[Ping] = field(default_factory=list)
    event_responses: list[Response] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    set_cookies: list[str] = field(default_factory=list)

    def attach(self) -> Wire:
        self.page.on("request", self._on_request)
        self.page.on("response", self._on_response)
        self.page.on("requestfailed", self._on_failed)
        return self

    def _is_event(self, url: str) -> bool:
        return url.startswith(self.api + "event/")

    def _on_request(self, request: Request) -> None:
        if request.method == "POST" and request.url.startswith(self.api + "event/hit"):
            body = json.loads(request.post_data or "null")
            self.hits.append(Hit(request.url, body, request.headers.get("content-type", ""), request))

    def _on_response(self, response: Response) -> None:
        if not self._is_event(response.url):
            return
        self.event_responses.append(response)
        headers = response.headers_array()
        self.set_cookies += [h["value"] for h in headers if h["name"].lower() == "set-cookie"]
        if response.request.method == "POST":
            for hit in self.hits:
                if hit.request is response.request:
                    hit.status = response.status
        else:
            # Read the body now: it is gone once the page navigates. The sync API runs this handler only
            # when the test next calls Playwright, which may be after a navigation (a wait on the database
            # does not call it): then the answer is still listed, with its status and no body, so that the
            # pings after it keep their places and a test that reads this body fails on its value.
            try:
                body: str | None = response.text()
                request_headers = response.request.all_headers()
            except PlaywrightError as exc:
                if "navigated away" not in str(exc) and "No resource with given identifier" not in str(exc):
                    raise
                body, request_headers = None, {}
            self.pings.append(
                Ping(
                    response.url,
                    response.status,
                    body,
                    request_headers,
                    [(h["name"].lower(), h["value"]) for h in headers],
                )
            )

    def _on_failed(self, request: Request) -> None:
        if self._is_event(request.url):
            self.failures.append(f"{request.method} {request.url}: {request.failure}")

    def of(self, kind: str) -> list[Hit]:
        return [hit for hit in self.hits if hit.kind == kind]

    @property
    def loads(self) -> list[Hit]:
        return self.of("load")

    @property
    def unloads(self) -> list[Hit]:
        return self.of("unload")

    @property
    def customs(self) -> list[Hit]:
        return self.of("custom")

    def wait(self, kind: str, count: int) -> Hit:
        """Wait until `count` hits of `kind` were sent and answered; return the last one."""
        wait_until(
            lambda: len(hits := self.of(kind)) >= count and hits[count - 1].status is not None,
            f"{count} {kind} hit(s) answered; sent: {[h.body for h in self.hits]}",
            page=self.page,
        )
        return self.of(kind)[count - 1]

    def wait_pings(self, count: int) -> list[Ping]:
        wait_until(lambda: len(self.pings) >= count, f"{count} ping answers", page=self.page)
        return self.pings

    def set_hidden(self, hidden: bool) -> None:
        """Make the page report itself hidden (or visible again) and fire visibilitychange, as a tab switch does."""
        self.page.evaluate(_SET_VISIBILITY, hidden)

    def wait_until(self, condition: Callable[[], Any], what: str) -> Any:
        return wait_until(condition, what, page=self.page)

    def check(self) -> None:
        """Every event request worked: pings 200, hits 204, all text/plain, no cookies, no failures."""
        assert self.failures == []
        assert [p.status for p in self.pings] == [200] * len(self.pings)
        assert [h.status for h in self.hits if h.status is not None] == [204] * sum(
            h.status is not None for h in self.hits
        )
        assert {h.content_type for h in self.hits} <= {"text/plain;charset=UTF-8"}
        assert self.set_cookies == []


@dataclass
class Tracker:
    """Everything a browser test needs: the server, the fixture site and a fresh browser context."""

    medama: Medama
    site: Site
    context: BrowserContext

    def open(self, path: str, page: Page | None = None, *, referer: str | None = None) -> tuple[Page, Wire]:
        """Open a fixture page (in a new tab unless `page` is given) with its traffic recorded."""
        page = page or self.context.new_page()
        wire = Wire(page, self.medama.api).attach()
        page.goto(self.site.url(path), referer=referer)
        return page, wire


DAY_S = 86_400
MIDNIGHT_MARGIN_S = 15  # longer than any one browser test takes


def _not_at_midnight() -> None:
    """Start well clear of 00:00 UTC, where the ping answers ("seen today") reset."""
    left = DAY_S - time.time() % DAY_S
    if left < MIDNIGHT_MARGIN_S:
        time.sleep(left + 1)


@pytest.fixture
def tracker(medama: Medama, site: Site, context: BrowserContext) -> Tracker:
    _not_at_midnight()
    return Tracker(medama, site, context)


@pytest.fixture
def bfcache_tracker(medama: Medama, site: Site, bfcache_browser: Browser) -> Iterator[Tracker]:
    """A tracker harness whose browser keeps pages in the back/forward cache."""
    ctx = new_context(bfcache_browser)
    _not_at_midnight()
    yield Tracker(medama, site, ctx)
    ctx.close()
