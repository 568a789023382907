"""The dashboard's write paths in Chromium, each on a server of its own: add a website and watch the
first hits arrive through the real tracker, and every settings page round trip."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.dashboard.conftest import DESKTOP_UA, PASSWORD, SITE, Site, login, new_context, screenshot

pytestmark = pytest.mark.browser


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


@contextmanager
def shop_server(snippet: str) -> Iterator[str]:
    """A real page of the new website (host `localhost`, another port) carrying the dashboard's snippet.

    A real socket on loopback, not a Playwright route: Chromium's local network access checks let a
    loopback page load the tracker from another loopback port, but not a page of unknown address.
    """
    html = f"<!doctype html><html><head><title>Shop</title>{snippet}</head><body><h1>Shop</h1></body></html>".encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(html)))
            self.end_headers()
            self.wfile.write(html)

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


def is_load(body: str | None) -> bool:
    """A tracker hit's body is a page load."""
    return json.loads(body or "{}").get("e") == "load"


def test_add_website_shows_snippet_until_the_first_hit(browser: Browser, admin: Page, fresh_site: Site) -> None:
    page = admin
    page.get_by_role("button", name="Add website").click()
    dialog = page.get_by_role("dialog", name="Add a website")
    field = dialog.get_by_label("Hostname")
    field.fill("not a host!")
    dialog.get_by_role("button", name="Add website").click()
    expect(dialog.locator(".form-error")).to_contain_text("Use a hostname")
    field.fill(SITE)
    dialog.get_by_role("button", name="Add website").click()
    expect(dialog.locator(".form-error")).to_have_text(f"{SITE} has already been added.")
    field.fill("http://LocalHost/some/page")  # pasted URLs are cut to the hostname
    dialog.get_by_role("button", name="Add website").click()
    page.wait_for_url(fresh_site.base + "/localhost")
    notice = page.get_by_test_id("snippet")
    expect(notice).to_be_visible()
    snippet = notice.locator("pre code").inner_text()
    assert snippet == f'<script defer src="{fresh_site.base}/script.js?site=localhost"></script>'
    screenshot(page, "new-website-snippet")
    listed = fresh_site.api.get("/api/websites").json()
    assert {"hostname": "localhost"} in listed

    # A visitor with a real browser loads a page carrying the snippet. It comes from 127.0.0.1, and the
    # default block lists stay on: the abusive-IP preset must not drop a local install's own visits.
    assert fresh_site.api.get("/api/tenant/settings").json()["blockAbusiveIPs"] is True
    visitor = new_context(browser, user_agent=DESKTOP_UA, locale="de-DE", timezone_id="Europe/Paris")
    try:
        with shop_server(snippet) as shop_origin:
            shop = visitor.new_page()
            with shop.expect_response(lambda r: r.url.endswith("/api/event/hit")) as hit:
                shop.goto(f"{shop_origin}/landing")
            assert hit.value.status == 204
            # The unload beacon of /landing (DevTools may or may not list it), then the second load: wait for the load.
            with shop.expect_response(lambda r: r.url.endswith("/api/event/hit") and is_load(r.request.post_data)):
                shop.goto(f"{shop_origin}/second")
    finally:
        visitor.close()
    # The dashboard notices within a few seconds, hides the snippet and shows the visit.
    expect(notice).to_have_count(0, timeout=20_000)
    expect(page.locator("[data-metric=pageviews] .metric-value")).to_have_text("2")
    expect(page.locator("[data-metric=visitors] .metric-value")).to_have_text("1")
    pages = page.locator("[data-panel=pages] .row-label")
    expect(pages).to_have_count(2)
    expect(page.locator("[data-panel=geo] .row-label").first).to_have_text("FR France")
    screenshot(page, "new-website-first-hits")


def test_account_settings(admin: Page, fresh_site: Site) -> None:
    page = admin
    page.goto(fresh_site.base + "/settings")
    page.wait_for_url("**/settings/account")
    username = page.get_by_label("Username")
    expect(username).to_have_value("admin")
    page.get_by_label("New password", exact=True).fill("new-password-1")
    page.get_by_label("Repeat the new password").fill("different")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".form-error")).to_have_text("The two new passwords differ.")
    page.get_by_role("form", name="Account", exact=True).get_by_label("Current password").fill(PASSWORD)
    username.fill("owner")
    page.get_by_label("Repeat the new password").fill("new-password-1")
    page.get_by_role("button", name="Save").click()
    # Scoped to the form: the two-factor section below has a status line of its own.
    expect(page.get_by_role("form", name="Account", exact=True).locator(".form-ok")).to_contain_text("Saved")
    # A password change ends the other sessions (the test's API client) and keeps the browser's.
    assert fresh_site.api.get("/api/user").status == 401
    fresh_site.api.login("owner", "new-password-1")
    assert fresh_site.api.get("/api/user").json()["username"] == "owner"
    page.reload()
    expect(page.get_by_label("Username")).to_have_value("owner")
    screenshot(page, "settings-account")
    page.get_by_role("link", name="Log out").click()
    expect(page.get_by_role("heading", name="You have been logged out.")).to_be_visible()
    page.get_by_role("link", name="Log in again").click()
    page.fill("#login-username", "admin")
    page.fill("#login-password", PASSWORD)
    page.click("form button[type=submit]")
    expect(page.locator(".form-error")).to_contain_text("Wrong username or password")
    page.fill("#login-username", "owner")
    page.fill("#login-password", "new-password-1")
    page.click("form button[type=submit]")
    page.wait_for_url(fresh_site.base + "/")


def test_website_settings_rename_and_delete(admin: Page, fresh_site: Site) -> None:
    page = admin
    api = fresh_site.api
    assert api.post("/api/websites", json_body={"hostname": "second.example"}).status == 201
    page.goto(fresh_site.base + f"/settings/websites?website={SITE}")
    expect(page.get_by_label("Website", exact=True)).to_have_value(SITE)
    page.get_by_label("New hostname").fill("renamed.example")
    page.get_by_role("button", name="Rename").click()
    # Scoped to the form: the share links below have status lines of their own.
    expect(page.get_by_role("form", name="Rename").locator(".form-ok")).to_have_text("Renamed to renamed.example.")
    page.wait_for_url("**/settings/websites?website=renamed.example")
    hostnames = sorted(s["hostname"] for s in api.get("/api/websites").json())
    assert hostnames == ["renamed.example", "second.example"]
    stats = api.get("/api/website/renamed.example/summary").json()
    assert stats["current"]["pageviews"] == fresh_site.seeded.views  # the stats moved with it
    screenshot(page, "settings-websites")
    # Deleting needs the hostname typed in.
    delete = page.get_by_role("button", name="Delete renamed.example")
    expect(delete).to_be_disabled()
    page.get_by_label("Hostname", exact=True).fill("renamed.exampl")
    expect(delete).to_be_disabled()
    page.get_by_label("Hostname", exact=True).fill("renamed.example")
    delete.click()
    expect(page.get_by_role("status").filter(has_text="Deleted renamed.example.")).to_be_visible()
    assert [s["hostname"] for s in api.get("/api/websites").json()] == ["second.example"]
    expect(page.get_by_label("Website", exact=True)).to_have_value("second.example")
    page.goto(fresh_site.base + "/renamed.example")
    expect(page.get_by_role("heading", name="No website called renamed.example")).to_be_visible()


def test_spam_settings(admin: Page, fresh_site: Site) -> None:
    page = admin
    api = fresh_site.api
    page.goto(fresh_site.base + "/settings/spam")
    abusive = page.get_by_role("checkbox", name="Abusive IPs")
    tor = page.get_by_role("checkbox", name="Tor exit nodes")
    expect(abusive).to_be_checked()
    expect(tor).to_be_checked()
    tor.uncheck()
    page.get_by_role("form", name="Block lists").get_by_role("button", name="Save").click()
    expect(page.locator(".form-ok").first).to_have_text("Saved.")
    settings = api.get("/api/tenant/settings").json()
    assert settings["blockAbusiveIPs"] is True and settings["blockTorExitNodes"] is False
    ip = page.get_by_label("IP address to block")
    ip.fill("not an ip")
    page.get_by_role("button", name="Add").click()
    expect(page.locator(".form-error")).to_contain_text("Enter an IP address")
    for address in ("203.0.113.7", "198.51.100.0/24"):
        ip.fill(address)
        page.get_by_role("button", name="Add").click()
        expect(page.locator(".ip-list code", has_text=address)).to_be_visible()
    assert api.get("/api/tenant/settings").json()["blockedIPs"] == ["203.0.113.7", "198.51.100.0/24"]
    screenshot(page, "settings-spam")
    page.get_by_role("button", name="Delete 203.0.113.7").click()
    expect(page.locator(".ip-list code")).to_have_count(1)
    assert api.get("/api/tenant/settings").json()["blockedIPs"] == ["198.51.100.0/24"]
    page.reload()
    expect(page.get_by_role("checkbox", name="Tor exit nodes")).not_to_be_checked()
    expect(page.locator(".ip-list code")).to_have_text(["198.51.100.0/24"])


def test_tracker_settings(admin: Page, fresh_site: Site) -> None:
    page = admin
    api = fresh_site.api
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=fresh_site.base)
    page.goto(fresh_site.base + "/settings/tracker")
    expect(page.get_by_role("checkbox", name="Default")).to_be_disabled()
    features = page.get_by_role("form", name="Tracker features")
    click_events = page.get_by_role("checkbox", name="Click events")
    expect(click_events).not_to_be_checked()
    click_events.check()
    page.get_by_role("button", name="Save").click()
    expect(features.locator(".form-ok")).to_contain_text("Saved")
    assert "click-events" in api.get("/api/tenant/settings").json()["script_type"]
    page.get_by_role("button", name="Copy").click()
    expect(page.get_by_text("Copied to the clipboard.")).to_be_visible()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied == f'<script defer src="{fresh_site.base}/script.js"></script>'
    screenshot(page, "settings-tracker")
    page.get_by_role("checkbox", name="Page view events").check()
    click_events.uncheck()
    page.get_by_role("button", name="Save").click()
    expect(features.locator(".form-ok")).to_contain_text("Saved")
    assert api.get("/api/tenant/settings").json()["script_type"] == ["default", "page-events"]


def test_usage_settings(admin: Page, fresh_site: Site) -> None:
    page = admin
    polls: list[str] = []
    page.on("request", lambda r: polls.append(r.url) if r.url.endswith("/api/settings/usage") else None)
    page.goto(fresh_site.base + "/settings/usage")
    expect(page.get_by_role("progressbar", name="CPU in use")).to_be_visible()
    expect(page.get_by_role("progressbar", name="Memory in use")).to_be_visible()
    expect(page.get_by_role("progressbar", name="Disk in use")).to_be_visible()
    for _ in range(300):  # refreshed every few seconds (3 s): the first answer and two more
        if len(polls) >= 3:
            break
        page.wait_for_timeout(50)
    assert len(polls) >= 3, polls
    screenshot(page, "settings-usage")
    page.get_by_label("Reader threads").fill("3")
    page.get_by_label("Memory limit").fill("lots")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".form-error")).to_contain_text("memory_limit")
    page.get_by_label("Memory limit").fill("256MiB")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".form-ok")).to_have_text("Saved.")
    metadata = fresh_site.api.get("/api/settings/usage").json()["metadata"]
    assert metadata == {"threads": 3, "memory_limit": "256MiB"}
    page.reload()
    expect(page.get_by_label("Reader threads")).to_have_value("3")
    expect(page.get_by_label("Memory limit")).to_have_value("256MiB")
