"""Entry and exit pages in Chromium: real links between pages, an SPA's pushState routes, a reload, the back
button (page loads, the back/forward cache, an SPA) and a new tab, counted
by the API and shown on the dashboard (screenshots in tests/artifacts/)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.tracker.test_browser_insights import open_dashboard

if TYPE_CHECKING:  # conftest is pytest's to import; these names only annotate
    from playwright.sync_api import Page, Route

    from tests.tracker.conftest import Tracker

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
GOOGLE = "https://www.google.com/search?q=medama"

# One visitor: from a search engine to /simple/, a link to /simple/about.html, then the address bar to the
# SPA /history/ (no referrer), its About and Contact routes (pushState), and a reload of Contact.
# Entries: /simple (the search), /history (typed) and the reload of /history/contact: a reload repeats the
# referrer its document was loaded with, here none (docs/insights.md: where the method errs).
ENTRIES = {"/history": 1, "/simple": 1, "/history/contact": 1}
# Exits: /simple/about.html 1 - 0 (left by the address bar), /history/contact 2 - 0 (the view and its reload:
# one exit too many); the others were each followed by a view that came from them.
EXITS = {"/history/contact": 2, "/simple/about.html": 1}


def panel_rows(page: Page, tab: str) -> dict[str, str]:
    panel = page.locator("[data-panel=pages]")
    panel.get_by_role("tab", name=tab).click()
    page.wait_for_function(
        "() => document.querySelector('[data-panel=pages] .panel-body').getAttribute('aria-busy') === 'false'"
    )
    body = panel.locator(".panel-body")
    labels = body.locator(".row-label").all_inner_texts()
    values = body.locator(".row-value").all_inner_texts()
    return dict(zip(labels, values, strict=True))


def test_entries_and_exits_after_real_navigations(tracker: Tracker) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    medama = tracker.medama
    page, wire = tracker.open("/simple/", referer=GOOGLE)
    wire.wait("load", 1)
    page.click("#about")  # a full navigation: the referrer is /simple/
    page.wait_for_url("**/simple/about.html")
    medama.wait_views(lambda v: len(v) == 2, "two page views")
    page.goto(tracker.site.url("/history/"))  # the address bar: no referrer
    medama.wait_views(lambda v: len(v) == 3, "the SPA's first view")
    page.click("#about")  # pushState: the tracker sends the previous route as the referrer
    medama.wait_views(lambda v: len(v) == 4, "the About route")
    page.click("#contact")
    medama.wait_views(lambda v: len(v) == 5, "the Contact route")
    page.reload()
    rows = medama.wait_views(lambda v: len(v) == 6, "the reload")
    # Only internal referrers keep a path, the path of the page they name.
    assert [(row["pathname"], row["referrer_host"], row["referrer_path"]) for row in rows] == [
        ("/simple", "www.google.com", ""),
        ("/simple/about.html", "", "/simple"),
        ("/history", "", ""),
        ("/history/about", "", "/history"),
        ("/history/contact", "", "/history/about"),
        ("/history/contact", "", ""),
    ]

    entries = medama.client.get("/api/website/localhost/entries?summary=true").json()
    assert {row["path"]: row["entries"] for row in entries} == ENTRIES
    assert sum(row["entries_percentage"] for row in entries) == pytest.approx(1, abs=1e-3)
    exits = medama.client.get("/api/website/localhost/exits").json()
    assert {row["path"]: row["exits"] for row in exits} == EXITS
    assert [row["path"] for row in exits] == list(EXITS)  # most exits first
    assert exits[0]["exit_percentage"] == 1.0 and exits[0]["pageviews"] == 2

    dashboard = open_dashboard(tracker, medama)
    assert panel_rows(dashboard, "Entries") == {path: str(n) for path, n in ENTRIES.items()}
    dashboard.locator("[data-panel=pages]").screenshot(path=str(ARTIFACTS / "entries-panel.png"))
    # While the Exits list is on its way, the panel waits (busy, no rows): it never draws the Entries rows in
    # the Exits column (a zero for each), which it did for a moment and a test could read.
    held: list[Route] = []

    def hold(route: Route) -> None:
        held.append(route)

    dashboard.route(lambda url: "/exits?" in url, hold)
    dashboard.locator("[data-panel=pages]").get_by_role("tab", name="Exits").click()
    for _ in range(100):
        if held:
            break
        dashboard.wait_for_timeout(50)
    assert held, "the dashboard did not ask for the exits"
    body = dashboard.locator("[data-panel=pages] .panel-body")
    assert body.get_attribute("aria-busy") == "true"
    assert body.locator(".row").count() == 0
    held[0].continue_()
    dashboard.unroute_all()
    assert panel_rows(dashboard, "Exits") == {path: str(n) for path, n in EXITS.items()}
    dashboard.locator("[data-panel=pages]").screenshot(path=str(ARTIFACTS / "exits-panel.png"))
    # The detail table, with Export CSV as every list.
    dashboard.goto(f"http://{medama.host}/localhost/exits?period=today")
    table = dashboard.locator(".detail table.table")
    table.locator("tbody tr").first.wait_for()
    assert table.locator("tbody tr").count() == len(EXITS)
    assert (
        dashboard.get_by_role("button", name="Export CSV").count()
        + dashboard.get_by_role("link", name="Export CSV").count()
        >= 1
    )
    dashboard.locator(".detail").screenshot(path=str(ARTIFACTS / "exits-detail.png"))
    dashboard.close()


def counted(tracker: Tracker, views: int) -> tuple[dict[str, int], dict[str, int]]:
    """Entries and exits per path once `views` page views are stored."""
    medama = tracker.medama
    medama.wait_views(lambda v: len(v) == views, f"{views} page views")
    entries = medama.client.get("/api/website/localhost/entries").json()
    exits = medama.client.get("/api/website/localhost/exits").json()
    return {row["path"]: row["entries"] for row in entries}, {row["path"]: row["exits"] for row in exits}


# history.back() from a task of its own: an evaluate that itself navigates away can fail with "Execution context was
# destroyed" when the page is left before the evaluate's answer comes back.
BACK = "setTimeout(() => history.back(), 0)"


def test_back_across_page_loads_counts_a_second_entry(tracker: Tracker) -> None:
    """history.back() to the first page when the browser loads it again (no back/forward cache): the load
    repeats the page's original referrer, the search engine, so the visit counts two entries and two exits."""
    page, wire = tracker.open("/simple/", referer=GOOGLE)
    wire.wait("load", 1)
    page.click("#about")
    wire.wait("load", 2)
    page.evaluate(BACK)
    back = wire.wait("load", 3)
    assert back.body["r"] == GOOGLE
    assert counted(tracker, 3) == ({"/simple": 2}, {"/simple": 1, "/simple/about.html": 1})


def test_back_from_the_back_forward_cache_moves_the_exit(bfcache_tracker: Tracker) -> None:
    """history.back() to a page restored from the back/forward cache: its view comes from the page itself,
    so no second entry, and the exit is counted on the page left by Back, not where the visitor stayed."""
    bfcache_tracker.context.add_init_script(
        "addEventListener('pageshow', (event) => { if (event.persisted) window.restored = true; })"
    )
    page, wire = bfcache_tracker.open("/simple/", referer=GOOGLE)
    first = wire.wait("load", 1)
    page.click("#about")
    wire.wait("load", 2)
    page.evaluate(BACK)
    back = wire.wait("load", 3)
    assert page.evaluate("window.restored") is True, "the page was not restored from the back/forward cache"
    assert back.body["r"] == first.body["u"]
    assert counted(bfcache_tracker, 3) == ({"/simple": 1}, {"/simple/about.html": 1})


def test_back_in_a_single_page_app_is_an_ordinary_route_change(tracker: Tracker) -> None:
    """history.back() between an SPA's routes: the tracker sends the route left as the referrer, as for a
    link, so the visit has one entry and its exit on the route where the visitor stayed."""
    page, wire = tracker.open("/history/", referer=GOOGLE)
    wire.wait("load", 1)
    page.click("#about")
    about = wire.wait("load", 2)
    page.evaluate("history.back()")
    back = wire.wait("load", 3)
    assert back.body["r"] == about.body["u"]
    assert counted(tracker, 3) == ({"/history": 1}, {"/history": 1})


def test_a_link_opened_in_a_new_tab(tracker: Tracker) -> None:
    """A link opened in a new tab (Ctrl+click) is a departure from its page: that page counts no exit
    though the visitor is still on it in the first tab. Once the first tab moves on as well, the visit in
    two tabs has two exits. A page typed into a new tab is an entry."""
    page, wire = tracker.open("/simple/", referer=GOOGLE)
    wire.wait("load", 1)
    with tracker.context.expect_page() as opened:
        page.click("#about", modifiers=["Control"])
    opened.value.wait_for_load_state()
    assert page.url == tracker.site.url("/simple/")  # the first tab stayed
    assert counted(tracker, 2) == ({"/simple": 1}, {"/simple/about.html": 1})
    page.click("#about")
    wire.wait("load", 2)
    assert counted(tracker, 3) == ({"/simple": 1}, {"/simple/about.html": 2})
    typed = tracker.context.new_page()
    typed.goto(tracker.site.url("/simple/"))
    assert counted(tracker, 4) == ({"/simple": 2}, {"/simple/about.html": 2})
