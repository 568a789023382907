"""The sans-IO HTTP/1.1 parser and renderer, case by case and under hypothesis."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medama_core.http.errors import ProtocolError
from medama_core.http.protocol import (
    MAX_HEAD_BYTES,
    MAX_HEADERS,
    Response,
    parse_cookies,
    parse_query,
    parse_request_head,
    render_response,
)


def head(*lines: str) -> bytes:
    return "\r\n".join(lines).encode("latin-1")


def test_simple_get() -> None:
    h = parse_request_head(head("GET /api/x?a=1&b=2 HTTP/1.1", "Host: example.com", "Accept: */*"))
    assert (h.method, h.path, h.query_string, h.http_version) == ("GET", "/api/x", "a=1&b=2", "1.1")
    assert h.headers == {"host": "example.com", "accept": "*/*"}
    assert h.keep_alive and not h.chunked and h.content_length == 0


@pytest.mark.parametrize(
    ("lines", "keep_alive"),
    [
        (("GET / HTTP/1.1", "Host: a"), True),
        (("GET / HTTP/1.1", "Host: a", "Connection: close"), False),
        (("GET / HTTP/1.1", "Host: a", "Connection: Keep-Alive, CLOSE"), False),
        (("GET / HTTP/1.0",), False),
        (("GET / HTTP/1.0", "Connection: keep-alive"), True),
    ],
    ids=["1.1-default", "1.1-close", "1.1-close-list", "1.0-default", "1.0-keep-alive"],
)
def test_keep_alive_rules(lines: tuple[str, ...], keep_alive: bool) -> None:
    assert parse_request_head(head(*lines)).keep_alive is keep_alive


def test_percent_decoded_path_and_absolute_form() -> None:
    assert parse_request_head(head("GET /a%20b/%C3%A9 HTTP/1.1", "Host: a")).path == "/a b/é"
    absolute = parse_request_head(head("GET http://example.com/p?q=1 HTTP/1.1", "Host: example.com"))
    assert (absolute.path, absolute.query_string) == ("/p", "q=1")


def test_repeated_headers_are_joined() -> None:
    h = parse_request_head(head("GET / HTTP/1.1", "Host: a", "Accept: x", "Accept: y", "Cookie: a=1", "Cookie: b=2"))
    assert h.headers["accept"] == "x, y"
    assert h.headers["cookie"] == "a=1; b=2"


def test_content_length_and_chunked_framing() -> None:
    assert parse_request_head(head("POST / HTTP/1.1", "Host: a", "Content-Length: 12")).content_length == 12
    assert (
        parse_request_head(head("POST / HTTP/1.1", "Host: a", "Content-Length: 5", "Content-Length: 5")).content_length
        == 5
    )
    chunked = parse_request_head(head("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: Chunked"))
    assert chunked.chunked
    expect = parse_request_head(head("POST / HTTP/1.1", "Host: a", "Content-Length: 1", "Expect: 100-continue"))
    assert expect.expect_continue


BAD_HEADS = [
    ("GET /", 400),
    ("GET / HTTP/1.1 extra", 400),
    ("G@T / HTTP/1.1\r\nHost: a", 400),
    ("GET / HTTP/2.0\r\nHost: a", 400),
    ("GET / HTTP/1.1", 400),  # no Host
    ("GET nopath HTTP/1.1\r\nHost: a", 400),
    ("GET /a b HTTP/1.1\r\nHost: a", 400),
    ("GET /%ff HTTP/1.1\r\nHost: a", 400),
    ("GET / HTTP/1.1\r\nHost: a\r\nHost: b", 400),
    ("GET / HTTP/1.1\r\nHost: a\r\nBad Header: x", 400),
    ("GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n  folded", 400),
    ("GET / HTTP/1.1\r\nHost: a\r\nX: a\x01b", 400),
    ("GET / HTTP/1.1\r\nHost: a\r\nNoColon", 400),
    ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1", 400),
    ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1e3", 400),
    ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2", 400),
    ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999", 400),
    ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip", 400),
    ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3", 400),
    ("POST / HTTP/1.0\r\nTransfer-Encoding: chunked", 400),
]


@pytest.mark.parametrize(("raw", "status"), BAD_HEADS, ids=[str(i) for i in range(len(BAD_HEADS))])
def test_malformed_heads_are_rejected(raw: str, status: int) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_request_head(raw.encode("latin-1"))
    assert info.value.status == status


def test_head_limits_give_431() -> None:
    with pytest.raises(ProtocolError) as big:
        parse_request_head(b"GET / HTTP/1.1\r\nHost: a\r\nX: " + b"a" * MAX_HEAD_BYTES)
    assert big.value.status == 431
    many = "\r\n".join(["GET / HTTP/1.1", "Host: a"] + [f"X{i}: 1" for i in range(MAX_HEADERS + 1)])
    with pytest.raises(ProtocolError) as count:
        parse_request_head(many.encode())
    assert count.value.status == 431


@given(st.binary(max_size=2048))
@settings(max_examples=3000, deadline=None)
def test_any_bytes_give_a_head_or_a_4xx(data: bytes) -> None:
    """Invariant: whatever the bytes, a RequestHead or a ProtocolError with a 4xx status."""
    try:
        parse_request_head(data)
    except ProtocolError as exc:
        assert 400 <= exc.status < 500


_token = st.text(alphabet="abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=12)


@given(
    st.sampled_from(["GET", "POST", "HEAD", "PATCH"]),
    st.lists(st.text(alphabet="abc/%._-~0123456789", max_size=10), max_size=4),
    st.lists(st.tuples(_token, st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=40))),
)
@settings(max_examples=500, deadline=None)
def test_structured_requests_never_raise_other_errors(
    method: str, segments: list[str], fields: list[tuple[str, str]]
) -> None:
    lines = [f"{method} /{'/'.join(segments)} HTTP/1.1", "Host: h"] + [f"{k}: {v}" for k, v in fields if k != "host"]
    try:
        parsed = parse_request_head("\r\n".join(lines).encode())
    except ProtocolError as exc:
        assert 400 <= exc.status < 500
    else:
        assert parsed.method == method


def test_query_and_cookie_parsing() -> None:
    assert parse_query("a=1&a=2&b=&c=%2B") == {"a": ["1", "2"], "b": [""], "c": ["+"]}
    with pytest.raises(ProtocolError):
        parse_query("&".join(f"k{i}=v" for i in range(1000)))
    assert parse_cookies('a=1; b="two"; a=3; junk; =x') == {"a": "1", "b": "two"}


def test_render_response() -> None:
    data = render_response(
        Response(200, b"hi", "text/plain", [("X-Evil", "a\r\nSet-Cookie: x")]),
        keep_alive=False,
        head_only=False,
        date=b"D",
    )
    assert data.startswith(b"HTTP/1.1 200 OK\r\nDate: D\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n")
    assert b"X-Evil: a  Set-Cookie: x\r\n" in data and b"Connection: close\r\n" in data
    assert data.endswith(b"\r\n\r\nhi")
    head_only = render_response(Response(200, b"hi"), keep_alive=True, head_only=True, date=b"D")
    assert head_only.endswith(b"Content-Length: 2\r\n\r\n")
    no_content = render_response(Response(204, b"ignored"), keep_alive=True, head_only=False, date=b"D")
    assert b"Content-Length" not in no_content and not no_content.endswith(b"ignored")
    http10 = render_response(Response(200), keep_alive=True, head_only=False, date=b"D", http10=True)
    assert b"Connection: keep-alive\r\n" in http10
