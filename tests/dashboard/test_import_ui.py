"""Coming from another tool, in Chromium: the Umami website id, uploading an export, the imported period marked."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.dashboard.conftest import SITE, Site, login, new_context, screenshot

pytestmark = pytest.mark.browser

SAMPLES = Path(__file__).resolve().parents[1] / "importers" / "samples"
UMAMI_ID = "0b8a0f4e-5b43-4c0e-b9a7-3f2d7e0c1a11"


@pytest.fixture
def admin(browser: Browser, fresh_site: Site) -> Iterator[Page]:
    context = new_context(browser)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    login(page, fresh_site)
    yield page
    context.close()
    assert not errors, errors


def test_umami_id_upload_and_imported_period(admin: Page, fresh_site: Site) -> None:
    admin.goto(f"{fresh_site.base}/settings/websites?website={SITE}")
    form = admin.get_by_test_id("umami-id")
    form.locator("#umami-id").fill(UMAMI_ID)
    form.get_by_role("button", name="Save").click()
    expect(form.get_by_role("status")).to_have_text("Saved.")
    assert fresh_site.api.get(f"/api/websites/{SITE}").json()["umamiWebsiteId"] == UMAMI_ID

    upload = admin.get_by_test_id("import")
    upload.locator("#import-tool").select_option("plausible")
    upload.locator("#import-file").set_input_files(str(SAMPLES / "plausible-export.zip"))
    upload.get_by_role("button", name="Check only").click()
    expect(upload.get_by_test_id("import-results")).to_contain_text("read, 0 stored")
    upload.get_by_role("button", name="Import").click()
    expect(upload.get_by_role("status")).to_have_text("Imported.")
    expect(upload.get_by_test_id("import-results")).to_contain_text("imported daily totals: 27 read, 27 stored")
    screenshot(admin, "settings-import")

    # A bad file: the line is named, nothing stored.
    bad = SAMPLES.parent / "samples" / "goatcounter-export.csv"
    upload.locator("#import-tool").select_option("umami")
    upload.locator("#import-file").set_input_files(str(bad))
    upload.get_by_role("button", name="Import").click()
    expect(upload.get_by_role("alert")).to_contain_text("line 1: missing column(s)")

    admin.goto(f"{fresh_site.base}/{SITE}?period=custom&start=2024-03-01&end=2024-03-02")
    notice = admin.get_by_test_id("imported-notice")
    expect(notice).to_contain_text("imported from plausible for 2024-03-01 to 2024-03-02")
    screenshot(admin, "site-imported")
    admin.goto(f"{fresh_site.base}/{SITE}")
    expect(admin.get_by_test_id("imported-notice")).to_have_count(0)
