"""A freshly imported site in Chromium: "numbers being prepared" while background work catches up, gone once settled."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.dashboard.conftest import Site, login, new_context, screenshot, start_site
from tests.helpers import engine_name

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
IMPORTED = "imported.example"
HOUR_MS = 3_600_000
DAYS = 6


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    if engine_name() != "sqlite":
        pytest.skip("ClickHouse has no background work: its /progress is always ready")
    yield from start_site(tmp_path)


def _export(path: Path, now_ms: int) -> int:
    """A JSON Lines file of medama's export format: a view every 10 minutes for DAYS days before the current hour."""
    first_hour = now_ms // HOUR_MS - DAYS * 24
    lines = []
    for n in range(DAYS * 24 * 6):
        view = {
            "bid": f"imp{n:05d}",
            "hostname": IMPORTED,
            "pathname": f"/post-{n % 37}",
            "is_unique_user": n % 3 == 0,
            "is_unique_page": True,
            "referrer_host": "",
            "referrer_group": "",
            "country": "Germany",
            "language_base": "German",
            "language_dialect": "German",
            "ua_browser": "Firefox",
            "ua_os": "Linux",
            "ua_device_type": "Desktop",
            "utm_source": "",
            "utm_medium": "",
            "utm_campaign": "",
            "duration_ms": 1000 + n,
            "date_created": (first_hour * HOUR_MS + n * 600_000) // 1000,
        }
        lines.append(json.dumps(view))
    path.write_text("\n".join(lines) + "\n")
    return len(lines)


def test_notice_while_an_import_is_prepared(browser: Browser, site: Site, tmp_path: Path) -> None:
    config = site.server.config
    export = tmp_path / "views.jsonl"
    views = _export(export, int(time.time() * 1000))
    command = [sys.executable, str(ROOT / "medama.py"), "import", str(export), "-create-websites"]
    command += ["-appdb", config.appdb, "-analyticsdb", config.analyticsdb]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    # The server waits for no stats request yet, so its background work is idle: hold the analytics database's
    # write lock (as a long import of another process would) so the hours stay waiting while the page opens.
    hold = sqlite3.connect(config.analyticsdb, timeout=30, isolation_level=None)
    hold.execute("BEGIN IMMEDIATE")
    try:
        pending = site.api.get(f"/api/website/{IMPORTED}/progress").json()
        assert pending["ready"] is False and pending["hours"] >= DAYS * 24 - 1, pending
        context = new_context(browser)
        page: Page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        login(page, site, f"/{IMPORTED}?period=30d")
        notice = page.get_by_test_id("preparing")
        expect(notice).to_contain_text("Numbers being prepared")
        expect(notice).to_contain_text(f"{pending['hours']:,} hours")
        expect(notice.get_by_role("progressbar")).to_have_attribute("aria-valuenow", "0")
        # The numbers are exact meanwhile: every imported view counts.
        expect(page.locator("[data-metric=pageviews] .metric-value")).to_have_text(str(views))
        screenshot(page, "site-preparing")
    finally:
        hold.rollback()
        hold.close()
    # Released: the next poll restarts the background work, and a later one finds it done.
    expect(notice).to_have_count(0, timeout=60_000)
    assert site.api.get(f"/api/website/{IMPORTED}/progress").json() == {"hours": 0, "blocks": 0, "ready": True}
    expect(page.locator("[data-metric=pageviews] .metric-value")).to_have_text(str(views))
    context.close()
    assert not errors, errors
