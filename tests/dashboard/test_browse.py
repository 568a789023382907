"""The dashboard in Chromium against a seeded server: login, presets, filters, panels, detail tables."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import BrowserContext, Page, Route, expect

from tests.dashboard.calls import Calls, api_json, main_summary, metric, wait_idle
from tests.dashboard.conftest import PASSWORD, SITE, Site, login, screenshot
from tests.dashboard.seed import HOSTILE_PATH

pytestmark = pytest.mark.browser


def current_summary(site: Site, calls: Calls) -> dict[str, int]:
    """The summary the page asked for, asked again by the test: what the page shows must match."""
    query = main_summary(calls)
    body = api_json(site, f"/website/{SITE}/summary", query)
    assert isinstance(body, dict)
    return body["current"]  # type: ignore[no-any-return]


@pytest.fixture
def calls(page: Page) -> Iterator[Calls]:
    yield Calls.of(page)


def test_login_redirects_back_and_logout(context: BrowserContext, shared_site: Site) -> None:
    page = context.new_page()
    page.goto(shared_site.base + f"/{SITE}?period=7d")
    page.wait_for_url("**/login?redirect=*")
    page.fill("#login-username", "admin")
    page.fill("#login-password", "wrong-password")
    page.click("form button[type=submit]")
    expect(page.locator(".form-error")).to_contain_text("Wrong username or password")
    screenshot(page, "login")
    page.fill("#login-password", PASSWORD)
    page.click("form button[type=submit]")
    page.wait_for_url(f"**/{SITE}?period=7d")
    expect(page.locator("[data-metric=visitors] .metric-value")).not_to_have_text("–")
    # An open redirect is refused: only local paths are followed.
    page.goto(shared_site.base + "/login?redirect=//evil.example/")
    page.wait_for_url(shared_site.base + "/")
    page.get_by_role("link", name="Log out").click()
    expect(page.get_by_role("heading", name="You have been logged out.")).to_be_visible()
    page.goto(shared_site.base + "/settings/account")
    page.wait_for_url("**/login?redirect=%2Fsettings%2Faccount")


def test_401_anywhere_goes_to_login(page: Page, shared_site: Site) -> None:
    page.goto(shared_site.base + f"/{SITE}/browsers?period=30d")
    expect(page.locator("table")).to_be_visible()
    page.context.clear_cookies()
    page.get_by_role("link", name="Countries").click()
    page.wait_for_url("**/login?redirect=*")
    assert "redirect=%2Fexample.com%2Fcountries%3Fperiod%3D30d" in page.url


def test_websites_cards(page: Page, shared_site: Site) -> None:
    page.goto(shared_site.base + "/")
    card = page.locator(".site-card", has_text=SITE)
    expect(card).to_be_visible()
    listed = api_json(shared_site, "/websites", {"summary": "true"})
    assert isinstance(listed, list)
    visitors = next(s["summary"]["visitors"] for s in listed if s["hostname"] == SITE)
    expect(card.locator(".site-count")).to_have_text(str(visitors))
    expect(card.locator("svg.sparkline polyline.sparkline-line")).to_have_count(1)
    screenshot(page, "websites")


PRESET_INTERVALS = {
    "today": "hour",
    "yesterday": "hour",
    "12h": "hour",
    "24h": "hour",
    "72h": "hour",
    "7d": "day",
    "14d": "day",
    "30d": "day",
    "quarter": "week",
    "half": "month",
    "year": "month",
    "all": "month",
}


def test_presets_match_the_api(page: Page, shared_site: Site, calls: Calls) -> None:
    page.goto(shared_site.base + f"/{SITE}?period=all")
    wait_idle(page)
    for preset, interval in PRESET_INTERVALS.items():
        calls.clear()
        page.get_by_label("Date range").select_option(preset)
        wait_idle(page)
        assert (f"period={preset}" in page.url) == (preset != "today")
        main = main_summary(calls)
        assert main["interval"] == interval, (preset, main)
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d", main["start"]), main
        body = api_json(shared_site, f"/website/{SITE}/summary", main)
        assert isinstance(body, dict)
        current = body["current"]
        expect(page.locator("[data-metric=pageviews] .metric-value")).to_have_text(_compact(current["pageviews"]))
        expect(page.locator("[data-metric=visitors] .metric-value")).to_have_text(_compact(current["visitors"]))
        # The chart has one point per bucket of the API's interval series.
        assert len(body["interval"]) >= 1
    # 30 days: 30 day buckets, starting at local midnight 29 days ago.
    page.get_by_label("Date range").select_option("30d")
    wait_idle(page)
    screenshot(page, "dashboard-30d")


def _compact(n: int) -> str:
    if n < 1000:
        return str(n)
    text = f"{n / 1000:.1f}".rstrip("0").rstrip(".")
    return f"{text}K"


def test_custom_range_and_interval(page: Page, shared_site: Site, calls: Calls) -> None:
    page.goto(shared_site.base + f"/{SITE}?period=7d")
    wait_idle(page)
    page.get_by_label("Date range").select_option("custom")
    form = page.get_by_role("form", name="Custom date range")
    expect(form).to_be_visible()
    # Local days 20 and 10 days ago, as the browser (in TIMEZONE) sees them.
    start, end = page.evaluate(
        """() => [20, 10].map((n) => {
          const t = new Date();
          t.setDate(t.getDate() - n);
          const pad = (v) => String(v).padStart(2, '0');
          return `${t.getFullYear()}-${pad(t.getMonth() + 1)}-${pad(t.getDate())}`;
        })"""
    )
    form.locator("input[name=start]").fill(start)
    form.locator("input[name=end]").fill(end)
    calls.clear()
    form.get_by_role("button", name="Apply").click()
    page.wait_for_url(f"**period=custom&start={start}&end={end}")
    wait_idle(page)
    main = main_summary(calls)
    assert main["start"].startswith(f"{start}T00:00:00")
    assert main["end"].startswith(f"{end}T23:59:59")
    assert main["interval"] == "day"
    expect(page.locator("[data-metric=pageviews] .metric-value")).to_have_text(
        _compact(current_summary(shared_site, calls)["pageviews"])
    )
    # The previous period is the 11 days before, with the same interval (it is drawn on the chart too).
    previous = [q for q in calls.to("/summary") if q["end"] < main["start"]]
    assert previous and all(q.get("interval") == "day" for q in previous)
    # Interval override.
    calls.clear()
    page.get_by_label("Interval").select_option("week")
    wait_idle(page)
    assert "interval=week" in page.url
    assert any(q.get("interval") == "week" for q in calls.to("/summary"))
    # A bad range is refused in the form.
    page.get_by_label("Date range").select_option("custom")
    form.locator("input[name=start]").fill(end)
    form.locator("input[name=end]").fill(start)
    form.get_by_role("button", name="Apply").click()
    expect(form.locator(".form-error")).to_contain_text("after the end date")


def test_metric_boxes_and_chart(page: Page, shared_site: Site, calls: Calls) -> None:
    page.goto(shared_site.base + f"/{SITE}?period=14d")
    wait_idle(page)
    expect(page.locator(".chart canvas")).to_have_count(1)
    # Both series are drawn: this period and the previous one.
    expect(page.locator(".chart .u-legend .u-series")).to_have_count(3)
    expect(page.locator(".chart .u-legend")).to_contain_text("Previous period")
    for name in ("pageviews", "duration", "bounces", "visitors"):
        page.locator(f"[data-metric={name}]").click()
        expect(page.locator(f"[data-metric={name}]")).to_have_attribute("aria-pressed", "true")
        if name != "visitors":
            assert f"chart%5Bstat%5D={name}" in page.url or f"chart[stat]={name}" in page.url
    page.get_by_role("button", name="Bar").click()
    assert "chart%5Btype%5D=bar" in page.url or "chart[type]=bar" in page.url
    expect(page.locator(".chart canvas")).to_have_count(1)
    # Change badges: the previous-period numbers come from the API, bounce rate in points.
    expect(page.locator("[data-metric=bounces] .change")).to_contain_text(re.compile(r"pts"))
    expect(page.locator("[data-metric=visitors] .change")).to_contain_text("%")
    # Hover the chart: the legend shows the bucket and both values.
    box = page.locator(".chart .u-over").bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5)
    expect(page.locator(".chart .u-legend .u-series").first).not_to_contain_text("–")


FIELD_CASES = [
    ("path", "eq", "/pricing"),
    ("referrer", "neq", "Google"),
    ("utm_source", "contains", "news"),
    ("utm_medium", "not_contains", "mail"),
    ("utm_campaign", "starts_with", "spring"),
    ("browser", "not_starts_with", "Fire"),
    ("os", "ends_with", "OS"),
    ("device", "not_ends_with", "top"),
    ("country", "in", "Germany,France"),
    ("language", "not_in", "German"),
    ("prop_name", "eq", "plan"),
    ("prop_value", "eq", "pro"),
]


def test_every_filter_field_and_operator(page: Page, shared_site: Site, calls: Calls) -> None:
    page.goto(shared_site.base + f"/{SITE}?period=30d")
    wait_idle(page)
    for index, (field, op, value) in enumerate(FIELD_CASES):
        calls.clear()
        page.get_by_role("button", name="+ Add filter").click()
        form = page.get_by_role("form", name="Add filter")
        form.locator("select[name=field]").select_option(field)
        form.locator("select[name=op]").select_option(op)
        form.locator("input[name=value]").fill(value)
        form.get_by_role("button", name="Apply").click()
        wait_idle(page)
        main = main_summary(calls)
        assert main.get(f"{field}[{op}]") == value, (field, op, main)
        # Every panel's call carries the filter too.
        assert calls.last("/pages").get(f"{field}[{op}]") == value
        expect(page.locator(".chip")).to_have_count(index + 1)
        expect(page.locator(".chip").nth(index)).to_contain_text(value)
        shown = metric(page, "pageviews")
        assert shown == _compact(current_summary(shared_site, calls)["pageviews"]), (field, op)
    assert page.locator(".chip").count() == len(FIELD_CASES)
    screenshot(page, "dashboard-filters")
    # Remove them one by one with the chip buttons.
    for field, op, _value in FIELD_CASES:
        calls.clear()
        page.locator(".chip").first.get_by_role("button").click()
        wait_idle(page)
        assert f"{field}%5B{op}%5D" not in page.url
        assert f"{field}[{op}]" not in calls.last("/pages")
    expect(page.locator(".chip")).to_have_count(0)


def test_numbers_of_the_last_answer_are_marked_busy_until_the_new_one(
    page: Page, shared_site: Site, calls: Calls
) -> None:
    """A filter applied while its summary is on its way: the numbers and the chart shown are the last answer's, so they
    are marked busy (aria-busy) until it comes, as the panels are; wait_idle then waits for them too."""
    page.goto(shared_site.base + f"/{SITE}?period=30d")
    wait_idle(page)
    before = metric(page, "pageviews")
    held: list[Route] = []
    page.route(lambda url: "/summary?" in url and "path%5Beq%5D" in url, lambda route: held.append(route))
    page.get_by_role("button", name="+ Add filter").click()
    form = page.get_by_role("form", name="Add filter")
    form.locator("select[name=field]").select_option("path")
    form.locator("select[name=op]").select_option("eq")
    form.locator("input[name=value]").fill("/pricing")
    calls.clear()
    form.get_by_role("button", name="Apply").click()
    calls.wait_for("/summary", 1)
    assert held, "the filtered summary was not asked for"
    metrics, chart = page.locator(".metrics"), page.locator(".chart-card")
    expect(metrics).to_have_attribute("aria-busy", "true")
    expect(chart).to_have_attribute("aria-busy", "true")
    assert metric(page, "pageviews") == before  # the last answer's number, shown as busy
    for route in held:
        route.continue_()
    page.unroute_all()
    wait_idle(page)
    expect(metrics).to_have_attribute("aria-busy", "false")
    expect(chart).to_have_attribute("aria-busy", "false")
    assert metric(page, "pageviews") == _compact(current_summary(shared_site, calls)["pageviews"])


def test_row_clicks_filter_and_panels_match_the_api(page: Page, shared_site: Site, calls: Calls) -> None:
    page.goto(shared_site.base + f"/{SITE}?period=30d")
    wait_idle(page)
    pages_panel = page.locator("[data-panel=pages]")
    query = calls.last("/pages")
    assert query["summary"] == "true" and query["limit"] == "5"
    rows = api_json(shared_site, f"/website/{SITE}/pages", query)
    assert isinstance(rows, list)
    labels = pages_panel.locator(".row-label")
    expect(labels).to_have_count(len(rows))
    assert labels.all_inner_texts() == [r["path"] for r in rows]
    # Tabs switch datasets and live in the URL.
    sources = page.locator("[data-panel=sources]")
    sources.get_by_role("tab", name="Mediums").click()
    wait_idle(page)
    assert "panel%5Bsources%5D=mediums" in page.url
    # The empty group shows as "Direct / None"; clicking it filters on the empty value.
    sources.get_by_role("tab", name="Referrers").click()
    wait_idle(page)
    assert calls.last("/referrers")["grouped"] == "true"
    calls.clear()
    sources.locator(".row-button", has_text="Direct / None").click()
    wait_idle(page)
    assert calls.last("/summary")["referrer[eq]"] == ""
    assert calls.last("/referrers")["grouped"] == "false"  # one referrer picked: raw hosts
    expect(page.locator(".chip")).to_contain_text("Direct / None")
    page.locator(".chip button").click()
    wait_idle(page)
    # Countries show a country-code chip from the name; an unknown name has none.
    geo = page.locator("[data-panel=geo]")
    expect(geo.locator(".row-label", has_text="Germany")).to_have_text("DE Germany")
    expect(geo.locator(".row-label", has_text="Unknown")).to_have_text("Unknown")
    # Languages switch to dialects once one language is picked.
    geo.get_by_role("tab", name="Languages").click()
    wait_idle(page)
    geo.locator(".row-button", has_text="English").click()
    wait_idle(page)
    assert calls.last("/languages").get("locale") == "true"
    page.locator(".chip button").click()
    wait_idle(page)
    # Properties: pick a name, then its values are listed; a value click adds prop_value.
    props = page.locator("[data-panel=properties]")
    props.get_by_label("Property").select_option("theme")
    wait_idle(page)
    # (The links-and-errors panel asks /properties too, for its own property names.)
    assert "theme" in [q.get("prop_name[eq]") for q in calls.to("/properties")]
    values = props.locator(".row-label").all_inner_texts()
    assert sorted(values) == ["dark", "light"]
    props.locator(".row-button", has_text="dark").click()
    wait_idle(page)
    assert calls.last("/summary").get("prop_value[eq]") == "dark"


def test_hostile_strings_are_text(page: Page, shared_site: Site) -> None:
    page.goto(shared_site.base + f"/{SITE}/pages?period=24h")
    wait_idle(page)
    expect(page.locator("table")).to_contain_text(HOSTILE_PATH)
    assert page.evaluate("window.__xss") is None
    assert page.locator("table img").count() == 0


DETAIL_COLUMNS = {
    "pages": ["Path", "Visitors", "Visitors %", "Views", "Views %", "Bounce %", "Duration"],
    "time": ["Path", "Visitors", "Duration", "Q1 (25%)", "Q3 (75%)", "Duration %"],
    "referrers": ["Referrer", "Visitors", "Visitors %", "Bounce %", "Duration"],
    "sources": ["UTM Source", "Visitors", "Visitors %", "Bounce %", "Duration"],
    "mediums": ["UTM Medium", "Visitors", "Visitors %", "Bounce %", "Duration"],
    "campaigns": ["UTM Campaign", "Visitors", "Visitors %", "Bounce %", "Duration"],
    "browsers": ["Browser", "Visitors", "Visitors %", "Bounce %", "Duration"],
    "os": ["OS", "Visitors", "Visitors %", "Bounce %", "Duration"],
    "devices": ["Device", "Visitors", "Visitors %", "Bounce %", "Duration"],
    "countries": ["Country", "Visitors", "Visitors %", "Bounce %", "Duration"],
    "languages": ["Language", "Visitors", "Visitors %", "Bounce %", "Duration"],
    "properties": ["Name", "Events", "Events %"],
}


def test_detail_tables(page: Page, shared_site: Site, calls: Calls) -> None:
    page.goto(shared_site.base + f"/{SITE}?period=30d&browser%5Bneq%5D=Safari")
    wait_idle(page)
    calls.clear()
    page.locator("[data-panel=pages]").get_by_role("link", name="All pages →").click()
    page.wait_for_url(f"**/{SITE}/pages?period=30d&browser%5Bneq%5D=Safari")
    for name, columns in DETAIL_COLUMNS.items():
        if name != "pages":
            calls.clear()
            page.locator("nav[aria-label=Datasets]").get_by_role("link", name=_title(name), exact=True).click()
            page.wait_for_url(re.compile(rf"/{SITE}/{name}\?"))
        wait_idle(page)
        headers = [t.strip(" ▲▼") for t in page.locator("thead th").all_inner_texts()]
        assert headers == columns, name
        query = calls.last(f"/{name}")
        assert query["limit"] == "26" and "offset" not in query, query
        assert query["browser[neq]"] == "Safari"
        rows = api_json(shared_site, f"/website/{SITE}/{name}", query)
        assert isinstance(rows, list)
        expect(page.locator("tbody tr")).to_have_count(min(25, len(rows)))
        if name == "countries":
            screenshot(page, "detail-countries")
    # Server-side pages: 34 paths, 25 a page.
    page.locator("nav[aria-label=Datasets]").get_by_role("link", name="Pages", exact=True).click()
    page.wait_for_url(re.compile(rf"/{SITE}/pages\?"))
    wait_idle(page)
    first_page = page.locator("tbody th").all_inner_texts()
    calls.clear()
    page.get_by_role("button", name="Next →").click()
    wait_idle(page)
    query = calls.last("/pages")
    assert query["offset"] == "25" and query["limit"] == "26"
    rows = api_json(shared_site, f"/website/{SITE}/pages", query)
    assert isinstance(rows, list)
    assert page.locator("tbody th").all_inner_texts() == [r["path"] for r in rows][:25]
    assert not set(first_page) & set(page.locator("tbody th").all_inner_texts())
    expect(page.get_by_role("button", name="Next →")).to_be_disabled()
    page.get_by_role("button", name="← Previous").click()
    wait_idle(page)
    # Rows per page.
    calls.clear()
    page.get_by_label("Rows per page").select_option("10")
    wait_idle(page)
    assert calls.last("/pages")["limit"] == "11"
    expect(page.locator("tbody tr")).to_have_count(10)
    # Sorting by a column: ascending duration over every row, then descending.
    calls.clear()
    page.locator("thead button[data-column=duration]").click()
    wait_idle(page)
    assert calls.last("/pages")["limit"] == "5000"
    expect(page.locator("thead th[aria-sort=descending]")).to_have_count(1)
    all_rows = api_json(shared_site, f"/website/{SITE}/pages", calls.last("/pages"))
    assert isinstance(all_rows, list)
    durations = sorted((r.get("duration", 0) for r in all_rows), reverse=True)[:10]
    shown = page.locator("tbody tr td:nth-child(7)").all_inner_texts()
    assert shown == [_duration(d) for d in durations]
    page.locator("thead button[data-column=duration]").click()  # again: ascending
    wait_idle(page)
    expect(page.locator("thead th[aria-sort=ascending]")).to_have_count(1)
    shown = page.locator("tbody tr td:nth-child(7)").all_inner_texts()
    assert shown == [_duration(d) for d in sorted(r.get("duration", 0) for r in all_rows)[:10]]
    page.locator("thead button[data-column=label]").click()
    wait_idle(page)
    expect(page.locator("thead th[aria-sort=ascending]")).to_have_count(1)
    labels = page.locator("tbody th").all_inner_texts()
    assert labels == sorted(labels, key=str.lower)
    screenshot(page, "detail-pages")
    # A row click filters the dashboard; the back link keeps the query.
    page.locator("tbody th button").first.click()
    page.wait_for_url(re.compile(rf"/{SITE}\?.*path%5Beq%5D="))
    assert "browser%5Bneq%5D=Safari" in page.url and "sort=" not in page.url
    page.goto(shared_site.base + f"/{SITE}/os?period=7d&os%5Bneq%5D=iOS")
    page.get_by_role("link", name=f"← Back to {SITE}").click()
    page.wait_for_url(f"**/{SITE}?period=7d&os%5Bneq%5D=iOS")


def _duration(ms: int) -> str:
    """The dashboard's duration format (spec §4.5)."""
    if ms < 50:
        return "N/A"
    if ms < 950:
        return f"0.{math.floor(ms / 100 + 0.5)}s"  # JavaScript's Math.round, not banker's rounding
    total = math.floor(ms / 1000 + 0.5)
    hours, minutes, seconds = total // 3600, total % 3600 // 60, total % 60
    if hours:
        return f"{hours}h{minutes}m{seconds}s"
    return f"{minutes}m{seconds}s" if minutes else f"{seconds}s"


def _title(name: str) -> str:
    return {"os": "OS"}.get(name, name.capitalize())


def test_auto_refresh_for_live_ranges(context: BrowserContext, shared_site: Site) -> None:
    page = context.new_page()
    page.clock.install()
    calls = Calls(page)
    login(page, shared_site, f"/{SITE}?period=24h")
    wait_idle(page)
    before = len(calls.to("/summary"))
    page.clock.fast_forward(61_000)
    calls.wait_for("/summary", before + 1)  # the refresh asks again (a loaded machine may take a while)
    wait_idle(page)
    # A range in the past does not refresh.
    page.goto(shared_site.base + f"/{SITE}?period=yesterday")
    wait_idle(page)
    before = len(calls.to("/summary"))
    page.clock.fast_forward(121_000)
    page.wait_for_timeout(500)
    assert len(calls.to("/summary")) == before
