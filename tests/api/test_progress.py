"""GET /website/{hostname}/progress on either engine: once it says ready, the fast answers equal the raw rows'.

SQLite rolls hours up in the background after an import (test_stats_refresh.py has the details); ClickHouse
has no such work (its hourly tables are written inside each INSERT, a rename waits for its mutations), so
there it must say ready at once, and mean it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from tests.helpers import Client, live_server

SAMPLES = Path(__file__).resolve().parents[1] / "importers" / "samples"
SITE = "example.com"
PERIOD = "start=2024-03-05T00:00:00Z&end=2024-03-07T23:59:59Z"
NEUTRAL = "browser[neq]=no%20such%20browser"  # a filter that keeps every row: the stats read the raw rows
DEADLINE_S = 20  # SQLite's background work on a busy machine


def stats(client: Client, site: str, path: str) -> Any:
    result = client.get(f"/api/website/{site}/{path}")
    assert result.status == 200, result.body
    return result.json()


def settled(client: Client, site: str, engine: str) -> None:
    """Wait for `ready` (on ClickHouse: it must be ready the first time it is asked)."""
    progress = f"/api/website/{site}/progress"
    if engine == "pgch":
        assert client.get(progress).json() == {"hours": 0, "blocks": 0, "ready": True}
        return
    deadline = time.monotonic() + DEADLINE_S
    while not client.get(progress).json()["ready"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert client.get(progress).json() == {"hours": 0, "blocks": 0, "ready": True}


def same_as_raw(client: Client, site: str) -> None:
    for path in (f"summary?{PERIOD}&interval=day", f"pages?{PERIOD}", f"time?{PERIOD}"):
        joiner = "&" if "?" in path else "?"
        assert stats(client, site, path) == stats(client, site, f"{path}{joiner}{NEUTRAL}"), path


def test_ready_means_the_fast_answers_are_exact_after_an_import_and_a_rename(tmp_path: Path, engine: str) -> None:
    with live_server(tmp_path) as live:
        client: Client = live.client()
        client.login()
        assert client.post("/api/websites", json_body={"hostname": SITE}).status == 201
        upload = client.post(
            f"/api/websites/{SITE}/import?from=goatcounter",
            body=(SAMPLES / "goatcounter-export.csv").read_bytes(),
            headers={"Content-Type": "text/csv"},
        )
        assert upload.status == 200, upload.body
        settled(client, SITE, engine)
        assert stats(client, SITE, f"summary?{PERIOD}")["current"]["pageviews"] == 5
        same_as_raw(client, SITE)
        renamed = client.patch(f"/api/websites/{SITE}", json_body={"hostname": "renamed.example"})
        assert renamed.status == 200, renamed.body
        settled(client, "renamed.example", engine)
        assert stats(client, "renamed.example", f"summary?{PERIOD}")["current"]["pageviews"] == 5
        same_as_raw(client, "renamed.example")
        client.close()
