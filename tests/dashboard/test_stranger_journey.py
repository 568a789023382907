"""Issue 13's proof: a stranger's first run of the real medama.pyz, walked end to end in Chromium.

An empty folder, `python3 medama.pyz start`, the dashboard opened at http://medama.test:PORT (plain HTTP, not a
secure context), the login page's advice, a restart with -securecookie=false, the forced password change, a
website added, the public address set, the snippet copied from the page and pasted into pages served as
www.example.com from a second origin, real clicks between them, the visits in the dashboard (www matched to the
registered apex), then hits from an unregistered www.exmple.com noticed on an empty site and added from there.
Screenshots of every step land in tests/artifacts/journey/.
"""

from __future__ import annotations

import http.server
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Locator, Page, Playwright, ViewportSize, expect

from tests.browser import CHROMIUM, CHROMIUM_ARGS
from tests.dashboard.conftest import ARTIFACTS, DEFAULT_PASSWORD, DESKTOP_UA, TIMEZONE, USERNAME
from tests.test_zipapp import cleanup, free_port, wait_listening

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ARTIFACTS / "journey"
DASHBOARD_HOST = "medama.test"  # how the owner reaches the VM: a name, plain HTTP
PUBLIC_HOST = "stats.medama.test"  # the address the owner tells visitors' browsers (the public URL)
SITE, SITE_WWW = "example.com", "www.example.com"  # registered as the apex, served as www
TYPO = "www.exmple.com"  # a site that got the snippet but was never added
SECOND = "shop.example.org"  # a second site the owner adds, with no visits yet
NEW_PASSWORD = "my own passphrase 7"
DESKTOP: ViewportSize = {"width": 1280, "height": 900}
PHONE: ViewportSize = {"width": 360, "height": 780}


@dataclass
class Medama:
    """The archive run as a stranger runs it: `python3 medama.pyz start [flags]` in the folder it was copied to."""

    pyz: Path
    folder: Path
    port: int
    proc: subprocess.Popen[bytes] | None = None
    logs: list[Path] = field(default_factory=list)

    def start(self, *flags: str) -> None:
        log = self.folder.parent / f"medama-{len(self.logs)}.log"
        self.logs.append(log)
        with open(log, "wb") as err:
            self.proc = subprocess.Popen(
                [python3(), str(self.pyz), "start", "-port", str(self.port), *flags],
                cwd=self.folder,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
        wait_listening(self.port, self.proc)

    def stop(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=15)
        finally:
            cleanup(self.proc)

    def log_once(self, text: str, timeout_s: float = 15) -> str:
        """This run's log (stderr, JSON lines) once it holds `text`."""
        deadline = time.monotonic() + timeout_s
        while text not in (log := self.logs[-1].read_text()) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert text in log, log
        return log


def python3() -> str:
    """The interpreter a stranger types `python3` for: the system one when there is one."""
    return shutil.which("python3", path="/usr/bin") or sys.executable


@pytest.fixture(scope="module")
def pyz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist") / "medama.pyz"
    subprocess.run([sys.executable, str(ROOT / "build_zipapp.py"), "-o", str(out)], check=True, capture_output=True)
    return out


@pytest.fixture
def medama(pyz: Path, tmp_path: Path) -> Iterator[Medama]:
    folder = tmp_path / "vm"
    folder.mkdir()
    shutil.copy(pyz, folder / "medama.pyz")
    server = Medama(folder / "medama.pyz", folder, free_port())
    yield server
    if server.proc is not None:
        cleanup(server.proc)


class Pages:
    """The visitors' side: static pages per hostname, served by one plain HTTP server on its own port."""

    def __init__(self) -> None:
        self.files: dict[tuple[str, str], bytes] = {}
        pages = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
                host = self.headers.get("Host", "").rsplit(":", 1)[0]
                path = self.path.split("?")[0]
                body = pages.files.get((host, path))
                self.send_response(200 if body else 204 if path == "/favicon.ico" else 404)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body or b"")))
                self.end_headers()
                self.wfile.write(body or b"")

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def site(self, host: str, snippet: str, titles: dict[str, str]) -> None:
        """Pages at `titles`' paths, each with `snippet` in its head and links to the others."""
        nav = "".join(f'<a href="{path}">{title}</a> ' for path, title in titles.items())
        for path, title in titles.items():
            html = (
                f"<!doctype html><html><head><meta charset=utf-8><title>{title} · {host}</title>\n{snippet}\n"
                f"</head><body><nav>{nav}</nav><h1>{title}</h1><p>A page of {host}.</p></body></html>"
            )
            self.files[(host, path)] = html.encode()

    def url(self, host: str, path: str = "/") -> str:
        return f"http://{host}:{self.port}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def pages() -> Iterator[Pages]:
    served = Pages()
    yield served
    served.close()


@pytest.fixture
def browser(playwright: Playwright) -> Iterator[Browser]:
    """Chromium that resolves the test's names to this machine: every origin is plain HTTP and not localhost."""
    names = (DASHBOARD_HOST, PUBLIC_HOST, SITE_WWW, TYPO)
    rules = ", ".join(f"MAP {name} 127.0.0.1" for name in names)
    chromium = playwright.chromium.launch(
        executable_path=str(CHROMIUM), args=[*CHROMIUM_ARGS, f"--host-resolver-rules={rules}"]
    )
    yield chromium
    chromium.close()


def context_for(browser: Browser) -> BrowserContext:
    context = browser.new_context(viewport=DESKTOP, timezone_id=TIMEZONE, locale="en-GB", user_agent=DESKTOP_UA)
    context.set_default_timeout(20_000)
    return context


def shoot(page: Page, name: str, *, phone: bool = False) -> None:
    """A screenshot of the whole page at desktop width, and at 360 px when `phone` (which must not scroll sideways)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
    if phone:
        page.set_viewport_size(PHONE)
        try:
            # The chart redraws for the new width on its next frame: wait for the page to fit, or say how wide it is.
            fits = f"() => document.documentElement.scrollWidth <= {PHONE['width']}"
            try:
                page.wait_for_function(fits, timeout=5_000)
            finally:
                page.screenshot(path=str(SHOTS / f"{name}-360.png"), full_page=True)
        finally:
            page.set_viewport_size(DESKTOP)


def rules(page: Page) -> dict[str, str | None]:
    items = page.locator("[data-rule]")
    return {item.get_attribute("data-rule") or "": item.get_attribute("data-ok") for item in items.all()}


def visit(visitor: Page, action: Callable[[], object]) -> None:
    """Run `action` (a goto or a click) and wait until the new page's load beacon has gone out."""
    with visitor.expect_request(lambda r: r.url.endswith("/api/event/hit") and r.method == "POST"):
        action()


def clipboard(context: BrowserContext, port: int) -> str:
    """The browser's clipboard, read on http://localhost:`port` (a secure context, where a page may read it)."""
    origin = f"http://localhost:{port}"
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=origin)
    reader = context.new_page()
    try:
        reader.goto(origin + "/login")
        text: str = reader.evaluate("navigator.clipboard.readText()")
        return text
    finally:
        reader.close()


def reload_until(
    page: Page, locator: Locator, text: str | list[str], timeout_s: float = 40, *, ignore_case: bool = False
) -> None:
    """Reload until `locator` reads `text`, as an owner presses F5: the dashboard redraws a live day only once a
    minute after its first visit, and beacons reach the database a moment after the browser sends them. The
    summary and each panel are asked apart, so a panel may have been answered before the last view was stored
    when the numbers already count it: wait for each thing read this way."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            expect(locator).to_have_text(text, timeout=3_000, ignore_case=ignore_case)
            return
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            page.reload()


def metric(page: Page, key: str) -> Locator:
    return page.locator(f"[data-metric={key}] .metric-value")


def test_a_stranger_copies_the_archive_runs_it_and_sees_visitors(
    medama: Medama, pages: Pages, browser: Browser
) -> None:
    dashboard = f"http://{DASHBOARD_HOST}:{medama.port}"
    public = f"http://{PUBLIC_HOST}:{medama.port}"
    owner_context = context_for(browser)
    owner = owner_context.new_page()
    errors: list[str] = []
    owner.on("pageerror", lambda exc: errors.append(str(exc)))
    visitor_context = context_for(browser)
    visitor = visitor_context.new_page()
    visitor.on("pageerror", lambda exc: errors.append(str(exc)))
    # What the visitor's console says: the tracker's cross-origin requests (script, pings, hits) go through.
    console: list[str] = []
    visitor.on(
        "console", lambda msg: console.append(f"{msg.text} at {msg.location['url']}") if msg.type == "error" else None
    )

    # 1. First start in an empty folder; the dashboard opened at the VM's name over plain HTTP.
    medama.start()
    first_log = medama.log_once("medama is running")
    assert "this account's password is still the default" in first_log, first_log
    assert str(medama.folder / "me_meta.db") in first_log and str(medama.folder / "me_analytics.db") in first_log
    owner.goto(dashboard + "/")
    owner.wait_for_url("**/login**")
    assert owner.evaluate("window.isSecureContext") is False
    advice = owner.get_by_role("region", name="Logging in will not work on this address")
    expect(advice).to_be_visible()
    expect(owner.locator("#login-password")).to_have_value("")  # said before anything is typed
    expect(advice.get_by_label("SSH tunnel command")).to_have_text(
        f"ssh -L {medama.port}:localhost:{medama.port} user@{DASHBOARD_HOST}"
    )
    shoot(owner, "01-login-needs-https", phone=True)
    assert list((medama.folder).glob("*.db")), "the first start made its databases in the folder"

    # 2. Stop it, start it again in the same folder, now allowing logins over plain HTTP.
    assert medama.stop() == 0
    medama.start("-securecookie=false")
    owner.reload()
    expect(owner.get_by_test_id("unencrypted-banner")).to_contain_text("This connection is not encrypted.")
    expect(owner.get_by_text("Logging in will not work")).to_have_count(0)
    expect(owner.get_by_text("Logging in needs HTTPS")).to_have_count(0)  # it works here
    shoot(owner, "02-login-unencrypted-banner", phone=True)

    # 3. The documented first password, then the forced change; the rules answer each keystroke.
    owner.fill("#login-username", USERNAME)
    owner.fill("#login-password", DEFAULT_PASSWORD)
    owner.click("form button[type=submit]")
    expect(owner.get_by_role("heading", name="Choose a new password")).to_be_visible()
    expect(owner.get_by_role("link", name="Settings")).to_have_count(0)
    new, again = owner.get_by_label("New password", exact=True), owner.get_by_label("Repeat the new password")
    new.press_sequentially("my")
    assert rules(owner) == {"length": "false", "default": "true", "match": "false"}
    new.press_sequentially(" own passphrase 7")
    again.press_sequentially(NEW_PASSWORD[:-1])
    assert rules(owner) == {"length": "true", "default": "true", "match": "false"}
    again.press_sequentially(NEW_PASSWORD[-1])
    assert rules(owner) == {"length": "true", "default": "true", "match": "true"}
    shoot(owner, "03-choose-a-new-password", phone=True)
    owner.get_by_role("button", name="Save and continue").click()
    expect(owner.get_by_role("heading", name="My websites")).to_be_visible()
    shoot(owner, "03b-no-websites-yet")

    # 4. Add example.com; set the public address; copy the snippet from the site's page.
    owner.get_by_role("button", name="Add website").click()
    owner.get_by_label("Hostname").fill(SITE)
    shoot(owner, "04-add-website")
    owner.get_by_role("button", name="Add website").last.click()
    owner.wait_for_url(f"{dashboard}/{SITE}")
    waiting = owner.get_by_test_id("snippet")
    expect(waiting).to_contain_text(f"Waiting for the first visit to {SITE}")
    # The site's own snippet: its settings choose the tracker's features (docs/insights.md).
    expect(waiting.locator("pre code")).to_have_text(f'<script defer src="{dashboard}/script.js?site={SITE}"></script>')
    shoot(owner, "04b-waiting-snippet-before-public-url")
    note = waiting.get_by_test_id("snippet-note")
    expect(note).to_contain_text("Pages served over https:// will not load this.")
    note.get_by_role("link", name="Settings → Tracker").click()
    form = owner.get_by_role("form", name="Public address")
    form.get_by_label("Public address").fill(public)
    form.get_by_role("button", name="Set address").click()
    expect(form.locator(".form-ok")).to_have_text("Saved. The snippet uses it now.")
    expect(form.get_by_test_id("dashboard-origin")).to_have_text(dashboard)
    shoot(owner, "04c-public-address", phone=True)
    owner.get_by_role("link", name="My websites").click()
    owner.get_by_role("link", name=re.compile(SITE)).click()
    snippet_box = owner.get_by_test_id("snippet")
    expected = f'<script defer src="{public}/script.js?site={SITE}"></script>'
    expect(snippet_box.locator("pre code")).to_have_text(expected)
    # The address is plain http://: the owner is told that https:// pages would refuse it.
    expect(snippet_box.get_by_test_id("snippet-note")).to_have_attribute("data-problem", "plain-http")
    snippet_box.get_by_role("button", name="Copy").click()
    expect(snippet_box.get_by_role("status")).to_have_text("Copied to the clipboard.")
    copied = clipboard(owner_context, medama.port)
    assert copied == expected, copied
    shoot(owner, "04d-snippet-copied", phone=True)

    # 5. The snippet pasted into three pages of www.example.com (a second origin); a visitor clicks through them.
    pages.site(SITE_WWW, copied, {"/": "Home", "/about": "About us", "/contact": "Contact"})
    visit(visitor, lambda: visitor.goto(pages.url(SITE_WWW, "/")))
    visit(visitor, lambda: visitor.get_by_role("link", name="About us").click())
    visit(visitor, lambda: visitor.get_by_role("link", name="Contact").click())
    visit(visitor, lambda: visitor.get_by_role("link", name="Home").click())
    shoot(visitor, "05-visitor-on-www-example-com")

    # 6. The dashboard, still open on example.com, sees them arrive.
    reload_until(owner, metric(owner, "pageviews"), "4")
    pages_panel = owner.locator("[data-panel=pages] .row-label")
    reload_until(owner, pages_panel, ["/", "/about", "/contact"], ignore_case=True)
    expect(metric(owner, "pageviews")).to_have_text("4")
    expect(metric(owner, "visitors")).to_have_text("1")
    shoot(owner, "06-visits-counted", phone=True)

    # 7. The snippet also went into a site never added; a second, empty site says so and adds it.
    pages.site(TYPO, copied, {"/": "Welcome", "/shop": "Shop"})
    visit(visitor, lambda: visitor.goto(pages.url(TYPO, "/")))
    visit(visitor, lambda: visitor.get_by_role("link", name="Shop").click())
    owner.get_by_role("link", name="My websites").click()
    card = owner.locator(".site-card", has_text=SITE)
    expect(card).to_contain_text("1 visitor in the last 24 hours")
    shoot(owner, "07a-my-websites", phone=True)
    owner.get_by_role("button", name="Add website").click()
    owner.get_by_label("Hostname").fill(SECOND)
    owner.get_by_role("button", name="Add website").last.click()
    owner.wait_for_url(f"{dashboard}/{SECOND}")
    notice = owner.get_by_test_id("drop-suggestions").locator(f"li[data-hostname='{TYPO}']")
    expect(notice).to_contain_text(f"2 hits from {TYPO} were dropped: unknown site — add it?", timeout=30_000)
    shoot(owner, "07-dropped-hits-notice", phone=True)
    notice.get_by_role("button", name=f"Add {TYPO}").click()
    owner.wait_for_url(f"{dashboard}/{TYPO}")
    expect(owner.get_by_test_id("snippet")).to_contain_text(f"Waiting for the first visit to {TYPO}")
    # The same visitor comes back: a page view, but not a new visitor today (its browser was seen, through the
    # pings, while its hits were dropped). Then someone new comes: one visitor.
    visit(visitor, lambda: visitor.get_by_role("link", name="Welcome").click())
    newcomer_context = context_for(browser)
    newcomer = newcomer_context.new_page()
    visit(newcomer, lambda: newcomer.goto(pages.url(TYPO, "/shop")))
    newcomer_context.close()
    reload_until(owner, metric(owner, "pageviews"), "2")
    reload_until(owner, owner.locator("[data-panel=pages] .row-label"), ["/shop"])
    expect(metric(owner, "pageviews")).to_have_text("2")
    expect(metric(owner, "visitors")).to_have_text("1")
    shoot(owner, "07b-added-site-counts", phone=True)

    visitor_context.close()
    owner_context.close()
    assert medama.stop() == 0
    assert not errors, errors
    # Only the two hits www.exmple.com sent before it was added were refused (404: no such website).
    refused = (
        f"Failed to load resource: the server responded with a status of 404 (Not Found) at {public}/api/event/hit"
    )
    assert console == [refused, refused], console
    # What the stranger's terminal showed: no error, no traceback, and no line per request at info.
    for log in medama.logs:
        text = log.read_text()
        assert '"level": "error"' not in text and "Traceback" not in text, text
        assert "/api/event/hit" not in text, text
