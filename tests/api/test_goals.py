"""Goals over real hits: definitions kept per site, conversions counted by hand, refusals with their reasons."""

from __future__ import annotations

import csv
import io
import json
import time
from pathlib import Path
from typing import Any

import pytest

from medama_core import goals, passwords
from medama_core.store.sqlite import rollups
from tests import stores
from tests.api.test_events import BROWSER, load
from tests.helpers import Client, LiveServer, live_server, stores_for

SITE = "example.com"
# (bid, path, first view of the site today, first view of the page today, custom properties sent)
VIEWS = [
    ("gv0000000001", "/signup/pro/done", True, True, {}),
    ("gv0000000002", "/signup/free/done", True, True, {}),
    ("gv0000000003", "/signup/pro/done", False, False, {}),
    ("gv0000000004", "/pricing", True, True, {"plan": "pro"}),
    ("gv0000000005", "/pricing", False, True, {"plan": "free"}),
    ("gv0000000006", "/blog", True, True, {}),
]
SITE_VISITORS = 4  # the views that were their browser's first of the site today


def send(client: Client, body: dict[str, Any]) -> None:
    assert client.post("/api/event/hit", body=json.dumps(body).encode(), headers=BROWSER).status == 204


def add(client: Client, body: dict[str, Any], status: int = 201) -> dict[str, Any]:
    result = client.post(f"/api/websites/{SITE}/goals", json_body=body)
    assert result.status == status, result.body
    found: dict[str, Any] = result.json()
    return found


def numbers(client: Client, query: str = "") -> list[tuple[str, int, int, float]]:
    result = client.get(f"/api/website/{SITE}/goals{query}")
    assert result.status == 200, result.body
    return [(row["name"], row["conversions"], row["visitors"], row["rate"]) for row in result.json()]


def seed(client: Client) -> None:
    for bid, path, unique_user, unique_page, props in VIEWS:
        send(client, load(bid, u=f"https://{SITE}{path}", r="", p=unique_user, q=unique_page))
        if props:
            send(client, {"e": "custom", "b": bid, "g": SITE, "d": props})


def test_conversions_visitors_and_rates_by_hand(server: LiveServer, client: Client) -> None:
    client.login()
    assert client.post("/api/websites", json_body={"hostname": SITE}).status == 201
    assert numbers(client) == []  # no goals, no rows
    signup = add(client, {"page": "/signup/*/done/", "name": "Signed up"})
    assert signup == {
        "id": signup["id"],
        "name": "Signed up",
        "page": "/signup/*/done",
        "property": None,
        "value": None,
    }
    add(client, {"property": "plan", "value": "pro"})
    add(client, {"property": "plan"})
    add(client, {"page": "/nothing"})
    seed(client)
    expected = [
        ("Signed up", 3, 2, 0.5),  # views 1-3; views 1 and 2 were first views of their page
        ("plan=pro", 1, 1, 0.25),
        ("plan", 2, 2, 0.5),
        ("/nothing", 0, 0, 0.0),
    ]
    deadline = time.monotonic() + 30  # generous: a loaded machine's writer may take seconds; a pass is at once
    while numbers(client) != expected and time.monotonic() < deadline:
        time.sleep(0.05)  # the writer stores the hits a moment after answering
    assert numbers(client) == expected
    # Under a filter the site's visitors shrink with the goals': on /pricing one first visit, two plan views.
    assert numbers(client, "?path[eq]=/pricing") == [
        ("Signed up", 0, 0, 0.0),
        ("plan=pro", 1, 1, 1.0),
        ("plan", 2, 2, 1.0),  # 2 page visitors over 1 site visitor: capped at 1
        ("/nothing", 0, 0, 0.0),
    ]
    assert numbers(client, "?start=2000-01-01T00:00:00Z&end=2000-01-02T00:00:00Z") == [
        (name, 0, 0, 0.0) for name, *_ in expected
    ]
    # goal[eq] narrows every stats endpoint to the goal's views.
    ids = {g["name"]: g["id"] for g in client.get(f"/api/websites/{SITE}/goals").json()}
    summary = client.get(f"/api/website/{SITE}/summary?goal[eq]={ids['Signed up']}").json()["current"]
    assert (summary["pageviews"], summary["visitors"]) == (3, 2)  # views 1-3; views 1 and 2 first of the site
    pages = client.get(f"/api/website/{SITE}/pages?goal[eq]={ids['plan']}").json()
    assert [(p["path"], p["pageviews"], p["visitors"]) for p in pages] == [("/pricing", 2, 2)]
    props = client.get(f"/api/website/{SITE}/properties?goal[eq]={ids['plan=pro']}").json()
    assert [(p["value"], p["events"]) for p in props] == [("pro", 1)]  # under a name filter: its values
    none = client.get(f"/api/website/{SITE}/summary?goal[eq]={ids['/nothing']}").json()["current"]
    assert none["pageviews"] == 0
    unknown = client.get(f"/api/website/{SITE}/pages?goal[eq]=goal_nope")
    assert unknown.status == 400 and "no goal with that id" in unknown.json()["error"]["message"]
    mixed = client.get(f"/api/website/{SITE}/pages?goal[eq]={ids['plan']}&prop_value[eq]=x")
    assert mixed.status == 400 and "prop_name or prop_value" in mixed.json()["error"]["message"]
    refused = client.get(f"/api/website/{SITE}/goals?prop_name[eq]=plan")
    assert refused.status == 400 and "prop_name or prop_value" in refused.json()["error"]["message"]
    table = client.get(f"/api/website/{SITE}/goals?format=csv")
    assert table.status == 200 and table.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(table.body.decode())))
    assert [(r["name"], r["conversions"], r["visitors"], r["rate"]) for r in rows][0] == ("Signed up", "3", "2", "0.5")

    # Definitions: listed in order, deleted one by one, carried by a rename.
    listed = client.get(f"/api/websites/{SITE}/goals").json()
    assert [g["name"] for g in listed] == ["Signed up", "plan=pro", "plan", "/nothing"]
    assert client.delete(f"/api/websites/{SITE}/goals/{signup['id']}").status == 204
    assert client.delete(f"/api/websites/{SITE}/goals/{signup['id']}").status == 404
    assert client.delete(f"/api/websites/{SITE}/goals/{'x' * 100}").status == 404
    assert client.patch(f"/api/websites/{SITE}", json_body={"hostname": "renamed.example"}).status == 200
    assert [g["name"] for g in client.get("/api/websites/renamed.example/goals").json()] == [
        "plan=pro",
        "plan",
        "/nothing",
    ]


def test_bad_goals_are_400_and_a_full_site_409(server: LiveServer, client: Client) -> None:
    client.login()
    assert client.post("/api/websites", json_body={"hostname": SITE}).status == 201
    for body in ({}, {"page": "pricing"}, {"page": "/a", "property": "b"}, {"value": "x"}, {"page": ["/a"]}):
        result = client.post(f"/api/websites/{SITE}/goals", json_body=body)
        assert result.status == 400, (body, result.body)
    assert (
        client.post(f"/api/websites/{SITE}/goals", body=b"[", headers={"Content-Type": "application/json"}).status
        == 400
    )
    for i in range(goals.MAX_GOALS_PER_SITE):
        add(client, {"page": f"/p{i}"})
    result = client.post(f"/api/websites/{SITE}/goals", json_body={"page": "/one-more"})
    assert result.status == 409 and "50 goals" in result.json()["error"]["message"]
    assert client.post("/api/websites/nowhere.example/goals", json_body={"page": "/a"}).status == 404


def test_a_viewer_reads_granted_goals_and_changes_none(tmp_path: Path) -> None:
    with stores.app_store(stores_for(tmp_path)[0]) as (conn, meta):
        meta.insert_user(conn, "user_admin", "admin", passwords.hash_password("admin-pass"), 0)
        meta.insert_user(conn, "user_viewer", "viewer", passwords.hash_password("viewer-pass"), 0, role="viewer")
        meta.insert_website(conn, "theirs.example", "user_admin", 0)
        meta.insert_website(conn, "granted.example", "user_admin", 0)
        meta.set_grants(conn, "user_viewer", ["granted.example"])
        assert meta.insert_goal(conn, meta.Goal("goal_1", "granted.example", "Pricing", "/pricing", None, None, 0), 50)
    with live_server(tmp_path) as running:
        client = running.client()
        try:
            assert client.get("/api/website/granted.example/goals").status == 401
            client.login("viewer", "viewer-pass")
            assert [g["id"] for g in client.get("/api/websites/granted.example/goals").json()] == ["goal_1"]
            assert client.get("/api/website/granted.example/goals").json()[0]["conversions"] == 0
            assert client.get("/api/website/theirs.example/goals").status == 404
            assert client.get("/api/websites/theirs.example/goals").status == 404
            assert client.post("/api/websites/granted.example/goals", json_body={"page": "/a"}).status == 403
            assert client.delete("/api/websites/granted.example/goals/goal_1").status == 403
        finally:
            client.close()


# Stored views of a past day (closed hours: rolled up, copied), for the rollup and one-pass counts:
# (bid, path, first view of the site that day, first view of the page that day, minute).
OLD_VIEWS = [
    ("ov01", "/signup/pro/done", True, True, 0),
    ("ov02", "/signup/pro/done", False, False, 1),  # the same visitor again: a conversion, no visitor
    ("ov03", "/SIGNUP/team/done", True, True, 2),  # letters match in either case
    ("ov04", "/signup/done", False, True, 3),  # kept by the pattern's path filters, but no match
    ("ov05", "/signup/free/done", False, True, 4),  # a visitor of the site already, new to this page
    ("ov06", "/pricing", True, True, 5),
    ("ov07", "/pricing", False, False, 6),
    ("ov08", "/blog", True, True, 7),
]
OLD_AT = 1709287200000  # 2024-03-01T10:00:00Z
OLD_PERIOD = "?start=2024-03-01T00:00:00Z&end=2024-03-01T23:59:59Z"
# (bid, name, value): ov06 sends plan=pro twice (one conversion), ov07 "PRO" (values match in either case).
OLD_EVENTS = [("ov06", "plan", "pro"), ("ov06", "plan", "pro"), ("ov07", "plan", "PRO"), ("ov08", "plan", "free")]


def test_stored_days_by_hand_rollups_and_one_pass(tmp_path: Path, engine: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Goals over closed hours: unfiltered page goals from the pages rollup (a site below SMALL_SITE_VIEWS
    would read its paths raw, so every site rolls up every kind here), the rest in one pass of the copies."""
    monkeypatch.setattr(rollups, "SMALL_SITE_VIEWS", 0)
    monkeypatch.setattr(rollups, "MIN_BLOCK_VIEWS", 0)
    with live_server(tmp_path) as live:
        client = live.client()
        client.login()
        assert client.post("/api/websites", json_body={"hostname": SITE}).status == 201
        views = [
            {
                "bid": bid,
                "hostname": SITE,
                "pathname": path,
                "is_unique_user": int(user),
                "is_unique_page": int(page),
                "ua_browser": "Firefox" if bid == "ov05" else "Chrome",
                "ua_os": "Linux",
                "ua_device_type": "Desktop",
                "duration_ms": 3000,
                "date_created": OLD_AT + minute * 60_000,
            }
            for bid, path, user, page, minute in OLD_VIEWS
        ]
        stores.insert_views(live.config.analyticsdb, views)
        events = [
            {"bid": bid, "batch_id": f"oe{i}", "group_name": SITE, "name": name, "value": value, "date_created": OLD_AT}
            for i, (bid, name, value) in enumerate(OLD_EVENTS)
        ]
        stores.insert_events(live.config.analyticsdb, events)
        add(client, {"page": "/signup/*/done", "name": "signup"})
        add(client, {"page": "*", "name": "any"})
        add(client, {"property": "plan", "value": "pro"})
        add(client, {"property": "plan"})
        deadline = time.monotonic() + 60  # generous: the background work may take seconds on a loaded machine
        while not client.get(f"/api/website/{SITE}/progress").json()["ready"]:
            assert time.monotonic() < deadline, "rollups built"
            client.get(f"/api/website/{SITE}/summary")  # a stats read starts the background work
            time.sleep(0.1)
        assert numbers(client, OLD_PERIOD) == [
            ("signup", 4, 3, 0.75),  # ov01-03, ov05; ov04's /signup/done is no match
            ("any", 8, 6, 1.0),  # 6 page visitors over 4 site visitors: capped at 1
            ("plan=pro", 2, 1, 0.25),  # ov06 (twice: one view) and ov07
            ("plan", 3, 2, 0.5),
        ]
        # Filtered: one pass for every goal; the site's visitors are the filtered ones (ov01, 03, 06, 08).
        assert numbers(client, OLD_PERIOD + "&browser[eq]=Chrome") == [
            ("signup", 3, 2, 0.5),
            ("any", 7, 5, 1.0),
            ("plan=pro", 2, 1, 0.25),
            ("plan", 3, 2, 0.5),
        ]
        client.close()
