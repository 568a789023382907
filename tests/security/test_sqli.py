"""SQL injection through every filter field, operator and value, the hostname and property names.

The site's rows hold the injection strings themselves as data. For every
field x operator x payload, the stats answer must be a 200 whose counts equal
what a plain literal comparison gives (computed here in Python from the
seeded rows, independently of the server's code), and nothing of another
site (whose every value is marked LEAK) may appear. Afterwards both tables
are intact. Hostnames and ingested strings get the same treatment.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.helpers import Client, LiveServer, live_server
from tests.stores import marked

SITE, OTHER = "example.com", "secret.org"
PAYLOADS = (
    "' OR '1'='1",
    "' OR 1=1 --",
    "'; DROP TABLE views; --",
    '" OR ""="',
    "') OR ('a'='a",
    "1) UNION SELECT name, value FROM events --",
    "' UNION SELECT hostname FROM views WHERE hostname='secret.org' --",
    "*/ OR 1=1 /*",
    "%",
    "_",
    "a%b",
    "a_b",
    "\\",
    "\\'",
    ":f0_0",
    "?",
    "$1",
    "||",
    "lower(",
    "",
    ",",
    "a,b",
    "NULL",
    "ÄÖ",
)
QUERY_ONLY = ("\x00", "' OR 1=1) --", "axb", "A%B")  # values sent in queries but stored nowhere as such
# Filter field -> the seeded columns it reads (the spec's table, §2.8).
FIELDS: dict[str, tuple[str, ...]] = {
    "path": ("pathname",),
    "referrer": ("referrer_host", "referrer_group"),
    "utm_source": ("utm_source",),
    "utm_medium": ("utm_medium",),
    "utm_campaign": ("utm_campaign",),
    "browser": ("ua_browser",),
    "os": ("ua_os",),
    "device": ("ua_device_type",),
    "country": ("country",),
    "language": ("language_base", "language_dialect"),
    "prop_name": ("name",),
    "prop_value": ("value",),
}
OPERATORS = ("eq", "neq", "contains", "not_contains", "starts_with", "not_starts_with", "ends_with", "not_ends_with",
             "in", "not_in")  # fmt: skip
TEXT_COLUMNS = tuple(c for field, cols in FIELDS.items() if not field.startswith("prop_") for c in cols)
HOUR_MS = 3_600_000


def fold(text: str) -> str:
    """ASCII-only case folding, as the filters document."""
    return text.translate(str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz"))


def column_matches(op: str, values: list[str], cell: str) -> bool:
    cell = fold(cell)
    if op == "in":
        return cell in values
    value = values[0]
    return {
        "eq": cell == value,
        "contains": value in cell,
        "starts_with": cell.startswith(value),
        "ends_with": cell.endswith(value),
    }[op]


def matches(field: str, op: str, value: str, row: dict[str, str]) -> bool:
    """A plain literal match of one filter against one row: the reference the server must agree with."""
    negated = op == "neq" or op.startswith("not_")
    positive = "eq" if op == "neq" else op.removeprefix("not_")
    values = [fold(v) for v in (value.split(",") if positive == "in" else [value])]
    found = False
    for index, column in enumerate(FIELDS[field]):
        # An empty referrer means direct traffic: it is compared with the host only.
        wanted = values if index == 0 or field != "referrer" else [v for v in values if v]
        if wanted and column_matches(positive, wanted, row[column]):
            found = True
    return found != negated


def seed(db_path: Path) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    """Views whose every text column holds a payload (as is, and inside other text), with events named alike."""
    now = int(time.time() * 1000) - HOUR_MS // 2
    views: list[dict[str, object]] = []
    events: list[dict[str, object]] = []
    cells = [*PAYLOADS, *(f"x{p}y" for p in PAYLOADS), "plain", "Plain Text"]
    for i, cell in enumerate(cells):
        for host in (SITE, OTHER):
            value = cell if host == SITE else f"LEAK{cell}"
            row: dict[str, object] = {column: value for column in TEXT_COLUMNS}
            # Give two-column fields different texts, so "either column" matters.
            row["referrer_group"] = cells[(i + 3) % len(cells)] if host == SITE else "LEAK"
            row["language_dialect"] = cells[(i + 5) % len(cells)] if host == SITE else "LEAK"
            row.update(bid=f"{host}-{i}", hostname=host, is_unique_user=i % 2, is_unique_page=1,
                       duration_ms=1000 + i, date_created=now + i)  # fmt: skip
            views.append(row)
            name, prop = (cell, cells[(i + 1) % len(cells)]) if host == SITE else ("LEAK", "LEAK")
            events.append({"bid": row["bid"], "batch_id": f"b{i}", "group_name": host, "name": name, "value": prop,
                           "date_created": now + i})  # fmt: skip
    with sqlite3.connect(db_path, timeout=30) as conn, marked(conn):
        for table, rows in (("views", views), ("events", events)):
            columns = ", ".join(rows[0])
            conn.executemany(f"INSERT INTO {table} ({columns}) VALUES ({', '.join(':' + c for c in rows[0])})", rows)
    conn.close()
    return [v for v in views if v["hostname"] == SITE], [e for e in events if e["group_name"] == SITE]


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, Client, list, list]]:  # type: ignore[type-arg]
    path = tmp_path_factory.mktemp("sqli")
    with live_server(path, level="warn") as server:
        client = server.client()
        client.login()
        for host in (SITE, OTHER):
            assert client.post("/api/websites", json_body={"hostname": host}).status == 201
        views, events = seed(Path(server.config.analyticsdb))
        yield server, client, views, events
        client.close()


def window() -> str:
    start = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 3 * 3600))
    end = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
    return f"start={start}&end={end}"


def expected_summary(views: list[dict[str, object]], events: list[dict[str, object]], field: str, op: str,
                     value: str) -> tuple[int, int]:  # fmt: skip
    """(pageviews, visitors) of the views the filter keeps; a prop filter keeps views with a matching event."""
    kept = []
    for view in views:
        if field.startswith("prop_"):
            ok = any(matches(field, op, value, e) for e in events if e["bid"] == view["bid"])  # type: ignore[arg-type]
        else:
            ok = matches(field, op, value, view)  # type: ignore[arg-type]
        if ok:
            kept.append(view)
    return len(kept), sum(int(v["is_unique_user"]) for v in kept)  # type: ignore[call-overload]


@pytest.mark.slow
@pytest.mark.parametrize("field", sorted(FIELDS))
def test_every_operator_and_payload_is_a_literal_match(
    seeded: tuple[LiveServer, Client, list, list], field: str
) -> None:  # type: ignore[type-arg]
    _, client, views, events = seeded
    span = window()
    mismatches = []
    for op in OPERATORS:
        for value in (*PAYLOADS, *QUERY_ONLY):
            result = client.get(f"/api/website/{SITE}/summary?{span}&{field}[{op}]={quote(value, safe='')}")
            assert result.status == 200, (field, op, value, result.body)
            assert b"LEAK" not in result.body
            current = result.json()["current"]
            got = (current["pageviews"], current["visitors"])
            want = expected_summary(views, events, field, op, value)
            if got != want:
                mismatches.append((op, value, got, want))
    assert not mismatches, mismatches[:10]


@pytest.mark.parametrize("endpoint", ["pages", "referrers", "browsers", "languages", "time", "properties"])
def test_list_answers_carry_the_payloads_back_as_plain_text(
    seeded: tuple[LiveServer, Client, list, list], endpoint: str
) -> None:  # type: ignore[type-arg]
    _, client, _, _ = seeded
    for value in PAYLOADS:
        query = f"{window()}&path[eq]={quote(value, safe='')}&prop_name[contains]={quote(value[:3], safe='')}"
        result = client.get(f"/api/website/{SITE}/{endpoint}?{query}")
        assert result.status == 200, (endpoint, value, result.body)
        assert b"LEAK" not in result.body
        if endpoint == "pages":
            assert [row["path"] for row in result.json()] in ([value], []), value


@pytest.mark.parametrize(
    "query",
    [
        "pathname[eq]=x",  # a column name, not a filter field
        "path[eq)%20OR%201=1%20--]=x",
        "path[like]=%25",
        "path]=x",
        "path[eq][eq]=x",
        "prop_name%5Beq%5D%3Dx%26=1",
        "order=1;DROP%20TABLE%20views",
    ],
)
def test_unknown_filter_names_and_operators_are_ignored(
    seeded: tuple[LiveServer, Client, list, list], query: str
) -> None:  # type: ignore[type-arg]
    _, client, views, _ = seeded
    result = client.get(f"/api/website/{SITE}/summary?{window()}&{query}")
    assert result.status == 200, result.body
    assert result.json()["current"]["pageviews"] == len(views)


@pytest.mark.parametrize(
    "hostname",
    ["example.com' OR '1'='1", "example.com'--", "secret.org' AND '1'='1", "%27%20OR%201%3D1", "example.com%00", "*"],
)
def test_hostnames_with_sql_are_unknown_sites(seeded: tuple[LiveServer, Client, list, list], hostname: str) -> None:  # type: ignore[type-arg]
    _, client, _, _ = seeded
    target = quote(hostname, safe="%*")
    for path in (f"/api/website/{target}/summary", f"/api/website/{target}/pages", f"/api/websites/{target}"):
        result = client.get(path)
        assert result.status in (400, 404), (path, result.status, result.body)
        assert b"LEAK" not in result.body and b"pageviews" not in result.body
    created = client.post("/api/websites", json_body={"hostname": hostname})
    assert created.status == 400, created.body


def test_tables_are_intact_afterwards(seeded: tuple[LiveServer, Client, list, list]) -> None:  # type: ignore[type-arg]
    server, client, views, events = seeded
    conn = sqlite3.connect(server.config.analyticsdb)
    try:
        assert conn.execute("SELECT count(*) FROM views WHERE hostname = ?", (SITE,)).fetchone()[0] >= len(views)
        assert conn.execute("SELECT count(*) FROM events WHERE group_name = ?", (SITE,)).fetchone()[0] >= len(events)
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()
    assert client.get(f"/api/website/{OTHER}/summary?{window()}").json()["current"]["pageviews"] == len(views)


def test_ingested_strings_are_stored_literally(tmp_path: Path) -> None:
    """Payloads in the page URL, UTM tags, referrer and property names and values go in and come out as sent."""
    chrome = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
    headers = {"User-Agent": chrome, "Accept-Language": "en-GB", "Content-Type": "text/plain"}
    with live_server(tmp_path, level="warn") as server:
        client = server.client()
        try:
            client.login()
            assert client.post("/api/websites", json_body={"hostname": SITE}).status == 201
            for i, payload in enumerate(p for p in PAYLOADS if p):
                encoded = quote(payload, safe="")
                body = {"e": "load", "b": f"inj{i}", "u": f"https://{SITE}/{encoded}?utm_source={encoded}",
                        "r": f"https://{encoded.replace('%', '')}x.example/", "p": True, "q": True,
                        "t": "Europe/Paris", "d": {payload: payload}}  # fmt: skip
                status = client.post("/api/event/hit", body=json.dumps(body).encode(), headers=headers).status
                assert status == 204, payload
            time.sleep(0.2)
            conn = sqlite3.connect(server.config.analyticsdb)
            try:
                rows = conn.execute("SELECT pathname, utm_source FROM views ORDER BY bid").fetchall()
                names = {name for (name,) in conn.execute("SELECT name FROM events")}
            finally:
                conn.close()
            sent = [p for p in PAYLOADS if p]
            assert sorted(path for path, _ in rows) == sorted("/" + p for p in sent)
            assert sorted(utm for _, utm in rows) == sorted(sent)
            assert names == set(sent)
            listed = client.get(f"/api/website/{SITE}/properties?{window()}").json()
            assert {row["name"] for row in listed} == set(sent)
        finally:
            client.close()
