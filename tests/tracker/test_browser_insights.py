"""Outbound links, file downloads and not-found pages in Chromium, from real clicks and a real 404 page,
through the build `/script.js?site=` serves from the site's settings, to the dashboard's panel."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:  # conftest is pytest's to import; these names only annotate
    from playwright.sync_api import BrowserContext, Page

    from tests.tracker.conftest import Medama, Tracker

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
DEFAULT_PASSWORD = "CHANGE_ME_ON_FIRST_LOGIN"
PASSWORD = "insights-tests-1"
FEATURES = {
    "outboundLinks": True,
    "fileDownloads": True,
    "notFoundPages": True,
    "downloadExtensions": ["pdf", "zip", "key"],
}


def batches(medama: Medama, count: int) -> list[dict[str, str]]:
    """The stored custom events, one dict of properties per event (batch), oldest first."""
    found: dict[str, dict[str, str]] = {}
    for row in medama.wait_events(count):
        found.setdefault(row["batch_id"], {})[row["name"]] = row["value"]
    return list(found.values())


def properties(medama: Medama, name: str) -> dict[str, int]:
    rows = medama.client.get(f"/api/website/localhost/properties?prop_name[eq]={name}").json()
    return {row["value"]: row["events"] for row in rows}


def test_no_link_events_until_the_site_turns_them_on(tracker: Tracker) -> None:
    """The server-wide build here has click and page events only: a download is no event."""
    page, wire = tracker.open("/links/")
    wire.wait("load", 1)
    page.click("#pdf")
    page.click("#tagged-out")  # its data-m:click still counts
    wire.wait("custom", 1)
    page.wait_for_timeout(300)
    assert [hit.body["d"] for hit in wire.customs] == [{"action": "partner"}]


def test_clicks_and_not_found_pages_reach_the_panel(tracker: Tracker) -> None:
    medama, site = tracker.medama, tracker.site
    assert medama.client.patch("/api/websites/localhost/settings", json_body=FEATURES).status == 200
    here, other = site.url(""), f"127.0.0.1:{site.port}"

    page, wire = tracker.open("/links/")
    load = wire.wait("load", 1)
    load.expect_load(u=site.url("/links/"), r="", p=True, q=True, d={})  # not a not-found page: no "404"
    page.click("#out-inner")  # a child of a link to another site (opens a tab)
    page.click("#pdf")  # a file here; upper-case extension
    page.click("#zip-elsewhere")  # a file on another host: a download, not an outbound click
    page.click("#own-ext")  # an extension only this site's list has
    page.click("#inside")  # this site: nothing
    page.click("#mail")  # not http(s): nothing
    page.click("#no-href")  # no address: nothing
    page.click("#tagged-out")  # its own data-m:click, and outbound
    page.click("#out-child", button="middle")  # auxclick
    page.click("#out-child", button="right")  # ignored
    expected: list[dict[str, Any]] = [
        {"outbound-link": "https://example.org/docs", "outbound-host": "example.org"},
        {"file-download": f"{here}/files/Report.PDF?v=2", "file-type": "pdf"},
        {"file-download": f"http://{other}/files/archive.zip", "file-type": "zip"},
        {"file-download": f"{here}/files/slides.key", "file-type": "key"},
        {"action": "partner"},
        {"outbound-link": "https://example.net/", "outbound-host": "example.net"},
        {"outbound-link": "https://example.org/docs", "outbound-host": "example.org"},
    ]
    wire.wait("custom", len(expected))
    page.wait_for_timeout(300)
    assert [hit.body for hit in wire.customs] == [
        {"b": load.bid, "e": "custom", "g": "localhost", "d": props} for props in expected
    ]
    # Leaving the page by an outbound link: the event outlives the page.
    page.click("#out")
    page.wait_for_url(f"http://{other}/simple/**")
    assert batches(medama, sum(map(len, expected)) + 2) == [
        *expected,
        {"outbound-link": f"http://{other}/simple/?ref=links", "outbound-host": "127.0.0.1"},
    ]
    for extra in tracker.context.pages:
        if extra is not page:
            extra.close()

    # A real 404 (status only), and a soft one (status 200, marked with data-m:404).
    missing, missing_wire = tracker.open("/missing/old-post?from=mail")
    assert missing_wire.wait("load", 1).body["d"] == {"404": "/missing/old-post"}
    soft, soft_wire = tracker.open("/notfound/soft.html")
    assert soft_wire.wait("load", 1).body["d"] == {"404": "/notfound/soft.html"}
    medama.wait_events(sum(map(len, expected)) + 4)

    assert properties(medama, "outbound-host") == {"example.org": 2, "example.net": 1, "127.0.0.1": 1}
    assert properties(medama, "file-type") == {"pdf": 1, "zip": 1, "key": 1}
    assert properties(medama, "404") == {"/missing/old-post": 1, "/notfound/soft.html": 1}
    # The views of not-found pages are filterable like any property: which pages were they?
    pages = medama.client.get("/api/website/localhost/pages?prop_name[eq]=404&summary=true").json()
    assert sorted(row["path"] for row in pages) == ["/missing/old-post", "/notfound/soft.html"]

    panel_tabs(tracker, medama)


def open_dashboard(tracker: Tracker, medama: Medama, context: BrowserContext | None = None) -> Page:
    """The site's dashboard for today, logged in, in a new tab of `context` (by default the visitor's)."""
    body = {"password": PASSWORD, "currentPassword": DEFAULT_PASSWORD}
    assert medama.client.patch("/api/user", json_body=body).status == 200
    page = (context or tracker.context).new_page()
    page.set_viewport_size({"width": 1280, "height": 1000})
    page.goto(f"http://{medama.host}/localhost?period=today")
    page.wait_for_url("**/login**")
    page.fill("#login-username", "admin")
    page.fill("#login-password", PASSWORD)
    page.click("form button[type=submit]")
    page.wait_for_url(lambda url: "/login" not in url)
    return page


def panel_rows(page: Page, tab: str) -> dict[str, str]:
    panel = page.locator("[data-panel=events]")
    panel.get_by_role("tab", name=tab).click()
    body = panel.locator(".panel-body")
    body.locator(".row").first.wait_for()
    page.wait_for_function(
        "() => document.querySelector('[data-panel=events] .panel-body').getAttribute('aria-busy') === 'false'"
    )
    labels = body.locator(".row-label").all_inner_texts()
    values = body.locator(".row-value").all_inner_texts()
    return dict(zip(labels, values, strict=True))


def panel_tabs(tracker: Tracker, medama: Medama) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page = open_dashboard(tracker, medama)
    here, other = tracker.site.url(""), f"127.0.0.1:{tracker.site.port}"
    assert panel_rows(page, "Outbound links") == {"example.org": "2", "127.0.0.1": "1", "example.net": "1"}
    page.locator("[data-panel=events]").screenshot(path=str(ARTIFACTS / "insights-panel-outbound.png"))
    # Files on the site are shown by their path, others with their host; the full address is the title.
    assert panel_rows(page, "Downloads") == {
        "/files/Report.PDF?v=2": "1",
        "/files/slides.key": "1",
        f"{other}/files/archive.zip": "1",
    }
    title = page.locator("[data-panel=events] .row-label", has_text="Report.PDF").get_attribute("title")
    assert title == f"{here}/files/Report.PDF?v=2"
    page.locator("[data-panel=events]").screenshot(path=str(ARTIFACTS / "insights-panel-downloads.png"))
    assert panel_rows(page, "Not found") == {"/missing/old-post": "1", "/notfound/soft.html": "1"}
    page.screenshot(path=str(ARTIFACTS / "insights-dashboard.png"), full_page=True)
    # A row is a filter: the not-found page's views, with where they came from in the other panels.
    page.locator("[data-panel=events] .row-button", has_text="/missing/old-post").click()
    page.wait_for_url("**prop_value%5Beq%5D=%2Fmissing%2Fold-post**")
    assert "prop_name%5Beq%5D=404" in page.url
    page.close()
