"""The only module that touches sockets: an asyncio HTTP/1.1 server under named limits.

Each connection is an `asyncio.Protocol` that feeds bytes to its sans-IO
`RequestReader`, takes the next complete request and runs one handler at a
time, so pipelined requests are answered in order. An application with a fast
path (`FastApp.answer_now`, the tracker's routes) answers a request there
without a coroutine, or returns a `Deferred` that it calls back when the
answer can be made (a hit's write committed), without a Task; everything else
goes through `App.handle` as a coroutine run eagerly. Both write through the
same `_write_response`. Timers bound how long a
peer may take to send a head (408; counted from accept for the first request,
so a silent connection is closed too), a body (408) or the next request.
No one network may hold more than a share of the connection slots or of the
bytes buffered for unfinished requests, and those bytes have a budget in all
(503 with Retry-After past either); peers a caller exempts, such as trusted
proxies, count only toward the totals.
Shutdown stops accepting, lets in-flight requests finish within a grace
period, closes idle connections and then cancels what is left. A listener
that shares its port (SO_REUSEPORT, upgrades) first steers new connections
to the other process and accepts what is already on its way, so closing it
resets nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import resource
import socket
import ssl
import struct
import sys
import time
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Final, Protocol, cast

from medama_core.http.errors import HTTPError
from medama_core.http.framing import RequestReader
from medama_core.http.protocol import (
    LAST_CHUNK,
    MAX_HEAD_BYTES,
    Request,
    Response,
    frame_chunk,
    has_streamed_body,
    render_response,
)
from medama_core.http.trackerhead import PREFIXES as TRACKER_PREFIXES
from medama_core.http.trackerhead import tracker_head_parts

HEADER_TIMEOUT_S = 10.0  # upstream's ReadHeaderTimeout: a whole head must arrive within this (slowloris)
# (for a connection's first request counted from accept, so silent connections are closed as well)
BODY_TIMEOUT_S = 30.0  # upstream's ReadTimeout: a body must arrive within this once its head has
IDLE_TIMEOUT_S = 300.0  # upstream's IdleTimeout: a keep-alive connection may sit unused this long
SHUTDOWN_GRACE_S = 5.0  # upstream's Shutdown timeout: in-flight requests get this long to finish
DEFAULT_MAX_CONNECTIONS = 4096  # ~20 KiB each at most in buffers: well inside a 256 MB VM
FD_RESERVE = 64  # descriptors kept back from the connection cap for databases, logs and data files
SWEEP_INTERVAL_S = 0.5  # how often deadlines are checked; timeouts fire up to this late
MAX_PIPELINE_BUFFER = 256 * 1024  # pipelined bytes held while a request runs; past this we stop reading
# Pipelined requests (those behind the one a read or a finished handler lets a connection answer at
# once) are answered in turns of the event loop, at most this many per turn over all connections
# together: ~30 µs each, so pipelines hold the loop for about a millisecond per turn however many
# connections flood. A request on another connection needs a few turns (the /api/health probe ~8:
# its tasks, and two hand-offs to reader threads), so it waits ~10 ms, not 8 per flooding connection.
PIPELINE_TURN_ANSWERS: Final = 32
# ... and no more loop time than this per turn, for requests dearer than a 404 (a 16 KB head takes
# ~100 µs to parse): the same millisecond, however the time is spent.
PIPELINE_TURN_S: Final = 0.001
# Bytes held for requests not yet complete (heads, bodies so far or announced by Content-Length,
# pipelined requests), all connections together: 64 uploads of the largest body (1 MiB) or 1,000
# of the largest beacon (64 KiB) at once, and still a quarter of a 256 MB VM. Past it, 503.
MAX_BUFFERED_BYTES: Final = 64 * 1024 * 1024
# One network (a /24 or /48, as ingestion's rate limit) may hold this share of the connection
# slots and of MAX_BUFFERED_BYTES: 512 connections (a NAT of ~85 browsers at 6 each) and 8 MiB at
# the defaults, so one client cannot take what everyone else needs; filling the server takes 8 networks.
NETWORK_SHARE: Final = 8
# ... but never fewer connections than this: a browser opens up to 6 to a host, so even with a small
# -maxconnections one network's visitor (and the dashboard's admin) gets all it needs.
MIN_NETWORK_CONNECTIONS: Final = 8
BUSY_RETRY_S: Final = "10"  # connections and bodies free up within BODY_TIMEOUT_S; sooner mostly finds it full
# Hand-over of a shared port. Closing a listener resets the connections in its accept queue, and
# without root (net.ipv4.tcp_migrate_req) the kernel cannot move them, so a stopping process first
# attaches a one-instruction classic BPF program to the port's SO_REUSEPORT group that sends every
# new connection to the successor, then keeps accepting for a while before it closes.
HANDOVER_DRAIN_S = 0.5  # handshakes begun before the steering finish within one round trip, far below this
SUCCESSOR_INDEX = 1  # two processes on a port (docs/deploy.md): the newer listener is second in the group
# Loop turns shutdown gives after closing its listeners. asyncio accepts a connection in one callback and
# makes its transport and protocol in a task of its own (connection_made runs a turn later); a shutdown that
# stopped the loop in between left that socket open and owned by nobody (a ResourceWarning "unclosed
# socket" seen once in the test suite): after these turns the connection is among those closed.
ACCEPTED_TURNS: Final = 3
# A connection accepted just before shutdown has not sent its request yet; closing it then would
# fail a client that did nothing wrong. It gets this long to send one (a browser's speculative
# preconnection may never send one), then is closed quietly.
FIRST_REQUEST_GRACE_S = 1.0
# Kinds of fast-path answer kept framed (`_Heads`): a tracker's requests get a handful (204 with or without
# CORS, a ping's "0" and its "1" for each max-age second and date it is sent); past this the old ones go.
MAX_FAST_HEADS: Final = 512
SO_ATTACH_REUSEPORT_CBPF = 51  # Linux <asm-generic/socket.h>
SO_DETACH_REUSEPORT_BPF = 68  # Linux <asm-generic/socket.h>, since 5.3
BPF_RET_K = 0x06  # classic BPF: return the constant k (here the index of the listener to use)


class App(Protocol):
    """What the server needs from the application.

    `handle` runs eagerly until its first real suspension, outside any Task (see `_finish`):
    code before the first `await` that suspends must not need `asyncio.current_task()`
    (e.g. `asyncio.timeout`); after it, the handler runs in a Task as usual.
    """

    async def handle(self, request: Request) -> Response:
        """Answer a request; must not raise."""

    def error_response(self, error: HTTPError, request: Request | None) -> Response:
        """The response for an error raised before or outside a handler."""

    def body_limit(self, path: str) -> int:
        """Largest request body accepted on `path`, in bytes."""


class Deferred:
    """An answer that comes later: the application calls `done(value)` once it can make it (from a write's
    callback), `finish(request, started, value)` makes it, and the connection that asked (set when
    `answer_now` returned this) sends it. No future, no Task, no callback scheduled through the loop, and no
    partial function per answer: the request and the time the application started on it ride along here."""

    __slots__ = ("connection", "finish", "request", "started")

    def __init__(self, finish: Callable[[Request, float, Any], Response], request: Request, started: float) -> None:
        self.finish = finish
        self.request = request
        self.started = started
        self.connection: _Connection | None = None

    def done(self, value: Any) -> None:
        """Make the answer and send it; None to the connection when `finish` failed (the server answers 500)."""
        request = self.request
        try:
            response: Response | None = self.finish(request, self.started, value)
        except Exception:
            response = None
        if self.connection is not None:
            self.connection._deferred_done(request, response)


@dataclass(slots=True)
class Shared(Response):
    """A fast-path answer the application hands out again and again and never changes once made (a ping's
    for one second, a stored hit's 204): the server frames it once per `Date` and keep-alive, not per answer."""


class FastApp(App, Protocol):
    """An application with a fast path: routes it answers without a coroutine or a Task per request."""

    def answer_now(self, request: Request) -> Response | Deferred | None:
        """The response, a `Deferred` one, or None to have `handle` answer; must not raise. Called
        for every complete request before `handle`, so it must be cheap for the others."""


@dataclass(frozen=True, slots=True)
class Timeouts:
    header: float = HEADER_TIMEOUT_S
    body: float = BODY_TIMEOUT_S
    idle: float = IDLE_TIMEOUT_S


class _DateCache:
    """`Date` header bytes, formatted once per second."""

    def __init__(self) -> None:
        self._second = -1
        self._value = b""

    def get(self) -> bytes:
        now = int(time.time())
        if now != self._second:
            self._second = now
            self._value = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(now)).encode()
        return self._value


class _Heads:
    """The fast path's answers as `render_response` frames them, kept by everything that shapes their bytes
    but `Date`: the few kinds a tracker's requests get (status, CORS or not, keep-alive, a ping's dates) are
    framed once each, not per answer."""

    def __init__(self) -> None:
        # (status, content type, body length, headers, keep-alive, HTTP/1.0) -> the bytes before and after Date
        self._heads: dict[tuple[object, ...], tuple[bytes, bytes]] = {}
        # (id of a `Shared` answer, keep-alive) -> it (so its id is not reused), the Date and the whole answer
        self._shared: dict[tuple[int, bool], tuple[Shared, bytes, bytes]] = {}

    def shared(self, response: Shared, keep_alive: bool, date: bytes) -> bytes:
        """`render(response, keep_alive, False, date)` for a `Shared` answer, framed once per Date second."""
        key = (id(response), keep_alive)
        entry = self._shared.get(key)
        if entry is not None and entry[0] is response and entry[1] is date:  # `_DateCache` keeps its bytes
            return entry[2]
        data = self.render(response, keep_alive, False, date)
        if len(self._shared) >= MAX_FAST_HEADS:
            self._shared.clear()
        self._shared[key] = (response, date, data)
        return data

    def render(self, response: Response, keep_alive: bool, http10: bool, date: bytes) -> bytes:
        """`render_response(response, keep_alive=keep_alive, head_only=False, date=date, http10=http10)` for
        a response without a stream."""
        body = response.body
        status = response.status
        key = (status, response.content_type, len(body), tuple(response.headers), keep_alive, http10)
        head = self._heads.get(key)
        if head is None:
            if len(self._heads) >= MAX_FAST_HEADS:
                self._heads.clear()
            framed = render_response(response, keep_alive=keep_alive, head_only=True, date=b"", http10=http10)
            split = framed.index(b"\r\n") + len(b"\r\nDate: ")
            head = self._heads[key] = (framed[:split], framed[split:])
        if status >= 200 and status not in (204, 304):  # as `render_response`: these carry no body
            return head[0] + date + head[1] + body
        return head[0] + date + head[1]


@dataclass(slots=True)
class _Turn:
    """What is left of one turn's share of pipelined answers."""

    answers: int
    until: float  # time.perf_counter() at which the turn ends

    def over(self) -> bool:
        return self.answers <= 0 or time.perf_counter() >= self.until


@dataclass(slots=True)
class _Share:
    """What one network holds: connections and bytes buffered for its unfinished requests."""

    connections: int = 0
    held: int = 0


class HTTPServer:
    """Accept connections on one or more sockets and serve `app` on them.

    `network_of(peer)` names the network a peer address belongs to, for the
    per-network caps, or returns None for a peer exempt from them (a trusted
    proxy); without it, no peer is capped on its own.
    """

    def __init__(
        self,
        app: App,
        *,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        timeouts: Timeouts = Timeouts(),
        network_of: Callable[[str], str | None] | None = None,
        max_buffered: int = MAX_BUFFERED_BYTES,
    ) -> None:
        self.app = app
        # The application's fast path (`FastApp.answer_now`), when it has one.
        self.answer_now: Callable[[Request], Response | Deferred | None] | None = getattr(app, "answer_now", None)
        # Whether connections try the tracker's head parser first (`framing.RequestReader`); an app may say no.
        self.tracker_heads: bool = getattr(app, "tracker_heads", True)
        self.timeouts = timeouts
        self.max_connections = _connection_cap(max_connections)
        self.network_of = network_of
        self.max_per_network = max(
            min(self.max_connections, MIN_NETWORK_CONNECTIONS), self.max_connections // NETWORK_SHARE
        )
        self.max_buffered = max_buffered
        self.max_buffered_per_network = max_buffered // NETWORK_SHARE
        self.connections: set[_Connection] = set()
        self.shares: dict[str, _Share] = {}  # by network; an entry lives while the network has a connection
        self.held = 0  # bytes all connections hold for unfinished requests
        self.dates = _DateCache()
        self.heads = _Heads()  # the fast path's answers, framed once per kind (`_Connection._answer`)
        self.stopping = False  # shutdown began: no more keep-alive
        self.closing = False  # new connections are refused
        self._servers: list[asyncio.Server] = []
        self._shared: list[socket.socket] = []  # listeners with SO_REUSEPORT (asyncio's views of them)
        self._handed: list[socket.socket] = []  # listeners handed over to child processes (`hand_over`)
        self._sweeper: asyncio.TimerHandle | None = None
        self._pipelines: deque[_Connection] = deque()  # connections waiting for a turn to answer pipelined requests
        self._turn: asyncio.Handle | None = None  # the next turn, scheduled while any connection waits
        # One sweep over all connections checks their deadlines, instead of a timer per request.
        self.sweep_interval = min(SWEEP_INTERVAL_S, timeouts.header / 4, timeouts.body / 4, timeouts.idle / 4)

    def admit(self, conn: _Connection) -> str | None:
        """Count a new connection in; the reason to refuse it (503) when it is over a cap, else None."""
        self.connections.add(conn)
        share = None
        if conn.network is not None:
            share = self.shares.setdefault(conn.network, _Share())
            share.connections += 1
        if self.closing or len(self.connections) > self.max_connections:
            return "server is at its connection limit, try again later"
        if share is not None and share.connections > self.max_per_network:
            return "too many connections from your network, try again later"
        return None

    def release(self, conn: _Connection) -> None:
        """Count a connection out (closing it more than once is fine)."""
        if conn not in self.connections:
            return
        self.charge(conn, 0)
        self.connections.discard(conn)
        if conn.network is not None:
            share = self.shares[conn.network]
            share.connections -= 1
            if not share.connections:
                del self.shares[conn.network]

    def charge(self, conn: _Connection, held: int) -> str | None:
        """Record that `conn` now holds `held` bytes; the reason to refuse more (503) when that is over budget."""
        if conn not in self.connections:
            return None  # closed already: it holds nothing any more
        grown = held - conn.charged
        conn.charged = held
        self.held += grown
        share = self.shares.get(conn.network) if conn.network is not None else None
        if share is not None:
            share.held += grown
        if grown <= 0:
            return None
        if self.held > self.max_buffered:
            return "server is busy receiving other requests, try again later"
        if share is not None and share.held > self.max_buffered_per_network:
            return "too much request data in flight from your network, try again later"
        return None

    def wait_turn(self, conn: _Connection) -> None:
        """Let `conn` answer its pipelined requests in a coming turn of the loop (`_serve_pipelines`)."""
        self._pipelines.append(conn)
        if self._turn is None:
            self._turn = asyncio.get_running_loop().call_soon(self._serve_pipelines)

    def _serve_pipelines(self) -> None:
        """One turn's share of pipelined answers (PIPELINE_TURN_ANSWERS, PIPELINE_TURN_S), round robin.

        Waiting connections go in order while the turn lasts; one whose backlog outlasts the turn waits
        again at the back, so every flooding connection together gets one turn's share of the loop
        between two looks at the sockets, and other connections' reads, accepts and wake-ups run there.
        """
        self._turn = None
        turn = _Turn(PIPELINE_TURN_ANSWERS, time.perf_counter() + PIPELINE_TURN_S)
        waiting = self._pipelines
        while waiting and not turn.over():
            waiting.popleft().take_turn(turn)
        if waiting and self._turn is None:
            self._turn = asyncio.get_running_loop().call_soon(self._serve_pipelines)

    def _sweep(self) -> None:
        self._expire()
        self._sweeper = asyncio.get_running_loop().call_later(self.sweep_interval, self._sweep)

    def _expire(self) -> None:
        now = time.monotonic()
        for conn in list(self.connections):
            if conn.deadline <= now:
                conn.on_timeout()

    async def listen(
        self,
        host: str | None,
        port: int,
        *,
        ssl_context: ssl.SSLContext | None = None,
        sock: socket.socket | None = None,
        reuse_port: bool = False,
    ) -> int:
        """Start accepting; returns the bound port (useful with port 0).

        `reuse_port` sets SO_REUSEPORT, so a second process can bind the same
        port and share new connections until this one shuts down (upgrades).
        """
        loop = asyncio.get_running_loop()
        if sock is not None:
            server = await loop.create_server(lambda: _Connection(self), sock=sock, ssl=ssl_context, backlog=1024)
        else:
            server = await loop.create_server(
                lambda: _Connection(self),
                host,
                port,
                ssl=ssl_context,
                backlog=1024,
                reuse_address=True,
                reuse_port=reuse_port or None,
            )
        self._servers.append(server)
        if reuse_port and sock is None:
            for listener in server.sockets:
                self._shared.append(listener)
                _steer(listener, None)  # a program left by a predecessor would skew the group
        if self._sweeper is None:
            self._sweeper = loop.call_later(self.sweep_interval, self._sweep)
        bound: int = server.sockets[0].getsockname()[1]
        return bound

    def hand_over(self) -> list[int]:
        """Stop accepting here and return descriptors of the listening sockets, kept open, for child
        processes to inherit and accept on (-workers, medama_core/workers.py): the port stays one listener
        in the kernel, whose queue outlives any child. Closed at `shutdown`, after a -reuseport handover
        steered them."""
        shared = {listener.fileno() for listener in self._shared}
        self._shared = []
        for server in self._servers:
            for listener in server.sockets:
                kept = socket.socket(fileno=os.dup(listener.fileno()))
                self._handed.append(kept)
                if listener.fileno() in shared:
                    self._shared.append(kept)
            server.close()
        return [kept.fileno() for kept in self._handed]

    async def shutdown(self, grace: float = SHUTDOWN_GRACE_S) -> None:
        """Stop accepting, let in-flight requests finish for up to `grace` seconds, close the rest."""
        self.stopping = True
        steered = [_steer(shared, SUCCESSOR_INDEX) for shared in self._shared]
        if any(steered):
            for conn in list(self.connections):
                conn.close_when_idle()  # its client reconnects, to the successor
            await asyncio.sleep(HANDOVER_DRAIN_S)
        self._shared.clear()
        for kept in self._handed:
            kept.close()
        self._handed.clear()
        self.closing = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for server in self._servers:
            server.close()
        for _ in range(ACCEPTED_TURNS):
            await asyncio.sleep(0)  # connections accepted just before get their transports (see ACCEPTED_TURNS)
        for conn in list(self.connections):
            conn.close_when_idle()
        deadline = time.monotonic() + grace
        while self.connections and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
            self._expire()  # the sweeper is stopped: connections waiting for a first request end here
        for conn in list(self.connections):
            conn.abort()
        for server in self._servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), timeout=1.0)
        for conn in list(self.connections):
            conn.abort()  # one whose transport was made while the listeners closed


def inherited_listener(fd: int) -> socket.socket:
    """The listening socket a parent process passed down as descriptor `fd` (`HTTPServer.listener_fds`)."""
    sock = socket.socket(fileno=fd)
    sock.setblocking(False)
    return sock


def _steer(sock: socket.socket, index: int | None) -> bool:
    """Send the new connections of `sock`'s SO_REUSEPORT group to listener `index` (None: spread them again).

    Returns False where this cannot be done (not Linux, or a kernel without it); an index past
    the group's end (no successor) makes the kernel spread connections as if no program were set.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        # A duplicate descriptor of the same socket: uvloop's socket views do not all offer setsockopt.
        with socket.fromfd(sock.fileno(), sock.family, sock.type) as dup:
            if index is None:
                dup.setsockopt(socket.SOL_SOCKET, SO_DETACH_REUSEPORT_BPF, 0)
            else:
                program = ctypes.create_string_buffer(struct.pack("HBBI", BPF_RET_K, 0, 0, index))
                fprog = struct.pack("HP", 1, ctypes.addressof(program))  # struct sock_fprog: length, pointer
                dup.setsockopt(socket.SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, fprog)
    except OSError:
        return False  # ENOENT: nothing to detach; EINVAL/ENOPROTOOPT: not supported
    return True


def _connection_cap(wanted: int) -> int:
    """Raise the open-file limit as far as allowed and keep the connection cap under it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, wanted + FD_RESERVE)
    if soft != resource.RLIM_INFINITY and soft < target:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
    if soft == resource.RLIM_INFINITY:
        return wanted
    return max(1, min(wanted, soft - FD_RESERVE))


async def _finish(coro: Coroutine[Any, Any, None], yielded: Any) -> None:
    """Drive a coroutine that suspended during its eager first step to completion inside a Task.

    `yielded` is what it suspended on: a Future (or None for a bare `sleep(0)`). Each round waits
    for that inside this Task, then resumes the coroutine, which reads the Future's result (or
    exception) itself. If this Task is cancelled, the cancellation is thrown into the coroutine
    at its await, as a Task of its own would do.
    """
    while True:
        try:
            if yielded is None:
                await asyncio.sleep(0)
            else:
                yielded._asyncio_future_blocking = False
                await yielded
        except asyncio.CancelledError as exc:
            if yielded is None or not yielded.cancelled():
                # This Task was cancelled while what it waited on was not: deliver it inside.
                if yielded is not None:
                    yielded.cancel()
                try:
                    yielded = coro.throw(exc)
                except StopIteration:
                    return
                continue
        except Exception:
            pass  # the coroutine gets the same exception from the Future when it resumes
        try:
            yielded = coro.send(None)
        except StopIteration:
            return


async def _close_stream(response: Response) -> None:
    """Close a response's stream (an async generator's `finally` blocks run), whether it was read or not."""
    close = getattr(response.stream, "aclose", None)
    if close is not None:
        with contextlib.suppress(Exception):
            await close()


class _Connection(asyncio.Protocol):
    """One client connection: parse, dispatch one request at a time, write, repeat."""

    def __init__(self, server: HTTPServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.client = ""
        self.network: str | None = None  # for the per-network caps; None: exempt
        self.reader = RequestReader(server.app.body_limit, tracker_heads=server.tracker_heads)
        self.charged = 0  # bytes of this connection in the server's budget (`HTTPServer.charge`)
        self.busy = False  # a handler is running
        self.closed = False
        self.keep_open = True  # cleared on shutdown: close after the current response
        self.answered = 0  # responses written
        self.eof = False  # the client half-closed: answer the complete requests buffered, then close
        self.reading_paused = False
        self.write_ready: asyncio.Future[None] | None = None
        self.deadline = float("inf")  # monotonic time at which the current wait times out
        self.task: asyncio.Task[None] | None = None

    # asyncio.Protocol callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass asyncio's
        peer = transport.get_extra_info("peername")
        self.client = self.reader.client = peer[0] if isinstance(peer, tuple) else ""
        self.reader.tls = transport.get_extra_info("sslcontext") is not None
        server = self.server
        if server.network_of is not None:
            self.network = server.network_of(self.client)
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        refusal = server.admit(self)
        if refusal is not None:
            self._fail(HTTPError(503, refusal, [("Retry-After", BUSY_RETRY_S)]))
            return
        self._arm(server.timeouts.header)  # the first head is due within the head timeout of accept

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.server.release(self)
        self._disarm()
        if self.write_ready is not None and not self.write_ready.done():
            self.write_ready.set_result(None)

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        reader = self.reader
        if reader.tracker_heads and not self.busy and reader.head is None and not reader.buffer and self._direct(data):
            return
        if self.answered and reader.idle and not self.busy:
            self._arm(self.server.timeouts.header)  # a later request's head clock starts at its first byte
        reader.feed(data)
        if self.busy:
            over = self.server.charge(self, reader.held()) is not None
            if (over or len(reader.buffer) > MAX_PIPELINE_BUFFER) and self.transport is not None:
                self.transport.pause_reading()
                self.reading_paused = True
            return
        self._advance()

    def eof_received(self) -> bool | None:
        self.eof = True
        if not self.busy:
            self._close()  # every complete request was answered; what is left can never complete
        if self.transport is not None and self.transport.get_extra_info("sslcontext") is not None:
            return None  # TLS cannot half-close; asyncio would ignore True and log a warning per connection
        return True  # keep the transport half-open so a running handler can still answer

    def pause_writing(self) -> None:
        loop = asyncio.get_running_loop()
        self.write_ready = loop.create_future()

    def resume_writing(self) -> None:
        if self.write_ready is not None and not self.write_ready.done():
            self.write_ready.set_result(None)
        self.write_ready = None

    # request cycle

    def _direct(self, data: bytes) -> bool:
        """Answer a read that is exactly one whole tracker request (a ping, or a hit with its body), as
        `_advance` would, without the reader's buffer, its bookkeeping and the budget's (it holds nothing
        once parsed); False, having done nothing, for anything else (the general path takes it)."""
        if not data.startswith(TRACKER_PREFIXES):
            return False
        end = data.find(b"\r\n\r\n", 0, MAX_HEAD_BYTES + 4)
        if end < 0:
            return False
        parts = tracker_head_parts(data[:end])
        if parts is None:
            return False
        method, path, query_string, headers, length, keep_alive = parts
        start = end + 4
        reader = self.reader
        if len(data) - start != length or length > reader.body_limit(path):
            return False  # a body still to come, pipelined bytes behind it, or one over the limit (413)
        body = data[start:] if length else b""
        request = Request(method, path, query_string, headers, body, self.client, "1.1", keep_alive)
        request.tls = reader.tls
        self.deadline = float("inf")  # `_disarm`
        self.busy = True
        self._start(request)  # nothing is buffered behind it: no `_advance` after
        return True

    def _advance(self, turn: _Turn | None = None) -> None:
        """Answer the next complete buffered request; stop at one that must wait for I/O.

        Outside a turn (a read, a handler that finished) one request is answered at once; the ones
        pipelined behind it wait for the server's turns (`HTTPServer.wait_turn`), where `turn` says
        how much of the loop is left to spend, as if a handler ran in between.
        """
        answered = False
        while not self.busy and not self.closed:
            if not self.reader.idle and (turn.over() if turn is not None else answered):
                self.busy = True
                self.server.wait_turn(self)
                return
            reader = self.reader
            if not reader.buffer and reader.head is None and not self.charged:
                # Nothing buffered (the common case after an answer): what `_next_request` and
                # `charge` below would find, without asking them.
                if self.eof:
                    self._close()
                return
            try:
                request = self._next_request()
            except HTTPError as exc:
                self._fail(exc)
                return
            refusal = self.server.charge(self, self.reader.held())
            if request is None:
                if refusal is not None:
                    self._fail(HTTPError(503, refusal, [("Retry-After", BUSY_RETRY_S)]))
                elif self.eof:
                    self._close()
                return
            self._disarm()
            self.busy = True
            answered = True
            if turn is not None:
                turn.answers -= 1
            if not self._start(request):
                return

    def _start(self, request: Request) -> bool:
        """Answer `request` (the connection is busy): True when that is done, False when it waits for I/O."""
        answer_now = self.server.answer_now
        if answer_now is not None:
            try:
                fast = answer_now(request)
            except Exception:  # answer_now must not raise; if it does, still answer
                fast = self.server.app.error_response(HTTPError(500, "internal server error"), request)
            if fast is not None:
                if type(fast) is Deferred:
                    fast.connection = self
                    return False
                self._answer(request, cast(Response, fast))
                return True
        # Run the handler eagerly: most answers (pings, static files, errors) need no I/O, and a
        # coroutine that finishes in its first step costs ~0.6 µs instead of a Task's ~5 µs.
        # The caller loops rather than recursing, so a long pipeline cannot exhaust the stack.
        coro = self._respond(request)
        try:
            yielded = coro.send(None)
        except StopIteration:
            return True
        self.task = asyncio.get_running_loop().create_task(self._finish_and_continue(coro, yielded))
        return False

    def take_turn(self, turn: _Turn) -> None:
        """Answer pipelined requests while `turn` lasts (called by `HTTPServer._serve_pipelines`)."""
        self.busy = False
        if not self.closed:
            self._advance(turn)

    async def _finish_and_continue(self, coro: Coroutine[Any, Any, None], yielded: Any) -> None:
        await _finish(coro, yielded)
        self.task = None
        if not self.busy and not self.closed:
            self._advance()  # answers what is buffered, and closes after a half-close

    def _next_request(self) -> Request | None:
        reader = self.reader
        if reader.head is None:
            head = reader.read_head()
            if head is None:
                return None
            if head.content_length or head.chunked:
                self._arm(self.server.timeouts.body)
                refusal = self.server.charge(self, reader.held())  # a Content-Length is reserved here
                if refusal is not None:
                    raise HTTPError(503, refusal, [("Retry-After", BUSY_RETRY_S)])
                if head.expect_continue and self.transport is not None:
                    self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        return reader.read_body()

    async def _respond(self, request: Request) -> None:
        app = self.server.app
        try:
            response = await app.handle(request)
        except Exception:  # app.handle must not raise; if it does, still answer
            response = app.error_response(HTTPError(500, "internal server error"), request)
        sent = self._write_response(request, response)
        if sent is None:
            await _close_stream(response)
            return
        keep_alive, streamed = sent
        if streamed:
            if not await self._send_stream(response, chunked=request.http_version != "1.0"):
                return
        else:
            await _close_stream(response)
        if self.write_ready is not None:
            await self.write_ready
        self._answered(keep_alive)
        # The caller (`_advance` or `_finish_and_continue`) goes on with any buffered request.

    def _write_response(self, request: Request, response: Response) -> tuple[bool, bool] | None:
        """Write a response's head and whole body (a stream's chunks follow): whether the connection stays
        open and whether a stream follows, or None when the connection is gone."""
        http10 = request.http_version == "1.0"
        head_only = request.method == "HEAD"
        streamed = has_streamed_body(response, head_only=head_only)
        # An HTTP/1.0 client learns where a streamed body ends only when the connection closes.
        keep_alive = request.keep_alive and self.keep_open and not self.server.stopping and not (streamed and http10)
        data = render_response(
            response,
            keep_alive=keep_alive,
            head_only=head_only,
            date=self.server.dates.get(),
            http10=http10,
        )
        transport = self.transport
        if self.closed or transport is None:
            return None
        transport.write(data)
        self.answered += 1
        return keep_alive, streamed

    def _answered(self, keep_alive: bool) -> None:
        """A response went out whole: close, or wait for the next request."""
        self.busy = False
        if not keep_alive or self.closed:
            self._close()
            return
        if self.reading_paused:
            self.reading_paused = False
            assert self.transport is not None
            self.transport.resume_reading()
        reader = self.reader
        timeouts = self.server.timeouts
        wait = timeouts.idle if reader.head is None and not reader.buffer else timeouts.header  # `reader.idle`
        self.deadline = time.monotonic() + wait  # `_arm`, inline: once per answer

    def _answer(self, request: Request, response: Response) -> None:
        """Send a fast-path answer (never streamed, never to HEAD), as `_respond` sends `handle`'s: the same
        bytes as `_write_response`, its head but for `Date` from the server's `_Heads`."""
        if type(response) is Shared and request.http_version == "1.1" and request.method != "HEAD":
            # `_write_fast` of a `Shared` answer (no stream), inline: a tracker's every answer
            transport = self.transport
            if self.closed or transport is None:
                return
            server = self.server
            keep_alive = request.keep_alive and self.keep_open and not server.stopping
            transport.write(server.heads.shared(response, keep_alive, server.dates.get()))
            self.answered += 1
        elif response.stream is not None or request.method == "HEAD":  # not from `answer_now`, but still right
            sent = self._write_response(request, response)
            if sent is None:  # the connection is gone
                return
            keep_alive = sent[0]
        else:
            written = self._write_fast(request, response)
            if written is None:  # the connection is gone
                return
            keep_alive = written
        if self.write_ready is not None:  # the client is slow to read: wait for it, as `_respond` does
            self.task = asyncio.get_running_loop().create_task(self._drain_and_continue(keep_alive))
            return
        self._answered(keep_alive)

    def _write_fast(self, request: Request, response: Response) -> bool | None:
        """`_write_response` for a response without a stream to a request other than HEAD."""
        http10 = request.http_version == "1.0"
        keep_alive = request.keep_alive and self.keep_open and not self.server.stopping
        transport = self.transport
        if self.closed or transport is None:
            return None
        server = self.server
        if type(response) is Shared and not http10:
            transport.write(server.heads.shared(response, keep_alive, server.dates.get()))
        else:
            transport.write(server.heads.render(response, keep_alive, http10, server.dates.get()))
        self.answered += 1
        return keep_alive

    async def _drain_and_continue(self, keep_alive: bool) -> None:
        if self.write_ready is not None:
            await self.write_ready
        self.task = None
        self._answered(keep_alive)
        if not self.busy and not self.closed:
            self._advance()

    def _deferred_done(self, request: Request, response: Response | None) -> None:
        """A `Deferred` answer is made: send it, go on with the next request."""
        if response is None:  # as `_respond`: still answer
            response = self.server.app.error_response(HTTPError(500, "internal server error"), request)
        self._answer(request, response)
        if not self.busy and not self.closed:
            reader = self.reader
            if reader.buffer or reader.head is not None or self.charged or self.eof:
                self._advance()  # else it would find nothing buffered and return at once

    async def _send_stream(self, response: Response, *, chunked: bool) -> bool:
        """Send a streamed body chunk by chunk, each once the client has taken the one before (flow
        control, so the stream is read no faster than the client reads); closes the stream.

        True when the whole body went out. If the client leaves, or the stream fails part way, the
        connection is aborted without the last chunk, so the client sees an incomplete body rather
        than a short one that looks whole (there is no way to send an error status any more).
        """
        assert response.stream is not None
        try:
            async for data in response.stream:
                if self.closed or self.transport is None:
                    return False
                if data:
                    self.transport.write(frame_chunk(data) if chunked else data)
                if self.write_ready is not None:
                    await self.write_ready
            if self.closed or self.transport is None:
                return False
            if chunked:
                self.transport.write(LAST_CHUNK)
            return True
        except Exception:
            self.abort(cancel=False)  # not this task: the stream still has to be closed below
            return False
        finally:
            await _close_stream(response)

    def _fail(self, error: HTTPError) -> None:
        """Answer a framing error and close: after one, the byte stream cannot be trusted."""
        response = self.server.app.error_response(error, None)
        if self.transport is not None and not self.closed:
            data = render_response(response, keep_alive=False, head_only=False, date=self.server.dates.get())
            self.transport.write(data)
        self._close()

    # timers and closing

    def _arm(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds

    def _disarm(self) -> None:
        self.deadline = float("inf")

    def on_timeout(self) -> None:
        """Called by the server's sweep once `deadline` has passed."""
        self.deadline = float("inf")
        if self.busy or self.closed:
            return
        if self.reader.idle:
            self._close()  # silent or idle keep-alive connection: close quietly
        else:
            self._fail(HTTPError(408, "timed out waiting for the request"))

    def close_when_idle(self) -> None:
        """Close after the current response, or now if the connection sits between requests.

        One that has not sent a whole first request yet may still send it (FIRST_REQUEST_GRACE_S).
        """
        self.keep_open = False
        if self.busy or self.closed:
            return
        if self.answered and self.reader.idle:
            self._close()
        else:
            self.deadline = min(self.deadline, time.monotonic() + FIRST_REQUEST_GRACE_S)

    def abort(self, *, cancel: bool = True) -> None:
        if cancel and self.task is not None:
            self.task.cancel()
        if self.transport is not None:
            self.transport.abort()
        self.closed = True
        self.server.release(self)

    def _close(self) -> None:
        self._disarm()
        if self.transport is not None and not self.closed:
            self.transport.close()
        self.closed = True
        self.server.release(self)
