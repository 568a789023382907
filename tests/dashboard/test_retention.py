"""Retention in Chromium: set in Settings, old raw rows go, the yearly chart stays, a filtered view says so."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import BrowserContext, Page, Response, expect

from tests import stores
from tests.dashboard.calls import Calls
from tests.dashboard.conftest import ARTIFACTS, SITE, Site, login, screenshot

pytestmark = pytest.mark.browser

DAY_MS = 86_400_000
OLD_DAYS = range(45, 300, 3)  # days ago holding older views: months of a yearly chart beyond 30 days


@pytest.fixture
def tab(context: BrowserContext, fresh_site: Site) -> Iterator[Page]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    assert not errors, errors


def old_views(now_ms: int) -> list[dict[str, Any]]:
    """Two views every third day from 45 to 300 days ago (one visitor each day), at noon UTC."""
    rows = []
    for days in OLD_DAYS:
        at = (now_ms // DAY_MS - days) * DAY_MS + 12 * 3_600_000
        for i, path in enumerate(("/", "/pricing")):
            rows.append(
                {
                    "bid": f"old{days:03d}{i}",
                    "hostname": SITE,
                    "pathname": path,
                    "is_unique_user": int(i == 0),
                    "is_unique_page": 1,
                    "ua_browser": "Chrome",
                    "ua_os": "Linux",
                    "ua_device_type": "Desktop",
                    "duration_ms": 2000,
                    "date_created": at + i * 60_000,
                }
            )
    return rows


def old_raw_views(site: Site, now_ms: int) -> int:
    cutoff = (now_ms // DAY_MS - 30) * DAY_MS
    sql = f"SELECT COUNT(*) FROM views WHERE hostname = '{SITE}' AND date_created < {cutoff}"
    return int(stores.analytics_rows(site.server.config.analyticsdb, sql)[0][0])


def yearly_chart(tab: Page, site: Site) -> Any:
    """Open the dashboard on the last 12 months; the chart's summary answer (month buckets of this year,
    not of the year before, which the comparison asks for)."""
    answers: list[tuple[str, Any]] = []

    def keep(response: Response) -> None:
        query = parse_qs(urlsplit(response.url).query)
        if response.url.split("?")[0].endswith("/summary") and query.get("interval") == ["month"]:
            answers.append((query["start"][0], response))

    tab.on("response", keep)
    tab.goto(site.base + f"/{SITE}?period=year")
    expect(tab.locator(".chart-card .u-over")).to_be_visible()
    Calls.of(tab).settle()
    tab.remove_listener("response", keep)
    assert len(answers) == 2, answers
    return json.loads(max(answers, key=lambda item: item[0])[1].body())


def test_retention_set_in_settings_deletes_old_rows_and_keeps_the_yearly_chart(tab: Page, fresh_site: Site) -> None:
    now_ms = int(time.time() * 1000)
    stores.insert_views(fresh_site.server.config.analyticsdb, old_views(now_ms))
    before_rows = old_raw_views(fresh_site, now_ms)
    assert before_rows >= 2 * len(OLD_DAYS)
    login(tab, fresh_site, f"/{SITE}?period=year")
    before = yearly_chart(tab, fresh_site)
    assert sum(bucket["pageviews"] for bucket in before["interval"]) >= 2 * len(OLD_DAYS)

    tab.goto(fresh_site.base + f"/settings/websites?website={SITE}")
    form = tab.get_by_test_id("site-tracker")
    form.locator("#site-retention").fill("30")
    form.get_by_role("button", name="Save").click()
    expect(form.locator(".form-ok")).to_contain_text("Saved.")
    assert fresh_site.api.get(f"/api/websites/{SITE}/settings").json()["retentionDays"] == 30

    # The dashboard's stats reads start the background work, which deletes the old rows batch by batch.
    deadline = time.monotonic() + 90  # generous for a loaded machine; an idle one takes well under a second
    after = yearly_chart(tab, fresh_site)
    while old_raw_views(fresh_site, now_ms):
        assert time.monotonic() < deadline, "old raw rows still there"
        time.sleep(0.2)
        after = yearly_chart(tab, fresh_site)
    after = yearly_chart(tab, fresh_site)
    assert after == before  # every month of the chart, from rollups now
    screenshot(tab, "retention-yearly-chart")

    # A filtered view of the year reaches the deleted days: the dashboard says so.
    tab.goto(fresh_site.base + f"/{SITE}?period=year&browser%5Beq%5D=Chrome")
    notice = tab.get_by_test_id("partial-notice")
    expect(notice).to_be_visible()
    expect(notice).to_contain_text("These numbers count only visits from")
    screenshot(tab, "retention-filtered-notice")
    # The detail table of a filtered year too.
    tab.goto(fresh_site.base + f"/{SITE}/pages?period=year&browser%5Beq%5D=Chrome")
    expect(tab.get_by_test_id("partial-notice")).to_be_visible()
    # Without filters, or over the last 7 days, no notice.
    tab.goto(fresh_site.base + f"/{SITE}?period=7d&browser%5Beq%5D=Chrome")
    expect(tab.locator(".chart-card .u-over")).to_be_visible()
    Calls.of(tab).settle()
    expect(tab.get_by_test_id("partial-notice")).to_have_count(0)
