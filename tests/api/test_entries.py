"""Entry and exit pages over real hits, counted by hand, on both engines (docs/insights.md)."""

from __future__ import annotations

import csv
import io
import json
import time
from typing import Any

from tests.api.test_events import BROWSER, load
from tests.helpers import Client, LiveServer

SITE = "example.com"
HOME = f"https://{SITE}"
# Four visitors, no visit identifier: (bid, path, referrer sent, first view of the site today, of the page).
VIEWS = [
    ("ea0000000001", "/", "https://www.google.com/search?q=x", True, True),  # A enters at / (external)
    ("ea0000000002", "/pricing", f"{HOME}/", False, True),  # A: from /
    ("ea0000000003", "/signup", f"{HOME}/pricing/?plan=pro#top", False, True),  # A: from /pricing (normalised)
    ("ea0000000004", "/pricing", "", True, True),  # B enters at /pricing (no referrer)
    ("ea0000000005", "/", f"{HOME}/pricing", False, False),  # B: from /pricing, leaves from /
    ("ea0000000006", "/blog", "https://t.co/abc", True, True),  # C enters at /blog
    ("ea0000000007", "/blog/post", f"https://www.{SITE}/blog/", False, True),  # C: from /blog (the www. twin)
    ("ea0000000008", "/signup", f"{HOME}/gone", True, False),  # D: from a page never viewed: no entry
]
# Entries: /, /pricing, /blog (one each; each a first view of its page: 1 visitor each), 3 in all.
ENTRIES = [
    {"path": path, "entries": 1, "entries_percentage": 0.3333, "visitors": 1, "visitors_percentage": 0.3333}
    for path in ("/", "/blog", "/pricing")
]
# Departures: from / 1 (A), from /pricing 2 (A, B), from /blog 1 (C), from /gone 1 (D). Exits = views less
# departures: /signup 2 - 0 = 2 (A, D), / 2 - 1 = 1 (B), /blog/post 1 - 0 = 1 (C); /pricing 2 - 2 and /blog
# 1 - 1 have none. Page visitors of the pages listed: /signup 1, / 1, /blog/post 1.
EXITS = [
    {"path": "/signup", "exits": 2, "exits_percentage": 0.5, "visitors": 1, "visitors_percentage": 0.3333},
    {"path": "/", "exits": 1, "exits_percentage": 0.25, "visitors": 1, "visitors_percentage": 0.3333},
    {"path": "/blog/post", "exits": 1, "exits_percentage": 0.25, "visitors": 1, "visitors_percentage": 0.3333},
]
EXIT_DETAILS = [
    {"pageviews": 2, "exit_percentage": 1.0},
    {"pageviews": 2, "exit_percentage": 0.5},
    {"pageviews": 1, "exit_percentage": 1.0},
]


def send(client: Client, body: dict[str, Any]) -> None:
    assert client.post("/api/event/hit", body=json.dumps(body).encode(), headers=BROWSER).status == 204


def get(client: Client, endpoint: str, query: str = "") -> Any:
    result = client.get(f"/api/website/{SITE}/{endpoint}{query}")
    assert result.status == 200, result.body
    return result.json()


def wait_for(client: Client, endpoint: str, expected: Any, query: str = "") -> None:
    deadline = time.monotonic() + 30  # a loaded machine's writer may take seconds; a pass is at once
    while get(client, endpoint, query) != expected and time.monotonic() < deadline:
        time.sleep(0.05)
    assert get(client, endpoint, query) == expected


def test_entries_and_exits_by_hand(server: LiveServer, client: Client) -> None:
    client.login()
    assert client.post("/api/websites", json_body={"hostname": SITE}).status == 201
    for bid, path, referrer, unique_user, unique_page in VIEWS:
        send(client, load(bid, u=f"{HOME}{path}", r=referrer, p=unique_user, q=unique_page))
    wait_for(client, "entries", ENTRIES, "?summary=true")
    assert get(client, "entries") == [{**row, "bounce_percentage": 0} for row in ENTRIES]
    wait_for(client, "exits", EXITS, "?summary=true")
    assert get(client, "exits") == [{**row, **more} for row, more in zip(EXITS, EXIT_DETAILS, strict=True)]
    # Internal referrers are no referrers: the referrers list has the external ones only.
    referrers = {row["referrer"] for row in get(client, "referrers", "?grouped=false")}
    assert referrers == {"", "www.google.com", "t.co"}
    # Paging, as on /pages.
    assert get(client, "exits", "?summary=true&limit=1&offset=1") == EXITS[1:2]
    # Filters select views: the entries of /pricing are all the entries left; with a page filter, the views
    # that came from /pricing are not selected (they are views of / and /signup), so /pricing keeps its exits.
    only = get(client, "entries", "?summary=true&path[eq]=/pricing")
    assert only == [
        {"path": "/pricing", "entries": 1, "entries_percentage": 1.0, "visitors": 1, "visitors_percentage": 1.0}
    ]
    assert get(client, "exits", "?summary=true&path[eq]=/pricing") == [
        {"path": "/pricing", "exits": 2, "exits_percentage": 1.0, "visitors": 2, "visitors_percentage": 1.0}
    ]
    # A filter that keeps every view gives the unfiltered answer (the column copies' path on SQLite).
    assert get(client, "entries", "?summary=true&browser[eq]=Chrome") == ENTRIES
    assert get(client, "exits", "?summary=true&browser[eq]=Chrome") == EXITS
    # A period before the views: nothing.
    assert get(client, "exits", "?end=2000-01-01T00:00:00Z") == []
    # CSV, as every list.
    table = client.get(f"/api/website/{SITE}/exits?format=csv&summary=true")
    assert table.status == 200
    assert table.header_values("content-type")[0].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(table.body.decode())))
    assert [(row["path"], row["exits"]) for row in rows] == [("/signup", "2"), ("/", "1"), ("/blog/post", "1")]


def test_bad_parameters_are_400(server: LiveServer, client: Client) -> None:
    client.login()
    assert client.post("/api/websites", json_body={"hostname": SITE}).status == 201
    for endpoint in ("entries", "exits"):
        for query in ("?limit=0", "?summary=maybe", "?start=yesterday"):
            result = client.get(f"/api/website/{SITE}/{endpoint}{query}")
            assert result.status == 400, (endpoint, query)
        assert client.get(f"/api/website/unknown.org/{endpoint}").status == 404
