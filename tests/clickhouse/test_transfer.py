"""Import and export on ClickHouse: the export pager, imported daily totals, another tool's upload."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medama_core import transfer
from medama_core.store import imported_stats
from medama_core.store.clickhouse import bulk, hits, imported, site_data
from medama_core.store.clickhouse.client import Client
from medama_core.store.query import Page, Query
from tests.clickhouse.test_writes import SITE, row

SAMPLES = Path(__file__).resolve().parents[1] / "importers" / "samples"
DAY = 86_400_000
T = 1_717_200_000_000  # 2024-06-01T00:00:00Z


def read_all(ch: Client, kind: str, limit: int) -> tuple[list[dict[str, object]], int]:
    text, after, pages = "", None, 0
    while True:
        page = transfer.export_page_clickhouse(ch, SITE, kind=kind, fmt="jsonl", after=after, limit=limit)
        assert page.rows <= limit
        text += page.text
        pages += 1
        if page.after is None:
            return [json.loads(line) for line in text.splitlines()], pages
        after = page.after


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    dates=st.lists(st.integers(min_value=0, max_value=3), max_size=14),
    unloads=st.sets(st.integers(min_value=0, max_value=13)),
    page_rows=st.integers(min_value=1, max_value=5),
)
def test_pages_give_every_current_row_once_in_order(
    ch: Client, dates: list[int], unloads: set[int], page_rows: int
) -> None:
    """Ties on the date, unloads not merged yet (more stored rows than current ones), any page size: the pages
    put together are the site's current rows, each once, by date and then beacon id."""
    ch.command("TRUNCATE TABLE views")
    ch.command("TRUNCATE TABLE view_keys")
    ch.command("TRUNCATE TABLE events")
    views = [row(bid=f"v{i:02d}", date_created=T + date) for i, date in enumerate(dates)]
    views.append((*row(bid="other", date_created=T)[:1], "other.example", *row(date_created=T)[2:]))
    assert hits.apply_batch(ch, [hits.NewView(v) for v in views]) == [None] * len(views)
    done = [hits.Duration(f"v{i:02d}", 100 + i) for i in sorted(unloads) if i < len(dates)]
    assert hits.apply_batch(ch, done) == [None] * len(done)
    lines, _ = read_all(ch, "views", page_rows)
    expected = sorted((T + date, f"v{i:02d}") for i, date in enumerate(dates))
    assert [line["bid"] for line in lines] == [bid for _, bid in expected]
    assert [line["duration_ms"] for line in lines] == [
        100 + int(bid[1:]) if int(bid[1:]) in unloads else None for _, bid in expected
    ]
    events = [(f"v{i:02d}", f"e{i}", SITE, "n", str(i), T + date) for i, date in enumerate(dates)]
    if events:
        bulk.insert_events(ch, events)
    lines, pages = read_all(ch, "events", page_rows)
    assert [line["value"] for line in lines] == [str(i) for i, _ in sorted(enumerate(dates), key=lambda x: x[1])]
    assert pages == len(dates) // page_rows + 1


def test_export_pages_equal_the_whole_export(ch: Client) -> None:
    """The pager's text is what export_rows gives for the site, with the CSV header once."""
    views = [row(bid=f"b{i}", date_created=T + i // 3, pathname=f"/{i}") for i in range(10)]
    bulk.insert_views(ch, views)
    text, after = "", None
    while True:
        page = transfer.export_page_clickhouse(ch, SITE, kind="views", fmt="csv", after=after, limit=4)
        text += page.text
        if page.after is None:
            break
        after = page.after
    whole = transfer.page_text(
        list(bulk.export_rows(ch, "views", SITE)), transfer.COLUMNS["views"], "csv", header=True, spreadsheet=False
    )
    assert text == whole and text.count("bid,hostname") == 1


def totals_row(day: int, visitors: int, dimension: str = "", value: str = "") -> dict[str, object]:
    return {
        "hostname": SITE,
        "day": day,
        "dimension": dimension,
        "value": value,
        "tool": "plausible",
        "visitors": visitors,
        "pageviews": 2 * visitors,
        "visits": visitors,
        "bounces": 0,
        "duration_s": 10 * visitors,
    }


def test_imported_days_replace_rename_and_delete(ch: Client) -> None:
    first = [totals_row(T, 3), totals_row(T + DAY, 4), totals_row(T, 3, "path", "/a")]
    assert imported.store(ch, first) == 3
    assert imported.store(ch, first) == 0  # the same values again: nothing written
    assert imported.store(ch, [totals_row(T + DAY, 6)]) == 1  # a day written again is replaced
    assert imported.site_days(ch, SITE, None, None) == {
        T: imported.Totals(3, 6, 3, 0, 30),
        T + DAY: imported.Totals(6, 12, 6, 0, 60),
    }
    assert imported.periods(ch, SITE) == [("plausible", T, T + DAY)]
    assert imported.totals(ch, SITE, "path", T, T) == {"/a": imported.Totals(3, 6, 3, 0, 30)}
    assert imported.visitors_since(ch, [SITE, "nobody.example"], T) == {SITE: 6, "nobody.example": 0}
    # Merged into the stats as on SQLite: our one view of that day plus the imported 3.
    bulk.insert_views(ch, [row(bid="ours", date_created=T + 5, is_unique_user=1)])
    query = Query(SITE, T * 1000, (T + DAY) * 1000 - 1)
    summary = imported_stats.summary(ch, query, False, None, imported.ENGINE)
    assert (summary["current"]["visitors"], summary["current"]["pageviews"]) == (4, 7)
    pages = imported_stats.list_stats(ch, query, "pages", True, Page(), False, imported.ENGINE)
    assert [(p["path"], p["visitors"]) for p in pages] == [("/a", 3), ("/", 1)]
    site_data.rename_site_data(ch, SITE, "b.example")
    assert imported.periods(ch, SITE) == [] and imported.periods(ch, "b.example") == [("plausible", T, T + DAY)]
    site_data.delete_site_data(ch, ["b.example"])
    assert ch.rows("SELECT count() FROM imported_days") == [[0]]


def test_an_upload_is_checked_whole_before_anything_is_stored(ch: Client) -> None:
    data = (SAMPLES / "goatcounter-export.csv").read_bytes()
    site = "example.com"
    dry = transfer.import_upload_clickhouse(ch, "goatcounter", data, site, {}, dry_run=True)
    assert [(r.kind, r.rows, r.stored) for r in dry] == [("views", 5, 0), ("events", 1, 0)]
    bad = data.replace(b"2024-03-06T23:59:59Z", b"soon")
    with pytest.raises(transfer.TransferError, match="line 8"):
        transfer.import_upload_clickhouse(ch, "goatcounter", bad, site, {})
    assert ch.rows("SELECT count() FROM views") == [[0]] and ch.rows("SELECT count() FROM events") == [[0]]
    done = transfer.import_upload_clickhouse(ch, "goatcounter", data, site, {})
    assert [(r.rows, r.stored) for r in done] == [(5, 5), (1, 1)]
    again = transfer.import_upload_clickhouse(ch, "goatcounter", data, site, {})
    assert [r.stored for r in again] == [0, 0]
    zipped = (SAMPLES / "plausible-export.zip").read_bytes()
    [totals] = transfer.import_upload_clickhouse(ch, "plausible", zipped, site, {}, name="plausible-export.zip")
    assert totals.kind == transfer.IMPORTED and totals.stored == totals.rows > 0
    [totals] = transfer.import_upload_clickhouse(ch, "plausible", zipped, site, {}, name="plausible-export.zip")
    assert totals.stored == 0
