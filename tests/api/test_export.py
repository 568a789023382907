"""/websites/{hostname}/export: a site's rows as one streamed download, read in pages; and the pager under it.

The API tests run on both engines; rows that tie on the date come in the order they were stored on SQLite,
in the order of their other columns on ClickHouse (which keeps no insertion order)."""

from __future__ import annotations

import csv
import gzip
import io
import json
import socket
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medama_core import csvtable, transfer
from medama_core.api import export
from medama_core.store.clickhouse import bulk as ch_bulk
from medama_core.store.rows import EVENT_COLUMNS, VIEW_COLUMNS
from medama_core.store.sqlite import analytics, db
from tests import stores
from tests.api.test_auth import error
from tests.helpers import Client, LiveServer

SITE = "example.com"
DATE = 1_717_200_000_000  # 2024-06-01T00:00:00Z


def view(bid: str, date: int, **extra: Any) -> dict[str, Any]:
    return {
        "bid": bid,
        "hostname": SITE,
        "pathname": "/",
        "is_unique_user": 1,
        "is_unique_page": 0,
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
        "duration_ms": None,
        "date_created": date,
        **extra,
    }


def insert(conn: sqlite3.Connection, table: str, row: dict[str, Any]) -> None:
    conn.execute(f"INSERT INTO {table} ({', '.join(row)}) VALUES ({', '.join(':' + c for c in row)})", row)


# Seven views, five of them in one millisecond (pages must not lose or repeat rows that tie on the date),
# one of another site, one with text a spreadsheet would run; two custom events.
VIEWS = [
    view("b3", DATE, pathname="/=1+1", utm_source="+cmd"),
    view("b1", DATE, duration_ms=1500),
    view("b2", DATE),
    view("b0", DATE + 5),
    view("a9", DATE),
    view("a8", DATE),
    view("b4", DATE - 1, pathname='/quote"comma,'),
    view("x1", DATE, hostname="other.example"),
]
EVENTS = [
    {"bid": "b1", "batch_id": "e1", "group_name": SITE, "name": "plan", "value": "=pro", "date_created": DATE + 2},
    {"bid": "b2", "batch_id": "e2", "group_name": SITE, "name": "plan", "value": "free", "date_created": DATE + 1},
]


@pytest.fixture
def admin(client: Client, server: LiveServer) -> Client:
    client.login()
    for host in (SITE, "other.example"):
        assert client.post("/api/websites", json_body={"hostname": host}).status == 201
    stores.insert_views(server.config.analyticsdb, VIEWS)
    stores.insert_events(server.config.analyticsdb, EVENTS)
    return client


def stored(server: LiveServer, table: str, columns: tuple[str, ...]) -> list[tuple[Any, ...]]:
    """The site's rows as the export writes them: by date, ties as stored (SQLite) or by their columns."""
    host = "hostname" if table == "views" else "group_name"
    rows = [row for row in (VIEWS if table == "views" else EVENTS) if row[host] == SITE]
    tie = (lambda row: row["bid"]) if table == "views" else (lambda row: tuple(row[c] for c in columns))
    ordered = sorted(rows, key=lambda row: (row["date_created"], tie(row) if on_clickhouse(server) else 0))
    return [tuple(transfer._export_value(c, row[c]) for c in columns) for row in ordered]


def on_clickhouse(server: LiveServer) -> bool:
    return stores.is_clickhouse(server.config.analyticsdb)


def cells(row: tuple[Any, ...]) -> list[str]:
    return [csvtable.cell(value) for value in row]


@pytest.mark.parametrize("page_rows", [1, 2, 4096])
def test_views_as_csv_equal_the_stored_rows(
    admin: Client, server: LiveServer, monkeypatch: pytest.MonkeyPatch, page_rows: int
) -> None:
    monkeypatch.setattr(export, "PAGE_ROWS", page_rows)
    result = admin.get(f"/api/websites/{SITE}/export")
    assert result.status == 200
    assert result.headers["transfer-encoding"] == "chunked" and "content-length" not in result.headers
    assert result.headers["content-type"] == "text/csv; charset=utf-8; header=present"
    assert result.headers["content-disposition"] == 'attachment; filename="example.com-views.csv"'
    records = list(csv.reader(io.StringIO(result.body.decode(), newline="")))
    assert records[0] == list(VIEW_COLUMNS)
    expected = stored(server, "views", VIEW_COLUMNS)
    assert len(expected) == 7  # the other site's view is not in it
    assert records[1:] == [cells(row) for row in expected]
    tied = ["a8", "a9", "b1", "b2", "b3"] if on_clickhouse(server) else ["b3", "b1", "b2", "a9", "a8"]
    assert [r[0] for r in records[1:]] == ["b4", *tied, "b0"]  # date, then as stored (SQLite) or by bid
    assert records[1][2] == '/quote"comma,'
    guarded = records[1 + [r[0] for r in records[1:]].index("b3")]
    assert guarded[2] == "/=1+1"  # a path starts with /: nothing to guard
    assert guarded[13] == "'+cmd"  # a UTM source that would run as a formula


def test_events_as_json_lines_are_exact(admin: Client, server: LiveServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(export, "PAGE_ROWS", 1)
    result = admin.get(f"/api/websites/{SITE}/export?type=events&format=jsonl")
    assert result.headers["content-type"] == "application/x-ndjson"
    assert result.headers["content-disposition"] == 'attachment; filename="example.com-events.jsonl"'
    lines = [json.loads(line) for line in result.body.decode().splitlines()]
    assert [line["value"] for line in lines] == ["free", "=pro"]  # date order; JSON Lines is not guarded
    assert lines == [dict(zip(EVENT_COLUMNS, row, strict=True)) for row in stored(server, "events", EVENT_COLUMNS)]
    # The same lines `medama export` writes for the site (which orders ties by columns, not insertion).
    out = io.StringIO()
    if on_clickhouse(server):
        with stores.clickhouse(server.config.analyticsdb) as ch:
            write = transfer._jsonl_writer(out, EVENT_COLUMNS)
            for row in ch_bulk.export_rows(ch, "events", SITE):
                write(row)
    else:
        with sqlite3.connect(server.config.analyticsdb) as conn:
            transfer.export_rows(conn, out, kind="events", fmt="jsonl", hostname=SITE)
    assert sorted(result.body.decode().splitlines()) == sorted(out.getvalue().splitlines())


def test_gzip_when_accepted(admin: Client) -> None:
    plain = admin.get(f"/api/websites/{SITE}/export?format=jsonl")
    packed = admin.get(f"/api/websites/{SITE}/export?format=jsonl", headers={"Accept-Encoding": "gzip"})
    assert packed.headers["content-encoding"] == "gzip" and "content-encoding" not in plain.headers
    assert gzip.decompress(packed.body) == plain.body
    assert plain.headers["vary"] == "Accept-Encoding"


def test_an_empty_site_exports_a_header_only(admin: Client) -> None:
    assert admin.post("/api/websites", json_body={"hostname": "empty.example"}).status == 201
    assert admin.get("/api/websites/empty.example/export").body.decode() == ",".join(VIEW_COLUMNS) + "\r\n"
    assert admin.get("/api/websites/empty.example/export?format=jsonl").body == b""


def test_the_body_comes_in_chunks_of_a_page(admin: Client, server: LiveServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """On the wire: one chunk per page of rows, and the last chunk."""
    monkeypatch.setattr(export, "PAGE_ROWS", 3)
    cookie = admin.cookies["_me_sess"]
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(
            f"GET /api/websites/{SITE}/export?format=jsonl HTTP/1.1\r\nHost: x\r\nCookie: _me_sess={cookie}\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        data = b""
        while piece := sock.recv(65536):
            data += piece
    body = data.partition(b"\r\n\r\n")[2]
    sizes = []
    while True:
        size_line, _, body = body.partition(b"\r\n")
        size = int(size_line, 16)
        sizes.append(size)
        if size == 0:
            break
        body = body[size + 2 :]
    assert len(sizes) == 4 and sizes[-1] == 0  # 7 rows in pages of 3: 3, 3, 1, then the end


def test_bad_requests_and_who_may_export(admin: Client, server: LiveServer) -> None:
    assert error(admin.get(f"/api/websites/{SITE}/export?type=pages")) == (400, "type: must be views or events")
    assert error(admin.get(f"/api/websites/{SITE}/export?format=xlsx")) == (400, "format: must be csv or jsonl")
    assert error(admin.get("/api/websites/nowhere.example/export")) == (404, "website not found")
    # A viewer exports the sites granted to them (raw data is stats too); any other site is unknown to them.
    assert admin.post("/api/websites", json_body={"hostname": "bob.example"}).status == 201
    made = admin.post(
        "/api/users", json_body={"username": "bob", "password": "bob-password", "websites": ["bob.example"]}
    )
    assert made.status == 201, made.body
    bob = server.client()
    bob.login("bob", "bob-password")
    assert error(bob.get(f"/api/websites/{SITE}/export")) == (404, "website not found")
    assert bob.get("/api/websites/bob.example/export").status == 200
    bob.close()
    anonymous = server.client()
    assert anonymous.get(f"/api/websites/{SITE}/export").status == 401
    anonymous.close()


def fresh_analytics(path: Path) -> sqlite3.Connection:
    conn = db.connect(str(path))
    db.migrate(conn, analytics.MIGRATIONS)
    return conn


@settings(max_examples=40, deadline=None)
@given(
    dates=st.lists(st.integers(min_value=0, max_value=3), min_size=0, max_size=25),
    page_rows=st.integers(min_value=1, max_value=6),
    kind=st.sampled_from(["views", "events"]),
)
def test_pages_give_every_row_once_in_order(
    tmp_path_factory: pytest.TempPathFactory, dates: list[int], page_rows: int, kind: str
) -> None:
    """Whatever the ties on the date and the page size, the pages put together are the whole site, in order."""
    conn = fresh_analytics(tmp_path_factory.mktemp("pages") / "a.db")
    for i, date in enumerate(dates):
        if kind == "views":
            insert(conn, "views", view(f"v{i:02d}", DATE + date))
        else:
            row = {
                "bid": "v",
                "batch_id": f"e{i}",
                "group_name": SITE,
                "name": "n",
                "value": str(i),
                "date_created": DATE + date,
            }
            insert(conn, "events", row)
    insert(conn, "views", view("other", DATE, hostname="other.example"))
    text, after, pages = "", None, 0
    while True:
        page = transfer.export_page(conn, SITE, kind=kind, fmt="jsonl", after=after, limit=page_rows)
        text += page.text
        pages += 1
        assert page.rows <= page_rows
        if page.after is None:
            break
        after = page.after
    lines = [json.loads(line) for line in text.splitlines()]
    key = "bid" if kind == "views" else "value"
    expected = [f"v{i:02d}" if kind == "views" else str(i) for i, _ in sorted(enumerate(dates), key=lambda x: x[1])]
    assert [line[key] for line in lines] == expected
    assert pages == len(dates) // page_rows + 1
    conn.close()
