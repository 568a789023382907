"""Live visitors in Chromium: the dashboard's count rises within seconds of real visits and falls as tabs close."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import expect

from tests.tracker.test_browser_insights import open_dashboard

if TYPE_CHECKING:  # conftest is pytest's to import; these names only annotate
    from playwright.sync_api import Locator, Page

    from tests.tracker.conftest import Tracker

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
LIVE_POLL_MS = 5_000  # how often the dashboard asks /live (LIVE_POLL_MS in dashboard/src/pages/live.jsx)
# A hit reaches /live a moment after its answer (the writer commits in batches): how long the dashboard may take
# to show a change, asked again each time an answer came without it.
SEEN_S = 15.0


@dataclass
class Owner:
    """The dashboard on Playwright's clock: the 5 s between its polls of /live pass at once."""

    page: Page

    def shows(self, locator: Locator, text: str | list[str]) -> None:
        """Wait until `locator` shows `text`, running the page's clock to its next poll while it does not."""
        deadline = time.monotonic() + SEEN_S
        while True:
            with self.page.expect_response(lambda r: "/live" in r.url):
                self.page.clock.run_for(LIVE_POLL_MS)
            try:
                expect(locator).to_have_text(text, timeout=1_000)
                return
            except AssertionError:
                if time.monotonic() > deadline:
                    raise


def live_pages(dashboard: Page) -> list[str]:
    return dashboard.locator("[data-live=pages] .row-label").all_inner_texts()


def test_the_count_follows_open_tabs_and_route_changes(tracker: Tracker) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    # The dashboard in a context of its own with the clock installed; the visitor's pages keep the real one.
    assert tracker.context.browser is not None
    owner_context = tracker.context.browser.new_context(locale="en-GB", timezone_id="Europe/London")
    owner_context.clock.install()
    owner = Owner(open_dashboard(tracker, tracker.medama, owner_context))
    dashboard = owner.page
    count = dashboard.locator("[data-testid=live-count]")
    panel = dashboard.locator("[data-testid=live-panel]")
    owner.shows(count, "0 visitors now")
    expect(panel).to_contain_text("No page of this site is open right now.")

    spa, spa_wire = tracker.open("/history/")
    spa_wire.wait("load", 1)
    owner.shows(count, "1 visitor now")
    # A route change in the app ends one view and starts the next: still one visitor, on the new page.
    spa.click("#about")
    spa_wire.wait("load", 2)
    spa_wire.wait("unload", 1)
    owner.shows(panel.locator("[data-live=pages] .row-label"), ["/history/about"])
    expect(count).to_have_text("1 visitor now")

    other, other_wire = tracker.open("/simple/")
    other_wire.wait("load", 1)
    owner.shows(count, "2 visitors now")
    assert sorted(live_pages(dashboard)) == ["/history/about", "/simple"]
    panel.screenshot(path=str(ARTIFACTS / "live-panel.png"))
    dashboard.locator(".toolbar").screenshot(path=str(ARTIFACTS / "live-count.png"))

    spa.close()  # pagehide reports the time: the page is left
    owner.shows(count, "1 visitor now")
    assert live_pages(dashboard) == ["/simple"]
    other.close()
    owner.shows(count, "0 visitors now")
    # What the dashboard shows is what the API says.
    assert tracker.medama.client.get("/api/website/localhost/live").json()["visitors"] == 0
    owner_context.close()
