"""Every stats endpoint answers CSV when asked (format=csv or Accept: text/csv): hand-computed on three views."""

from __future__ import annotations

import csv
import io
import sqlite3
import time
from typing import Any

import pytest

from medama_core import csvtable
from medama_core.api.stats import HANDLERS
from tests.api.test_auth import error
from tests.helpers import Client, LiveServer
from tests.stores import marked

SITE = "example.com"
NOW_MS = int(time.time() * 1000) // 60_000 * 60_000 - 10 * 60_000  # ten minutes ago, on a minute
PERIOD = "start=2020-01-01T00:00:00Z&end=2100-01-01T00:00:00Z"
INJECTION = "=cmd|' /C calc'!A0"  # a classic CSV injection, arriving as a UTM source


def add_view(conn: sqlite3.Connection, bid: str, path: str, unique_user: int, unique_page: int, **extra: Any) -> None:
    row = {
        "bid": bid,
        "hostname": SITE,
        "pathname": path,
        "is_unique_user": unique_user,
        "is_unique_page": unique_page,
        "ua_browser": "Firefox",
        "ua_os": "Linux",
        "ua_device_type": "Desktop",
        "date_created": NOW_MS,
        **extra,
    }
    conn.execute(f"INSERT INTO views ({', '.join(row)}) VALUES ({', '.join(':' + k for k in row)})", row)


@pytest.fixture
def admin(client: Client, server: LiveServer) -> Client:
    client.login()
    assert client.post("/api/websites", json_body={"hostname": SITE}).status == 201
    with sqlite3.connect(server.config.analyticsdb) as conn, marked(conn):
        add_view(conn, "v1", "/", 1, 1, utm_source=INJECTION, duration_ms=1000)
        add_view(conn, "v2", "/", 0, 0, utm_source="", duration_ms=2000)
        add_view(conn, "v3", "/docs", 1, 1, utm_source="news")
        for bid, value in (("v1", "pro"), ("v3", "@free")):
            conn.execute(
                "INSERT INTO events (bid, batch_id, group_name, name, value, date_created)"
                " VALUES (:bid, :bid, :site, 'plan', :value, :date)",
                {"bid": bid, "site": SITE, "value": value, "date": NOW_MS},
            )
    return client


def csv_of(client: Client, path: str, **headers: str) -> str:
    result = client.get(path, headers=headers)
    assert result.status == 200, result.body
    assert result.headers["content-type"] == "text/csv; charset=utf-8; header=present"
    assert result.headers["vary"] == "Accept"
    return result.body.decode("utf-8")


def test_pages_by_hand(admin: Client) -> None:
    # Page visitors: v1 and v3 (v2 repeats "/"); each path has one of the two.
    assert csv_of(admin, f"/api/website/{SITE}/pages?summary=true&format=csv&{PERIOD}") == (
        "path,visitors,visitors_percentage\r\n/,1,0.5\r\n/docs,1,0.5\r\n"
    )
    disposition = admin.get(f"/api/website/{SITE}/pages?format=csv").headers["content-disposition"]
    assert disposition == 'attachment; filename="example.com-pages.csv"'


def test_a_formula_from_a_visitor_is_written_as_text(admin: Client) -> None:
    # Visitors per source: the injected one (v1) and news (v3) one each, direct (v2, a repeat) none.
    text = csv_of(admin, f"/api/website/{SITE}/sources?summary=true&{PERIOD}", Accept="text/csv")
    assert text == ("source,visitors,visitors_percentage\r\n'=cmd|' /C calc'!A0,1,0.5\r\nnews,1,0.5\r\n,0,0.0\r\n")
    first = next(iter(csv.DictReader(io.StringIO(text, newline=""))))
    assert csvtable.unguard(first["source"]) == INJECTION


def test_property_values_by_hand(admin: Client) -> None:
    assert csv_of(admin, f"/api/website/{SITE}/properties?format=csv&{PERIOD}") == (
        "name,events,events_percentage\r\nplan,2,1.0\r\n"
    )
    assert csv_of(admin, f"/api/website/{SITE}/properties?format=csv&prop_name[eq]=plan&{PERIOD}") == (
        "value,events,events_percentage\r\n'@free,1,0.5\r\npro,1,0.5\r\n"
    )


def test_summary_is_one_row_per_period_or_its_buckets(admin: Client) -> None:
    text = csv_of(admin, f"/api/website/{SITE}/summary?format=csv&{PERIOD}")
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert [(r["period"], r["visitors"], r["pageviews"]) for r in rows] == [("current", "2", "3")]
    start = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(NOW_MS // 1000 - 3600))
    end = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(NOW_MS // 1000 + 3599))
    query = f"start={start}&end={end}&interval=hour&previous=true"
    as_json = admin.get(f"/api/website/{SITE}/summary?{query}").json()
    rows = list(
        csv.DictReader(io.StringIO(csv_of(admin, f"/api/website/{SITE}/summary?{query}&format=csv"), newline=""))
    )
    assert len(rows) == len(as_json["interval"]) == 2
    assert [int(r["pageviews"]) for r in rows] == [b["pageviews"] for b in as_json["interval"]] == [0, 3]


@pytest.mark.parametrize("endpoint", sorted(set(HANDLERS) - {"summary"}))
def test_every_list_endpoint_gives_its_json_rows_as_csv(admin: Client, endpoint: str) -> None:
    base = f"/api/website/{SITE}/{endpoint}?{PERIOD}"
    rows = admin.get(base).json()
    text = csv_of(admin, base + "&format=csv")
    if not rows:
        assert text == ""
        return
    parsed = list(csv.reader(io.StringIO(text, newline="")))
    assert parsed[0] == list(rows[0])
    assert len(parsed) == len(rows) + 1
    for row, record in zip(rows, parsed[1:], strict=True):
        assert record == [csvtable.cell(row.get(name)) for name in parsed[0]]


def test_json_stays_the_default(admin: Client) -> None:
    for headers in ({}, {"Accept": "*/*"}, {"Accept": "application/json, text/csv"}):
        result = admin.get(f"/api/website/{SITE}/pages?{PERIOD}", headers=headers)
        assert result.headers["content-type"] == "application/json" and result.headers["vary"] == "Accept"
    csv_wanted = admin.get(f"/api/website/{SITE}/pages?format=json&{PERIOD}", headers={"Accept": "text/csv"})
    assert csv_wanted.headers["content-type"] == "application/json"  # the parameter wins


def test_errors_stay_json(admin: Client) -> None:
    assert error(admin.get(f"/api/website/{SITE}/pages?format=xml")) == (400, "format: must be json or csv")
    assert error(admin.get("/api/website/nowhere.example/pages?format=csv")) == (404, "website not found")
    assert error(admin.get(f"/api/website/{SITE}/pages?format=csv&limit=0"))[0] == 400
