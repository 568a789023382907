"""Test helpers: a real server on a real socket in a background thread, and a small HTTP client."""

from __future__ import annotations

import asyncio
import dataclasses
import http.client
import io
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medama_core.app import serve
from medama_core.config import Config
from medama_core.log import Logger


@dataclass
class Result:
    status: int
    headers: dict[str, str]
    body: bytes
    raw_headers: list[tuple[str, str]] = field(default_factory=list)

    def json(self) -> Any:
        return json.loads(self.body)

    def header_values(self, name: str) -> list[str]:
        return [v for k, v in self.raw_headers if k.lower() == name.lower()]


class Client:
    """Keeps one keep-alive connection and a cookie jar (Secure cookies are kept, as on localhost)."""

    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        self.host, self.port = host, port
        self.cookies: dict[str, str] = {}
        self.conn: http.client.HTTPConnection | None = None

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Result:
        all_headers = dict(headers or {})
        if json_body is not None:
            body = json.dumps(json_body).encode()
            all_headers.setdefault("Content-Type", "application/json")
        if self.cookies and "Cookie" not in all_headers:
            all_headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
            try:
                self.conn.request(method, path, body=body, headers=all_headers)
                response = self.conn.getresponse()
                data = response.read()
                break
            except (ConnectionError, http.client.RemoteDisconnected, http.client.BadStatusLine):
                self.conn.close()
                self.conn = None
                if attempt:
                    raise
        raw = list(response.getheaders())
        for name, value in raw:
            if name.lower() == "set-cookie":
                cookie = value.split(";", 1)[0]
                key, _, val = cookie.partition("=")
                if val and "1970" not in value:
                    self.cookies[key.strip()] = val
                else:
                    self.cookies.pop(key.strip(), None)
        if response.getheader("connection", "").lower() == "close":
            self.conn.close()
            self.conn = None
        return Result(response.status, {k.lower(): v for k, v in raw}, data, raw)

    def get(self, path: str, **kw: Any) -> Result:
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> Result:
        return self.request("POST", path, **kw)

    def patch(self, path: str, **kw: Any) -> Result:
        return self.request("PATCH", path, **kw)

    def delete(self, path: str, **kw: Any) -> Result:
        return self.request("DELETE", path, **kw)

    def login(self, username: str = "admin", password: str = "CHANGE_ME_ON_FIRST_LOGIN") -> Result:
        result = self.post("/api/auth/login", json_body={"username": username, "password": password})
        assert result.status == 200, result.body
        return result

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


@dataclass
class LiveServer:
    port: int
    config: Config
    log_stream: io.StringIO
    _loop: asyncio.AbstractEventLoop
    _stop: asyncio.Event
    _thread: threading.Thread

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self) -> Client:
        return Client(self.port)

    def session_cookie(self) -> str:
        """Log the admin in on a client of its own and return the session cookie's value."""
        client = self.client()
        try:
            client.login()
            return client.cookies["_me_sess"]
        finally:
            client.close()

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=15)
        assert not self._thread.is_alive(), "server did not stop"


# The ClickHouse linger of the servers tests start (-clickhouselinger): the fixed 0.2 s they ran with before it
# was a setting. Tests send hits one after another and wait for each answer, so on pgch each waits up to this
# (the product's 1 s would make those runs five times longer); a shorter one makes the tests with many
# connections slower on the shared machine (more INSERTs a second for one clickhouse-server: the kill -9 drill
# of tests/test_nodes.py took 55 s at 50 ms against 35 at 200). tests/clickhouse/test_batching.py checks the default.
TEST_CLICKHOUSE_LINGER_MS = 200


# Where `live_server` puts the app's data when a test names no -appdb/-analyticsdb: None for SQLite files
# under tmp_path, or a function giving fresh (app URL, analytics URL), set by conftest's `engine` fixture
# while a test runs on PostgreSQL + ClickHouse.
ENGINE_URLS: Callable[[], tuple[str, str]] | None = None


_URLS: dict[Path, tuple[str, str]] = {}  # one pair of databases per tmp_path, so a restarted server finds its data


def engine_name() -> str:
    """The engines the test running now gets from `live_server`: sqlite or pgch."""
    return "sqlite" if ENGINE_URLS is None else "pgch"


def stores_for(tmp_path: Path) -> tuple[str, str]:
    """(-appdb, -analyticsdb) `live_server(tmp_path)` uses: SQLite files under `tmp_path`, or the same two
    server databases for every server started on `tmp_path` (a test may fill them before the start)."""
    if ENGINE_URLS is None:
        return str(tmp_path / "me_meta.db"), str(tmp_path / "me_analytics.db")
    if tmp_path not in _URLS:
        _URLS[tmp_path] = ENGINE_URLS()
    return _URLS[tmp_path]


@contextmanager
def live_server(tmp_path: Path, **overrides: Any) -> Iterator[LiveServer]:
    """Run `serve` in a thread on a free port with databases under `tmp_path` (or on the servers of the
    engine under test: conftest's `engine`)."""
    appdb, analyticsdb = str(tmp_path / "me_meta.db"), str(tmp_path / "me_analytics.db")
    if "appdb" not in overrides and "analyticsdb" not in overrides:
        appdb, analyticsdb = stores_for(tmp_path)
    base = Config(
        port=0,
        host="127.0.0.1",
        appdb=appdb,
        analyticsdb=analyticsdb,
        ratelimit=0,
        level="debug",
        clickhouselinger=TEST_CLICKHOUSE_LINGER_MS,
    )
    config = dataclasses.replace(base, **overrides)
    stream = io.StringIO()
    log = Logger("json", config.level, stream=stream)
    ready = threading.Event()
    box: dict[str, Any] = {}

    def run() -> None:
        loop = asyncio.new_event_loop()
        stop = asyncio.Event()
        box["loop"], box["stop"] = loop, stop

        def on_ready(port: int) -> None:
            box["port"] = port
            ready.set()

        try:
            loop.run_until_complete(serve(config, log, stop=stop, on_ready=on_ready))
        except BaseException as exc:  # surface start-up failures to the test
            box["error"] = exc
            ready.set()
        finally:
            loop.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(30), "server did not start"
    if "error" in box:
        raise box["error"]
    server = LiveServer(box["port"], config, stream, box["loop"], box["stop"], thread)
    try:
        yield server
    finally:
        server.stop()
