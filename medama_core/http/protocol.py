"""Sans-IO HTTP/1.1: bytes in, request heads and bodies out; responses in, bytes out.

Theory of operation. `framing.RequestReader` finds the end of a request head
(the first blank line) and hands the head bytes to `parse_request_head`, which
validates it against RFC 9112 and returns a `RequestHead` or raises
`ProtocolError` carrying the 4xx status to answer with. The head says how the
body is framed, `content_length` bytes or `chunked`, and the reader collects
it. `render_response` turns a `Response` into the bytes to write; a response
whose body is a `stream` of chunks (made as they are sent, so a large export is
never whole in memory) gets its head from it, and each chunk is framed by
`frame_chunk`. Nothing here touches a socket or an event loop, so every rule
can be tested by calling a function.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl, unquote

from medama_core.http.errors import ProtocolError

# Limits. Each one bounds what a single peer can make us hold in memory.
MAX_HEAD_BYTES = 16 * 1024  # request line + headers; h11's default, the same as IIS (Apache and Go allow more)
MAX_HEADERS = 100  # Apache's LimitRequestFields default; real browsers send fewer than 30
MAX_QUERY_FIELDS = 200  # the stats API takes about 20 parameters; this is room for every filter twice over
MAX_CONTENT_LENGTH_DIGITS = 18  # keeps int() on attacker input cheap; larger than any body limit we accept

# RFC 9110 §5.6.2: token = 1*tchar.
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_HEADER_LINE = re.compile(rb"([!#$%&'*+\-.^_`|~0-9A-Za-z]+):[ \t]*(.*?)[ \t]*")
# RFC 9110 §5.5: field values exclude control characters other than HTAB.
_BAD_VALUE_CHAR = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
# RFC 9112 §3.2: origin-form targets are visible ASCII only.
_TARGET = re.compile(rb"[\x21-\x7e]+")
# The common case in one pass each: a well-formed request line, and a header block whose names are
# tokens and whose values hold no control characters other than HTAB (each line ends with CRLF).
_REQUEST_LINE = re.compile(rb"([!#$%&'*+\-.^_`|~0-9A-Za-z]+) ([\x21-\x7e]+) HTTP/1\.([01])")
_HEADER_BLOCK = re.compile(rb"(?:[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[\t\x20-\x7e\x80-\xff]*\r\n)*")

_REASONS = {s.value: s.phrase for s in HTTPStatus}


@dataclass(slots=True)
class RequestHead:
    """A validated request line and header block."""

    method: str
    path: str
    query_string: str
    http_version: str
    headers: dict[str, str]
    content_length: int
    chunked: bool
    keep_alive: bool
    expect_continue: bool


@dataclass(slots=True)
class Request:
    """One complete request as handlers see it."""

    method: str
    path: str
    query_string: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    client: str = ""
    http_version: str = "1.1"
    keep_alive: bool = True
    path_params: dict[str, str] = field(default_factory=dict)
    tls: bool = False  # it came over a TLS connection to this server (not through a proxy that ends TLS)
    # Who is asking, set by the application's access check before its handler runs; never read here.
    actor: object = None
    _query: dict[str, list[str]] | None = None
    _cookies: dict[str, str] | None = None

    @classmethod
    def from_head(cls, head: RequestHead, body: bytes, client: str, *, tls: bool = False) -> Request:
        return cls(
            method=head.method,
            path=head.path,
            query_string=head.query_string,
            headers=head.headers,
            body=body,
            client=client,
            http_version=head.http_version,
            keep_alive=head.keep_alive,
            tls=tls,
        )

    @property
    def query(self) -> dict[str, list[str]]:
        """Query parameters; every value list keeps the order of the URL."""
        if self._query is None:
            self._query = parse_query(self.query_string)
        return self._query

    def query_value(self, name: str) -> str | None:
        """The last value of a query parameter (what Go's and ogen's decoders keep)."""
        values = self.query.get(name)
        return values[-1] if values else None

    @property
    def cookies(self) -> dict[str, str]:
        if self._cookies is None:
            self._cookies = parse_cookies(self.headers.get("cookie", ""))
        return self._cookies

    def json(self) -> Any:
        """The body decoded as JSON; a 400 `ProtocolError` when it is not."""
        try:
            return json.loads(self.body)
        except (ValueError, RecursionError) as exc:
            raise ProtocolError(400, f"invalid JSON body: {exc}") from None


@dataclass(slots=True)
class Response:
    """What a handler returns; `render_response` frames it.

    With a `stream`, the body is its chunks instead of `body`: sent with chunked
    transfer coding to HTTP/1.1 clients, and until the connection closes to HTTP/1.0
    ones (RFC 9112 §6.3). Whoever sends it closes the stream (`aclose`), read or not.
    """

    status: int = 200
    body: bytes = b""
    content_type: str | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)
    stream: AsyncIterator[bytes] | None = None

    def header(self, name: str) -> str | None:
        lname = name.lower()
        for key, value in self.headers:
            if key.lower() == lname:
                return value
        return None


def json_response(data: Any, status: int = 200, headers: list[tuple[str, str]] | None = None) -> Response:
    body = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()
    return Response(status, body, "application/json", headers if headers is not None else [])


def text_response(text: str, status: int = 200, content_type: str = "text/plain; charset=utf-8") -> Response:
    return Response(status, text.encode(), content_type)


def parse_query(query_string: str) -> dict[str, list[str]]:
    try:
        pairs = parse_qsl(query_string, keep_blank_values=True, max_num_fields=MAX_QUERY_FIELDS)
    except ValueError:
        raise ProtocolError(400, f"too many query parameters (at most {MAX_QUERY_FIELDS})") from None
    result: dict[str, list[str]] = {}
    for key, value in pairs:
        result.setdefault(key, []).append(value)
    return result


def parse_cookies(header: str) -> dict[str, str]:
    """RFC 6265 §5.4 `Cookie` header; the first occurrence of a name wins, as browsers send most specific first."""
    cookies: dict[str, str] = {}
    for part in header.split(";"):
        name, sep, value = part.partition("=")
        name = name.strip()
        if sep and name and name not in cookies:
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            cookies[name] = value
    return cookies


def parse_request_head(data: bytes) -> RequestHead:
    """Parse a request line and headers (without the final blank line).

    Raises `ProtocolError` with a 4xx status for anything RFC 9112 does not allow;
    never any other exception, whatever the bytes.
    """
    if len(data) > MAX_HEAD_BYTES:
        raise ProtocolError(431, "request header block too large")
    line_end = data.find(b"\r\n")
    request_line = data if line_end < 0 else data[:line_end]
    block = b"" if line_end < 0 else data[line_end + 2 :] + b"\r\n"
    fast = _REQUEST_LINE.fullmatch(request_line)
    if fast is not None and _HEADER_BLOCK.fullmatch(block):
        # Fast path: one regex pass has validated every header name and value.
        if block.count(b"\r\n") > MAX_HEADERS:
            raise ProtocolError(431, f"too many header fields (at most {MAX_HEADERS})")
        method, path, query_string, version = _parse_target(fast.group(1), fast.group(2), fast.group(3))
        return _frame(method, path, query_string, version, _headers_from_block(block))
    # Slow path: find the first problem and say what it is.
    lines = data.split(b"\r\n")
    if len(lines) - 1 > MAX_HEADERS:
        raise ProtocolError(431, f"too many header fields (at most {MAX_HEADERS})")
    method, path, query_string, version = _parse_request_line(lines[0])
    headers = _parse_header_lines(lines)
    return _frame(method, path, query_string, version, headers)


def _headers_from_block(block: bytes) -> dict[str, str]:
    headers: dict[str, str] = {}
    # Validated already: names are ASCII tokens, so one latin-1 decode of the block serves all lines.
    for line in block.decode("latin-1").split("\r\n")[:-1]:
        name, _, value = line.partition(":")
        name = name.lower()
        value = value.strip(" \t")
        if name in headers:
            _merge_header(headers, name, value)
        else:
            headers[name] = value
    return headers


def _merge_header(headers: dict[str, str], name: str, value: str) -> None:
    previous = headers[name]
    if name == "host":
        raise ProtocolError(400, "duplicate Host header")
    if name == "content-length":
        if previous != value:
            raise ProtocolError(400, "conflicting Content-Length headers")
        return
    # RFC 9110 §5.3: repeated fields are one comma-separated list; Cookie uses "; " (RFC 6265 §5.4).
    headers[name] = previous + ("; " if name == "cookie" else ", ") + value


def _parse_request_line(line: bytes) -> tuple[str, str, str, str]:
    parts = line.split(b" ")
    if len(parts) != 3:
        raise ProtocolError(400, "malformed request line")
    raw_method, raw_target, raw_version = parts
    if not _TOKEN.fullmatch(raw_method):
        raise ProtocolError(400, "malformed request method")
    if raw_version not in (b"HTTP/1.1", b"HTTP/1.0"):
        raise ProtocolError(400, "unsupported HTTP version")
    if not _TARGET.fullmatch(raw_target):
        raise ProtocolError(400, "malformed request target")
    return _parse_target(raw_method, raw_target, raw_version[-1:])


def _parse_target(raw_method: bytes, raw_target: bytes, minor: bytes) -> tuple[str, str, str, str]:
    version = "1.1" if minor == b"1" else "1.0"
    target = raw_target.decode("ascii")
    if target[0] != "/":
        if target.startswith(("http://", "https://")):
            # RFC 9112 §3.2.2: absolute-form; servers must accept it. Keep path and query only.
            slash = target.find("/", target.find("//") + 2)
            target = target[slash:] if slash >= 0 else "/"
        elif not (target == "*" and raw_method == b"OPTIONS"):
            raise ProtocolError(400, "malformed request target")
    raw_path, _, query_string = target.partition("?")
    if "%" in raw_path:
        try:
            path = unquote(raw_path, errors="strict")
        except UnicodeDecodeError:
            raise ProtocolError(400, "request path is not valid UTF-8") from None
    else:
        path = raw_path
    return raw_method.decode("ascii"), path, query_string, version


def _parse_header_lines(lines: list[bytes]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in lines[1:]:
        match = _HEADER_LINE.fullmatch(line)
        if match is None:
            if line[:1] in (b" ", b"\t"):
                raise ProtocolError(400, "obsolete header line folding is not accepted")
            raise ProtocolError(400, "malformed header line")
        raw_name, raw_value = match.groups()
        if _BAD_VALUE_CHAR.search(raw_value):
            raise ProtocolError(400, "control character in header value")
        name = raw_name.decode("ascii").lower()
        # Header values are opaque octets; latin-1 maps each byte to one character, losslessly.
        value = raw_value.decode("latin-1")
        if name in headers:
            _merge_header(headers, name, value)
        else:
            headers[name] = value
    return headers


def _frame(method: str, path: str, query_string: str, version: str, headers: dict[str, str]) -> RequestHead:
    if version == "1.1" and "host" not in headers:
        raise ProtocolError(400, "missing Host header")  # RFC 9112 §3.2
    connection_header = headers.get("connection")
    if connection_header is None:
        keep_alive = version == "1.1"
    else:
        connection = {token.strip().lower() for token in connection_header.split(",")}
        keep_alive = "close" not in connection if version == "1.1" else "keep-alive" in connection
    chunked = False
    content_length = 0
    transfer_encoding = headers.get("transfer-encoding")
    if transfer_encoding is not None:
        if version == "1.0":
            raise ProtocolError(400, "Transfer-Encoding is not allowed in HTTP/1.0")
        if "content-length" in headers:
            # RFC 9112 §6.1: both present is a smuggling signature; refuse rather than guess.
            raise ProtocolError(400, "both Transfer-Encoding and Content-Length")
        if transfer_encoding.strip().lower() != "chunked":
            raise ProtocolError(400, "unsupported Transfer-Encoding (only chunked)")
        chunked = True
    elif "content-length" in headers:
        raw = headers["content-length"].strip()
        # isascii() first: str.isdigit() alone also accepts digits like "²" that latin-1 decoding yields.
        if not (raw.isascii() and raw.isdigit()) or len(raw) > MAX_CONTENT_LENGTH_DIGITS:
            raise ProtocolError(400, "invalid Content-Length")
        content_length = int(raw)
    expect = headers.get("expect")
    return RequestHead(
        method=method,
        path=path,
        query_string=query_string,
        http_version=version,
        headers=headers,
        content_length=content_length,
        chunked=chunked,
        keep_alive=keep_alive,
        expect_continue=expect is not None and version == "1.1" and expect.strip().lower() == "100-continue",
    )


def render_response(
    response: Response, *, keep_alive: bool, head_only: bool, date: bytes, http10: bool = False
) -> bytes:
    """Frame a response. Header values lose any CR/LF so no input can split a response."""
    status = response.status
    lines = [
        b"HTTP/1.1 %d %s\r\n" % (status, _REASONS.get(status, "Unknown").encode()),
        b"Date: " + date + b"\r\n",
    ]
    if response.content_type is not None:
        lines.append(b"Content-Type: " + response.content_type.encode("latin-1") + b"\r\n")
    # RFC 9110 §8.6: no Content-Length on 1xx/204; 304 keeps the selected representation's fields.
    if status >= 200 and status not in (204, 304):
        if response.stream is None:
            lines.append(b"Content-Length: %d\r\n" % len(response.body))
        elif not http10:  # RFC 9112 §7: chunked needs HTTP/1.1; an HTTP/1.0 body ends with the connection
            lines.append(b"Transfer-Encoding: chunked\r\n")
    for name, value in response.headers:
        if "\r" in value or "\n" in value:
            value = value.replace("\r", " ").replace("\n", " ")
        lines.append(f"{name}: {value}\r\n".encode("latin-1", "replace"))
    if not keep_alive:
        lines.append(b"Connection: close\r\n")
    elif http10:
        lines.append(b"Connection: keep-alive\r\n")  # HTTP/1.0 closes by default (RFC 9112 §9.3)
    lines.append(b"\r\n")
    if not head_only and status >= 200 and status not in (204, 304) and response.stream is None:
        lines.append(response.body)
    return b"".join(lines)


def has_streamed_body(response: Response, *, head_only: bool) -> bool:
    """Whether the server must send `response.stream` after the head `render_response` made."""
    return (
        response.stream is not None and not head_only and response.status >= 200 and response.status not in (204, 304)
    )


LAST_CHUNK = b"0\r\n\r\n"  # RFC 9112 §7.1: a zero-size chunk, no trailers, the final CRLF


def frame_chunk(data: bytes) -> bytes:
    """One chunk of a chunked body (RFC 9112 §7.1). An empty `data` must not be sent: it would end the body."""
    if not data:
        raise ValueError("an empty chunk would end the body")
    return b"%x\r\n%b\r\n" % (len(data), data)
