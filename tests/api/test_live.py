"""GET /api/website/{hostname}/live over real hits: a page counts from its load until it is left."""

from __future__ import annotations

import json
import time
from pathlib import Path

from medama_core import passwords
from tests import stores
from tests.api.test_events import BROWSER, load
from tests.helpers import Client, LiveServer, live_server, stores_for

SITE = "example.com"


def hit(client: Client, body: dict[str, object]) -> None:
    assert client.post("/api/event/hit", body=json.dumps(body).encode(), headers=BROWSER).status == 204


def wait_live(client: Client, visitors: int, host: str = SITE) -> dict[str, object]:
    """The /live answer once it counts `visitors` (hits are written by the writer thread a moment later)."""
    deadline = time.monotonic() + 5
    while True:
        result = client.get(f"/api/website/{host}/live")
        assert result.status == 200, result.body
        found = result.json()
        if found["visitors"] == visitors or time.monotonic() > deadline:
            assert found["visitors"] == visitors, found
            return dict(found)
        time.sleep(0.05)


def test_a_load_counts_until_its_unload(server: LiveServer, client: Client) -> None:
    client.login()
    assert client.post("/api/websites", json_body={"hostname": SITE}).status == 201
    assert wait_live(client, 0) == {"visitors": 0, "pages": [], "referrers": [], "countries": []}
    hit(client, load("live0000001", u=f"https://{SITE}/pricing", r="https://www.google.com/"))
    hit(client, load("live0000002", u=f"https://{SITE}/pricing", r=""))
    found = wait_live(client, 2)
    assert found["pages"] == [{"path": "/pricing", "visitors": 2}]
    assert found["referrers"] == [{"referrer": "", "visitors": 1}, {"referrer": "Google", "visitors": 1}]
    assert found["countries"] == [{"country": "United Kingdom", "visitors": 2}]
    hit(client, {"e": "unload", "b": "live0000001", "m": 1500})
    assert wait_live(client, 1)["referrers"] == [{"referrer": "", "visitors": 1}]


def test_a_site_the_caller_may_not_read_is_not_found_and_a_stranger_is_refused(tmp_path: Path) -> None:
    """A viewer granted another site gets 404 for this one, as for a site that does not exist (docs/auth.md)."""
    with stores.app_store(stores_for(tmp_path)[0]) as (conn, meta):
        meta.insert_user(conn, "user_admin", "admin", passwords.hash_password("admin-pass"), 0)
        meta.insert_user(conn, "user_viewer", "viewer", passwords.hash_password("viewer-pass"), 0, role="viewer")
        meta.insert_website(conn, "theirs.example", "user_admin", 0)
        meta.insert_website(conn, "granted.example", "user_admin", 0)
        meta.set_grants(conn, "user_viewer", ["granted.example"])
    with live_server(tmp_path) as running:
        client = running.client()
        try:
            assert client.get("/api/website/theirs.example/live").status == 401
            client.login("viewer", "viewer-pass")
            assert client.get("/api/website/theirs.example/live").status == 404
            assert client.get("/api/website/nowhere.example/live").status == 404
            assert client.get("/api/website/granted.example/live").json()["visitors"] == 0
        finally:
            client.close()
