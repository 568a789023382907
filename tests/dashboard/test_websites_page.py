"""The websites page with more sites than one page: pages of cards, search, and one sparklines request per page view."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.dashboard.calls import Calls
from tests.dashboard.conftest import SITE, Site, login, screenshot
from tests.stores import marked

pytestmark = pytest.mark.browser

PAGE_SIZE = 24  # dashboard/src/pages/websites.jsx
HOUR = 3_600_000
SITES = sorted([SITE, *(f"site{i:02d}.example" for i in range(59))])  # 60: pages of 24, 24 and 12


def add_views(analyticsdb: Path, hostnames: list[str]) -> None:
    """A view an hour ago on each site, so their sparklines have a peak."""
    now = int(time.time() * 1000)
    with sqlite3.connect(analyticsdb) as conn, marked(conn):
        conn.executemany(
            "INSERT INTO views (bid, hostname, pathname, is_unique_user, is_unique_page, ua_browser, ua_os,"
            " ua_device_type, date_created) VALUES (?, ?, '/', 1, 1, 'Firefox', 'Linux', 'Desktop', ?)",
            [(f"many-{hostname}", hostname, now - HOUR) for hostname in hostnames],
        )


def shown(page: Page) -> list[str]:
    return page.locator("li.site-card .site-name").all_inner_texts()


def expect_page(page: Page, calls: Calls, hostnames: list[str], requests: int) -> None:
    """The cards are `hostnames`, each with its sparkline drawn, and `requests` sparklines calls were made so far,
    the last for exactly these sites."""
    cards = page.locator("li.site-card")
    expect(cards).to_have_count(len(hostnames))
    expect(page.locator("li.site-card svg.sparkline polyline.sparkline-line")).to_have_count(len(hostnames))
    assert shown(page) == hostnames
    calls.settle()
    asked = calls.to("/websites/sparklines")
    assert len(asked) == requests, asked
    assert asked[-1]["hostnames"].split(",") == hostnames
    assert asked[-1]["interval"] == "hour"
    assert not calls.to("/summary")  # no card asks for its own sparkline any more


def test_pages_search_and_one_sparklines_request_per_page(context: BrowserContext, fresh_site: Site) -> None:
    for hostname in SITES:
        if hostname != SITE:
            assert fresh_site.api.post("/api/websites", json_body={"hostname": hostname}).status == 201
    add_views(Path(fresh_site.server.config.analyticsdb), SITES[::5])
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    calls = Calls.of(page)
    login(page, fresh_site)
    expect_page(page, calls, SITES[:PAGE_SIZE], 1)
    assert calls.last("/websites") == {"summary": "true"}  # (the first one, before the login, was a 401)
    listed = {s["hostname"]: s["summary"]["visitors"] for s in fresh_site.api.get("/api/websites?summary=true").json()}
    counts = page.locator("li.site-card .site-count").all_inner_texts()
    assert counts == [str(listed[hostname]) for hostname in SITES[:PAGE_SIZE]]
    expect(page.locator(".pager", has_text="1–24 of 60")).to_be_visible()
    expect(page.get_by_role("button", name="← Previous")).to_be_disabled()
    screenshot(page, "websites-many")

    page.get_by_role("button", name="Next →").click()
    page.wait_for_url("**/?page=2")
    expect_page(page, calls, SITES[PAGE_SIZE : 2 * PAGE_SIZE], 2)
    page.get_by_role("button", name="Next →").click()
    expect_page(page, calls, SITES[2 * PAGE_SIZE :], 3)
    expect(page.locator(".pager", has_text="49–60 of 60")).to_be_visible()
    expect(page.get_by_role("button", name="Next →")).to_be_disabled()
    page.go_back()
    page.wait_for_url("**/?page=2")
    expect_page(page, calls, SITES[PAGE_SIZE : 2 * PAGE_SIZE], 4)

    search = page.get_by_role("searchbox", name="Search websites by hostname")
    search.fill("SITE1")
    matching = [hostname for hostname in SITES if "site1" in hostname]  # site10 .. site19, one page
    expect_page(page, calls, matching, 5)
    assert "q=SITE1" in page.url and "page=" not in page.url
    expect(page.locator(".pager", has_text="of 10")).to_have_count(0)  # one page: no pager
    search.fill("no-such-site")
    expect(page.get_by_text("No website matches “no-such-site”.")).to_be_visible()
    search.fill("")
    expect_page(page, calls, SITES[:PAGE_SIZE], 6)

    page.goto(fresh_site.base + "/?page=99")  # past the end: the last page
    expect(page.locator("li.site-card")).to_have_count(len(SITES) - 2 * PAGE_SIZE)
    assert not errors, errors
