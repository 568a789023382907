"""The dashboard side of the CONTRACT.md features whose server side other branches build (issue 13).

THESE TESTS NEED THOSE SERVER CHANGES, and fail on a branch without them:
  * first login (passwordChangeRequired on GET /api/user, CONTRACT 2): firstrun
  * `currentPassword` on PATCH and DELETE /api/user (CONTRACT 3): guard
  * GET /api/drops (CONTRACT 5): guard; the rows are written straight into the `drops` table that main already has
  * the `public_url` tenant setting (CONTRACT 7) and `-securecookie=false` (CONTRACT 1, Config.securecookie): firstrun
Run them after merging: `python -m pytest tests/dashboard/test_contract_ui.py`.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Route, expect

from tests.dashboard.calls import wait_idle
from tests.dashboard.conftest import (
    DEFAULT_PASSWORD,
    PASSWORD,
    PLAIN_HOST,
    SITE,
    USERNAME,
    Site,
    login,
    new_context,
    screenshot,
    start_site,
)

pytestmark = pytest.mark.browser

DAY_MS = 86_400_000
NEW_PASSWORD = "a-better-password"


@pytest.fixture
def first_start(tmp_path: Path) -> Iterator[Site]:
    """A server whose admin still has the first-start password."""
    yield from start_site(tmp_path, first_start=True)


def open_page(browser: Browser, **options: object) -> tuple[Page, list[str]]:
    page = new_context(browser, **options).new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return page, errors


def rule(page: Page, key: str) -> str | None:
    return page.locator(f"[data-rule={key}]").get_attribute("data-ok")


@pytest.mark.parametrize("width", [1280, 360])
def test_first_login_shows_only_choose_a_new_password(browser: Browser, first_start: Site, width: int) -> None:
    page, errors = open_page(browser, viewport={"width": width, "height": 900})
    try:
        login(page, first_start, f"/{SITE}?period=7d", password=DEFAULT_PASSWORD)
        expect(page.get_by_role("heading", name="Choose a new password")).to_be_visible()
        assert page.url.endswith(f"/{SITE}?period=7d")
        expect(page.locator(".metrics")).to_have_count(0)
        expect(page.get_by_role("link", name="Settings")).to_have_count(0)
        expect(page.get_by_role("link", name="Log out")).to_be_visible()
        # The password typed at login is kept in memory: no "current password" field.
        expect(page.get_by_label("Current password")).to_have_count(0)
        new, again = page.get_by_label("New password", exact=True), page.get_by_label("Repeat the new password")
        new.fill("abc")
        assert (rule(page, "length"), rule(page, "default"), rule(page, "match")) == ("false", "true", "false")
        new.fill(DEFAULT_PASSWORD)
        again.fill(DEFAULT_PASSWORD)
        assert (rule(page, "length"), rule(page, "default"), rule(page, "match")) == ("true", "false", "true")
        page.get_by_role("button", name="Save and continue").click()
        expect(page.locator(".form-error")).to_have_text("Choose a password other than the first-start one.")
        new.fill(NEW_PASSWORD)
        again.fill(NEW_PASSWORD + "x")
        assert rule(page, "match") == "false"
        again.fill(NEW_PASSWORD)
        assert (rule(page, "length"), rule(page, "default"), rule(page, "match")) == ("true", "true", "true")
        screenshot(page, f"first-password-{width}")
        with page.expect_request(lambda r: r.url.endswith("/api/user") and r.method == "PATCH") as sent:
            page.get_by_role("button", name="Save and continue").click()
        body = json.loads(sent.value.post_data or "{}")
        assert body == {"password": NEW_PASSWORD, "currentPassword": DEFAULT_PASSWORD}
        # Then the page that was asked for.
        expect(page.locator("[data-metric=visitors] .metric-value")).not_to_have_text("–")
        expect(page.get_by_role("link", name="Settings")).to_be_visible()
        page.reload()
        wait_idle(page)
        expect(page.get_by_role("heading", name="Choose a new password")).to_have_count(0)
        api = first_start.server.client()
        api.login(USERNAME, NEW_PASSWORD)
        assert api.get("/api/user").json()["passwordChangeRequired"] is False
        api.close()
    finally:
        page.context.close()
    assert not errors, errors


def test_first_login_after_a_reload_asks_for_the_current_password(browser: Browser, first_start: Site) -> None:
    page, errors = open_page(browser)
    try:
        login(page, first_start, password=DEFAULT_PASSWORD)
        expect(page.get_by_role("heading", name="Choose a new password")).to_be_visible()
        page.reload()  # the login password was in memory only
        current = page.get_by_label("Current password")
        expect(current).to_be_visible()
        current.fill("not-the-password")
        page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
        page.get_by_label("Repeat the new password").fill(NEW_PASSWORD)
        page.get_by_role("button", name="Save and continue").click()
        expect(page.locator(".form-error")).to_have_text("The current password is wrong.")
        current.fill(DEFAULT_PASSWORD)
        page.get_by_role("button", name="Save and continue").click()
        expect(page.get_by_role("heading", name="Choose a new password")).to_have_count(0)
        expect(page.get_by_role("button", name="Add website")).to_be_visible()
    finally:
        page.context.close()
    assert not errors, errors


def test_account_password_change_needs_the_current_password(browser: Browser, fresh_site: Site) -> None:
    page, errors = open_page(browser)
    try:
        login(page, fresh_site, "/settings/account")
        form = page.get_by_role("form", name="Account", exact=True)
        form.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
        form.get_by_label("Repeat the new password").fill(NEW_PASSWORD)
        expect(form.locator("[data-rule=match]")).to_have_attribute("data-ok", "true")
        form.get_by_role("button", name="Save").click()
        expect(form.locator(".form-error")).to_have_text("Enter your current password to change it.")
        form.get_by_label("Current password").fill("wrong-password")
        form.get_by_role("button", name="Save").click()
        expect(form.locator(".form-error")).to_have_text("The current password is wrong.")
        screenshot(page, "settings-account-wrong-current")
        form.get_by_label("Current password").fill(PASSWORD)
        form.get_by_role("button", name="Save").click()
        expect(form.locator(".form-ok")).to_contain_text("Saved")
        api = fresh_site.server.client()
        api.login(USERNAME, NEW_PASSWORD)
        api.close()
        # A username-only change needs no current password.
        form.get_by_label("Username").fill("owner")
        form.get_by_role("button", name="Save").click()
        expect(form.locator(".form-ok")).to_have_text("Saved.")
    finally:
        page.context.close()
    assert not errors, errors


def test_delete_account_needs_the_current_password(browser: Browser, fresh_site: Site) -> None:
    page, errors = open_page(browser)
    try:
        login(page, fresh_site, "/settings/account")
        form = page.get_by_role("form", name="Delete account")
        form.get_by_role("button", name="Delete account").click()
        expect(form.locator(".form-error")).to_have_text("Enter your current password to delete the account.")
        form.get_by_label("Current password").fill("wrong-password")
        form.get_by_role("button", name="Delete account").click()
        expect(form.locator(".form-error")).to_have_text("The current password is wrong.")
        assert fresh_site.api.get("/api/websites").status == 200  # nothing deleted
        form.get_by_label("Current password").fill(PASSWORD)
        form.get_by_role("button", name="Delete account").click()
        page.wait_for_url("**/login?deleted=1")
        expect(page.get_by_text("Your account was deleted.")).to_be_visible()
        assert fresh_site.api.get("/api/websites").status == 401
    finally:
        page.context.close()
    assert not errors, errors


def add_drops(site: Site, rows: list[tuple[int, str, str, int]]) -> None:
    """(days ago, hostname, reason, hits) into the `drops` table, as the ingestion writes it (day = 00:00 UTC in ms)."""
    today = int(time.time() * 1000) // DAY_MS * DAY_MS
    with sqlite3.connect(site.server.config.analyticsdb, timeout=30) as conn:
        conn.executemany(
            "INSERT INTO drops (day, hostname, reason, count) VALUES (?, ?, ?, ?)",
            [(today - ago * DAY_MS, host, reason, hits) for ago, host, reason, hits in rows],
        )
    conn.close()


@pytest.mark.parametrize("width", [1280, 360])
def test_dropped_hits_are_explained_and_unknown_sites_can_be_added(
    browser: Browser, fresh_site: Site, width: int
) -> None:
    api = fresh_site.api
    assert api.post("/api/websites", json_body={"hostname": "shop.example"}).status == 201
    add_drops(
        fresh_site,
        [
            (0, "www.exmple.com", "unknown_site", 20),
            (1, "www.exmple.com", "unknown_site", 3),
            (0, SITE, "bot", 7),
            (2, SITE, "too_many_unknowns", 4),
            (0, "shop.example", "spam_referrer", 1),
            (0, "", "bad_payload", 2),
        ],
    )
    page, errors = open_page(browser, viewport={"width": width, "height": 900})
    try:
        # A site's settings: its rows and the unknown-site rows, in plain words.
        login(page, fresh_site, f"/settings/websites?website={SITE}")
        section = page.get_by_test_id("dropped-hits")
        rows = section.locator("tbody tr")
        expect(rows).to_have_count(4)
        assert [r.get_attribute("data-reason") for r in rows.all()] == [
            "unknown_site",
            "bot",
            "unknown_site",
            "too_many_unknowns",
        ]
        expect(section.locator("tr[data-reason=bot]")).to_contain_text("Bot: the browser said it is a bot")
        expect(section.locator("tr[data-reason=too_many_unknowns]")).to_contain_text("Unrecognised browser")
        expect(section).not_to_contain_text("spam")  # another site's row
        screenshot(page, f"settings-dropped-hits-{width}")
        # A site without visits: the unknown hostname that did get hits, offered to add.
        page.goto(fresh_site.base + "/shop.example")
        suggestion = page.get_by_test_id("drop-suggestions").locator("li[data-hostname='www.exmple.com']")
        expect(suggestion).to_contain_text("23 hits from www.exmple.com were dropped: unknown site — add it?")
        screenshot(page, f"site-drop-suggestion-{width}")
        suggestion.get_by_role("button", name="Add www.exmple.com").click()
        page.wait_for_url(fresh_site.base + "/www.exmple.com")
        assert {"hostname": "www.exmple.com"} in api.get("/api/websites").json()
        expect(page.get_by_test_id("snippet")).to_be_visible()
    finally:
        page.context.close()
    assert not errors, errors


def test_public_url_is_used_in_the_snippet(browser: Browser, fresh_site: Site) -> None:
    page, errors = open_page(browser)
    try:
        login(page, fresh_site, "/settings/tracker")
        form = page.get_by_role("form", name="Public address")
        expect(form.get_by_test_id("dashboard-origin")).to_have_text(fresh_site.base)
        expect(form.get_by_test_id("snippet-base")).to_have_text(fresh_site.base)
        field = form.locator("#public-url")
        field.fill("stats.example.org")
        form.get_by_role("button", name="Set address").click()
        expect(form.locator(".form-error")).to_contain_text("full address")
        field.fill("https://stats.example.org/")
        form.get_by_role("button", name="Set address").click()
        expect(form.locator(".form-ok")).to_have_text("Saved. The snippet uses it now.")
        assert fresh_site.api.get("/api/tenant/settings").json()["public_url"] == "https://stats.example.org"
        snippet = '<script defer src="https://stats.example.org/script.js"></script>'
        expect(page.locator("[aria-label='Tracking snippet'] code")).to_have_text(snippet)
        expect(form.get_by_test_id("dashboard-origin")).to_have_text(fresh_site.base)
        screenshot(page, "settings-public-url")
        assert fresh_site.api.post("/api/websites", json_body={"hostname": "new.example"}).status == 201
        page.goto(fresh_site.base + "/new.example")
        site_snippet = snippet.replace("/script.js", "/script.js?site=new.example")  # the site's own build
        expect(page.get_by_test_id("snippet").locator("pre code")).to_have_text(site_snippet)
        page.goto(fresh_site.base + "/settings/tracker")
        page.locator("#public-url").fill("")
        page.get_by_role("button", name="Set address").click()
        expect(page.locator("[aria-label='Tracking snippet'] code")).to_have_text(
            f'<script defer src="{fresh_site.base}/script.js"></script>'
        )
    finally:
        page.context.close()
    assert not errors, errors


@pytest.fixture
def insecure_cookie_site(tmp_path: Path) -> Iterator[Site]:
    yield from start_site(tmp_path, securecookie=False)


@pytest.mark.parametrize("width", [1280, 360])
def test_unencrypted_banner_on_every_page(plain_http: Browser, insecure_cookie_site: Site, width: int) -> None:
    page, errors = open_page(plain_http, viewport={"width": width, "height": 900})
    base = f"http://{PLAIN_HOST}:{insecure_cookie_site.server.port}"
    try:
        page.goto(base + "/login")
        banner = page.get_by_test_id("unencrypted-banner")
        expect(banner).to_contain_text("This connection is not encrypted.")
        expect(page.get_by_text("Logging in will not work")).to_have_count(0)  # it does work here
        page.fill("#login-username", USERNAME)
        page.fill("#login-password", PASSWORD)
        page.click("form button[type=submit]")
        page.wait_for_url(base + "/")
        for path in ("/", f"/{SITE}", f"/{SITE}/pages", "/settings/account"):
            page.goto(base + path)
            expect(banner).to_be_visible()
        screenshot(page, f"unencrypted-banner-{width}")
    finally:
        page.context.close()
    assert not errors, errors


def clipboard_text(page: Page, server_port: int) -> str:
    """What the browser's clipboard holds, read on http://localhost (a secure context, allowed to read it)."""
    origin = f"http://localhost:{server_port}"
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=origin)
    reader = page.context.new_page()
    try:
        reader.goto(origin + "/login")
        text: str = reader.evaluate("navigator.clipboard.readText()")
        return text
    finally:
        reader.close()


def test_copy_copies_on_a_plain_http_page(plain_http: Browser, insecure_cookie_site: Site) -> None:
    # http://medama.test is not a secure context, so navigator.clipboard is missing there: the button still copies.
    page, errors = open_page(plain_http)
    port = insecure_cookie_site.server.port
    base = f"http://{PLAIN_HOST}:{port}"
    try:
        page.goto(base + "/settings/tracker")
        page.wait_for_url("**/login**")
        page.fill("#login-username", USERNAME)
        page.fill("#login-password", PASSWORD)
        page.click("form button[type=submit]")
        page.wait_for_url(base + "/settings/tracker")
        assert page.evaluate("window.isSecureContext || navigator.clipboard !== undefined") is False
        snippet = page.get_by_role("region", name="Tracking snippet")
        expect(snippet.locator("pre code")).to_have_text(f'<script defer src="{base}/script.js"></script>')
        snippet.get_by_role("button", name="Copy").click()
        expect(snippet.get_by_role("status")).to_have_text("Copied to the clipboard.")
        assert clipboard_text(page, port) == f'<script defer src="{base}/script.js"></script>'
    finally:
        page.context.close()
    assert not errors, errors


def test_the_snippet_says_when_visitors_browsers_cannot_use_its_address(browser: Browser, fresh_site: Site) -> None:
    page, errors = open_page(browser)
    try:
        # Opened on localhost (as through an SSH tunnel) with no public address: the snippet points at this computer.
        login(page, fresh_site, "/settings/tracker")
        section = page.get_by_role("region", name="Tracking snippet")
        note = section.get_by_test_id("snippet-note")
        expect(note).to_have_attribute("data-problem", "loopback")
        expect(note).to_contain_text(f"Only pages opened on the machine running the server can reach {fresh_site.base}")
        field, save = page.locator("#public-url"), page.get_by_role("button", name="Set address")
        field.fill("http://203.0.113.7:8080")
        save.click()
        expect(note).to_have_attribute("data-problem", "plain-http")
        expect(note).to_contain_text("Pages served over https:// will not load this.")
        screenshot(page, "settings-snippet-plain-http-note")
        field.fill("https://stats.example.org")
        save.click()
        expect(section.locator("code").first).to_contain_text("https://stats.example.org/script.js")
        expect(note).to_have_count(0)
        # A new site waiting for its first visit says the same under its snippet.
        field.fill("http://203.0.113.7:8080")
        save.click()
        expect(note).to_have_attribute("data-problem", "plain-http")
        assert fresh_site.api.post("/api/websites", json_body={"hostname": "new.example"}).status == 201
        page.goto(fresh_site.base + "/new.example")
        waiting = page.get_by_test_id("snippet")
        expect(waiting.get_by_test_id("snippet-note")).to_have_attribute("data-problem", "plain-http")
        waiting.get_by_test_id("snippet-note").get_by_role("link", name="Settings → Tracker").click()
        page.wait_for_url(fresh_site.base + "/settings/tracker")
    finally:
        page.context.close()
    assert not errors, errors


def test_the_login_page_never_says_https_is_needed_where_logging_in_works_without(
    plain_http: Browser, insecure_cookie_site: Site
) -> None:
    # -securecookie=false on plain HTTP: the banner says the connection is not encrypted, and the form's footnote
    # must not claim that logging in needs HTTPS or localhost, since here it works without.
    page, errors = open_page(plain_http)
    base = f"http://{PLAIN_HOST}:{insecure_cookie_site.server.port}"
    footnote = "Logging in needs HTTPS, or the dashboard opened as http://localhost."
    try:
        page.goto(base + "/login")
        expect(page.get_by_test_id("unencrypted-banner")).to_be_visible()
        expect(page.get_by_text(footnote)).to_have_count(0)
        # On localhost (a secure context) the footnote tells what other addresses need.
        page.goto(insecure_cookie_site.base + "/login")
        expect(page.get_by_text(footnote)).to_be_visible()
        expect(page.get_by_test_id("unencrypted-banner")).to_have_count(0)
    finally:
        page.context.close()
    assert not errors, errors


def test_what_is_typed_as_soon_as_the_tracker_settings_appear_is_kept(browser: Browser, fresh_site: Site) -> None:
    # The tracker settings are filled in from the server a frame after they appear; what the owner typed or ticked
    # in that frame was overwritten, and "Set address" then cleared the public address. The page's clock is
    # paused so that frame lasts as long as the test needs, then runs on.
    page, errors = open_page(browser)
    held: list[Route] = []
    try:
        page.clock.install()
        login(page, fresh_site, "/settings/account")
        page.route("**/api/tenant/settings", lambda route: held.append(route))
        with page.expect_request("**/api/tenant/settings"):
            page.get_by_role("link", name="Tracker").click()
        page.clock.pause_at(time.time() + 1)
        held[0].continue_()
        field = page.locator("#public-url")
        for _ in range(100):  # a frame at a time until the forms are drawn
            if field.count():
                break
            page.clock.run_for(16)
        field.fill("https://stats.example.org")
        page.get_by_role("checkbox", name=re.compile("Click events")).click()
        page.clock.run_for(1_000)  # every pending effect runs
        page.clock.resume()
        page.unroute("**/api/tenant/settings")
        expect(field).to_have_value("https://stats.example.org")
        expect(page.get_by_role("checkbox", name=re.compile("Click events"))).to_be_checked()
        page.get_by_role("button", name="Set address").click()
        expect(page.get_by_role("form", name="Public address").locator(".form-ok")).to_have_text(
            "Saved. The snippet uses it now."
        )
        assert fresh_site.api.get("/api/tenant/settings").json()["public_url"] == "https://stats.example.org"
    finally:
        page.context.close()
    assert not errors, errors
