"""/websites over real HTTP: CRUD, hostname rules, ownership, and what rename and delete do to the data."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from medama_core import api
from medama_core.api import drain_hits
from medama_core.app import App, open_context
from medama_core.config import Config
from medama_core.http.protocol import Request
from medama_core.log import Logger
from tests.api.test_auth import error
from tests.api.test_users import add_rows, add_user, count_rows
from tests.helpers import Client, LiveServer
from tests.stores import marked


@pytest.fixture
def admin(client: Client) -> Client:
    client.login()
    return client


def test_crud_round_trip(admin: Client) -> None:
    assert admin.get("/api/websites").json() == []
    created = admin.post("/api/websites", json_body={"hostname": "Example.COM"})
    assert created.status == 201
    assert created.json() == {"hostname": "example.com"}  # stored lower-cased
    assert admin.post("/api/websites", json_body={"hostname": "localhost"}).status == 201
    assert admin.get("/api/websites").json() == [{"hostname": "example.com"}, {"hostname": "localhost"}]
    assert admin.get("/api/websites/example.com").json() == {"hostname": "example.com"}
    assert admin.get("/api/websites/EXAMPLE.com").json() == {"hostname": "example.com"}
    renamed = admin.patch("/api/websites/example.com", json_body={"hostname": "www.example.com"})
    assert renamed.json() == {"hostname": "www.example.com"}
    assert error(admin.get("/api/websites/example.com")) == (404, "website not found")
    assert admin.patch("/api/websites/www.example.com", json_body={}).json() == {"hostname": "www.example.com"}
    assert admin.delete("/api/websites/www.example.com").status == 204
    assert error(admin.delete("/api/websites/www.example.com")) == (404, "website not found")
    assert admin.get("/api/websites").json() == [{"hostname": "localhost"}]


def test_duplicate_is_409_whoever_owns_it(admin: Client, server: LiveServer) -> None:
    assert admin.post("/api/websites", json_body={"hostname": "example.com"}).status == 201
    assert error(admin.post("/api/websites", json_body={"hostname": "EXAMPLE.com"})) == (409, "website already exists")
    assert admin.post("/api/websites", json_body={"hostname": "other.example.com"}).status == 201
    rename = admin.patch("/api/websites/other.example.com", json_body={"hostname": "example.com"})
    assert error(rename) == (409, "website already exists")


@pytest.mark.parametrize(
    "hostname",
    [
        "",
        "example",  # one label that is not localhost
        "-example.com",
        "example-.com",
        "exa_mple.com",
        "example.com.",
        "example..com",
        "https://example.com",
        "example.com:8080",
        "example.com/path",
        "a" * 64 + ".com",  # label longer than 63
        ("a" * 63 + ".") * 4 + "com",  # 259 characters
        "ex ample.com",
        "exämple.com",
    ],
)
def test_invalid_hostnames_are_400(admin: Client, hostname: str) -> None:
    status, message = error(admin.post("/api/websites", json_body={"hostname": hostname}))
    assert status == 400
    assert message.startswith("hostname:")


@pytest.mark.parametrize("hostname", ["a.b", "xn--bcher-kva.example", "1.2.3.4", "a-b.c-d.example", "LOCALHOST"])
def test_valid_hostnames(admin: Client, hostname: str) -> None:
    assert admin.post("/api/websites", json_body={"hostname": hostname}).json() == {"hostname": hostname.lower()}


@pytest.mark.parametrize(
    "body, status",
    [({}, 400), ({"hostname": 5}, 400), ({"hostname": None}, 400), (["example.com"], 400)],
)
def test_post_body_errors(admin: Client, body: Any, status: int) -> None:
    assert error(admin.post("/api/websites", json_body=body))[0] == status


def test_post_needs_json(admin: Client) -> None:
    raw = b'{"hostname":"example.com"}'
    assert error(admin.post("/api/websites", body=raw, headers={"Content-Type": "text/plain"}))[0] == 415


def test_invalid_path_hostname_is_400(admin: Client) -> None:
    assert error(admin.get("/api/websites/bad_host"))[0] == 400
    assert error(admin.delete("/api/websites/bad_host"))[0] == 400
    assert admin.post("/api/websites", json_body={"hostname": "example.com"}).status == 201
    assert error(admin.patch("/api/websites/example.com", json_body={"hostname": "bad_host"}))[0] == 400


def test_a_site_the_caller_may_not_read_is_401_on_get_and_patch_and_404_on_delete(
    admin: Client, server: LiveServer
) -> None:
    """A viewer granted no site is answered as upstream answered another account's site."""
    assert admin.post("/api/websites", json_body={"hostname": "theirs.example"}).status == 201
    add_user(server, "other", "other-pass", role="viewer")
    other = server.client()
    other.login("other", "other-pass")
    assert error(other.get("/api/websites/theirs.example")) == (401, "website not found")
    assert error(other.patch("/api/websites/theirs.example", json_body={"hostname": "mine.example"})) == (
        401,
        "website not found",
    )
    assert error(other.delete("/api/websites/theirs.example")) == (404, "website not found")
    assert other.get("/api/websites").json() == []
    assert admin.get("/api/websites/theirs.example").status == 200
    other.close()


def test_rename_moves_views_and_events(admin: Client, server: LiveServer) -> None:
    admin.post("/api/websites", json_body={"hostname": "old.example"})
    add_rows(server, "old.example", views=4, events=3)
    add_rows(server, "new.example", views=1, events=1)  # leftovers of a deleted site of that name
    add_rows(server, "bystander.example", views=2, events=2)
    assert admin.patch("/api/websites/old.example", json_body={"hostname": "new.example"}).status == 200
    assert count_rows(server, "old.example") == (0, 0)
    assert count_rows(server, "new.example") == (4, 3)
    assert count_rows(server, "bystander.example") == (2, 2)


def test_delete_removes_views_and_events(admin: Client, server: LiveServer) -> None:
    admin.post("/api/websites", json_body={"hostname": "gone.example"})
    add_rows(server, "gone.example")
    add_rows(server, "bystander.example")
    assert admin.delete("/api/websites/gone.example").status == 204
    assert count_rows(server, "gone.example") == (0, 0)
    assert count_rows(server, "bystander.example") == (2, 3)


def test_summary_counts_unique_visitors_of_the_last_24_hours(admin: Client, server: LiveServer) -> None:
    admin.post("/api/websites", json_body={"hostname": "busy.example"})
    admin.post("/api/websites", json_body={"hostname": "quiet.example"})
    add_rows(server, "busy.example", views=5)  # unique on views 0, 2, 4
    with sqlite3.connect(server.config.analyticsdb) as conn, marked(conn):
        conn.execute(
            "INSERT INTO views (bid, hostname, pathname, is_unique_user, is_unique_page, ua_browser, ua_os,"
            " ua_device_type, date_created) VALUES ('old', 'busy.example', '/', 1, 1, 'x', 'y', 'z', 1000)"
        )
    assert admin.get("/api/websites?summary=true").json() == [
        {"hostname": "busy.example", "summary": {"visitors": 3}},
        {"hostname": "quiet.example", "summary": {"visitors": 0}},
    ]
    assert admin.get("/api/websites?summary=false").json() == [
        {"hostname": "busy.example"},
        {"hostname": "quiet.example"},
    ]
    assert error(admin.get("/api/websites?summary=maybe"))[0] == 400


def test_the_allow_set_follows_every_change(tmp_path: Path) -> None:
    """In memory, so the test can look at ctx.hostnames that ingestion reads."""

    async def scenario() -> list[set[str]]:
        config = Config(appdb=str(tmp_path / "meta.db"), analyticsdb=str(tmp_path / "analytics.db"))
        ctx = open_context(config, Logger("json", "error"))
        app = App(ctx)

        async def call(method: str, path: str, body: bytes = b"", cookie: str = "") -> tuple[int, list[Any]]:
            headers = {"content-type": "application/json", "cookie": cookie}
            response = await app.handle(Request(method, path, headers=headers, body=body, client="127.0.0.1"))
            return response.status, response.headers

        _, headers = await call(
            "POST", "/api/auth/login", b'{"username":"admin","password":"CHANGE_ME_ON_FIRST_LOGIN"}'
        )
        cookie = dict(headers)["Set-Cookie"].split(";")[0]
        seen = []
        await call("POST", "/api/websites", b'{"hostname":"a.example"}', cookie)
        seen.append(set(ctx.hostnames))
        await call("PATCH", "/api/websites/a.example", b'{"hostname":"b.example"}', cookie)
        seen.append(set(ctx.hostnames))
        await call("DELETE", "/api/websites/b.example", cookie=cookie)
        seen.append(set(ctx.hostnames))
        await call("POST", "/api/websites", b'{"hostname":"c.example"}', cookie)
        await call("DELETE", "/api/user", b'{"currentPassword":"CHANGE_ME_ON_FIRST_LOGIN"}', cookie)
        seen.append(set(ctx.hostnames))
        for hook in ctx.on_shutdown:
            await hook()
        ctx.meta.close()
        ctx.analytics.close()
        return seen

    assert asyncio.run(scenario()) == [{"a.example"}, {"b.example"}, set(), set()]


CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"


def test_hits_racing_a_delete_leave_no_rows(admin: Client, server: LiveServer) -> None:
    """Hits accepted just before the delete reach the database before the delete runs, not after it."""
    admin.post("/api/websites", json_body={"hostname": "race.example"})
    stop = threading.Event()
    accepted: list[int] = []

    def fire() -> None:
        tracker = Client(server.port)
        i = 0
        while not stop.is_set():
            i += 1
            body = {"e": "load", "b": f"bid{threading.get_ident()}x{i}", "u": "https://race.example/", "r": "",
                    "p": True, "q": True, "t": "Europe/Paris"}  # fmt: skip
            headers = {"User-Agent": CHROME, "Content-Type": "application/json"}
            status = tracker.post("/api/event/hit", json_body=body, headers=headers).status
            accepted.append(status)
        tracker.close()

    threads = [threading.Thread(target=fire) for _ in range(4)]
    for thread in threads:
        thread.start()
    while accepted.count(204) < 50:
        time.sleep(0.01)
    assert admin.delete("/api/websites/race.example").status == 204
    deadline = time.monotonic() + 5
    while 404 not in accepted and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.set()
    for thread in threads:
        thread.join()
    assert 404 in accepted  # hits after the delete were refused
    time.sleep(0.2)
    assert count_rows(server, "race.example") == (0, 0)


def test_drain_waits_for_the_queue_and_gives_up_at_the_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    class Queue:
        def __init__(self, polls: int) -> None:
            self.polls = polls

        def __len__(self) -> int:
            self.polls = max(0, self.polls - 1)
            return self.polls

    ctx = SimpleNamespace(hits=Queue(5))
    asyncio.run(drain_hits(ctx))  # type: ignore[arg-type]
    assert ctx.hits.polls == 0
    monkeypatch.setattr(api, "HIT_DRAIN_TIMEOUT_S", 0.05)
    stuck = SimpleNamespace(hits=Queue(10**9))
    started = time.monotonic()
    asyncio.run(drain_hits(stuck))  # type: ignore[arg-type]
    assert time.monotonic() - started < 1
