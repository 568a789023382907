"""Access in Chromium: an admin invites a viewer, who turns two-factor login on (the QR code read back by
zbarimg) and signs in with a code to see only the granted site; an API key made in Settings reads stats
with curl until revoked there; a password-protected share link opens in a fresh browser profile, hides
rows of fewer than k visitors, refuses after its expiry, and is framed only where its owner allows.
Screenshots go to tests/artifacts/."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page, expect

from medama_core import totp
from tests.dashboard.conftest import ARTIFACTS, SITE, Site, login, new_context, screenshot
from tests.stores import marked

pytestmark = pytest.mark.browser

OTHER = "other.example"
VIEWER, VIEWER_PASSWORD = "vera", "vera-first-pass"
ZBARIMG = shutil.which("zbarimg")


@pytest.fixture
def admin(browser: Browser, fresh_site: Site) -> Iterator[Page]:
    context = new_context(browser)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    login(page, fresh_site)
    yield page
    context.close()
    assert not errors, errors


def read_qr(page: Page, name: str) -> str:
    """What the page's QR code says, read from a screenshot of it by zbarimg (a real decoder)."""
    assert ZBARIMG, "zbarimg is missing (apt-get install zbar-tools)"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.get_by_test_id("totp-qr").screenshot(path=str(path))
    done = subprocess.run([ZBARIMG, "-q", "--raw", str(path)], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_an_admin_invites_a_viewer_who_signs_in_with_totp_and_sees_only_the_granted_site(
    browser: Browser, admin: Page, fresh_site: Site
) -> None:
    page = admin
    assert fresh_site.api.post("/api/websites", json_body={"hostname": OTHER}).status == 201
    page.goto(fresh_site.base + "/settings/users")
    form = page.get_by_test_id("invite-user")
    form.get_by_label("Username").fill(VIEWER)
    form.get_by_label("First password").fill(VIEWER_PASSWORD)
    expect(form.get_by_label("Role")).to_have_value("viewer")
    form.get_by_label(SITE).check()
    form.get_by_role("button", name="Add account").click()
    expect(form.locator(".form-ok")).to_contain_text(f"Added {VIEWER}")
    row = page.get_by_test_id("users-table").locator(f"tr[data-username={VIEWER}]")
    expect(row).to_contain_text("viewer")
    expect(row).to_contain_text(SITE)
    screenshot(page, "access-users")

    viewer_context = new_context(browser)
    viewer = viewer_context.new_page()
    errors: list[str] = []
    viewer.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        viewer.goto(fresh_site.base + "/login")
        viewer.fill("#login-username", VIEWER)
        viewer.fill("#login-password", VIEWER_PASSWORD)
        viewer.click("form button[type=submit]")
        viewer.wait_for_url(fresh_site.base + "/")
        # Two-factor login, set up from the viewer's own account page.
        viewer.goto(fresh_site.base + "/settings/account")
        section = viewer.get_by_test_id("two-factor")
        section.get_by_role("button", name="Set up two-factor login").click()
        expect(viewer.get_by_test_id("totp-qr")).to_be_visible()
        screenshot(viewer, "access-totp-setup")
        uri = read_qr(viewer, "access-totp-qr")
        assert uri.startswith(f"otpauth://totp/Medama:{VIEWER}?")
        secret = dict(pair.split("=", 1) for pair in urlsplit(uri).query.split("&"))["secret"]
        shown = section.locator(".totp-secret").inner_text().replace(" ", "")
        assert shown == secret  # the key to type is the one in the QR code
        section.get_by_label("Code from the app").fill(totp.code_at(secret, time.time()))
        section.get_by_role("button", name="Turn on").click()
        codes = viewer.get_by_test_id("recovery-codes")
        expect(codes).to_be_visible()
        assert len(codes.locator("pre code").inner_text().split()) == 10
        screenshot(viewer, "access-totp-recovery-codes")
        codes.get_by_role("button", name="I saved them").click()
        expect(section).to_contain_text("On: signing in asks for a code")

        # Sign out, and in again: the password, then the code step of the same form.
        viewer.get_by_role("link", name="Log out").click()
        viewer.goto(fresh_site.base + "/login")
        viewer.fill("#login-username", VIEWER)
        viewer.fill("#login-password", VIEWER_PASSWORD)
        viewer.click("form button[type=submit]")
        step = viewer.get_by_test_id("login-code")
        expect(step).to_be_visible()
        expect(viewer.locator("#login-code")).to_be_focused()
        viewer.fill("#login-code", "000000" if totp.code_at(secret, time.time()) != "000000" else "111111")
        viewer.click("form button[type=submit]")
        expect(viewer.locator(".form-error")).to_contain_text("That code is not right")
        screenshot(viewer, "access-login-code-step")
        viewer.fill("#login-code", totp.code_at(secret, time.time() + totp.STEP_S))  # the next step's: not used yet
        viewer.click("form button[type=submit]")
        viewer.wait_for_url(fresh_site.base + "/")

        # Only the granted site, and no way to add one; the other site is unknown to them.
        cards = viewer.locator(".site-grid > li")
        expect(cards).to_have_count(1)
        expect(cards.first).to_contain_text(SITE)
        expect(viewer.get_by_role("button", name="Add website")).to_have_count(0)
        screenshot(viewer, "access-viewer-websites")
        # Their site's dashboard reads the owner's notes but offers no way to add one (an admin's).
        viewer.goto(fresh_site.base + f"/{SITE}")
        expect(viewer.locator("[data-metric=visitors] .metric-value")).not_to_have_text("–")
        expect(viewer.get_by_role("button", name="+ Note")).to_have_count(0)
        viewer.goto(fresh_site.base + f"/{OTHER}")
        expect(viewer.get_by_role("heading", name=f"No website called {OTHER}")).to_be_visible()
        viewer.goto(fresh_site.base + "/settings")
        nav = viewer.get_by_role("navigation", name="Settings")
        expect(nav.get_by_role("link")).to_have_text(["Account", "API keys"])
    finally:
        viewer_context.close()
    assert not errors, errors


def test_an_api_key_made_in_settings_reads_stats_with_curl_until_revoked(admin: Page, fresh_site: Site) -> None:
    page = admin
    page.goto(fresh_site.base + "/settings/keys")
    page.get_by_label("Name").fill("curl on my laptop")
    page.get_by_role("button", name="Create key").click()
    made = page.get_by_test_id("new-key")
    expect(made).to_be_visible()
    key = made.locator("pre code").first.inner_text()
    assert key.startswith("medama_")
    screenshot(page, "access-api-key-created")
    url = f"{fresh_site.base}/api/website/{SITE}/summary"
    curl = ["curl", "-sS", "-w", "\n%{http_code}", "-H", f"Authorization: Bearer {key}", url]
    out = subprocess.run(curl, capture_output=True, text=True, timeout=30, check=True).stdout
    assert out.endswith("\n200") and json.loads(out.rsplit("\n", 1)[0])["current"]["visitors"] > 0
    row = page.get_by_test_id("keys-table").locator("tr[data-key='curl on my laptop']")
    expect(row).to_contain_text("read")
    page.reload()  # the list now says when it was last used
    expect(row.locator("td").nth(4)).not_to_have_text("never")
    row.get_by_role("button", name="Revoke").click()
    expect(page.locator(".form-ok")).to_contain_text("stops working at once")
    out = subprocess.run(curl, capture_output=True, text=True, timeout=30, check=True).stdout
    assert out.endswith("\n401")


def create_share(page: Page, site: Site, *, password: str, k: int) -> str:
    page.goto(site.base + f"/settings/websites?website={SITE}")
    form = page.get_by_test_id("new-share")
    form.get_by_label("Name").fill("for the board")
    form.get_by_label("Hide rows of fewer visitors than (k)").fill(str(k))
    form.get_by_label("Password").fill(password)
    tomorrow = time.strftime("%Y-%m-%d", time.localtime(time.time() + 2 * 86400))
    form.get_by_label("Works until").fill(tomorrow)
    form.get_by_role("button", name="Create link").click()
    expect(form.locator(".form-ok")).to_contain_text("Created")
    links = page.get_by_test_id("share-links")
    expect(links.locator(".share-item")).to_have_count(1)
    expect(links).to_contain_text("hides rows under 5 visitors · password · until")
    screenshot(page, "access-share-settings")
    return links.locator(".share-item pre code").inner_text()


def test_a_password_protected_share_opens_in_a_fresh_profile_and_hides_small_rows(
    browser: Browser, admin: Page, fresh_site: Site
) -> None:
    # Today: the seed's dozen views of single visitors on many pages, and 7 visitors of /pricing.
    now = int(time.time() * 1000) - 120_000
    with sqlite3.connect(fresh_site.server.config.analyticsdb) as conn, marked(conn):
        conn.executemany(
            "INSERT INTO views (bid, hostname, pathname, is_unique_user, is_unique_page, ua_browser, ua_os,"
            " ua_device_type, date_created) VALUES (?, ?, '/pricing', 1, 1, 'Firefox', 'Linux', 'Desktop', ?)",
            [(f"crowd{i}", SITE, now - i) for i in range(7)],
        )
    conn.close()
    link = create_share(admin, fresh_site, password="board-pass-1", k=5)
    share_id = link.rsplit("/", 1)[1]
    assert link == f"{fresh_site.base}/share/{share_id}"
    stranger_context = new_context(browser)  # a fresh profile: no cookie of any account
    stranger = stranger_context.new_page()
    errors: list[str] = []
    stranger.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        stranger.goto(link)
        form = stranger.get_by_test_id("share-password")
        expect(form).to_be_visible()
        form.get_by_label("Password").fill("not-the-password")
        form.get_by_role("button", name="Open the dashboard").click()
        expect(form.locator(".form-error")).to_have_text("That password is not this link's.")
        screenshot(stranger, "access-share-password")
        form.get_by_label("Password").fill("board-pass-1")
        with stranger.expect_response(lambda r: f"/api/share/{share_id}/pages?" in r.url) as pages_answer:
            form.get_by_role("button", name="Open the dashboard").click()
        expect(stranger.get_by_test_id("shared-dashboard")).to_be_visible()
        expect(stranger.get_by_test_id("share-note")).to_contain_text("Rows of fewer than 5 visitors are hidden")
        expect(stranger.get_by_role("link", name="Settings")).to_have_count(0)  # no account around it
        # Nor the owner's notes, tracker settings or exports: the link's API is its stats.
        expect(stranger.get_by_role("button", name="+ Note")).to_have_count(0)
        expect(stranger.locator("[data-panel=events]")).to_have_count(0)
        shown = pages_answer.value.json()
        query = urlsplit(pages_answer.value.url).query
        own = fresh_site.api.get(f"/api/website/{SITE}/pages?{query}").json()
        assert shown == [row for row in own if row["visitors"] >= 5] and shown[0]["path"] == "/pricing"
        assert any(row["visitors"] < 5 for row in own), "the seed must have small rows for this test to mean anything"
        expect(stranger.locator("[data-panel=pages] .row")).to_have_count(len(shown))
        expect(stranger.locator("[data-metric=visitors] .metric-value")).not_to_have_text("–")
        stranger.wait_for_load_state("networkidle")
        screenshot(stranger, "access-share-dashboard")
        stranger.locator("[data-panel=pages]").get_by_role("link", name="All pages →").click()  # via the link too
        expect(stranger.locator(".detail-main tbody tr")).to_have_count(len(shown))
        expect(stranger.get_by_test_id("export-csv")).to_have_count(0)
        # Expired: the next load says so, whatever cookie the browser kept.
        with sqlite3.connect(fresh_site.server.config.appdb) as conn:
            conn.execute("UPDATE shares SET date_expires = ? WHERE id = ?", (int(time.time()) - 1, share_id))
        conn.close()
        stranger.reload()
        expect(stranger.locator(".error-view")).to_contain_text("This link has expired")
        screenshot(stranger, "access-share-expired")
    finally:
        stranger_context.close()
    assert not errors, errors


@contextmanager
def embedding_site(dashboard: str) -> Iterator[str]:
    """A blog on another origin (loopback, another port): `/<share id>` frames that share link's page."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
            target = f"{dashboard}/share{self.path}"
            html = f'<!doctype html><title>Blog</title><iframe id="shared" src="{target}" width="900" height="600">'
            body = html.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def test_a_share_is_framed_only_where_its_owner_allows(browser: Browser, fresh_site: Site) -> None:
    context = new_context(browser)
    try:
        with embedding_site(fresh_site.base) as blog:
            made = fresh_site.api.post(f"/api/websites/{SITE}/shares", json_body={"k": 0, "frameAncestors": [blog]})
            allowed = made.json()["id"]
            closed = fresh_site.api.post(f"/api/websites/{SITE}/shares", json_body={"k": 0}).json()["id"]
            page = context.new_page()
            page.goto(f"{blog}/{allowed}")
            expect(page.frame_locator("#shared").get_by_test_id("shared-dashboard")).to_be_visible()
            screenshot(page, "access-share-embedded")
            with page.expect_response(lambda r: r.url.endswith(f"/share/{closed}")) as refused:
                page.goto(f"{blog}/{closed}")
            assert "frame-ancestors 'none'" in refused.value.headers["content-security-policy"]
            # Chromium blocks the framed page: the frame shows its error page and never runs the dashboard.
            for _ in range(300):
                if len(page.frames) > 1 and page.frames[1].url.startswith("chrome-error://"):
                    break
                page.wait_for_timeout(50)
            frame = page.frames[1]
            assert frame.url.startswith("chrome-error://"), frame.url
            assert page.frame_locator("#shared").get_by_test_id("shared-dashboard").count() == 0
            page.close()
    finally:
        context.close()
