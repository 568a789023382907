"""A stranger's first run (issue 13), the parts that need nothing new from the server: login on a plain-HTTP
address, flags without emoji fonts, "new" change badges, chart legend values, tabs at 360 px, metric definitions
by tap and keyboard, and the bounce-rate floor on hand-computed data.

The contract features (first-login password, current password, dropped hits, public URL, -securecookie=false)
are tested in test_contract_ui.py.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Browser, BrowserContext, Locator, Page, expect

from tests.dashboard.calls import wait_idle
from tests.dashboard.conftest import (
    PASSWORD,
    PLAIN_HOST,
    SITE,
    TIMEZONE,
    USERNAME,
    Site,
    login,
    new_context,
    screenshot,
    start_site,
)
from tests.dashboard.seed import insert_views
from tests.dashboard.test_look import CONTRAST_JS

pytestmark = pytest.mark.browser

REGIONAL_INDICATORS = re.compile("[\U0001f1e6-\U0001f1ff]")
BOUNCES = "bounce.example"  # hand-computed views (below)
FRESH = "fresh.example"  # views today only: nothing to compare with


def local_ms(day: date, hour: int) -> int:
    return int(datetime.combine(day, time(hour), ZoneInfo(TIMEZONE)).timestamp() * 1000)


# Two local days ten days ago. Day 1, per country (u = unique visitor of the day, durations in ms):
#   Germany: u 50, u 100, u 3000, u 5000, u 5001, u 20000, u none, and a repeat view of 1000 (not unique)
#            → 6 timed first visits, bounces 100/3000/5000 (both ends inclusive; 50 is under 0.1 s) = 3
#   France:  u 1000 ×5 → 5 timed first visits: under the floor of 6, the API answers 0
#   Spain:   u 10000 ×6 → 6 timed, no bounce: a true 0
#   Japan:   u 1000, 1000, 6000, none ×4 → 3 timed: the API answers 0 although 2 of 3 bounced
# Day 2: Germany u 8000 ×2 (path /de).
# Both days: visitors 7+2+5+6+7 = 27 (the sum of each day's uniques); views 28; timed first visits 8+5+6+3 = 22,
# bounces 3+5+0+2 = 10 → 45.5 %; median of all 23 measured times (repeat view included) = 5000 ms → "5s".
# Countries over both days: Germany 3 of 8 → 37.5 %; France "—" (5 visitors: certainly under the floor);
# Spain and Japan "—" (6 and 7 visitors: the API's 0 cannot be told from its floor).
def hand_views(day1: date) -> list[dict[str, object]]:
    at1, at2 = local_ms(day1, 12), local_ms(day1 + timedelta(days=1), 12)
    views: list[dict[str, object]] = []

    def add(country: str, durations: list[int | None], unique: int = 1, at: int = at1, path: str = "/") -> None:
        for d in durations:
            views.append(
                {"country": country, "duration_ms": d, "is_unique_user": unique, "date_created": at, "pathname": path}
            )

    add("Germany", [50, 100, 3000, 5000, 5001, 20000, None])
    add("Germany", [1000], unique=0)
    add("France", [1000] * 5, path="/fr")
    add("Spain", [10000] * 6)
    add("Japan", [1000, 1000, 6000, None, None, None, None])
    add("Germany", [8000, 8000], at=at2, path="/de")
    return views


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    for seeded in start_site(tmp_path_factory.mktemp("journey")):
        db = Path(seeded.server.config.analyticsdb)
        for hostname in (BOUNCES, FRESH):
            assert seeded.api.post("/api/websites", json_body={"hostname": hostname}).status == 201
        insert_views(db, BOUNCES, hand_views(date.today() - timedelta(days=10)))
        now = datetime.now(ZoneInfo(TIMEZONE))
        midnight = datetime.combine(now.date(), time(0), ZoneInfo(TIMEZONE))
        today_ms = int(max(now - timedelta(minutes=1), midnight).timestamp() * 1000)
        insert_views(db, FRESH, [{"date_created": today_ms}] * 3)  # no measured time: nothing to show either day
        yield seeded


@pytest.fixture
def page(browser: Browser, site: Site) -> Iterator[Page]:
    context = new_context(browser)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    login(tab, site)
    yield tab
    context.close()
    assert not errors, errors


def custom_range(day1: date) -> str:
    return f"period=custom&start={day1.isoformat()}&end={(day1 + timedelta(days=1)).isoformat()}"


@pytest.mark.parametrize("width", [1280, 360])
def test_login_on_plain_http_says_what_to_do_and_why_it_failed(plain_http: Browser, site: Site, width: int) -> None:
    context = new_context(plain_http, viewport={"width": width, "height": 900})
    try:
        page = context.new_page()
        port = site.server.port
        page.goto(f"http://{PLAIN_HOST}:{port}/{SITE}")
        page.wait_for_url("**/login?redirect=*")
        assert page.evaluate("window.isSecureContext") is False
        # Before anyone types: the advice, with the tunnel for this very server.
        advice = page.get_by_role("region", name="Logging in will not work on this address")
        expect(advice).to_be_visible()
        expect(advice).to_contain_text("-autossl")
        expect(advice).to_contain_text("-tlscert")
        expect(advice).to_contain_text("TLS proxy")
        command = f"ssh -L {port}:localhost:{port} user@{PLAIN_HOST}"
        expect(advice.get_by_label("SSH tunnel command")).to_have_text(command)
        expect(advice.get_by_role("link", name=f"http://localhost:{port}/")).to_have_attribute(
            "href", f"http://localhost:{port}/"
        )
        if width == 360:
            assert page.evaluate("document.documentElement.scrollWidth") <= 360
        screenshot(page, f"login-plain-http-{width}")
        # The form still works, and a login the browser cannot keep says so instead of clearing itself.
        page.fill("#login-username", USERNAME)
        page.fill("#login-password", PASSWORD)
        page.click("form button[type=submit]")
        expect(page.locator(".form-error")).to_contain_text("your browser refused the session cookie")
        expect(page.locator(".form-error")).to_contain_text(f"plain HTTP at {PLAIN_HOST}:{port}")
        assert "/login" in page.url
        expect(page.locator("#login-username")).to_have_value(USERNAME)
        screenshot(page, f"login-cookie-refused-{width}")
    finally:
        context.close()


def test_login_on_localhost_shows_no_advice(context: BrowserContext, site: Site) -> None:
    page = context.new_page()
    page.goto(site.base + "/login")
    expect(page.locator("#login-username")).to_be_visible()
    expect(page.get_by_text("Logging in will not work")).to_have_count(0)
    expect(page.get_by_test_id("unencrypted-banner")).to_have_count(0)


def test_country_flags_are_visible_without_an_emoji_font(page: Page, site: Site) -> None:
    page.goto(site.base + f"/{SITE}/countries?period=30d")
    wait_idle(page)
    germany = page.locator("tbody th", has_text="Germany")
    chip = germany.locator(".flag")
    expect(chip).to_have_text("DE")
    box = chip.bounding_box()
    assert box is not None and box["width"] > 10 and box["height"] > 8
    texts = page.locator("tbody th").all_inner_texts()
    assert not any(REGIONAL_INDICATORS.search(t) for t in texts), texts
    expect(page.locator("tbody th", has_text="Unknown").locator(".flag")).to_have_count(0)
    page.goto(site.base + f"/{SITE}?period=30d")
    wait_idle(page)
    geo = page.locator("[data-panel=geo] .row-label").all_inner_texts()
    assert not any(REGIONAL_INDICATORS.search(t) for t in geo), geo
    expect(page.locator("[data-panel=geo] .flag").first).to_have_text(re.compile(r"^[A-Z]{2}$"))


def test_change_badges_say_new_and_none(page: Page, site: Site) -> None:
    page.goto(site.base + f"/{FRESH}")
    wait_idle(page)
    expect(page.locator("[data-metric=visitors] .metric-value")).to_have_text("3")
    expect(page.locator("[data-metric=visitors] .change")).to_have_text(re.compile(r"new\b"))
    expect(page.locator("[data-metric=pageviews] .change")).to_have_text(re.compile(r"new\b"))
    expect(page.locator("[data-metric=duration] .change")).to_have_text(re.compile(r"no change\b"))
    badges = " ".join(page.locator(".metric .change").all_inner_texts())
    assert "±0%" not in badges, badges
    screenshot(page, "metrics-new-site", full_page=False)


def test_chart_legend_shows_the_latest_values_without_hovering(page: Page, site: Site) -> None:
    page.goto(site.base + f"/{BOUNCES}?{custom_range(date.today() - timedelta(days=10))}&interval=day")
    wait_idle(page)
    legend = page.locator(".chart .u-legend .u-series")
    expect(legend).to_have_count(3)
    # Nothing hovered: the last bucket (day 2: 2 visitors) and its previous-period value (none: 0).
    expect(legend.nth(1).locator(".u-value")).to_have_text("2")
    expect(legend.nth(2).locator(".u-value")).to_have_text("0")
    expect(legend.nth(0).locator(".u-value")).not_to_have_text("")
    # Hover day 1: 25 visitors; leave the chart: back to the latest bucket.
    box = page.locator(".chart .u-over").bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + 3, box["y"] + box["height"] / 2)
    expect(legend.nth(1).locator(".u-value")).to_have_text("25")
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] - 60)
    expect(legend.nth(1).locator(".u-value")).to_have_text("2")
    # The bounce rate of day 2 (2 visitors) is under the floor: "—" in the legend, not 0%.
    page.locator("[data-metric=bounces]").click()
    expect(legend.nth(1).locator(".u-value")).to_have_text("—")
    page.mouse.move(box["x"] + 3, box["y"] + box["height"] / 2)
    expect(legend.nth(1).locator(".u-value")).to_have_text("50%")  # day 1: 10 bounces of 20 timed first visits


def test_tabs_scroll_at_360px(browser: Browser, site: Site) -> None:
    context = new_context(browser, viewport={"width": 360, "height": 740}, is_mobile=True, has_touch=True)
    try:
        page = context.new_page()
        login(page, site, f"/{SITE}?period=30d&panel%5Bsources%5D=campaigns")
        wait_idle(page)
        tabs = page.locator("[data-panel=sources] [role=tablist]")
        selected = tabs.locator("[aria-selected=true]")
        expect(selected).to_have_text("Campaigns")
        selected.scroll_into_view_if_needed()
        row, tab = tabs.bounding_box(), selected.bounding_box()
        assert row is not None and tab is not None
        assert tab["x"] >= row["x"] - 0.5 and tab["x"] + tab["width"] <= row["x"] + row["width"] + 0.5, (row, tab)
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
        sizes = tabs.evaluate("t => [t.scrollWidth, t.clientWidth, getComputedStyle(t).overflowX]")
        assert sizes[0] > sizes[1] and sizes[2] == "auto", sizes  # the row scrolls, the page does not
        screenshot(page, "tabs-360-campaigns", full_page=False)
        # On to the first tab with the keyboard (the arrows wrap): the row scrolls back so it is whole too.
        selected.focus()
        page.keyboard.press("ArrowRight")
        expect(tabs.locator("[aria-selected=true]")).to_have_text("Referrers")
        row, tab = tabs.bounding_box(), tabs.locator("[aria-selected=true]").bounding_box()
        assert row is not None and tab is not None and tab["x"] >= row["x"] - 0.5
    finally:
        context.close()


def test_metric_definitions_by_tap_and_keyboard(browser: Browser, site: Site) -> None:
    context = new_context(browser, viewport={"width": 360, "height": 740}, is_mobile=True, has_touch=True)
    try:
        page = context.new_page()
        login(page, site, f"/{BOUNCES}?{custom_range(date.today() - timedelta(days=10))}")
        wait_idle(page)
        definition = page.get_by_test_id("metric-definition")
        expect(definition).to_be_hidden()
        # Tap.
        page.get_by_role("button", name="What is Bounce Rate?").tap()
        expect(definition).to_be_visible()
        expect(definition).to_contain_text("first visits of the day (UTC) with a measured time on page")
        expect(definition).to_contain_text("from 0.1 to 5 seconds")
        expect(definition).to_contain_text("at least 6")
        expect(page.get_by_role("button", name="What is Bounce Rate?")).to_have_attribute("aria-expanded", "true")
        screenshot(page, "metric-definition-360")
        page.get_by_role("button", name="What is Bounce Rate?").tap()
        expect(definition).to_be_hidden()
        # Keyboard.
        page.get_by_role("button", name="What is Visitors?").focus()
        page.keyboard.press("Enter")
        expect(definition).to_contain_text("sum of each day's unique visitors")
        page.get_by_role("button", name="What is Time Spent?").focus()
        page.keyboard.press("Space")
        expect(definition).to_contain_text("median time on page")
        # Screen readers get each definition with the metric itself.
        described = page.locator("[data-metric=pageviews]").evaluate(
            "b => document.getElementById(b.getAttribute('aria-describedby')).textContent"
        )
        assert "every page load" in described
        # Detail tables: every column's definition behind a disclosure that opens with Enter.
        page.goto(site.base + f"/{BOUNCES}/pages?{custom_range(date.today() - timedelta(days=10))}")
        wait_idle(page)
        summary = page.get_by_text("What the columns mean")
        summary.focus()
        page.keyboard.press("Enter")
        details = page.locator("details.definitions")
        expect(details).to_have_attribute("open", "")
        expect(details).to_contain_text("first view of that page on the day")
        expect(details).to_contain_text("Bounce %")
        bounce_header = page.locator("th button[data-column=bounce_percentage]")
        assert "0.1 to 5 seconds" in bounce_header.evaluate(
            "b => document.getElementById(b.getAttribute('aria-describedby')).textContent"
        )
    finally:
        context.close()


def test_bounce_floor_on_hand_computed_data(page: Page, site: Site) -> None:
    day1 = date.today() - timedelta(days=10)
    page.goto(site.base + f"/{BOUNCES}?{custom_range(day1)}")
    wait_idle(page)

    def value(name: str) -> Locator:
        return page.locator(f"[data-metric={name}] .metric-value")

    expect(value("visitors")).to_have_text("27")  # 25 on day 1 + 2 on day 2: the sum of daily uniques
    expect(value("pageviews")).to_have_text("28")
    expect(value("duration")).to_have_text("5s")  # median of 23 measured times
    expect(value("bounces")).to_have_text("45.5%")  # 10 of 22 timed first visits
    screenshot(page, "bounce-hand-computed")

    page.goto(site.base + f"/{BOUNCES}/countries?{custom_range(day1)}")
    wait_idle(page)

    def bounce_cell(country: str) -> str:
        row = page.locator("tbody tr", has=page.locator("th", has_text=country))
        return row.locator("td").nth(2).inner_text()

    assert bounce_cell("Germany") == "37.5%"  # 3 of 8
    for country in ("France", "Spain", "Japan"):
        assert bounce_cell(country) == "—", country
    france = page.locator("tbody tr", has=page.locator("th", has_text="France")).locator("td").nth(2)
    expect(france.locator("[data-bounce]")).to_have_attribute("data-bounce", "few")
    expect(france).to_have_attribute("title", re.compile("at least 6 first visits"))
    spain = page.locator("tbody tr", has=page.locator("th", has_text="Spain")).locator("td").nth(2)
    expect(spain.locator("[data-bounce]")).to_have_attribute("data-bounce", "unclear")
    expect(page.locator("#bounce-note")).to_contain_text("at least 6 first visits")
    expect(page.locator("#bounce-note")).to_contain_text("cannot tell which")
    assert "0.0%" not in page.locator("tbody").inner_text()
    screenshot(page, "bounce-floor-table")

    # Pages: the floor is judged on page views (visitors there count per page). /fr has 5 views.
    page.goto(site.base + f"/{BOUNCES}/pages?{custom_range(day1)}")
    wait_idle(page)
    fr = page.locator("tbody tr", has=page.locator("th", has_text="/fr"))
    expect(fr.locator("[data-bounce]")).to_have_attribute("data-bounce", "few")
    # One country under the floor: the metric box says why instead of 0.0%.
    page.goto(site.base + f"/{BOUNCES}?{custom_range(day1)}&country%5Beq%5D=France")
    wait_idle(page)
    expect(value("bounces")).to_have_text("—")
    expect(page.locator("[data-metric=bounces]")).to_contain_text("too few timed visits")
    expect(page.locator("[data-metric=bounces] .change")).to_have_count(0)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_new_screens_have_enough_contrast(plain_http: Browser, browser: Browser, site: Site, scheme: str) -> None:
    """WCAG AA for the login advice, the cookie message, definitions, "—" notes and country chips."""
    context = new_context(plain_http, color_scheme=scheme)
    try:
        page = context.new_page()
        page.goto(f"http://{PLAIN_HOST}:{site.server.port}/login")
        page.fill("#login-username", USERNAME)
        page.fill("#login-password", PASSWORD)
        page.click("form button[type=submit]")
        expect(page.locator(".form-error")).to_contain_text("refused")
        problems = {"login": page.evaluate(CONTRAST_JS)}
    finally:
        context.close()
    context = new_context(browser, color_scheme=scheme)
    try:
        page = context.new_page()
        day1 = date.today() - timedelta(days=10)
        login(page, site, f"/{BOUNCES}?{custom_range(day1)}&country%5Beq%5D=France")
        wait_idle(page)
        page.get_by_role("button", name="What is Bounce Rate?").click()
        problems["metrics"] = page.evaluate(CONTRAST_JS)
        page.goto(site.base + f"/{BOUNCES}/countries?{custom_range(day1)}")
        wait_idle(page)
        page.get_by_text("What the columns mean").click()
        problems["table"] = page.evaluate(CONTRAST_JS)
        page.goto(site.base + "/settings/account")
        page.get_by_label("New password", exact=True).fill("abc")
        problems["account"] = page.evaluate(CONTRAST_JS)
    finally:
        context.close()
    assert not any(problems.values()), problems
