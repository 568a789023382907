"""A ClickHouse client over its HTTP interface, on the standard library: queries, streamed reads, batched inserts.

`Client` speaks to a `Transport`, which sends one statement (with its
server parameters and, for an INSERT, its rows) and yields the answer's
bytes. `HTTPTransport` is the real one: http.client, one keep-alive
connection per thread, named timeouts, and the server's errors turned into
one clear line each (`Unreachable`, `AuthenticationFailed`, `UnknownDatabase`,
`QueryFailed`). Tests plug chDB (ClickHouse in-process) in as another
transport, so the same statements run on both.

Whether the server takes query parameters is asked once, by sending one:
18.16 refuses `param_*` as an unknown setting, and then every value is bound
as an escaped literal instead (sql.py).
"""

from __future__ import annotations

import base64
import functools
import http.client
import json
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any, Final, Protocol, TypeVar
from urllib.parse import quote_plus, urlencode

from medama_core.store import protocol
from medama_core.store.clickhouse.sql import bind, tsv_fields, tsv_rows
from medama_core.store.clickhouse.url import ClickHouseURL

__all__ = [
    "CONNECT_TIMEOUT_S",
    "QUERY_TIMEOUT_S",
    "SIDE_THREADS",
    "AuthenticationFailed",
    "ClickHouseError",
    "Client",
    "HTTPTransport",
    "QueryFailed",
    "Transport",
    "UnknownDatabase",
    "Unreachable",
]

# A server on the same network accepts a connection in milliseconds; 5 s covers a busy one without
# leaving a writer stuck for long on a host that is down.
CONNECT_TIMEOUT_S: Final = 5.0
# Longest wait for a byte of an answer, and the server's own limit on a query (max_execution_time):
# a stats query over years of a busy site is seconds; past this something is wrong.
QUERY_TIMEOUT_S: Final = 60
# Read size of a streamed answer (export): large enough that a Python loop per chunk costs nothing.
STREAM_CHUNK_BYTES: Final = 1 << 16
# Rows per INSERT body: one HTTP request and one part per partition for each; ClickHouse advises
# batches of at least thousands of rows, and this bounds the body a caller's iterator builds.
INSERT_ROWS: Final = 100_000
# Settings sent with every statement: integers as JSON numbers, and errors reported with an HTTP status
# even for a query that streams (the answer is held until the query is over); the stream call turns it off.
_SETTINGS: Final = {"output_format_json_quote_64bit_integers": "0"}
# Server error codes (ClickHouse's src/Common/ErrorCodes.cpp) that get their own message.
_AUTH_CODES: Final = frozenset({192, 193, 194, 516})  # UNKNOWN_USER, WRONG_PASSWORD, REQUIRED_PASSWORD, AUTH_FAILED
_UNKNOWN_DATABASE: Final = 81
_CODE: Final = re.compile(r"Code: (\d+)")
# Helper threads that run a read's second, independent statement while the first runs on the caller's
# thread (Client.both): one per reader thread of the adapter (backends/clickhouse.py DEFAULT_READERS), so
# each read in flight gets its pair side by side; each thread keeps its own keep-alive connection.
SIDE_THREADS: Final = 2
# INSERT statements whose URL-quoted text is kept (HTTPTransport.send): a node sends a few kinds, one per
# table (store/clickhouse/hits.py BATCH_TABLES, the bulk copies), and quoting one costs ~100 µs of Python.
QUOTED_STATEMENTS: Final = 64

A = TypeVar("A")
B = TypeVar("B")


class ClickHouseError(Exception):
    """ClickHouse could not be used; the message is one line saying why."""


class Unreachable(ClickHouseError, protocol.Unavailable):
    """No connection to the server, or no answer in time."""


class AuthenticationFailed(ClickHouseError):
    """The server refused the user name or password."""


class UnknownDatabase(ClickHouseError):
    """The URL's database does not exist on the server."""


class QueryFailed(ClickHouseError):
    """The server refused or failed a statement; `code` is its error code (None if it gave none)."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


def error_for(code: int | None, text: str, database: str) -> ClickHouseError:
    """The error to raise for a server's error answer (code and message text)."""
    first = " ".join(text.strip().splitlines()[:1])[:500]
    if code in _AUTH_CODES:
        return AuthenticationFailed(f"ClickHouse refused the user name or password ({first})")
    if code == _UNKNOWN_DATABASE:
        return UnknownDatabase(f"ClickHouse has no database {database!r}: create it with CREATE DATABASE {database}")
    return QueryFailed(f"ClickHouse error: {first}", code)


def parse_code(text: str) -> int | None:
    match = _CODE.search(text)
    return int(match.group(1)) if match else None


class Transport(Protocol):
    """Sends one statement to a ClickHouse engine and yields its answer's bytes."""

    def send(
        self, sql: str, params: Mapping[str, str], rows: bytes | None = None, stream: bool = False
    ) -> Iterator[bytes]:
        """Run `sql` (with `rows` as its INSERT data); raise a ClickHouseError for an error answer."""
        ...

    def close(self) -> None: ...


class _OneWrite:
    """Holds what http.client sends of a request and writes it at once: head and body in one segment.

    http.client writes a request's head and its body apart, and with TCP_NODELAY (which it sets)
    they leave as two segments: the server reads the head, waits for the body in a second read, and
    the node pays a second send per statement (~100 µs an INSERT of 128 rows, docs/scale.md).
    """

    _held: list[bytes] | None = None

    def send(self, data: Any) -> None:
        if self._held is not None:
            self._held.append(bytes(data))
            return
        super().send(data)  # type: ignore[misc]

    def request_in_one(self, target: str, body: bytes, headers: Mapping[str, str]) -> None:
        """POSTs `body` to `target`, the head and the body in one write (connecting first when needed)."""
        self._held = []
        try:
            self.request("POST", target, body, dict(headers))  # type: ignore[attr-defined]
            held = b"".join(self._held)
        finally:
            self._held = None
        self.send(held)


class _Connection(_OneWrite, http.client.HTTPConnection):
    pass


class _SecureConnection(_OneWrite, http.client.HTTPSConnection):
    pass


class HTTPTransport:
    """ClickHouse's HTTP interface: one keep-alive connection per calling thread."""

    def __init__(self, url: ClickHouseURL, connect_timeout_s: float = CONNECT_TIMEOUT_S) -> None:
        self.url = url
        self.connect_timeout_s = connect_timeout_s
        token = base64.b64encode(f"{url.user}:{url.password}".encode()).decode()
        self._headers = {"Authorization": f"Basic {token}", "Content-Type": "text/plain; charset=utf-8"}
        # Every statement's URL starts the same: its parameters quoted once, here.
        common = "/?" + urlencode({"database": url.database, "max_execution_time": str(QUERY_TIMEOUT_S), **_SETTINGS})
        self._waited = common + "&wait_end_of_query=1"
        self._streamed = common + "&wait_end_of_query=0"
        self._local = threading.local()
        self._all: list[_Connection | _SecureConnection] = []
        self._lock = threading.Lock()

    def _connection(self) -> _Connection | _SecureConnection:
        conn: _Connection | _SecureConnection | None = getattr(self._local, "conn", None)
        if conn is None:
            kind = _SecureConnection if self.url.secure else _Connection
            conn = kind(self.url.host, self.url.port, timeout=self.connect_timeout_s)
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def _drop(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def send(
        self, sql: str, params: Mapping[str, str], rows: bytes | None = None, stream: bool = False
    ) -> Iterator[bytes]:
        target = self._streamed if stream else self._waited
        if params:
            target += "&" + urlencode({f"param_{name}": value for name, value in params.items()})
        if rows is None:
            body = sql.encode()
        else:
            target += "&query=" + _quoted(sql)
            body = rows
        response = self._request(target, body)
        if response.status != 200:
            text = response.read().decode("utf-8", "replace")
            raise error_for(parse_code(text), text, self.url.database)
        return self._read(response)

    def _request(self, target: str, body: bytes) -> http.client.HTTPResponse:
        # A kept-alive connection the server closed meanwhile (its keep_alive_timeout is a few
        # seconds) fails before any answer: the statement never ran, so it is sent once more.
        for attempt in (1, 2):
            conn = self._connection()
            reused = conn.sock is not None
            try:
                conn.request_in_one(target, body, self._headers)
                if conn.sock is not None:
                    conn.sock.settimeout(QUERY_TIMEOUT_S)
                return conn.getresponse()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as exc:
                self._drop()
                if not reused or attempt == 2:
                    raise Unreachable(f"ClickHouse at {self.url.redacted()} closed the connection: {exc}") from None
            except TimeoutError:
                self._drop()
                raise Unreachable(f"ClickHouse at {self.url.redacted()} did not answer in time") from None
            except OSError as exc:
                self._drop()
                reason = exc.strerror or exc.__class__.__name__
                raise Unreachable(f"cannot reach ClickHouse at {self.url.redacted()}: {reason}") from None
        raise AssertionError("unreachable")

    def _read(self, response: http.client.HTTPResponse) -> Iterator[bytes]:
        finished = False
        try:
            while chunk := response.read(STREAM_CHUNK_BYTES):
                yield chunk
            finished = not response.will_close
        except (OSError, http.client.HTTPException) as exc:
            raise Unreachable(f"ClickHouse at {self.url.redacted()} broke off its answer: {exc}") from None
        finally:
            if not finished:  # an answer left unread (a reader that stopped early) or cut: a new connection next
                self._drop()

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()


@functools.lru_cache(maxsize=QUOTED_STATEMENTS)
def _quoted(statement: str) -> str:
    """An INSERT statement as a URL's query value."""
    return quote_plus(statement)


class Client:
    """Statements with `{name:Type}` placeholders, run on a transport; rows come back as Python values."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        self._server_params: bool | None = None
        self._side: ThreadPoolExecutor | None = None
        self._side_lock = threading.Lock()

    @classmethod
    def connect(cls, url: ClickHouseURL) -> Client:
        return cls(HTTPTransport(url))

    @property
    def server_params(self) -> bool:
        """Whether the server takes query parameters (asked once)."""
        if self._server_params is None:
            try:
                found = self._send("SELECT {probe:UInt8}", {"probe": "1"})
                self._server_params = found.strip() == b"1"
            except QueryFailed:
                self._server_params = False
        return self._server_params

    def _send(self, sql: str, params: Mapping[str, str], rows: bytes | None = None) -> bytes:
        return b"".join(self.transport.send(sql, params, rows))

    def both(self, side: Callable[[], A], main: Callable[[], B]) -> tuple[A, B]:
        """`side()` on a helper thread while `main()` runs on this one, each sending its own statements; both
        answers once both are done (the server runs the two at once, on its own cores). An error of either
        is raised, `main`'s first."""
        _ = self.server_params  # asked here, once, not by both threads at once
        with self._side_lock:
            if self._side is None:
                self._side = ThreadPoolExecutor(max_workers=SIDE_THREADS, thread_name_prefix="clickhouse-side")
            pending = self._side.submit(side)
        try:
            second = main()
        except BaseException:
            wait([pending])  # no statement left running unseen; `main`'s error is the one raised
            raise
        return pending.result(), second

    def _bound(self, sql: str, params: Mapping[str, object]) -> tuple[str, dict[str, str]]:
        return bind(sql, params, self.server_params)

    def command(self, sql: str, params: Mapping[str, object] | None = None) -> None:
        """Run a statement that returns nothing (DDL, ALTER, INSERT ... SELECT)."""
        self._send(*self._bound(sql, params or {}))

    def rows(self, sql: str, params: Mapping[str, object] | None = None) -> list[list[Any]]:
        """The rows of a SELECT, each a list of JSON values (64-bit integers as numbers, NULL as None)."""
        statement, bound = self._bound(sql, params or {})
        rows: list[list[Any]] = json.loads(self._send(statement + "\nFORMAT JSONCompact", bound))["data"]
        return rows

    def stream(self, sql: str, params: Mapping[str, object] | None = None) -> Iterator[list[str | None]]:
        """The rows of a SELECT as TabSeparated text fields, read as they arrive (None for NULL)."""
        statement, bound = self._bound(sql, params or {})
        pending = b""
        for chunk in self.transport.send(statement + "\nFORMAT TabSeparated", bound, stream=True):
            lines = (pending + chunk).split(b"\n")
            pending = lines.pop()
            for line in lines:
                yield tsv_fields(line.decode())
        if pending:
            raise QueryFailed(f"ClickHouse broke off its answer: {pending[:200].decode('utf-8', 'replace')}")

    def insert(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[object]]) -> int:
        """Insert rows (values in `columns` order) as TabSeparated, INSERT_ROWS per request; return how many."""
        statement = f"INSERT INTO {table} ({', '.join(columns)}) FORMAT TabSeparated"
        count = 0
        chunk: list[Sequence[object]] = []
        for row in rows:
            chunk.append(row)
            if len(chunk) >= INSERT_ROWS:
                self._send(statement, {}, tsv_rows(chunk))
                count += len(chunk)
                chunk = []
        if chunk:
            self._send(statement, {}, tsv_rows(chunk))
            count += len(chunk)
        return count

    def insert_tsv(self, table: str, columns: Sequence[str], body: bytes) -> None:
        """Insert rows already encoded as one TabSeparated body (sql.tsv_rows), in one request."""
        self._send(f"INSERT INTO {table} ({', '.join(columns)}) FORMAT TabSeparated", {}, body)

    def close(self) -> None:
        with self._side_lock:
            if self._side is not None:
                self._side.shutdown(wait=True)
                self._side = None
        self.transport.close()
