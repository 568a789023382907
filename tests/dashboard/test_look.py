"""How the dashboard looks and behaves for every user: dark mode, a 360 px phone, keyboard use,
a strict Content-Security-Policy, no third-party requests, error pages."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page, Route, expect

from tests.dashboard.calls import wait_idle
from tests.dashboard.conftest import SITE, Site, login, new_context, screenshot

pytestmark = pytest.mark.browser

DARK_BG = "rgb(15, 17, 21)"
LIGHT_BG = "rgb(246, 247, 249)"


def background(page: Page) -> str:
    return str(page.evaluate("getComputedStyle(document.body).backgroundColor"))


def test_dark_mode_follows_the_os_and_the_toggle(browser: Browser, shared_site: Site) -> None:
    context = new_context(browser, color_scheme="dark")
    try:
        page = context.new_page()
        login(page, shared_site, f"/{SITE}?period=30d")
        wait_idle(page)
        assert background(page) == DARK_BG
        screenshot(page, "dashboard-dark")
        toggle = page.locator(".theme-toggle")
        toggle.click()  # system → light
        assert background(page) == LIGHT_BG
        expect(page.locator(".chart canvas")).to_have_count(1)  # redrawn in the new colours
        toggle.click()  # light → dark
        assert background(page) == DARK_BG
        page.reload()
        wait_idle(page)
        assert background(page) == DARK_BG  # the choice is kept
        assert page.evaluate("document.documentElement.dataset.theme") == "dark"
        page.goto(shared_site.base + "/settings/usage")
        expect(page.get_by_role("progressbar", name="CPU in use")).to_be_visible()
        screenshot(page, "settings-usage-dark")
        toggle.click()  # dark → system (dark here)
        assert page.evaluate("document.documentElement.dataset.theme") is None
        assert background(page) == DARK_BG
    finally:
        context.close()


@pytest.fixture
def phone(browser: Browser, shared_site: Site) -> Iterator[Page]:
    context = new_context(browser, viewport={"width": 360, "height": 740}, is_mobile=True, has_touch=True)
    page = context.new_page()
    login(page, shared_site)
    yield page
    context.close()


def no_horizontal_scroll(page: Page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 360, f"{page.url} is {width}px wide"


def test_phone_360px(phone: Page, shared_site: Site) -> None:
    page = phone
    screenshot(page, "phone-websites")
    no_horizontal_scroll(page)
    page.goto(shared_site.base + f"/{SITE}?period=7d&country%5Bneq%5D=Japan")
    wait_idle(page)
    no_horizontal_scroll(page)
    expect(page.locator(".chart canvas")).to_have_count(1)
    canvas = page.locator(".chart canvas").bounding_box()
    assert canvas is not None and canvas["width"] <= 340
    screenshot(page, "phone-dashboard")
    page.get_by_role("button", name="+ Add filter").click()
    no_horizontal_scroll(page)
    page.goto(shared_site.base + f"/{SITE}/pages?period=30d")
    wait_idle(page)
    no_horizontal_scroll(page)  # the table scrolls inside its own box
    screenshot(page, "phone-detail")
    for section in ("account", "websites", "spam", "tracker", "usage"):
        page.goto(shared_site.base + f"/settings/{section}")
        expect(page.get_by_role("heading", level=2).first).to_be_visible()
        no_horizontal_scroll(page)
    screenshot(page, "phone-settings-usage")


def test_keyboard_only(page: Page, shared_site: Site) -> None:
    page.goto(shared_site.base + f"/{SITE}?period=30d")
    wait_idle(page)
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    focused = page.evaluate("document.activeElement.getAttribute('aria-label')")
    assert focused == "Website"  # the first control of the main content
    # Focus is visible: a 3 px outline on whatever has keyboard focus.
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"
    # A metric box is a button: Enter chooses it.
    page.locator("[data-metric=pageviews]").focus()
    page.keyboard.press("Enter")
    expect(page.locator("[data-metric=pageviews]")).to_have_attribute("aria-pressed", "true")
    # Tabs move with the arrow keys.
    page.locator("[data-panel=devices] [role=tab][aria-selected=true]").focus()
    page.keyboard.press("ArrowRight")
    expect(page.locator("[data-panel=devices] [role=tab][aria-selected=true]")).to_have_text("OS")
    # The add-website dialog closes with Escape and traps focus inside while open.
    page.goto(shared_site.base + "/")
    page.get_by_role("button", name="Add website").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("dialog")).to_be_visible()
    assert page.evaluate("document.activeElement.closest('dialog') !== null")
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog")).to_have_count(0)


CSP = "default-src 'self'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"


def test_strict_csp_and_first_party_only(browser: Browser, shared_site: Site) -> None:
    """Under `default-src 'self'` nothing is blocked, and every request stays on the server's origin."""
    context = new_context(browser)
    try:
        page = context.new_page()
        hosts: set[str] = set()
        problems: list[str] = []
        page.on("request", lambda r: hosts.add(urlsplit(r.url).netloc))
        page.on("console", lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None)
        page.on("pageerror", lambda e: problems.append(str(e)))

        def with_csp(route: Route) -> None:
            response = route.fetch()
            if "text/html" not in response.headers.get("content-type", ""):
                route.fulfill(response=response)
                return
            route.fulfill(response=response, headers={**response.headers, "content-security-policy": CSP})

        page.route("**/*", with_csp)
        login(page, shared_site, f"/{SITE}?period=30d")
        wait_idle(page)
        expect(page.locator(".chart canvas")).to_have_count(1)
        expect(page.locator("[data-panel=pages] .row")).to_have_count(5)
        page.goto(shared_site.base + f"/{SITE}/countries?period=30d")
        wait_idle(page)
        page.goto(shared_site.base + "/settings/usage")
        expect(page.get_by_role("progressbar", name="CPU in use")).to_be_visible()
        page.goto(shared_site.base + "/")
        expect(page.locator(".site-card svg.sparkline")).to_have_count(1)
        assert not problems, problems
        assert hosts == {f"localhost:{shared_site.server.port}"}, hosts
    finally:
        page.unroute_all(behavior="ignoreErrors")  # a call still in flight (GET /api/user) must not outlive the test
        context.close()


def test_error_pages(page: Page, shared_site: Site) -> None:
    page.goto(shared_site.base + "/missing.example")
    expect(page.get_by_role("heading", name="No website called missing.example")).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text("404")
    screenshot(page, "error-unknown-site")
    page.goto(shared_site.base + "/a/b/c")
    expect(page.get_by_role("heading", name="Page not found")).to_be_visible()
    page.goto(shared_site.base + f"/{SITE}?period=bogus")
    expect(page.get_by_text("Unknown date range in the address; showing today.")).to_be_visible()
    page.goto(shared_site.base + f"/{SITE}?period=custom&start=2025-13-01&end=2025-01-01")
    expect(page.get_by_text("Unknown date range in the address; showing today.")).to_be_visible()


CONTRAST_JS = """() => {
  const parse = (c) => (c.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const background = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] > 0.5)) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const worst = [];
  const walker = document.createTreeWalker(document.getElementById('app'), NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const el = node.parentElement;
    if (!node.textContent.trim() || !el.offsetParent || el.closest('[disabled], .u-legend, .visually-hidden')) continue;
    const fg = lum(parse(getComputedStyle(el).color));
    const bg = lum(background(el));
    const ratio = (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
    if (ratio < 4.5) worst.push(`${ratio.toFixed(2)} ${el.className} ${node.textContent.trim().slice(0, 30)}`);
  }
  return worst;
}"""


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_text_contrast(browser: Browser, shared_site: Site, scheme: str) -> None:
    """WCAG AA: every visible text has a contrast of at least 4.5:1 with what is behind it."""
    context = new_context(browser, color_scheme=scheme)
    try:
        page = context.new_page()
        login(page, shared_site, f"/{SITE}?period=30d&browser%5Bneq%5D=Edge")
        wait_idle(page)
        pages = [f"/{SITE}/pages?period=30d", "/", "/settings/spam", "/settings/usage"]
        problems = {page.url: page.evaluate(CONTRAST_JS)}
        for path in pages:
            page.goto(shared_site.base + path)
            wait_idle(page)
            problems[path] = page.evaluate(CONTRAST_JS)
        assert not any(problems.values()), problems
    finally:
        context.close()
