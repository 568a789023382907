"""The dashboard's notes, CSV exports and a site's own settings, in Chromium against a seeded server."""

from __future__ import annotations

import csv
import datetime as dt
import io
import zoneinfo
from collections.abc import Iterator
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from medama_core import csvtable
from tests.dashboard.calls import Calls, api_json
from tests.dashboard.conftest import ARTIFACTS, SITE, TIMEZONE, Site, login, screenshot

pytestmark = pytest.mark.browser


@pytest.fixture
def tab(context: BrowserContext, fresh_site: Site) -> Iterator[Page]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    assert not errors, errors


def today() -> dt.date:
    return dt.datetime.now(zoneinfo.ZoneInfo(TIMEZONE)).date()


PLOT_BOX_TRIES = 100  # x PLOT_BOX_WAIT_MS: how long a redrawn chart may take on a loaded 2-core machine (5 s)
PLOT_BOX_WAIT_MS = 50


def click_plot(page: Page, share: float) -> None:
    """Click the chart's plot area at `share` of its width (0 the left edge, 1 the right), half way up."""
    plot = page.locator(".chart-card .u-over")
    # The chart is drawn again when its data arrives: between two drawings the plot area has no box.
    box = plot.bounding_box()
    for _ in range(PLOT_BOX_TRIES):
        if box is not None:
            break
        page.wait_for_timeout(PLOT_BOX_WAIT_MS)
        box = plot.bounding_box()
    assert box is not None
    x, y = box["x"] + max(2, min(box["width"] - 2, box["width"] * share)), box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.click(x, y)


def add_note(page: Page, share: float, text: str, end: dt.date | None = None) -> str:
    """Click the chart, fill the form it opens, save; the day the click picked."""
    click_plot(page, share)
    form = page.locator("[data-testid=note-form]")
    expect(form).to_be_visible()
    day = form.locator("input[name=start]").input_value()
    if end is not None:
        form.locator("input[name=end]").fill(end.isoformat())
    form.locator("input[name=text]").fill(text)
    form.get_by_role("button", name="Add note").click()
    expect(form).to_be_hidden()
    return day


def test_notes_are_added_by_clicking_the_chart_and_deleted(tab: Page, fresh_site: Site) -> None:
    login(tab, fresh_site, f"/{SITE}?period=7d")
    tab.locator(".chart-card .u-over").wait_for()
    first_day = today() - dt.timedelta(days=6)  # "Last 7 days" ends today, in days of the browser's zone

    # The right end of the plot is today's bucket, the left end the first day's.
    assert add_note(tab, 1.0, "Launched the pricing page") == today().isoformat()
    launch = tab.locator(".note-marker[aria-label='Note: Launched the pricing page']")
    expect(launch).to_be_visible()
    assert add_note(tab, 0.0, "Spring sale", end=first_day + dt.timedelta(days=2)) == first_day.isoformat()
    sale = tab.locator(".note-marker[aria-label='Note: Spring sale']")
    expect(sale).to_be_visible()
    notes = fresh_site.api.get(f"/api/websites/{SITE}/annotations").json()
    assert [(n["start"], n["end"], n["text"]) for n in notes] == [
        (first_day.isoformat(), (first_day + dt.timedelta(days=2)).isoformat(), "Spring sale"),
        (today().isoformat(), None, "Launched the pricing page"),
    ]
    # Drawn where their days are: the sale on the left, the launch on the right.
    sale_box, launch_box = sale.bounding_box(), launch.bounding_box()
    assert sale_box is not None and launch_box is not None and sale_box["x"] < launch_box["x"]
    tab.locator(".chart-card").screenshot(path=str(ARTIFACTS / "insights-notes.png"))

    # A marker opens its note; Delete removes it from the chart and the server.
    launch.click()
    card = tab.locator("[data-testid=note-card]")
    expect(card).to_contain_text("Launched the pricing page")
    screenshot(tab, "insights-note-card", full_page=False)
    card.get_by_role("button", name="Delete note").click()
    expect(launch).to_have_count(0)
    expect(card).to_be_hidden()
    assert [n["text"] for n in fresh_site.api.get(f"/api/websites/{SITE}/annotations").json()] == ["Spring sale"]

    # The keyboard way: "+ Note" opens the same form; Cancel leaves everything as it was.
    tab.get_by_role("button", name="+ Note").click()
    form = tab.locator("[data-testid=note-form]")
    assert form.locator("input[name=start]").input_value() == today().isoformat()
    form.get_by_role("button", name="Cancel").click()
    expect(form).to_be_hidden()
    # Notes outside the period are not drawn.
    tab.goto(fresh_site.base + f"/{SITE}?period=yesterday")
    tab.locator(".chart-card .u-over").wait_for()
    expect(tab.locator(".note-marker")).to_have_count(0)


def test_a_click_on_a_chart_remade_under_a_resting_pointer_picks_its_day(tab: Page, fresh_site: Site) -> None:
    # A late answer (the previous period, the notes) remakes the chart; a click that follows without a mouse move
    # must still open the form for the day under the pointer (the remade plot has not seen the pointer yet).
    login(tab, fresh_site, f"/{SITE}?period=7d")
    tab.locator(".chart-card .u-over").wait_for()
    Calls.of(tab).settle()
    plot = tab.locator(".chart-card .u-over")
    box = plot.bounding_box()
    assert box is not None
    tab.mouse.move(box["x"] + box["width"] - 3, box["y"] + box["height"] / 2)
    old = plot.element_handle()
    tab.locator("[aria-label='Chart type'] button[aria-pressed=false]").focus()
    tab.keyboard.press("Enter")  # remade while the pointer rests on the plot
    tab.wait_for_function("old => !old.isConnected", arg=old)
    tab.mouse.down()
    tab.mouse.up()
    form = tab.locator("[data-testid=note-form]")
    expect(form).to_be_visible()
    assert form.locator("input[name=start]").input_value() == today().isoformat()


def table_rows(page: Page) -> list[list[str]]:
    rows = []
    for row in page.locator(".table tbody tr").all():
        rows.append([row.locator("th").inner_text(), *row.locator("td").all_inner_texts()])
    return rows


def download_csv(page: Page) -> tuple[str, list[dict[str, str]]]:
    with page.expect_download() as info:
        page.get_by_test_id("export-csv").click()
    download = info.value
    text = Path(download.path()).read_text(encoding="utf-8")
    return download.suggested_filename, list(csv.DictReader(io.StringIO(text, newline="")))


def percent(value: str) -> str:
    """A fraction as the dashboard shows it: JavaScript's `toFixed(1)` rounds the double's exact value half up
    (0.0425 gives 4.3%), where Python's formatting rounds half to even (4.2%)."""
    exact = Decimal(float(value) * 100)
    return f"{exact.quantize(Decimal('0.1'), ROUND_HALF_UP)}%"


@pytest.mark.parametrize("filters", ["", "&browser[eq]=Firefox"])
def test_export_csv_holds_the_whole_filtered_table(tab: Page, fresh_site: Site, filters: str) -> None:
    login(tab, fresh_site, f"/{SITE}/pages?period=30d&size=10{filters}")
    tab.locator(".table tbody tr").first.wait_for()
    shown = table_rows(tab)
    assert len(shown) == 10
    name, rows = download_csv(tab)
    assert name == f"{SITE}-pages.csv"
    # Every row of the filtered table, not the page on screen: as many as the table's own query has
    # without limit and offset.
    *table_calls, export_call = Calls.of(tab).to(f"/website/{SITE}/pages")
    query = table_calls[-1]
    assert query["limit"] == "11" and query["summary"] == "false"  # the page on screen, and one to tell "Next"
    query = {k: v for k, v in query.items() if k not in ("limit", "offset")}
    assert export_call == {**query, "format": "csv"}
    api_rows = api_json(fresh_site, f"/website/{SITE}/pages", query)
    assert isinstance(api_rows, list)
    assert len(rows) == len(api_rows) > 10
    assert [csvtable.unguard(r["path"]) for r in rows] == [r["path"] for r in api_rows]
    # The first page on screen is the CSV's first rows: label, visitors, their share, views and theirs.
    for screen, row in zip(shown, rows[:10], strict=True):
        assert screen[0] == csvtable.unguard(row["path"])
        assert screen[1].replace(",", "") == row["visitors"]
        assert screen[2] == percent(row["visitors_percentage"])
        assert screen[3].replace(",", "") == row["pageviews"]
        assert screen[4] == percent(row["pageviews_percentage"])
    if filters:
        assert "browser%5Beq%5D=Firefox" in tab.url or "browser[eq]=Firefox" in tab.url
        screenshot(tab, "insights-export-table")


def test_a_site_own_tracker_settings_and_raw_export(tab: Page, fresh_site: Site) -> None:
    login(tab, fresh_site, f"/settings/websites?website={SITE}")
    form = tab.get_by_test_id("site-tracker")
    form.locator("select[name=outboundLinks]").select_option("on")
    form.locator("select[name=clickEvents]").select_option("off")
    form.locator("#site-extensions").fill("pdf, .KEY, tar.gz")
    form.get_by_role("button", name="Save").click()
    expect(form.locator(".form-error")).to_contain_text("“tar.gz” is not a file extension")
    assert fresh_site.api.get(f"/api/websites/{SITE}/settings").json()["outboundLinks"] is None  # nothing sent
    form.locator("#site-extensions").fill("pdf, .KEY")
    form.locator("#site-retention").fill("400")
    form.locator("#site-timezone").fill("Europe/Paris")
    form.get_by_role("button", name="Save").click()
    expect(form.locator(".form-ok")).to_contain_text("Saved.")
    stored = fresh_site.api.get(f"/api/websites/{SITE}/settings").json()
    assert {
        k: stored[k] for k in ("outboundLinks", "clickEvents", "downloadExtensions", "retentionDays", "timezone")
    } == {
        "outboundLinks": True,
        "clickEvents": False,
        "downloadExtensions": ["pdf", "key"],
        "retentionDays": 400,
        "timezone": "Europe/Paris",
    }
    expect(form).to_contain_text("Features now: outbound-links")
    expect(form.locator("pre")).to_contain_text(f'/script.js?site={SITE}"></script>')
    form.screenshot(path=str(ARTIFACTS / "insights-site-tracker.png"))

    # The raw export downloads what the API streams.
    export = tab.get_by_test_id("raw-export")
    with tab.expect_download() as info:
        export.get_by_role("link", name="Page views (CSV)").click()
    assert info.value.suggested_filename == f"{SITE}-views.csv"
    body = Path(info.value.path()).read_bytes()
    assert body == fresh_site.api.get(f"/api/websites/{SITE}/export?type=views&format=csv").body
    assert body.count(b"\r\n") == fresh_site.seeded.views + 1
