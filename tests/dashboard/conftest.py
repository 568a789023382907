"""Browser fixtures: Debian's Chromium through Playwright, against a real server with seeded data.

Browse `http://localhost:<port>`: the session cookie is `Secure`, and Chromium keeps Secure
cookies on http://localhost (a secure context) but not on http://127.0.0.1.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, expect, sync_playwright

from tests.browser import CHROMIUM, CHROMIUM_ARGS, EXPECT_TIMEOUT_MS, PLAYWRIGHT_SCOPE
from tests.dashboard.calls import Calls
from tests.dashboard.seed import Seeded, seed_views
from tests.helpers import Client, LiveServer, live_server

expect.set_options(timeout=EXPECT_TIMEOUT_MS)

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
USERNAME, DEFAULT_PASSWORD = "admin", "CHANGE_ME_ON_FIRST_LOGIN"
PASSWORD = "dashboard-tests-1"  # chosen before the browser logs in: the first-start one locks the dashboard
SITE = "example.com"
TIMEZONE = "Europe/Berlin"  # not UTC, so offsets in start/end are exercised
# A desktop Chrome; HeadlessChrome would be dropped as a bot by the ingestion.
DESKTOP_UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"


# Known and not yet explained (docs/security.md, "Open questions"): in the Chromium tests only, about once a
# full run, the garbage collector finds an asyncio socket transport of an in-process test server left
# unclosed and warns while another test is being set up. Not seen in the server's own socket tests, the
# soak's descriptor counts or bench/attack.py; ignored here, and only this one message.
UNCLOSED_TRANSPORT = pytest.mark.filterwarnings(
    "ignore:Exception ignored in. <function _SelectorTransport.__del__:pytest.PytestUnraisableExceptionWarning"
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    reason = None
    if not os.path.exists(CHROMIUM):
        reason = f"{CHROMIUM} is missing (apt-get install chromium)"
    for item in items:
        if "browser" in item.keywords and reason:
            item.add_marker(pytest.mark.skip(reason=reason))
        if "browser" in item.keywords:
            item.add_marker(UNCLOSED_TRANSPORT)


@pytest.fixture(scope=PLAYWRIGHT_SCOPE)
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope=PLAYWRIGHT_SCOPE)
def browser(playwright: Playwright) -> Iterator[Browser]:
    chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield chromium
    chromium.close()


# A name that is not localhost: Chromium resolves it to the test server, and its pages are not a secure context.
PLAIN_HOST = "medama.test"


@pytest.fixture
def plain_http(playwright: Playwright) -> Iterator[Browser]:
    """A Chromium that reaches the test server as http://medama.test:<port>: plain HTTP, not a secure context."""
    chromium = playwright.chromium.launch(
        executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, f"--host-resolver-rules=MAP {PLAIN_HOST} 127.0.0.1"]
    )
    yield chromium
    chromium.close()


@dataclass
class Site:
    """A running server, its API client (logged in) and the seeded website."""

    server: LiveServer
    api: Client
    seeded: Seeded

    @property
    def base(self) -> str:
        return f"http://localhost:{self.server.port}"


def start_site(tmp: Path, *, first_start: bool = False, **options: Any) -> Iterator[Site]:
    """A server with SITE seeded; logged in as USERNAME/PASSWORD, or with the first-start password if `first_start`."""
    with live_server(tmp, ratelimit=0, level="warn", **options) as server:
        api = server.client()
        api.login(USERNAME, DEFAULT_PASSWORD)
        if not first_start:
            # While the password is the first-start one the dashboard shows only "choose a new password" (CONTRACT 2).
            body = {"password": PASSWORD, "currentPassword": DEFAULT_PASSWORD}
            assert api.patch("/api/user", json_body=body).status == 200
        assert api.post("/api/websites", json_body={"hostname": SITE}).status == 201
        seeded = seed_views(Path(server.config.analyticsdb), SITE)
        yield Site(server, api, seeded)
        api.close()


@pytest.fixture(scope="module")
def shared_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """One seeded server for the read-only tests of a module."""
    yield from start_site(tmp_path_factory.mktemp("site"))


@pytest.fixture
def fresh_site(tmp_path: Path) -> Iterator[Site]:
    """A seeded server of its own, for tests that change settings or websites."""
    yield from start_site(tmp_path)


def new_context(browser: Browser, **options: Any) -> BrowserContext:
    settings: dict[str, Any] = {"viewport": {"width": 1280, "height": 900}, "timezone_id": TIMEZONE, "locale": "en-GB"}
    settings.update(options)
    context = browser.new_context(**settings)
    context.set_default_timeout(15_000)
    return context


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    ctx = new_context(browser)
    yield ctx
    ctx.close()


def login(page: Page, site: Site, path: str = "/", password: str = PASSWORD) -> None:
    """Log in through the form, starting from `path` (which the login page must send us back to)."""
    Calls.of(page)  # record API calls from the first request on
    page.goto(site.base + path)
    page.wait_for_url("**/login**")
    page.fill("#login-username", USERNAME)
    page.fill("#login-password", password)
    page.click("form button[type=submit]")
    page.wait_for_url(lambda url: "/login" not in url)


@pytest.fixture
def page(context: BrowserContext, shared_site: Site) -> Iterator[Page]:
    """A logged-in page on the shared site, collecting page errors (a test fails on any)."""
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    login(tab, shared_site)
    yield tab
    assert not errors, errors


def screenshot(page: Page, name: str, full_page: bool = True) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=full_page)
