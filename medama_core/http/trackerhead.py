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
_PREFIXES: Final = (b"GET /api/event/ping", b"POST /api/event/hit ")


def parse_tracker_head(data: bytes) -> RequestHead | None:
    """`parse_request_head(data)` for a ping or a hit as browsers send them; None for anything else."""
    if not data.startswith(_PREFIXES) or len(data) > MAX_HEAD_BYTES:
        return None
    line_end = data.find(b"\r\n")
    if line_end < 0:
        return None
    line = _LINE.fullmatch(data, 0, line_end)
    block = data[line_end + 2 :] + b"\r\n"
    if line is None or _BLOCK.fullmatch(block) is None:
        return None
    lines = block.decode("latin-1").split("\r\n")
    if len(lines) - 1 > MAX_HEADERS:
        return None
    headers: dict[str, str] = {}
    for text in lines[:-1]:
        name, _, value = text.partition(":")
        name = name.lower()
        if name in headers:
            return None  # repeated fields are merged, or refused, by the general parser
        headers[name] = value.strip(" \t")
    if "host" not in headers or "transfer-encoding" in headers or "expect" in headers:
        return None
    connection = headers.get("connection")
    keep_alive = connection is None or "close" not in {token.strip().lower() for token in connection.split(",")}
    raw_length = headers.get("content-length")
    if data[0] == 0x47:  # G: a ping
        if raw_length is not None:
            return None
        query = line.group(1)
        query_string = "" if query is None else query.decode("ascii")
        return RequestHead("GET", PING_PATH, query_string, "1.1", headers, 0, False, keep_alive, False)
    if raw_length is None:
        return None
    raw_length = raw_length.strip()
    if not (raw_length.isascii() and raw_length.isdigit()) or len(raw_length) > MAX_CONTENT_LENGTH_DIGITS:
        return None
    return RequestHead("POST", HIT_PATH, "", "1.1", headers, int(raw_length), False, keep_alive, False)
