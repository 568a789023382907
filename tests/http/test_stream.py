"""Streamed response bodies on real sockets: chunked framing, HTTP/1.0, HEAD, flow control, failures.

A handler can answer with an async iterator of chunks (`Response.stream`) instead of a
body: the server sends each chunk as the client takes it, and always closes the stream.
"""

from __future__ import annotations

import asyncio
import http.client
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from medama_core.http.errors import HTTPError
from medama_core.http.protocol import LAST_CHUNK, Request, Response, frame_chunk, json_response, render_response
from medama_core.http.server import HTTPServer

BIG_CHUNK = 64 * 1024
RECEIVE_BUFFER = 256 * 1024  # the client's, set before connecting: its window stays small


def _send_buffer_max() -> int:
    """The most a TCP send buffer may grow to here (Linux autotuning), the bulk of what a stalled
    client leaves queued on the server's side."""
    try:
        return int(Path("/proc/sys/net/ipv4/tcp_wmem").read_text().split()[2])
    except (OSError, ValueError, IndexError):
        return 4 * 1024 * 1024  # Linux's default maximum


# Three times what the socket buffers and the transport's own can hold, so a server that ignored
# flow control would have made more than a third of them while the client reads nothing.
BIG_CHUNKS = 3 * (_send_buffer_max() + RECEIVE_BUFFER + 1024 * 1024) // BIG_CHUNK


class StreamApp:
    """`/chunks?n=&size=` streams n chunks; `/fail` breaks after two; `/big` streams BIG_CHUNKS of 64 KiB."""

    def __init__(self) -> None:
        self.produced = 0  # chunks /big made so far
        self.closed: list[str] = []  # paths whose stream ran and was closed (its finally ran)
        self.acloses: list[str] = []  # paths whose stream the server closed, read or not

    async def handle(self, request: Request) -> Response:
        if request.path == "/plain":
            return json_response({"ok": True})
        return Response(200, content_type="text/plain", stream=Closable(self._chunks(request), request.path, self))

    async def _chunks(self, request: Request) -> AsyncIterator[bytes]:
        try:
            if request.path == "/big":
                for _ in range(BIG_CHUNKS):
                    self.produced += 1
                    yield b"x" * BIG_CHUNK
                return
            n = int(request.query_value("n") or "3")
            size = int(request.query_value("size") or "10")
            for i in range(n):
                await asyncio.sleep(0)  # a real stream waits for its rows
                if request.path == "/fail" and i == 2:
                    raise RuntimeError("the database went away")
                yield bytes([ord("a") + i % 26]) * size
                yield b""  # empty pieces are skipped, never sent as the last chunk
        finally:
            self.closed.append(request.path)

    def error_response(self, error: HTTPError, request: Request | None) -> Response:
        return json_response({"error": {"code": error.status, "message": error.message}}, error.status)

    def body_limit(self, path: str) -> int:
        return 1000


class Closable:
    """An async iterator that records that the server closed it (`aclose`)."""

    def __init__(self, inner: AsyncIterator[bytes], path: str, app: StreamApp) -> None:
        self.inner, self.path, self.app = inner, path, app

    def __aiter__(self) -> Closable:
        return self

    async def __anext__(self) -> bytes:
        return await self.inner.__anext__()

    async def aclose(self) -> None:
        self.app.acloses.append(self.path)
        await self.inner.aclose()  # type: ignore[attr-defined]


@contextmanager
def serving(app: StreamApp) -> Iterator[int]:
    loop = asyncio.new_event_loop()
    server = HTTPServer(app)
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    port = asyncio.run_coroutine_threadsafe(server.listen("127.0.0.1", 0), loop).result(timeout=5)
    try:
        yield port
    finally:
        asyncio.run_coroutine_threadsafe(server.shutdown(1.0), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


@pytest.fixture
def app() -> StreamApp:
    return StreamApp()


@pytest.fixture
def port(app: StreamApp) -> Iterator[int]:
    with serving(app) as bound:
        yield bound


def wait_for(condition: object, what: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def receive_until(sock: socket.socket, end: bytes) -> bytes:
    data = bytearray()
    while not data.endswith(end):
        piece = sock.recv(1024 * 1024)
        if not piece:
            break
        data += piece
    return bytes(data)


def receive_all(sock: socket.socket) -> bytes:
    data = bytearray()
    while piece := sock.recv(1024 * 1024):
        data += piece
    return bytes(data)


def test_frame_chunk() -> None:
    assert frame_chunk(b"hello") == b"5\r\nhello\r\n"
    assert frame_chunk(b"x" * 26) == b"1a\r\n" + b"x" * 26 + b"\r\n"
    assert LAST_CHUNK == b"0\r\n\r\n"
    with pytest.raises(ValueError):
        frame_chunk(b"")


def test_head_of_a_streamed_response() -> None:
    response = Response(200, content_type="text/csv", stream=iter_nothing())
    head = render_response(response, keep_alive=True, head_only=False, date=b"D")
    assert b"Transfer-Encoding: chunked\r\n" in head and b"Content-Length" not in head and head.endswith(b"\r\n\r\n")
    old = render_response(response, keep_alive=False, head_only=False, date=b"D", http10=True)
    assert b"Transfer-Encoding" not in old and b"Content-Length" not in old and b"Connection: close" in old


async def iter_nothing() -> AsyncIterator[bytes]:
    return
    yield b""


def test_chunks_on_the_wire_then_the_connection_is_reused(app: StreamApp, port: int) -> None:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    with sock:
        sock.sendall(b"GET /chunks?n=3&size=5 HTTP/1.1\r\nHost: x\r\n\r\n")
        data = receive_until(sock, b"\r\n0\r\n\r\n")
        head, _, body = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 OK\r\n")
        assert b"Transfer-Encoding: chunked" in head and b"Content-Length" not in head
        assert body == b"5\r\naaaaa\r\n5\r\nbbbbb\r\n5\r\nccccc\r\n0\r\n\r\n"
        # The same connection answers the next request (keep-alive after a chunked body).
        sock.sendall(b"GET /plain HTTP/1.1\r\nHost: x\r\n\r\n")
        assert receive_until(sock, b'{"ok":true}').endswith(b'{"ok":true}')
    assert app.closed == app.acloses == ["/chunks"]


def test_pipelined_requests_wait_for_the_stream(port: int) -> None:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    with sock:
        sock.sendall(
            b"GET /chunks?n=2&size=3 HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET /plain HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        data = receive_all(sock)
    first, _, second = data.partition(b"\r\n0\r\n\r\n")
    assert first.endswith(b"3\r\naaa\r\n3\r\nbbb")
    assert second.startswith(b"HTTP/1.1 200 OK") and second.endswith(b'{"ok":true}')


def test_http_client_reads_the_whole_body(port: int) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/chunks?n=30&size=1000")
    response = conn.getresponse()
    assert response.getheader("transfer-encoding") == "chunked"
    assert response.read() == b"".join(bytes([ord("a") + i % 26]) * 1000 for i in range(30))
    conn.close()


def test_http_10_gets_the_body_until_the_connection_closes(app: StreamApp, port: int) -> None:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    with sock:
        sock.sendall(b"GET /chunks?n=2&size=4 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        data = receive_all(sock)  # the server closes: that is where the body ends
    head, _, body = data.partition(b"\r\n\r\n")
    assert b"HTTP/1.1 200 OK" in head and b"Connection: close" in head
    assert b"Transfer-Encoding" not in head and b"Content-Length" not in head
    assert body == b"aaaabbbb"


def test_head_sends_no_body_and_closes_the_stream_unread(app: StreamApp, port: int) -> None:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    with sock:
        sock.sendall(
            b"HEAD /chunks HTTP/1.1\r\nHost: x\r\n\r\nGET /plain HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        data = receive_all(sock)
    head, _, rest = data.partition(b"\r\n\r\n")
    assert b"Transfer-Encoding: chunked" in head
    assert rest.startswith(b"HTTP/1.1 200 OK")  # straight to the next answer: no chunk was sent
    assert app.acloses == ["/chunks"] and app.closed == []  # closed without being read


def test_a_stream_that_fails_cuts_the_connection_before_the_last_chunk(app: StreamApp, port: int) -> None:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    with sock:
        sock.sendall(b"GET /fail?n=5&size=3 HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            data = receive_all(sock)
        except ConnectionResetError:
            data = b""
    assert b"0\r\n\r\n" not in data.partition(b"\r\n\r\n")[2]  # never looks complete
    wait_for(lambda: app.closed == app.acloses == ["/fail"], "the failed stream to be closed")
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/fail?n=5&size=3")
    with pytest.raises(http.client.IncompleteRead):
        conn.getresponse().read()
    conn.close()


def test_a_client_that_leaves_gets_its_stream_closed(app: StreamApp, port: int) -> None:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(b"GET /chunks?n=100000&size=1000 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert sock.recv(100).startswith(b"HTTP/1.1 200")
    sock.close()
    wait_for(lambda: app.closed == app.acloses == ["/chunks"], "the abandoned stream to be closed")
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)  # and the server still answers
    conn.request("GET", "/plain")
    assert conn.getresponse().read() == b'{"ok":true}'
    conn.close()


def test_the_stream_is_read_no_faster_than_the_client_reads(app: StreamApp) -> None:
    with serving(app) as bound:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
        sock.settimeout(10)
        sock.connect(("127.0.0.1", bound))
        with sock:
            sock.sendall(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
            time.sleep(1.0)  # read nothing: the server must stop making chunks
            stalled = app.produced
            assert stalled < BIG_CHUNKS // 2, f"{stalled} of {BIG_CHUNKS} chunks made with nobody reading"
            received = len(receive_until(sock, b"\r\n0\r\n\r\n"))
        assert app.produced == BIG_CHUNKS
        assert received > BIG_CHUNKS * BIG_CHUNK
