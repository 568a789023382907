"""The heads of the tracker's two requests, `GET /api/event/ping` and `POST /api/event/hit`, parsed in one pass.

Theory of operation. `parse_tracker_head` takes the bytes `parse_request_head`
would (a head without its blank line) and returns the very `RequestHead` that
function returns for them, or None for anything it does not recognise: other
methods, paths or versions, absolute-form targets, header blocks its single
validating pattern does not pass, repeated header fields, a `Transfer-Encoding`
or `Expect` header, a ping with a `Content-Length`, a hit without a plain one.
The caller (`framing.RequestReader`) then runs the general parser, which also
makes every refusal; nothing here ever refuses. What it saves is the general
request-line and framing work (the target's decoding, the HTTP/1.0 rules, the
smuggling checks) that these two requests, as browsers send them, never need.
`tests/http/test_trackerhead.py` states the contract over any bytes.
"""

from __future__ import annotations

import re
from typing import Final

from medama_core.http.protocol import MAX_CONTENT_LENGTH_DIGITS, MAX_HEAD_BYTES, MAX_HEADERS, RequestHead

PING_PATH: Final = "/api/event/ping"
HIT_PATH: Final = "/api/event/hit"
# The whole request line of either route over HTTP/1.1: a ping's target may carry a query (visible
# ASCII, as the general parser's target rule), a hit's may not (its query is rare: the general path).
_LINE: Final = re.compile(rb"(?:GET /api/event/ping(?:\?([\x21-\x7e]*))?|POST /api/event/hit) HTTP/1\.1")
# The general parser's one-pass rule for a header block (each line ends with CRLF): token names,
# values without control characters other than HTAB.
_BLOCK: Final = re.compile(rb"(?:[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[\t\x20-\x7e\x80-\xff]*\r\n)*")
_HIT_LINE: Final = b"POST /api/event/hit HTTP/1.1\r\n"  # `_LINE`'s hit, with its line end
PREFIXES: Final = (b"GET /api/event/ping", b"POST /api/event/hit ")  # what every head it takes starts with


# A browser sends the same header block with every request of a page view (its ping, its load and its
# unload hit, and the pings of the next pages until the Referer changes), so a block's fields are kept
# once worked out (~2.5 µs of a ping's parse). At most this many blocks, each of at most this many bytes
# (a browser's block is 300-900 bytes): ~2 MB at most with the fields, the cache cleared when full.
MAX_CACHED_BLOCKS: Final = 512
MAX_CACHED_BLOCK_BYTES: Final = 2048
# A block's fields, keep-alive and number of field lines, or () for the general parser.
_Fields = tuple[dict[str, str], bool, int] | tuple[()]
_blocks: dict[bytes, _Fields] = {}


def _fields(block: bytes) -> _Fields:
    """A header block's fields, whether the connection stays open and how many lines it has; () for one the
    caller must leave to the general parser (`parse_tracker_head`'s rules that depend on the block alone)."""
    block += b"\r\n"
    if _BLOCK.fullmatch(block) is None:
        return ()
    lines = block.decode("latin-1").split("\r\n")
    if len(lines) - 1 > MAX_HEADERS:
        return ()
    headers: dict[str, str] = {}
    for text in lines[:-1]:
        name, _, value = text.partition(":")
        name = name.lower()
        if name in headers:
            return ()  # repeated fields are merged, or refused, by the general parser
        headers[name] = value.strip(" \t")
    if "host" not in headers or "transfer-encoding" in headers or "expect" in headers:
        return ()
    connection = headers.get("connection")
    keep_alive = connection is None or "close" not in {token.strip().lower() for token in connection.split(",")}
    return headers, keep_alive, len(lines) - 1


# What `parse_tracker_head` puts in its `RequestHead`: method, path, query string, headers, Content-Length and
# keep-alive (the version is 1.1; not chunked, no Expect). The server's fast path makes its `Request` from these.
Parts = tuple[str, str, str, dict[str, str], int, bool]


def parse_tracker_head(data: bytes) -> RequestHead | None:
    """`parse_request_head(data)` for a ping or a hit as browsers send them; None for anything else."""
    parts = tracker_head_parts(data)
    if parts is None:
        return None
    method, path, query_string, headers, length, keep_alive = parts
    return RequestHead(method, path, query_string, "1.1", headers, length, False, keep_alive, False)


def tracker_head_parts(data: bytes) -> Parts | None:
    """`parse_tracker_head(data)` as its `Parts`, without the `RequestHead`; None for anything else."""
    if not data.startswith(PREFIXES) or len(data) > MAX_HEAD_BYTES:
        return None
    ping = data[0] == 0x47  # G: a ping, which takes no length (with one, its block leads to None below)
    if ping:
        line_end = data.find(b"\r\n")
        if line_end < 0:
            return None
        line = _LINE.fullmatch(data, 0, line_end)
        if line is None:
            return None
    elif data.startswith(_HIT_LINE):  # a hit's line has no query: the whole of it, as `_LINE` matches it
        line, line_end = None, len(_HIT_LINE) - 2
    else:
        return None
    block = data[line_end + 2 :]
    # A hit's length differs from one hit to the next: its line (as browsers write it) is read here, and
    # the rest of the block is what is kept. The line cut is a whole one, so the rest is as valid as it was.
    length = b""
    at = -1 if ping else block.find(b"Content-Length: ")
    if at == 0 or (at > 0 and block[at - 2 : at] == b"\r\n"):
        stop = block.find(b"\r\n", at)
        length = block[at + 16 : stop] if stop >= 0 else block[at + 16 :]
        if not length.isdigit():  # ASCII digits only (bytes); anything else: the whole block as it is
            length = b""
        elif stop >= 0:
            block = block[:at] + block[stop + 2 :]
        else:
            block = block[: max(at - 2, 0)]
    fields = _blocks.get(block)
    if fields is None:
        fields = _fields(block)
        if len(block) <= MAX_CACHED_BLOCK_BYTES:
            if len(_blocks) >= MAX_CACHED_BLOCKS:
                _blocks.clear()
            _blocks[block] = fields
    if not fields or (length and (fields[2] >= MAX_HEADERS or "content-length" in fields[0])):
        return None  # not for this parser; or with the cut line too many fields, or a repeated length
    headers = dict(fields[0])  # a request's own: whoever reads it may change it
    keep_alive = fields[1]
    if length:  # a hit's own line, ASCII digits alone: what the checks below would find of it
        if len(length) > MAX_CONTENT_LENGTH_DIGITS:
            return None
        headers["content-length"] = length.decode("ascii")
        return "POST", HIT_PATH, "", headers, int(length), keep_alive
    raw_length = headers.get("content-length")
    if ping:
        if raw_length is not None or line is None:
            return None
        query = line.group(1)
        return "GET", PING_PATH, "" if query is None else query.decode("ascii"), headers, 0, keep_alive
    if raw_length is None:
        return None
    raw_length = raw_length.strip()
    if not (raw_length.isascii() and raw_length.isdigit()) or len(raw_length) > MAX_CONTENT_LENGTH_DIGITS:
        return None
    return "POST", HIT_PATH, "", headers, int(raw_length), keep_alive
