"""Imported daily totals (Plausible's export) in the stats answers: added for their days only, marked by /imported.

On both engines: the totals come in through the dashboard's upload, our own views straight into the store."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from medama_core import transfer
from medama_core.store.clickhouse import imported as ch_imported
from medama_core.store.sqlite import db, imported
from tests import stores
from tests.helpers import Client, LiveServer, live_server

SAMPLES = Path(__file__).resolve().parents[1] / "importers" / "samples"
SITE = "example.com"
MARCH = "start=2024-03-01T00:00:00Z&end=2024-03-03T23:59:59Z"

# Two views of ours on 2024-03-01 (one of "/", one of "/blog"), and one on 2024-04-01, outside the import.
OURS = (
    "bid,hostname,pathname,is_unique_user,is_unique_page,referrer_host,referrer_group,country,language_base,"
    "language_dialect,ua_browser,ua_os,ua_device_type,utm_source,utm_medium,utm_campaign,duration_ms,date_created\n"
    "b1,example.com,/,true,true,,,Germany,English,English,Chrome,Windows,Desktop,,,,4000,2024-03-01T10:00:00Z\n"
    "b2,example.com,/blog,false,true,,,Germany,English,English,Chrome,Windows,Desktop,,,,2000,2024-03-01T10:01:00Z\n"
    "b3,example.com,/,true,true,,,Germany,English,English,Firefox,Linux,Desktop,,,,1000,2024-04-01T10:00:00Z\n"
)


def our_views() -> list[dict[str, Any]]:
    lines = OURS.splitlines()
    header = lines[0].split(",")
    rows = []
    for line in lines[1:]:
        row: dict[str, Any] = dict(zip(header, line.split(","), strict=True))
        row.update(
            is_unique_user=int(row["is_unique_user"] == "true"),
            is_unique_page=int(row["is_unique_page"] == "true"),
            duration_ms=int(row["duration_ms"]),
            date_created=transfer.parse_time(row["date_created"]),
        )
        rows.append(row)
    return rows


@pytest.fixture
def server(tmp_path: Path, engine: str) -> Iterator[tuple[LiveServer, Client]]:
    with live_server(tmp_path) as live:
        client = live.client()
        client.login()
        assert client.post("/api/websites", json_body={"hostname": SITE}).status == 201
        stores.insert_views(live.config.analyticsdb, our_views())
        upload = client.post(
            f"/api/websites/{SITE}/import?from=plausible&name=plausible-export.zip",
            body=(SAMPLES / "plausible-export.zip").read_bytes(),
            headers={"Content-Type": "application/zip"},
        )
        assert upload.status == 200, upload.body
        yield live, client
        client.close()


def get(client: Client, path: str) -> Any:
    result = client.get(f"/api/website/{SITE}/{path}")
    assert result.status == 200, result.body
    return result.json()


def test_summary_adds_imported_days_only(server: tuple[LiveServer, Client]) -> None:
    _, client = server
    march = get(client, f"summary?{MARCH}&interval=day")
    # Ours on 03-01: 1 visitor, 2 views; imported: 10 + 5 visitors, 25 + 7 pageviews.
    assert (march["current"]["visitors"], march["current"]["pageviews"]) == (16, 34)
    assert [(d["date"][:10], d["visitors"], d["pageviews"]) for d in march["interval"]] == [
        ("2024-03-01", 11, 27),
        ("2024-03-02", 5, 7),
        ("2024-03-03", 0, 0),
    ]
    # A day with no imported totals is exactly what our rows say.
    april = get(client, "summary?start=2024-04-01T00:00:00Z&end=2024-04-01T23:59:59Z")
    assert (april["current"]["visitors"], april["current"]["pageviews"], april["current"]["duration"]) == (1, 1, 1000)
    # Imported only (03-02): the mean visit duration stands in for the median; bounces per visit.
    second = get(client, "summary?start=2024-03-02T00:00:00Z&end=2024-03-02T23:59:59Z")
    assert second["current"] == {"visitors": 5, "pageviews": 7, "bounce_percentage": 0.6, "duration": 20000}


def test_sparklines_add_imported_days_as_the_summary_does(server: tuple[LiveServer, Client]) -> None:
    """The websites page's sparklines and the site's own chart give the same buckets, imported days included."""
    _, client = server
    result = client.get(f"/api/websites/sparklines?hostnames={SITE}&{MARCH}&interval=day")
    assert result.status == 200, result.body
    assert result.json() == [{"hostname": SITE, "interval": get(client, f"summary?{MARCH}&interval=day")["interval"]}]
    assert [bucket["visitors"] for bucket in result.json()[0]["interval"]] == [11, 5, 0]


def test_the_websites_list_adds_imported_visitors_of_the_last_24_hours(server: tuple[LiveServer, Client]) -> None:
    live, client = server
    today = int(time.time()) // 86_400 * 86_400_000  # 00:00 UTC today: always inside the last 24 hours
    row = {"hostname": SITE, "day": today, "dimension": "", "value": "", "tool": "plausible", "visitors": 7}
    rows: list[dict[str, object]] = [{**row, "pageviews": 9, "visits": 8, "bounces": 2, "duration_s": 60}]
    if stores.is_clickhouse(live.config.analyticsdb):
        with stores.clickhouse(live.config.analyticsdb) as ch:
            assert ch_imported.store(ch, rows) == 1
            assert ch_imported.store(ch, rows) == 0  # the same values again: nothing new
    else:
        conn = db.connect(live.config.analyticsdb)
        try:
            imported.store(conn, rows)
        finally:
            conn.close()
    assert client.get("/api/websites?summary=true").json() == [{"hostname": SITE, "summary": {"visitors": 7}}]


def test_lists_add_imported_values_and_rank_again(server: tuple[LiveServer, Client]) -> None:
    _, client = server
    pages = get(client, f"pages?{MARCH}")
    assert [(p["path"], p["visitors"], p["pageviews"]) for p in pages] == [("/", 14, 23), ("/blog", 4, 11)]
    assert pages[0]["visitors_percentage"] == round(14 / 18, 4)
    browsers = get(client, f"browsers?{MARCH}&summary=true")
    assert [(b["browser"], b["visitors"]) for b in browsers] == [("Chrome", 8), ("Safari", 5), ("Edge", 3)]
    assert list(browsers[0]) == ["browser", "visitors", "visitors_percentage"]
    assert [r["referrer"] for r in get(client, f"referrers?{MARCH}&limit=2")] == ["", "Newsletter"]
    assert [r["referrer"] for r in get(client, f"referrers?{MARCH}&grouped=false")][:2] == ["", "google.com"]
    # With a filter nothing imported is added (the totals cannot be filtered).
    filtered = get(client, f"pages?{MARCH}&browser[eq]=Chrome")
    assert [(p["path"], p["visitors"]) for p in filtered] == [("/", 1), ("/blog", 1)]


def test_goals_count_our_views_over_the_visitors_with_imported_days(server: tuple[LiveServer, Client]) -> None:
    """Imported daily totals cannot be matched to a goal (a page's imported views have no flags, an event
    goal no events): a goal counts our own views only, over all the period's visitors, imported ones too."""
    _, client = server
    assert client.post(f"/api/websites/{SITE}/goals", json_body={"page": "/"}).status == 201
    assert client.post(f"/api/websites/{SITE}/goals", json_body={"page": "/*"}).status == 201
    goals = get(client, f"goals?{MARCH}")
    # Ours: "/" once, "/blog" once, both first views of their page; 16 visitors with the imported 15.
    assert [(g["conversions"], g["visitors"], g["rate"]) for g in goals] == [(1, 1, 0.0625), (2, 2, 0.125)]


def test_imported_periods(server: tuple[LiveServer, Client]) -> None:
    _, client = server
    assert get(client, "imported") == {"periods": [{"tool": "plausible", "start": "2024-03-01", "end": "2024-03-02"}]}
    assert client.get("/api/website/nobody.net/imported").status == 404


def test_upload_from_the_dashboard(tmp_path: Path, engine: str) -> None:
    with live_server(tmp_path) as live:
        client = live.client()
        client.login()
        assert client.post("/api/websites", json_body={"hostname": SITE}).status == 201
        data = (SAMPLES / "goatcounter-export.csv").read_bytes()
        url = f"/api/websites/{SITE}/import?from=goatcounter"
        headers = {"Content-Type": "text/csv"}
        result = client.post(url + "&dry_run=true", body=data, headers=headers)
        assert result.json()["results"] == [
            {"kind": "views", "read": 5, "stored": 0},
            {"kind": "events", "read": 1, "stored": 0},
        ]
        result = client.post(url, body=data, headers=headers)
        assert result.status == 200 and [r["stored"] for r in result.json()["results"]] == [5, 1]
        again = client.post(url, body=data, headers=headers)
        assert [r["stored"] for r in again.json()["results"]] == [0, 0]
        assert get(client, "summary?start=2024-03-05T00:00:00Z&end=2024-03-07T23:59:59Z")["current"]["pageviews"] == 5

        bad = client.post(url, body=data.replace(b"2024-03-06T23:59:59Z", b"soon"), headers=headers)
        assert bad.status == 400 and "line 8" in bad.json()["error"]["message"]
        assert client.post(f"/api/websites/{SITE}/import?from=nope", body=data, headers=headers).status == 400
        assert client.post("/api/websites/nobody.net/import?from=goatcounter", body=data, headers=headers).status == 404
        # Past the limit the server answers 413 from the headers alone.
        with socket.create_connection(("127.0.0.1", live.port)) as raw:
            raw.sendall(f"POST {url} HTTP/1.1\r\nHost: x\r\nContent-Length: {8 * 2**20 + 1}\r\n\r\n".encode())
            assert raw.recv(64).startswith(b"HTTP/1.1 413")
        anonymous = live.client()
        assert anonymous.post(url, body=data, headers=headers).status == 401
        anonymous.close()
        client.close()
