"""The tracker's head parser gives the general parser's head or steps aside, for any bytes.

`parse_tracker_head(data)` must be None or equal to `parse_request_head(data)`, and None wherever the
general parser refuses; a connection's reader then makes the same requests and the same refusals with it
as without it (`RequestReader(tracker_heads=False)`), whatever the requests and however they are split.
The inputs are mostly near-misses of the two routes: other methods, targets and versions, header folding,
repeated, odd or invalid `Content-Length`, `Transfer-Encoding`, `Expect`, `Connection`, bad bytes,
oversized heads, pipelining.
"""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from medama_core.http.errors import ProtocolError
from medama_core.http.framing import RequestReader
from medama_core.http.protocol import (
    MAX_CONTENT_LENGTH_DIGITS,
    MAX_HEAD_BYTES,
    MAX_HEADERS,
    Request,
    RequestHead,
    parse_request_head,
)
from medama_core.http.trackerhead import parse_tracker_head

CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
BROWSER_PING = (
    "GET /api/event/ping?u=https%3A%2F%2Fexample.com%2F HTTP/1.1\r\nHost: example.org\r\n"
    f"User-Agent: {CHROME}\r\nAccept: */*\r\nAccept-Language: en-GB,en;q=0.9\r\nOrigin: https://example.com\r\n"
    "Referer: https://example.com/\r\nConnection: keep-alive"
).encode()
BROWSER_HIT = (
    "POST /api/event/hit HTTP/1.1\r\nHost: example.org\r\nConnection: keep-alive\r\nContent-Length: 131\r\n"
    f"User-Agent: {CHROME}\r\nContent-Type: text/plain;charset=UTF-8\r\nAccept: */*\r\n"
    "Origin: https://example.com\r\nAccept-Language: en-GB,en;q=0.9"
).encode()

METHODS = ("GET", "POST", "HEAD", "PUT", "OPTIONS", "get", "post", "GET\t", "POST ", "G\x00T", "")
TARGETS = (
    "/api/event/ping",
    "/api/event/ping?",
    "/api/event/ping?u=https%3A%2F%2Fexample.com%2F",
    "/api/event/ping??a=%zz&b",
    "/api/event/ping#frag",
    "/api/event/pingx",
    "/api/event/ping/",
    "/api/event/%70ing",
    "/api/event/hit",
    "/api/event/hit?x=1",
    "/api/event/hit/",
    "/api/event/hits",
    "http://example.org/api/event/ping",
    "https://example.org/api/event/hit",
    "/api/event/ping?a b",
    "/api/event/ping?\x7f",
    "/api/event/ping?\xe9",
    "*",
    "",
)
VERSIONS = ("HTTP/1.1", "HTTP/1.0", "HTTP/1.2", "HTTP/2.0", "http/1.1", "HTTP/1.1 ", "HTTP/11")
NAMES = (
    "Host",
    "host",
    "HOST",
    "Content-Length",
    "content-length",
    "Transfer-Encoding",
    "Connection",
    "Expect",
    "User-Agent",
    "Origin",
    "Content-Type",
    "If-Modified-Since",
    "X-Forwarded-For",
    "Cookie",
    "Bad Name",
    "Bad:Name",
    " Host",
    "\tUser-Agent",
    "",
)
VALUES = (
    "example.org",
    "",
    " ",
    "0",
    "12",
    " 12 ",
    "+12",
    "-1",
    "1 2",
    "12, 12",
    "0x10",
    "\xb2",
    "\xa012\xa0",
    "1" * 18,
    "1" * 19,
    "chunked",
    "gzip, chunked",
    "close",
    "keep-alive",
    "Keep-Alive, Close",
    "upgrade",
    "100-continue",
    "text/plain;charset=UTF-8",
    CHROME,
    "a\x00b",
    "a\x7fb",
    "a\tb",
    "caf\xe9",
    "x\ry",
    "x\ny",
)
SEPARATORS = (": ", ":", ":\t", " : ", ":  ", ": \t")


@st.composite
def near_misses(draw: st.DrawFn) -> bytes:
    """A head (without its blank line) close to a ping's or a hit's."""
    if draw(st.booleans()):  # one of the two routes' own lines, half the time
        line = draw(st.sampled_from(("GET /api/event/ping", "POST /api/event/hit")))
        if draw(st.booleans()):
            line += "?" + draw(st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=12))
        line += " HTTP/1.1"
    else:
        sep = draw(st.sampled_from((" ", " ", " ", "  ", "\t")))
        line = (
            draw(st.sampled_from(METHODS))
            + sep
            + draw(st.sampled_from(TARGETS))
            + " "
            + draw(st.sampled_from(VERSIONS))
        )
    fields = draw(
        st.lists(
            st.tuples(
                st.sampled_from(NAMES) | st.sampled_from(NAMES) | st.text(st.characters(max_codepoint=255), max_size=8),
                st.sampled_from(SEPARATORS),
                st.sampled_from(VALUES) | st.text(st.characters(max_codepoint=255), max_size=12),
            ),
            max_size=10,
        )
    )
    if draw(st.integers(0, 3)):
        fields.insert(draw(st.integers(0, len(fields))), ("Host", ": ", "example.org"))
    if draw(st.booleans()):
        fields.insert(draw(st.integers(0, len(fields))), ("Content-Length", ": ", "12"))
    lines = [line, *(name + sep + value for name, sep, value in fields)]
    if draw(st.integers(0, 9)) == 0:  # folding: a line that starts with a blank
        lines.insert(draw(st.integers(1, len(lines))), " folded")
    eol = "\n" if draw(st.integers(0, 19)) == 0 else "\r\n"
    data = eol.join(lines).encode("latin-1")
    if draw(st.integers(0, 4)) == 0:  # a byte changed, inserted or cut anywhere
        at = draw(st.integers(0, len(data)))
        byte = bytes([draw(st.integers(0, 255))])
        data = draw(st.sampled_from((data[:at] + byte + data[at:], data[:at] + byte + data[at + 1 :], data[:at])))
    return data


def heads() -> st.SearchStrategy[bytes]:
    return (
        near_misses()
        | st.binary(max_size=300).map(lambda tail: b"GET /api/event/ping" + tail)
        | st.binary(max_size=300).map(lambda tail: b"POST /api/event/hit HTTP/1.1\r\nHost: a\r\n" + tail)
        | st.binary(max_size=300)
    )


def general(data: bytes) -> RequestHead | int:
    """The general parser's head, or the status it refuses with."""
    try:
        return parse_request_head(data)
    except ProtocolError as exc:
        return exc.status


@settings(max_examples=600, deadline=None)
@given(heads())
@example(BROWSER_PING)
@example(BROWSER_HIT)
@example(BROWSER_HIT.replace(b"Content-Length: 131", b"Content-Length: 131\r\nContent-Length: 131"))
@example(BROWSER_HIT.replace(b"Content-Length: 131", b"Content-Length: 131\r\nContent-Length: 13"))
@example(BROWSER_PING.replace(b"Host: example.org", b"Host: example.org\r\nHost: example.org"))
@example(BROWSER_HIT.replace(b"Content-Length: 131", b"Content-Length: \xb2"))
@example(BROWSER_HIT.replace(b"Content-Length: 131", b"Transfer-Encoding: chunked"))
@example(BROWSER_HIT.replace(b"Connection: keep-alive", b"Transfer-Encoding: chunked"))
@example(BROWSER_PING.replace(b"Connection: keep-alive", b"Transfer-Encoding: chunked"))
@example(BROWSER_PING.replace(b"?u=", b"?a b"))
@example(BROWSER_PING.replace(b"?u=", b"?\xe9"))
@example(BROWSER_HIT.replace(b"Connection: keep-alive", b"Connection: close"))
@example(BROWSER_HIT.replace(b"Connection: keep-alive", b"Expect: 100-continue"))
@example(BROWSER_HIT.replace(b"Connection: keep-alive", b" folded"))
@example(BROWSER_HIT.replace(b"HTTP/1.1", b"HTTP/1.0"))
@example(BROWSER_PING.replace(b"HTTP/1.1", b"HTTP/1.0"))
@example(BROWSER_PING.replace(b"?u=", b"#u="))
@example(BROWSER_PING + b"\r\nContent-Length: 0")
@example(BROWSER_PING + b"\r\nX-Pad: " + b"a" * MAX_HEAD_BYTES)
@example(BROWSER_PING + b"".join(b"\r\nX%d: y" % i for i in range(MAX_HEADERS)))
# The length line is read apart from the rest of the block (which is kept): first, last, alone, one line too
# many with it, repeated in another case, after a value that ends in its name, with a value that is no number.
@example(b"POST /api/event/hit HTTP/1.1\r\nContent-Length: 5\r\nHost: a")
@example(b"POST /api/event/hit HTTP/1.1\r\nHost: a\r\nContent-Length: 5")
@example(b"POST /api/event/hit HTTP/1.1\r\nContent-Length: 5")
@example(b"POST /api/event/hit HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\ncontent-length: 5")
@example(b"POST /api/event/hit HTTP/1.1\r\nHost: a\r\nX: Content-Length: 5")
@example(b"POST /api/event/hit HTTP/1.1\r\nHost: a\r\nContent-Length: 5 \r\nX: y")
@example(b"POST /api/event/hit HTTP/1.1\r\nHost: a\r\nContent-Length: \r\nX: y")
@example(b"POST /api/event/hit HTTP/1.1\r\nHost: a\nContent-Length: 5")
@example(b"POST /api/event/hit HTTP/1.1\r\nHost: a\r\rContent-Length: 5")
@example(BROWSER_HIT + b"".join(b"\r\nX%d: y" % i for i in range(MAX_HEADERS - 8)))
@example(BROWSER_HIT + b"".join(b"\r\nX%d: y" % i for i in range(MAX_HEADERS - 7)))
@example(BROWSER_HIT.replace(b"Content-Length: 131", b"Content-Length: 131\r\nX: Content-Length: 1"))
# A length of more digits than the general parser takes, on the length line read apart and as a field of the block.
@example(BROWSER_HIT.replace(b"Content-Length: 131", b"Content-Length: " + b"1" * (MAX_CONTENT_LENGTH_DIGITS + 1)))
@example(BROWSER_HIT.replace(b"Content-Length: 131", b"content-length: " + b"1" * (MAX_CONTENT_LENGTH_DIGITS + 1)))
def test_tracker_head_is_the_general_head_or_none(data: bytes) -> None:
    fast = parse_tracker_head(data)  # never raises: any exception fails the test
    expected = general(data)
    if isinstance(expected, int):
        assert fast is None, f"the general parser refuses with {expected}, the tracker's parser accepts"
    else:
        assert fast is None or fast == expected


@pytest.mark.parametrize(
    "data",
    [
        BROWSER_PING,
        BROWSER_HIT,
        BROWSER_PING.replace(b"?u=https%3A%2F%2Fexample.com%2F", b""),
        BROWSER_PING.replace(b"\r\nConnection: keep-alive", b""),
        BROWSER_HIT.replace(b"Connection: keep-alive", b"Connection: close"),
        BROWSER_HIT.replace(b"Host: example.org", b"Host:example.org \t"),
    ],
)
def test_what_browsers_send_takes_the_tracker_parser(data: bytes) -> None:
    fast = parse_tracker_head(data)
    assert fast is not None
    assert fast == parse_request_head(data)


def body_for(head: bytes) -> bytes:
    """Enough body for a head that announces one (the rest of the stream pipelines behind it)."""
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length" and value.strip().isdigit():
            return b"x" * min(int(value.strip()), 64)
    return b""


def read_all(stream: bytes, cuts: list[int], *, tracker_heads: bool) -> list[Request | int]:
    """What a reader makes of `stream` fed in pieces at `cuts`: its requests, then its refusal's status."""
    reader = RequestReader(lambda path: 64 if path.startswith("/api/event/") else 1024, "203.0.113.9",
                           tracker_heads=tracker_heads)  # fmt: skip
    made: list[Request | int] = []
    bounds = [0, *sorted(cut for cut in cuts if 0 < cut < len(stream)), len(stream)]
    try:
        for start, end in zip(bounds, bounds[1:], strict=False):
            reader.feed(stream[start:end])
            while (request := reader.next_request()) is not None:
                made.append(request)
    except ProtocolError as exc:
        made.append(exc.status)
    return made


@settings(max_examples=300, deadline=None)
@given(st.lists(heads(), min_size=1, max_size=4), st.lists(st.integers(0, 2000), max_size=6))
def test_a_reader_makes_the_same_requests_with_and_without_it(heads_: list[bytes], cuts: list[int]) -> None:
    stream = b"".join(head + b"\r\n\r\n" + body_for(head) for head in heads_)
    assert read_all(stream, cuts, tracker_heads=True) == read_all(stream, cuts, tracker_heads=False)
