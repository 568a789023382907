"""Issue 17's done-when, in Chromium: two `medama start` processes on one PostgreSQL and one ClickHouse.
The owner logs in on node A and adds a website in its dashboard; a visitor's browser loads the tracker from
node B on a page of that website and clicks through it; node A's dashboard shows the visits.
The screenshot lands in tests/artifacts/two-nodes.png."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Playwright, Response, expect

from tests.browser import CHROMIUM, CHROMIUM_ARGS
from tests.dashboard.conftest import ARTIFACTS, DEFAULT_PASSWORD, PASSWORD, USERNAME
from tests.dashboard.test_stranger_journey import Pages, context_for, metric, reload_until, visit
from tests.engines import Stack, running_stack
from tests.helpers import Client
from tests.test_nodes import node

pytestmark = pytest.mark.browser

SITE = "example.com"
NODE_B = "node-b.medama.test"  # the address visitors' browsers reach the second node by


@pytest.fixture(scope="module")
def servers() -> Iterator[Stack]:
    yield from running_stack()


@pytest.fixture
def browser(playwright: Playwright) -> Iterator[Browser]:
    """Chromium that resolves the site's name and node B's to this machine."""
    rules = ", ".join(f"MAP {name} 127.0.0.1" for name in (SITE, NODE_B))
    chromium = playwright.chromium.launch(
        executable_path=str(CHROMIUM), args=[*CHROMIUM_ARGS, f"--host-resolver-rules={rules}"]
    )
    yield chromium
    chromium.close()


@pytest.fixture
def pages() -> Iterator[Pages]:
    served = Pages()
    yield served
    served.close()


def test_log_in_on_one_node_hits_to_the_other_seen_on_the_first(
    tmp_path: Path, servers: Stack, browser: Browser, pages: Pages
) -> None:
    app, analytics = servers.urls()
    # The client is closed even when the test fails: left open, its socket was collected during the next test, whose
    # ResourceWarning (an error here) failed that test instead.
    with (
        node(tmp_path, app, analytics) as port_a,
        node(tmp_path, app, analytics) as port_b,
        closing(Client(port_b)) as api,
    ):
        # The first-start password locks the dashboard until it is changed: changed here, on node B.
        api.login(USERNAME, DEFAULT_PASSWORD)
        body = {"password": PASSWORD, "currentPassword": DEFAULT_PASSWORD}
        assert api.patch("/api/user", json_body=body).status == 200

        owner_context = context_for(browser)
        owner = owner_context.new_page()
        errors: list[str] = []
        owner.on("pageerror", lambda exc: errors.append(str(exc)))
        sent: list[str] = []  # every hit the visitors' browsers sent

        # Node A: log in through the form (localhost is a secure context, so the Secure cookie is kept), add the site.
        dashboard = f"http://localhost:{port_a}"
        owner.goto(dashboard + "/")
        owner.wait_for_url("**/login**")
        owner.fill("#login-username", USERNAME)
        owner.fill("#login-password", PASSWORD)
        owner.click("form button[type=submit]")
        expect(owner.get_by_role("heading", name="My websites")).to_be_visible()
        owner.get_by_role("button", name="Add website").click()
        owner.get_by_label("Hostname").fill(SITE)
        owner.get_by_role("button", name="Add website").last.click()
        owner.wait_for_url(f"{dashboard}/{SITE}")
        expect(owner.get_by_test_id("snippet")).to_contain_text(f"Waiting for the first visit to {SITE}")

        # Pages of the site loading the tracker from node B; a visitor clicks through them. Node B learns of
        # the new site from PostgreSQL within seconds (tests/test_nodes.py bounds it) and answers 404 until
        # then: a visitor whose first hit was refused leaves (their browser now remembers the visit, so
        # the next one would not count as a new visitor) and a new one comes, until a hit is taken (204).
        # Its row reaches ClickHouse a moment later, which reload_until below waits for: a visitor whose hit
        # was taken but not yet readable must stay (another would count a second visitor).
        snippet = f'<script defer src="http://{NODE_B}:{port_b}/script.js?site={SITE}"></script>'
        pages.site(SITE, snippet, {"/": "Home", "/about": "About us", "/contact": "Contact"})

        def is_hit(response: Response) -> bool:
            return response.url.endswith("/api/event/hit") and response.request.method == "POST"

        for _ in range(20):
            visitor_context = context_for(browser)
            visitor = visitor_context.new_page()
            visitor.on("pageerror", lambda exc: errors.append(str(exc)))
            visitor.on("request", lambda r: sent.append(r.url) if "/api/event/hit" in r.url else None)
            with visitor.expect_response(is_hit) as answer:
                visitor.goto(pages.url(SITE, "/"))
            if answer.value.status == 204:
                break
            assert answer.value.status == 404, answer.value.status
            visitor_context.close()
        visit(visitor, lambda: visitor.get_by_role("link", name="About us").click())
        visit(visitor, lambda: visitor.get_by_role("link", name="Contact").click())
        assert sent and all(url.startswith(f"http://{NODE_B}:{port_b}/") for url in sent), sent

        # Node A's dashboard, still open on the site, sees node B's hits arrive.
        reload_until(owner, metric(owner, "pageviews"), "3")
        reload_until(
            owner, owner.locator("[data-panel=pages] .row-label"), ["/", "/about", "/contact"], ignore_case=True
        )
        expect(metric(owner, "pageviews")).to_have_text("3")
        expect(metric(owner, "visitors")).to_have_text("1")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        owner.screenshot(path=str(ARTIFACTS / "two-nodes.png"), full_page=True)
        assert errors == []
        owner_context.close()
        visitor_context.close()
