"""The tracker's routes answer the same through the server's fast path (App.answer_now) and the general one.

Two servers on the same kind of databases, one with the fast path and one without (FAST_ROUTES emptied, so
every request goes through `App.handle`, and every head through the general parser: `App.tracker_heads` is
off with the fast path, so `http/trackerhead.py` is compared too), get the same raw requests; the answers
must be byte for byte the same (but for `Date`, and a `max-age` counted from the second it was made), and
so must the stored rows and drop counts.
"""

from __future__ import annotations

import json
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medama_core import app as app_module
from medama_core.ingest.ping import day_start, format_http_date
from medama_core.store.rows import VIEW_COLUMNS
from tests import stores
from tests.api.test_events import CHROME, SITE, prepare
from tests.helpers import LiveServer, live_server
from tests.http.test_trackerhead import near_misses

# Every column a hit sets but its time, which differs by the milliseconds between the two servers.
VIEW_FIELDS = ", ".join(column for column in VIEW_COLUMNS if column != "date_created")
BOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


def request(
    method: str, target: str, headers: dict[str, str] | None = None, body: Any = None, *, v: str = "1.1"
) -> bytes:
    raw = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    lines = [f"{method} {target} HTTP/{v}", "Host: localhost", f"User-Agent: {CHROME}", "Accept-Language: en-GB"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if raw is not None:
        lines.append(f"Content-Length: {len(raw)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (raw or b"")


def load(bid: str, **fields: Any) -> dict[str, Any]:
    body = {"e": "load", "b": bid, "u": f"https://{SITE}/a?utm_source=x", "r": "https://www.google.com/", "p": True,
            "q": False, "t": "Europe/London"}  # fmt: skip
    return {**body, **fields}


TEXT = {"Content-Type": "text/plain;charset=UTF-8"}
TODAY = format_http_date(day_start(time.time()))
# One connection each; the requests of a tuple go in one write (pipelined).
CONVERSATIONS: tuple[tuple[bytes, ...], ...] = (
    (request("GET", "/api/event/ping"),),
    (request("GET", "/api/event/ping?u=example.com%2Fa", {"Origin": "https://example.com"}),),
    (request("GET", "/api/event/ping", {"If-Modified-Since": TODAY}),),
    (request("GET", "/api/event/ping", {"If-Modified-Since": "yesterday"}),),
    (request("HEAD", "/api/event/ping"),),
    (request("POST", "/api/event/ping", TEXT, b"{}"),),
    (request("GET", "/api/event/hit"),),
    (request("OPTIONS", "/api/event/hit", {"Origin": "https://a.org", "Access-Control-Request-Method": "POST"}),),
    (request("POST", "/api/event/hit", TEXT, load("fp1")),),
    (request("POST", "/api/event/hit", {**TEXT, "Origin": "https://example.com"}, load("fp1")),),  # a repeat
    (request("POST", "/api/event/hit?x=1", TEXT, {"e": "unload", "b": "fp1", "m": 1234}),),
    (request("POST", "/api/event/hit", TEXT, {"e": "custom", "b": "fp1", "g": SITE, "d": {"k": "v"}}),),
    (request("POST", "/api/event/hit", {"Content-Type": "application/xml"}, load("fp2")),),
    (request("POST", "/api/event/hit", TEXT, b"{not json"),),
    (request("POST", "/api/event/hit", TEXT, load("fp3", u="https://nobody.example/")),),
    (request("POST", "/api/event/hit", TEXT, load("fp4", d={f"k{i}": "v" for i in range(11)})),),
    (request("POST", "/api/event/hit", {**TEXT, "User-Agent": BOT}, load("fp5")),),
    (request("POST", "/api/event/hit", TEXT, load("fp6"), v="1.0"),),
    (request("POST", "/api/event/hit", {**TEXT, "Connection": "close"}, load("fp7")),),
    # Near-misses of the tracker's head parser: each goes to the general parser, on both servers.
    (request("POST", "/api/event/hit", {**TEXT, "Connection": "keep-alive, Upgrade"}, load("fp9")),),
    (request("POST", "/api/event/hit", {**TEXT, "Connection": "keep-alive"}, load("fp10"), v="1.0"),),
    (request("POST", "/api/event/hit", {**TEXT, "Accept-Language": "de"}, load("fp14")),),
    (request("GET", "/api/event/ping?u=%zz#x", {"Content-Length": "0"}),),
    (request("GET", "http://localhost/api/event/ping?u=x"),),
    (request("GET", "/api/event/%70ing"),),
    (request("GET", "/api/event/ping", {"Connection": "close"}),),
    # The fast path makes a second's ping answers once per If-Modified-Since and Origin or not (App._ping_now):
    # each of these, within one second, gets its own.
    (
        request("GET", "/api/event/ping"),
        request("GET", "/api/event/ping", {"Origin": "https://example.com"}),
        request("GET", "/api/event/ping", {"If-Modified-Since": TODAY, "Origin": "https://example.com"}),
        request("GET", "/api/event/ping"),
        request("GET", "/api/event/ping", {"If-Modified-Since": TODAY}),
        request("GET", "/api/event/ping", {"Origin": "https://a.org"}),
        request("GET", "/api/event/ping", {"If-Modified-Since": "yesterday"}),
        request("GET", "/api/event/ping", {"If-Modified-Since": TODAY}),
    ),
    (
        request("GET", "/api/event/ping"),
        request("POST", "/api/event/hit", TEXT, load("fp8")),
        request("POST", "/api/event/hit", TEXT, {"e": "unload", "b": "fp8", "m": 99}),
        request("GET", "/api/event/ping", {"If-Modified-Since": TODAY}),
    ),
)

# ... and near-misses that never reach a handler (refused while framing) or get an interim 100 first.
FRAMING: tuple[bytes, ...] = (
    request("POST", "/api/event/hit", {**TEXT, "Expect": "100-continue"}, load("fp11")),
    request("POST", "/api/event/hit", {**TEXT, "Content-Length": "2"}, load("fp12")),
    request("POST", "/api/event/hit", {**TEXT, "Transfer-Encoding": "chunked"}, load("fp13")),
    request("POST", "/api/event/hit", {**TEXT, "X-Folded": "a\r\n b"}, load("fp15")),
    request("GET", "/api/event/ping", {"Host": "again"}),
    request("POST", "/api/event/hit", TEXT, b"x" * (app_module.EVENT_BODY_LIMIT + 1)),  # 413, even in one read
)


def exchange(port: int, requests: tuple[bytes, ...]) -> bytes:
    """Send the requests in one write and read until every answer came (or the server closed)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"".join(requests))
        data = b""
        head_only = requests[-1].startswith(b"HEAD ")
        while data.count(b"HTTP/1.1 ") < len(requests) or not _complete(data, head_only):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    return data


def _complete(data: bytes, head_only: bool) -> bool:
    """The last answer in `data` has all of its body (none to a HEAD)."""
    head_end = data.rfind(b"\r\n\r\n")
    if head_only:
        return head_end >= 0
    head = data[data.rfind(b"HTTP/1.1 ") : head_end]
    length = re.search(rb"Content-Length: (\d+)", head)
    return head_end >= 0 and len(data) - head_end - 4 >= (int(length.group(1)) if length else 0)


def normalised(answer: bytes) -> bytes:
    answer = re.sub(rb"Date: [^\r]*\r\n", b"Date: -\r\n", answer)
    return re.sub(rb"max-age=\d+", b"max-age=N", answer)


def stored(server: LiveServer) -> dict[str, list[tuple[Any, ...]]]:
    db = server.config.analyticsdb
    deadline = time.monotonic() + 5  # drop counts are written within a second, without holding up the answer
    while time.monotonic() < deadline and not stores.analytics_rows(db, "SELECT 1 FROM drops"):
        time.sleep(0.02)
    time.sleep(1.2)
    return {
        "views": stores.analytics_rows(db, f"SELECT {VIEW_FIELDS} FROM views ORDER BY bid, hostname"),
        "events": stores.analytics_rows(db, "SELECT bid, group_name, name, value FROM events ORDER BY bid, name"),
        "drops": stores.analytics_rows(db, "SELECT hostname, reason, count FROM drops ORDER BY hostname, reason"),
    }


@pytest.fixture
def servers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[LiveServer, LiveServer]]:
    (tmp_path / "fast").mkdir()
    (tmp_path / "general").mkdir()
    prepare(tmp_path / "fast")
    prepare(tmp_path / "general")
    with live_server(tmp_path / "fast", level="info") as fast:
        monkeypatch.setattr(app_module, "FAST_ROUTES", ())  # read by App() at start-up
        with live_server(tmp_path / "general", level="info") as general:
            yield fast, general


def test_fast_and_general_paths_answer_and_store_the_same(
    servers: tuple[LiveServer, LiveServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    fast, general = servers
    calls: list[str] = []
    handle = app_module.App.handle

    async def counted(self: app_module.App, request: Any) -> Any:
        calls.append(f"{request.method} {request.path}")
        return await handle(self, request)

    monkeypatch.setattr(app_module.App, "handle", counted)
    for conversation in CONVERSATIONS:
        before = len(calls)
        fast_answer = exchange(fast.port, conversation)
        fast_calls = calls[before:]
        general_answer = exchange(general.port, conversation)
        general_calls = calls[before + len(fast_calls) :]
        assert normalised(fast_answer) == normalised(general_answer), conversation
        assert fast_answer.count(b"HTTP/1.1 ") == len(conversation)
        # The fast server took none of its GET pings or POST hits through `handle`; the other took all.
        tracker = [c for c in general_calls if c in ("GET /api/event/ping", "POST /api/event/hit")]
        assert not [c for c in fast_calls if c in tracker], fast_calls
        assert len(general_calls) == len(conversation)
    for data in FRAMING:
        assert normalised(sent_whole(fast.port, data)) == normalised(sent_whole(general.port, data)), data
    fast_rows, general_rows = stored(fast), stored(general)
    assert fast_rows["views"], "hits were stored"
    assert fast_rows == general_rows


def test_rate_limit_and_its_retry_after_are_the_same(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    answers = []
    for name in ("fast", "general"):
        (tmp_path / name).mkdir()
        prepare(tmp_path / name)
        if name == "general":
            monkeypatch.setattr(app_module, "FAST_ROUTES", ())
        with live_server(tmp_path / name, ratelimit=2) as server:
            conversation = (
                request("GET", "/api/event/ping"),
                request("POST", "/api/event/hit", TEXT, load("rl1")),
                request("POST", "/api/event/hit", TEXT, load("rl2")),
                request("GET", "/api/event/ping"),
            )
            answers.append(normalised(exchange(server.port, conversation)))
    assert answers[0] == answers[1]
    assert answers[0].count(b"HTTP/1.1 429 ") == 2 and b"Retry-After: " in answers[0]


# Any bytes around the fast path's routes: answered with well-formed responses (no 5xx) or closed cleanly.
pieces = st.one_of(
    st.sampled_from(
        [
            request("GET", "/api/event/ping"),
            request("GET", "/api/event/ping", {"If-Modified-Since": TODAY}),
            request("POST", "/api/event/hit", TEXT, load("px")),
            request("POST", "/api/event/hit", TEXT, {"e": "unload", "b": "px", "m": 5}),
            b"GET /api/event/ping HTTP/1.1\r\n",
            b"POST /api/event/hit HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\n\r\n",
            b'POST /api/event/hit HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{"e":\r\n',
            b"\r\n",
        ]
    ),
    st.binary(max_size=40),
)


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory, engine: str) -> Iterator[LiveServer]:
    tmp: Path = tmp_path_factory.mktemp("fastfuzz")
    prepare(tmp)
    with live_server(tmp, level="info") as server:
        yield server


@settings(max_examples=150, deadline=None)
@given(parts=st.lists(pieces, min_size=1, max_size=5), cut=st.integers(0, 200))
def test_any_bytes_get_answers_or_a_clean_close(fuzzed: LiveServer, parts: list[bytes], cut: int) -> None:
    data = b"".join(parts)
    data = data[: len(data) - cut] if cut < len(data) else data
    with socket.create_connection(("127.0.0.1", fuzzed.port), timeout=10) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)  # the server answers what is complete, then closes
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    statuses = [int(status) for status in re.findall(rb"HTTP/1\.1 (\d{3}) ", answer)]
    assert answer == b"" or answer.startswith(b"HTTP/1.1 ")
    assert all(status < 500 for status in statuses), answer
    assert "unhandled exception" not in fuzzed.log_stream.getvalue()


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory, engine: str) -> Iterator[tuple[LiveServer, LiveServer]]:
    """`servers`, once per module: the fast server, and the general one (no fast path, the general parser)."""
    tmp: Path = tmp_path_factory.mktemp("fastpair")
    (tmp / "fast").mkdir()
    (tmp / "general").mkdir()
    prepare(tmp / "fast")
    prepare(tmp / "general")
    with live_server(tmp / "fast", level="info") as fast, pytest.MonkeyPatch.context() as patch:
        patch.setattr(app_module, "FAST_ROUTES", ())
        with live_server(tmp / "general", level="info") as general:
            yield fast, general


def sent_whole(port: int, data: bytes) -> bytes:
    """Send `data`, half-close, and read every answer until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def with_body(head: bytes, serial: int) -> bytes:
    """`head` as a whole request: a load beacon as its body, padded or cut to an announced Content-Length."""
    body = json.dumps(load(f"nm{serial}")).encode()
    found = re.search(rb"(?im)^content-length:[ \t]*(\d{1,5})[ \t]*$", head)
    if found is not None:
        length = int(found.group(1))
        body = body[:length] + b" " * (length - len(body))
    return head + b"\r\n\r\n" + body


@settings(max_examples=120, deadline=None)
@given(heads=st.lists(near_misses(), min_size=1, max_size=3), serial=st.integers(0, 10**9))
def test_near_misses_of_the_tracker_heads_answer_the_same(
    pair: tuple[LiveServer, LiveServer], heads: list[bytes], serial: int
) -> None:
    fast, general = pair
    data = b"".join(with_body(head.replace(b"example.org", b"localhost"), serial + i) for i, head in enumerate(heads))
    assert normalised(sent_whole(fast.port, data)) == normalised(sent_whole(general.port, data))
