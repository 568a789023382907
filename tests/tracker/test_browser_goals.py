"""Goals in Chromium: set up in Settings, reached by real page views and a real click, counted on the dashboard."""

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


def add_goal(settings: Page, kind: str, fields: dict[str, str]) -> None:
    form = settings.locator("[data-testid=goal-settings]")
    form.get_by_label("Custom event" if kind == "event" else "Page visited").check()
    for label, value in fields.items():
        form.get_by_label(label, exact=True).fill(value)
    form.get_by_role("button", name="Add goal").click()
    expect(form.locator("[role=status]")).to_contain_text("Added")


def goal_rows(dashboard: Page) -> dict[str, tuple[str, str]]:
    panel = dashboard.locator("[data-panel=goals]")
    panel.locator(".goal-row").first.wait_for()
    labels = panel.locator(".row-label").all_inner_texts()
    values = panel.locator(".row-value").all_inner_texts()
    shares = panel.locator(".row-share").all_inner_texts()
    return {label: (value, share) for label, value, share in zip(labels, values, shares, strict=True)}


def test_goals_are_set_up_reached_and_counted(tracker: Tracker) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    medama = tracker.medama
    dashboard = open_dashboard(tracker, medama)
    dashboard.goto(f"http://{medama.host}/settings/websites?website=localhost")
    add_goal(dashboard, "page", {"Page path": "/simple/about*", "Name (optional)": "Read about"})
    add_goal(dashboard, "event", {"Property name": "action", "Value (optional)": "button", "Name (optional)": "Tagged"})
    form = dashboard.locator("[data-testid=goal-settings]")
    expect(form.locator(".goal-list li")).to_have_count(2)
    form.screenshot(path=str(ARTIFACTS / "goals-settings.png"))

    page, wire = tracker.open("/simple/")
    wire.wait("load", 1)
    page.click("#about")  # a full navigation: the about page's own view
    page.wait_for_url("**/simple/about.html")
    clicks, click_wire = tracker.open("/clicks/")
    click_wire.wait("load", 1)
    clicks.click("#tagged")
    click_wire.wait("custom", 1)
    medama.wait_events(2)  # the click's two properties

    expected = {"Read about": ("1", "100.0%"), "Tagged": ("1", "100.0%")}
    for _ in range(20):  # the first of the three views is the visitor's first of the day: 1 site visitor
        dashboard.goto(f"http://{medama.host}/localhost?period=today")
        if goal_rows(dashboard) == expected:
            break
        dashboard.wait_for_timeout(250)
    assert goal_rows(dashboard) == expected
    dashboard.locator("[data-panel=goals]").screenshot(path=str(ARTIFACTS / "goals-panel.png"))
    # The API agrees, with the conversions behind the visitors.
    rows = medama.client.get("/api/website/localhost/goals").json()
    assert [(r["name"], r["conversions"], r["visitors"], r["rate"]) for r in rows] == [
        ("Read about", 1, 1, 1.0),
        ("Tagged", 1, 1, 1.0),
    ]
    dashboard.close()
