"""`medama migrate`: a SQLite install copied into PostgreSQL and ClickHouse, and back down into SQLite, answers
the same, checked by the command itself and by a server started on each copy; a copy short of one row fails
the check."""

from __future__ import annotations

import io
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from medama_core import migrate
from medama_core.config import ConfigError
from tests.dashboard.seed import seed_views
from tests.engines import Stack, running_stack
from tests.helpers import live_server

BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
BOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
ANSWERS = ("summary?previous=false", "pages", "referrers", "countries", "properties", "entries", "exits")


def _meta_rows(path: str) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every app-data table, in a stable order."""
    from medama_core.meta_copy import TABLES

    conn = sqlite3.connect(path)
    try:
        return {
            table: sorted(conn.execute(f"SELECT {', '.join(columns)} FROM {table}").fetchall(), key=repr)
            for table, columns in TABLES
        }
    finally:
        conn.close()


@pytest.fixture(scope="module")
def servers() -> Iterator[Stack]:
    yield from running_stack()


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
        custom = {"e": "custom", "b": "migrate001", "g": "example.com", "d": {"plan": "pro"}}
        assert client.post("/api/event/hit", body=json.dumps(custom).encode(), headers=headers).status == 204
        bot = {**hit, "b": "migrate003"}
        assert (
            client.post("/api/event/hit", body=json.dumps(bot).encode(), headers={**headers, "User-Agent": BOT}).status
            == 204
        )
        goal = {"name": "Pricing", "page": "/pricing"}
        assert client.post("/api/websites/example.com/goals", json_body=goal).status == 201
        note = {"start": "2024-06-10", "text": "Launch"}
        assert client.post("/api/websites/example.com/annotations", json_body=note).status == 201
        assert client.post("/api/user/keys", json_body={"name": "curl", "scope": "read"}).status == 201
        # A second view arriving from /now by a link: /now has no exit, /then one (entry and exit pages).
        hit = {**hit, "b": "migrate002", "u": "https://example.com/then", "r": "https://example.com/now", "q": False}
        assert client.post("/api/event/hit", body=json.dumps(hit).encode(), headers=headers).status == 204
        plausible = (Path(__file__).parent / "importers" / "samples" / "plausible-export.zip").read_bytes()
        assert client.post("/api/websites/example.com/import?from=plausible", body=plausible).status == 200
        before = {path: client.get(f"/api/website/example.com/{path}").json() for path in ANSWERS}
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
    assert "check: 322 views, 339 events; the summary, top pages and exit pages of 2 sites match" in report, report
    assert "analytics: imported daily totals: " in report, report  # and the answers below include them
    with live_server(tmp_path / "copy", appdb=app_url, analyticsdb=analytics_url) as copy:
        client = copy.client()
        client.cookies["_me_sess"] = cookie  # the session moved too: still logged in
        after = {path: client.get(f"/api/website/example.com/{path}").json() for path in before}
        client.close()
    assert after == before
    # A second run finds the targets full and changes nothing.
    assert migrate.main(args, {}, io.StringIO()) == 1

    # And back down: the same command the other way gives the same rows and answers.
    down = tmp_path / "down"
    down.mkdir()
    back_app, back_analytics = str(down / "me_meta.db"), str(down / "me_analytics.db")
    out = io.StringIO()
    args = ["-appdb", app_url, "-analyticsdb", analytics_url, "-to-appdb", back_app, "-to-analyticsdb", back_analytics]
    assert migrate.main(args, {}, out) == 0, out.getvalue()
    report = out.getvalue()
    assert "app data: goals: 1 rows" in report and "app data: api_keys: 1 rows" in report, report
    assert "analytics: views: 322 of 322" in report and "analytics: events: 339 of 339" in report, report
    assert "analytics: drops: 1 rows" in report, report
    assert "check: 322 views, 339 events; the summary, top pages and exit pages of 2 sites match" in report, report
    assert _meta_rows(back_app) == _meta_rows(appdb)
    with live_server(down, appdb=back_app, analyticsdb=back_analytics) as copy:
        client = copy.client()
        client.cookies["_me_sess"] = cookie
        after = {path: client.get(f"/api/website/example.com/{path}").json() for path in before}
        client.close()
    assert after == before
    # The targets must be empty: a second run refuses and leaves them as they are.
    assert migrate.main(args, {}, io.StringIO()) == 1
    assert _meta_rows(back_app) == _meta_rows(appdb)

    # A copy short of one imported day, then also of one view, fails the check.
    from medama_core.store.clickhouse.client import Client
    from medama_core.store.clickhouse.url import parse_url

    ch = Client.connect(parse_url(analytics_url))
    try:
        for drop in (
            "DELETE FROM imported_days WHERE (hostname, dimension, day, value) ="
            " (SELECT hostname, dimension, day, value FROM imported_days LIMIT 1)",
            "DELETE FROM views WHERE rowid = (SELECT max(rowid) FROM views)",
        ):
            conn = sqlite3.connect(back_analytics)
            conn.execute(drop)
            conn.commit()
            with pytest.raises(migrate.MigrateError, match="the copy does not match"):
                migrate.check(conn, ch, io.StringIO())
            conn.close()
    finally:
        ch.close()


def test_a_copy_down_that_fails_its_check_leaves_the_file_empty(tmp_path: Path, servers: Stack) -> None:
    """ClickHouse rows SQLite cannot hold as they are (two views of one beacon id and site, which SQLite's key
    refuses) make the counts differ: exit 1, and the new file holds nothing."""
    from medama_core.store.clickhouse import bulk
    from medama_core.store.rows import VIEW_COLUMNS
    from medama_core.transfer import open_clickhouse

    _, analytics_url = servers.urls()

    ch = open_clickhouse(analytics_url)
    view: dict[str, object] = dict.fromkeys(VIEW_COLUMNS, "")
    view.update(bid="same", hostname="example.com", pathname="/", is_unique_user=1, is_unique_page=1)
    view.update(duration_ms=None, date_created=1_700_000_000_000)
    try:
        bulk.insert_views(ch, [tuple(view.values())])
        ch.insert("views", (*VIEW_COLUMNS, "sign", "version"), [(*{**view, "pathname": "/b"}.values(), 1, 0)])
    finally:
        ch.close()
    target = str(tmp_path / "me_analytics.db")
    out = io.StringIO()
    assert migrate.main(["-analyticsdb", analytics_url, "-to-analyticsdb", target], {}, out) == 1, out.getvalue()
    conn = sqlite3.connect(target)
    assert conn.execute("SELECT count(*) FROM views").fetchone()[0] == 0
    conn.close()


def test_it_needs_a_target_of_the_right_kind() -> None:
    with pytest.raises(ConfigError, match="nothing to do"):
        migrate.main([], {})
    with pytest.raises(ConfigError, match="-to-appdb: give a postgres://"):
        migrate.main(["-to-appdb", "/tmp/x.db"], {})
    with pytest.raises(ConfigError, match="-to-analyticsdb: give a clickhouse://"):
        migrate.main(["-to-analyticsdb", "postgres://h/db"], {})
    with pytest.raises(ConfigError, match="-to-appdb: give a SQLite file"):
        migrate.main(["-appdb", "postgres://h/db", "-to-appdb", "postgres://h/other"], {})
    with pytest.raises(ConfigError, match="-to-analyticsdb: give a SQLite file"):
        migrate.main(["-analyticsdb", "clickhouse://h/db", "-to-analyticsdb", "clickhouse://h/other"], {})
