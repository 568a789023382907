"""Retention over HTTP on both engines: old raw rows go, unfiltered numbers stay, filtered ones say they are partial."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests import stores
from tests.helpers import Client, live_server

SITE = "example.com"
DAY_MS = 86_400_000
OLD_DAY = "2024-03-01"
OLD = int(datetime(2024, 3, 1, 10, tzinfo=UTC).timestamp() * 1000)
OLD_PERIOD = f"start={OLD_DAY}T00:00:00Z&end={OLD_DAY}T23:59:59Z"
RETENTION_DAYS = 30


def views(now_ms: int) -> list[dict[str, Any]]:
    """Three views on 2024-03-01 (two visitors, two of "/"), and two from two days ago (one visitor)."""
    recent = (now_ms // DAY_MS - 2) * DAY_MS + 10 * 3_600_000
    common = {
        "hostname": SITE,
        "is_unique_page": 1,
        "ua_browser": "Chrome",
        "ua_os": "Linux",
        "ua_device_type": "Desktop",
        "duration_ms": 3000,
    }
    return [
        {**common, "bid": "r1", "pathname": "/", "is_unique_user": 1, "date_created": OLD},
        {**common, "bid": "r2", "pathname": "/blog", "is_unique_user": 0, "date_created": OLD + 60_000},
        {**common, "bid": "r3", "pathname": "/", "is_unique_user": 1, "date_created": OLD + 120_000},
        {**common, "bid": "r4", "pathname": "/", "is_unique_user": 1, "date_created": recent},
        {**common, "bid": "r5", "pathname": "/blog", "is_unique_user": 0, "date_created": recent + 60_000},
    ]


def get(client: Client, path: str) -> tuple[Any, str | None]:
    result = client.get(f"/api/website/{SITE}/{path}")
    assert result.status == 200, result.body
    return result.json(), result.headers.get("x-medama-partial")


def raw_views(analyticsdb: str) -> int:
    return int(stores.analytics_rows(analyticsdb, f"SELECT COUNT(*) FROM views WHERE hostname = '{SITE}'")[0][0])


def wait(check: Any, what: str, client: Client) -> None:
    deadline = time.monotonic() + 60  # generous: a loaded machine's background work may take seconds
    while not check():
        assert time.monotonic() < deadline, what
        get(client, "summary")  # a stats read starts the background work if it is not running
        time.sleep(0.1)


def test_retention_keeps_unfiltered_numbers_and_marks_filtered_ones(tmp_path: Path, engine: str) -> None:
    now_ms = int(time.time() * 1000)
    with live_server(tmp_path) as live:
        client = live.client()
        client.login()
        assert client.post("/api/websites", json_body={"hostname": SITE}).status == 201
        analyticsdb = live.config.analyticsdb
        stores.insert_views(analyticsdb, views(now_ms))
        wait(lambda: get(client, "progress")[0]["ready"], "rollups built", client)
        year = f"start={datetime.now(UTC).year - 3}-01-01T00:00:00Z&end=2100-01-01T00:00:00Z"
        unfiltered = {
            path: get(client, path)[0]
            for path in (
                f"summary?{OLD_PERIOD}",
                f"summary?{year}&interval=month",
                f"pages?{OLD_PERIOD}&summary=true",
                f"browsers?{OLD_PERIOD}&summary=true",
                f"properties?{OLD_PERIOD}",
            )
        }
        assert unfiltered[f"summary?{OLD_PERIOD}"]["current"]["visitors"] == 2
        assert unfiltered[f"summary?{OLD_PERIOD}"]["current"]["pageviews"] == 3
        assert unfiltered[f"pages?{OLD_PERIOD}&summary=true"] == [
            {"path": "/", "visitors": 2, "visitors_percentage": 0.6667},
            {"path": "/blog", "visitors": 1, "visitors_percentage": 0.3333},
        ]
        filtered, partial = get(client, f"summary?{OLD_PERIOD}&path[eq]=/")
        assert (filtered["current"]["pageviews"], partial) == (2, None)  # nothing deleted yet
        assert client.post(f"/api/websites/{SITE}/goals", json_body={"page": "/"}).status == 201
        page_goal = get(client, f"goals?{OLD_PERIOD}")
        assert [(g["conversions"], g["visitors"]) for g in page_goal[0]] == [(2, 2)]

        settings = client.patch(f"/api/websites/{SITE}/settings", json_body={"retentionDays": RETENTION_DAYS})
        assert settings.status == 200, settings.body
        wait(lambda: raw_views(analyticsdb) == 2, "the old raw rows deleted", client)

        floor = datetime.fromtimestamp((now_ms // DAY_MS - RETENTION_DAYS) * DAY_MS / 1000, UTC)
        note = f"raw data kept from {floor:%Y-%m-%d}"
        for path, answer in unfiltered.items():
            assert get(client, path) == (answer, None), path
        # Filtered questions of the deleted day: what is left, and the header saying why it is less.
        filtered, partial = get(client, f"summary?{OLD_PERIOD}&path[eq]=/")
        assert (filtered["current"]["pageviews"], partial) == (0, note)
        assert get(client, f"pages?{OLD_PERIOD}&browser[eq]=Chrome")[1] == note
        assert get(client, f"time?{year}&path[eq]=/")[1] == note
        assert get(client, "summary?path[eq]=/")[1] == note  # no start: all time
        # After the floor a filtered answer is whole: no header.
        after = f"start={floor:%Y-%m-%d}T00:00:00Z&end=2100-01-01T00:00:00Z"
        filtered, partial = get(client, f"summary?{after}&path[eq]=/")
        assert (filtered["current"]["pageviews"], partial) == (1, None)
        # ... unless the previous period it is compared with reaches before the floor.
        assert get(client, f"summary?{after}&path[eq]=/&previous=true")[1] == note
        # Unfiltered page goals are summed from the pages' rollups: whole. Filtered goals, and event goals,
        # count raw rows (or their copies): partial, and they say so.
        assert get(client, f"goals?{OLD_PERIOD}") == page_goal
        goal, partial = get(client, f"goals?{OLD_PERIOD}&browser[eq]=Chrome")
        assert ([g["conversions"] for g in goal], partial) == ([0], note)
        assert client.post(f"/api/websites/{SITE}/goals", json_body={"property": "plan"}).status == 201
        goal, partial = get(client, f"goals?{OLD_PERIOD}")
        assert ([g["conversions"] for g in goal], partial) == ([2, 0], note)
        assert client.get(f"/api/website/{SITE}/goals?{after}").headers.get("x-medama-partial") is None
        # Engines whose full list rows and quartiles read raw rows say so unfiltered too (ClickHouse).
        raw_detail = engine != "sqlite"
        assert get(client, f"pages?{OLD_PERIOD}")[1] == (note if raw_detail else None)
        assert get(client, f"time?{OLD_PERIOD}")[1] == (note if raw_detail else None)
        if not raw_detail:
            pages = get(client, f"pages?{OLD_PERIOD}")[0]
            assert [(row["path"], row["visitors"], row["pageviews"]) for row in pages] == [("/", 2, 2), ("/blog", 1, 1)]
        client.close()
