"""The request log: a line per change or error at info, reads and events at debug, a summary a minute."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from medama_core.accesslog import LATENCY_GROWTH, AccessLog, line_level
from medama_core.log import Logger
from tests.api.test_events import BROWSER, load, prepare
from tests.helpers import live_server


@pytest.mark.parametrize(
    ("method", "path", "status", "level"),
    [
        ("GET", "/api/websites", 200, "debug"),
        ("GET", "/", 304, "debug"),
        ("HEAD", "/script.js", 200, "debug"),
        ("OPTIONS", "/api/user", 204, "debug"),
        ("GET", "/api/user", 401, "info"),
        ("GET", "/nope", 404, "info"),
        ("POST", "/api/auth/login", 200, "info"),
        ("PATCH", "/api/user", 200, "info"),
        ("DELETE", "/api/websites/a.example", 204, "info"),
        ("POST", "/api/event/hit", 204, "debug"),
        ("POST", "/api/event/hit", 400, "debug"),
        ("GET", "/api/event/ping", 200, "debug"),
    ],
)
def test_levels(method: str, path: str, status: int, level: str) -> None:
    assert line_level(method, path, status) == level


def records(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_summary_reports_the_interval_and_then_starts_again() -> None:
    stream = io.StringIO()
    access = AccessLog(Logger("json", "info", stream=stream))
    for i in range(1000):
        access.record("POST", "/api/event/hit", 204, 0.001 if i < 990 else 0.5)
    access.record("GET", "/api/websites", 200, 0.002)
    assert stream.getvalue() == ""  # nothing at info yet: events and reads are debug
    access.summarise({"bot": 3, "unknown_site": 0}, 990)
    (summary,) = records(stream)
    assert summary["message"] == "traffic"
    assert (summary["requests"], summary["event_requests"], summary["hits_stored"]) == (1001, 1000, 990)
    assert summary["dropped"] == {"bot": 3}
    assert 2 <= summary["p99_ms"] <= 2 * LATENCY_GROWTH  # the 991st slowest of 1001 took 2 ms
    access.record("POST", "/api/event/hit", 204, 0.0001)
    access.summarise({"bot": 5, "unknown_site": 1}, 991)
    second = records(stream)[1]
    assert (second["requests"], second["hits_stored"], second["dropped"]) == (1, 1, {"bot": 2, "unknown_site": 1})
    access.summarise({"bot": 5, "unknown_site": 1}, 991)
    assert len(records(stream)) == 2, "a minute without requests writes nothing"


def test_a_running_server_at_info_logs_changes_and_errors_and_summarises_the_rest(tmp_path: Path) -> None:
    prepare(tmp_path)
    with live_server(tmp_path, level="info") as server:
        client = server.client()
        for _ in range(20):
            assert client.get("/openapi.yaml").status == 200
        assert client.get("/api/user").status == 401
        body = json.dumps(load()).encode()
        assert client.post("/api/event/hit", body=body, headers=BROWSER).status == 204
        bot = {**BROWSER, "User-Agent": "curl/8.0"}
        assert client.post("/api/event/hit", body=json.dumps(load("lxbot")).encode(), headers=bot).status == 204
        client.close()
        stream = server.log_stream
    lines = records(stream)
    requests = [line for line in lines if line["message"] == "request"]
    assert [(r["method"], r["path"], r["status"]) for r in requests] == [("GET", "/api/user", 401)]
    (summary,) = [line for line in lines if line["message"] == "traffic"]
    assert (summary["requests"], summary["event_requests"], summary["hits_stored"]) == (23, 2, 1)
    assert summary["dropped"] == {"bot": 1} and summary["p99_ms"] > 0
