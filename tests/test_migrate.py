"""`medama migrate`: a SQLite install copied into PostgreSQL and ClickHouse answers the same, checked by the
command itself and by a server started on the copy."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from medama_core import migrate
from medama_core.config import ConfigError
from tests.dashboard.seed import seed_views
from tests.engines import Stack
from tests.helpers import live_server

BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


@pytest.fixture(scope="module")
def servers() -> Iterator[Stack]:
    from tests.pg_harness import Unavailable

    try:
        running = Stack()
    except (FileNotFoundError, Unavailable) as exc:
        pytest.skip(f"NOT RUN: PostgreSQL or clickhouse-server missing: {exc}")
    try:
        yield running
    finally:
        running.stop()


def test_an_install_moves_up_and_answers_the_same(tmp_path: Path, servers: Stack) -> None:
    source = tmp_path / "sqlite"
    source.mkdir()
    with live_server(source) as server:
        client = server.client()
        client.login()
        for site in ("example.com", "second.example"):
            assert client.post("/api/websites", json_body={"hostname": site}).status == 201
        seed_views(server.config.analyticsdb, "example.com", days=20, per_day=15)
        seed_views(server.config.analyticsdb, "second.example", days=5, per_day=4)
        hit = {"e": "load", "b": "migrate001", "u": "https://example.com/now", "r": "", "p": True, "q": True}
        headers = {"Content-Type": "application/json", "User-Agent": BROWSER}
        assert client.post("/api/event/hit", body=json.dumps(hit).encode(), headers=headers).status == 204
        # A second view arriving from /now by a link: /now has no exit, /then one (entry and exit pages).
        hit = {**hit, "b": "migrate002", "u": "https://example.com/then", "r": "https://example.com/now", "q": False}
        assert client.post("/api/event/hit", body=json.dumps(hit).encode(), headers=headers).status == 204
        plausible = (Path(__file__).parent / "importers" / "samples" / "plausible-export.zip").read_bytes()
        assert client.post("/api/websites/example.com/import?from=plausible", body=plausible).status == 200
        before = {
            path: client.get(f"/api/website/example.com/{path}").json()
            for path in ("summary?previous=false", "pages", "referrers", "countries", "properties", "entries", "exits")
        }
        assert {"path": "/now", "exits": 1} not in [{k: row[k] for k in ("path", "exits")} for row in before["exits"]]
        cookie = client.cookies["_me_sess"]
        client.close()
        appdb, analyticsdb = server.config.appdb, server.config.analyticsdb
    app_url, analytics_url = servers.urls()
    out = io.StringIO()
    args = ["-appdb", appdb, "-analyticsdb", analyticsdb, "-to-appdb", app_url, "-to-analyticsdb", analytics_url]
    assert migrate.main(args, {}, out) == 0, out.getvalue()
    report = out.getvalue()
    assert "app data: websites: 2 rows" in report and "app data: sessions: 1 rows" in report, report
    assert "analytics: views: 322 of 322" in report, report
    assert "check: 322 views; the summary, top pages and exit pages of 2 sites match" in report, report
    assert "analytics: imported daily totals: " in report, report  # and the answers below include them
    with live_server(tmp_path / "copy", appdb=app_url, analyticsdb=analytics_url) as copy:
        client = copy.client()
        client.cookies["_me_sess"] = cookie  # the session moved too: still logged in
        after = {path: client.get(f"/api/website/example.com/{path}").json() for path in before}
        client.close()
    assert after == before
    # A second run finds the targets full and changes nothing.
    assert migrate.main(args, {}, io.StringIO()) == 1


def test_it_needs_a_target_of_the_right_kind() -> None:
    with pytest.raises(ConfigError, match="nothing to do"):
        migrate.main([], {})
    with pytest.raises(ConfigError, match="-to-appdb: give a postgres://"):
        migrate.main(["-to-appdb", "/tmp/x.db"], {})
    with pytest.raises(ConfigError, match="-to-analyticsdb: give a clickhouse://"):
        migrate.main(["-to-analyticsdb", "postgres://h/db"], {})
