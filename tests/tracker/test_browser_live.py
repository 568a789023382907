"""Live visitors in Chromium: the dashboard's count rises within seconds of real visits and falls as tabs close."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import expect

from tests.tracker.test_browser_insights import open_dashboard

if TYPE_CHECKING:  # conftest is pytest's to import; these names only annotate
    from playwright.sync_api import Page

    from tests.tracker.conftest import Tracker

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
# The dashboard asks every 5 s (LIVE_POLL_MS); a hit is written within a second: one poll and a margin.
SEEN_MS = 12_000


def live_pages(dashboard: Page) -> list[str]:
    return dashboard.locator("[data-live=pages] .row-label").all_inner_texts()


def test_the_count_follows_open_tabs_and_route_changes(tracker: Tracker) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    dashboard = open_dashboard(tracker, tracker.medama)
    count = dashboard.locator("[data-testid=live-count]")
    panel = dashboard.locator("[data-testid=live-panel]")
    expect(count).to_have_text("0 visitors now", timeout=SEEN_MS)
    expect(panel).to_contain_text("No page of this site is open right now.")

    spa, spa_wire = tracker.open("/history/")
    spa_wire.wait("load", 1)
    expect(count).to_have_text("1 visitor now", timeout=SEEN_MS)
    # A route change in the app ends one view and starts the next: still one visitor, on the new page.
    spa.click("#about")
    spa_wire.wait("load", 2)
    spa_wire.wait("unload", 1)
    expect(panel.locator("[data-live=pages] .row-label")).to_have_text(["/history/about"], timeout=SEEN_MS)
    expect(count).to_have_text("1 visitor now")

    other, other_wire = tracker.open("/simple/")
    other_wire.wait("load", 1)
    expect(count).to_have_text("2 visitors now", timeout=SEEN_MS)
    assert sorted(live_pages(dashboard)) == ["/history/about", "/simple"]
    panel.screenshot(path=str(ARTIFACTS / "live-panel.png"))
    dashboard.locator(".toolbar").screenshot(path=str(ARTIFACTS / "live-count.png"))

    spa.close()  # pagehide reports the time: the page is left
    expect(count).to_have_text("1 visitor now", timeout=SEEN_MS)
    assert live_pages(dashboard) == ["/simple"]
    other.close()
    expect(count).to_have_text("0 visitors now", timeout=SEEN_MS)
    # What the dashboard shows is what the API says.
    assert tracker.medama.client.get("/api/website/localhost/live").json()["visitors"] == 0
    dashboard.close()
