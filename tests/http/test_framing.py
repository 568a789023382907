"""Request framing without sockets: heads, Content-Length and chunked bodies, fed whole or byte by byte."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medama_core.http.errors import ProtocolError
from medama_core.http.framing import (
    CHUNK_FRAMING_ALLOWANCE,
    MAX_CHUNK_LINE,
    MAX_TRAILER_BYTES,
    MAX_TRAILER_FIELDS,
    ChunkedDecoder,
    RequestReader,
)
from medama_core.http.protocol import MAX_HEAD_BYTES, Request

LIMIT = 1000
CHUNKED_HEAD = b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"


def decode(raw: bytes, limit: int = LIMIT) -> tuple[bytes, int] | None:
    """Feed `raw` at once: (body, bytes consumed) when the body is complete, else None."""
    decoder = ChunkedDecoder(limit)
    end = decoder.feed(raw)
    return (bytes(decoder.body), end) if decoder.done else None


def decode_bytewise(raw: bytes, limit: int = LIMIT) -> tuple[bytes, bytes] | None:
    """Feed `raw` one byte at a time as a connection would: (body, bytes left unconsumed) or None."""
    decoder = ChunkedDecoder(limit)
    buf = bytearray()
    for byte in raw:
        buf.append(byte)
        if not decoder.done:
            del buf[: decoder.feed(buf)]
    return (bytes(decoder.body), bytes(buf)) if decoder.done else None


def reader(limit: int = LIMIT) -> RequestReader:
    return RequestReader(lambda path: limit, "198.51.100.7")


def requests_from(data: bytes, limit: int = LIMIT, *, step: int = 0) -> list[Request]:
    """Every complete request in `data`, fed at once (step 0) or `step` bytes at a time."""
    got, r = [], reader(limit)
    for start in range(0, len(data), step or len(data)):
        r.feed(data[start : start + (step or len(data))])
        while (request := r.next_request()) is not None:
            got.append(request)
    return got


CHUNKED_OK = [
    (b"0\r\n\r\n", b""),
    (b"5\r\nhello\r\n0\r\n\r\n", b"hello"),
    (b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", b"hello world"),
    (b"A\r\n0123456789\r\n0\r\nTrailer: x\r\n\r\n", b"0123456789"),
    (b'5 ; a = b ;c;d="q\\"x"\r\nhello\r\n000\r\n\r\n', b"hello"),  # BWS around ";" and "=", quoted value
    (b"2\r\nhi\r\n0\r\nA: 1\r\nB:\r\nC:  v v\t\r\n\r\n", b"hi"),  # several trailers, empty value, OWS
    (b"00005\r\nhello\r\n0;last=yes\r\n\r\n", b"hello"),  # leading zeros; an extension on the last chunk
]


@pytest.mark.parametrize(("raw", "body"), CHUNKED_OK, ids=["empty", "one", "ext", "trailer", "bws", "trailers", "0s"])
def test_chunked_bodies(raw: bytes, body: bytes) -> None:
    assert decode(raw + b"NEXT") == (body, len(raw))
    assert decode_bytewise(raw + b"NEXT") == (body, b"NEXT")
    for cut in range(len(raw)):  # any strict prefix means "need more bytes"
        assert decode(raw[:cut]) is None


CHUNKED_BAD = [
    (b"zz\r\n", 400, "not-hex"),
    (b"5\r\nhelloXX0\r\n\r\n", 400, "no-crlf-after-data"),
    (b"fffff\r\n", 413, "too-large"),
    (b"1" * 2000, 400, "size-line-too-long"),
    # RFC 9112 §7.1 strictly (issue 14, finding 12): every line ends with CRLF ...
    (b"1;a\nb\r\nX\r\n0\r\n\r\n", 400, "bare-lf-in-extension"),
    (b"1\nb\r\n0\r\n\r\n", 400, "bare-lf-after-size"),
    (b"1\r\nb\n0\r\n\r\n", 400, "bare-lf-after-data"),
    (b"1\r\nb\r0\r\n\r\n", 400, "bare-cr-after-data"),
    (b"1\r\nb\r\n0\n\r\n", 400, "bare-lf-after-last-chunk"),
    (b"1\r\nb\r\n0\r\n\n", 400, "bare-lf-ending-trailers"),
    (b"1\r\nb\r\n0\r\nA: b\n\r\n", 400, "bare-lf-after-trailer"),
    (b"1\r\r\nb\r\n0\r\n\r\n", 400, "cr-in-size-line"),
    # ... chunk extensions are tokens, "=" and tokens or quoted strings, nothing else ...
    (b"1;\x00\r\nb\r\n0\r\n\r\n", 400, "nul-in-extension"),
    (b"1;a=\x01\r\nb\r\n0\r\n\r\n", 400, "control-in-extension"),
    (b"1;a\x7f\r\nb\r\n0\r\n\r\n", 400, "del-in-extension"),
    (b"1;\r\nb\r\n0\r\n\r\n", 400, "extension-without-name"),
    (b"1;a=\r\nb\r\n0\r\n\r\n", 400, "extension-without-value"),
    (b"1;a=b c\r\nb\r\n0\r\n\r\n", 400, "space-in-extension-value"),
    (b'1;a="b\r\nb\r\n0\r\n\r\n', 400, "unterminated-quoted-string"),
    (b'1;a="b\x00"\r\nb\r\n0\r\n\r\n', 400, "nul-in-quoted-string"),
    (b"1 a\r\nb\r\n0\r\n\r\n", 400, "junk-after-size"),
    # ... chunk sizes are hex digits and nothing more ...
    (b" 1\r\nb\r\n0\r\n\r\n", 400, "space-before-size"),
    (b"1 \r\nb\r\n0\r\n\r\n", 400, "space-after-size-without-extension"),
    (b"+1\r\nb\r\n0\r\n\r\n", 400, "plus-sign"),
    (b"0x1\r\nb\r\n0\r\n\r\n", 400, "0x-prefix"),
    (b"\r\n", 400, "empty-size-line"),
    (b"1" * 17 + b"\r\n", 400, "size-over-16-digits"),
    # ... and a trailer is a field line: a name, a colon, a value without controls.
    (b"0\r\nb\r\n\r\n", 400, "trailer-without-colon"),
    (b"0\r\nA b: c\r\n\r\n", 400, "space-in-trailer-name"),
    (b"0\r\n: c\r\n\r\n", 400, "empty-trailer-name"),
    (b"0\r\nA: \x00\r\n\r\n", 400, "nul-in-trailer"),
    (b"0\r\nA: b\r\n c\r\n\r\n", 400, "folded-trailer"),
    (b"0\r\n" + b"X-T: y\r\n" * (MAX_TRAILER_FIELDS + 1) + b"\r\n", 431, "too-many-trailers"),
    (b"0\r\nX: " + b"y" * MAX_TRAILER_BYTES + b"\r\n\r\n", 431, "trailers-too-large"),
]


@pytest.mark.parametrize(("raw", "status"), [c[:2] for c in CHUNKED_BAD], ids=[c[2] for c in CHUNKED_BAD])
def test_chunked_errors(raw: bytes, status: int) -> None:
    for feed in (decode, decode_bytewise):
        with pytest.raises(ProtocolError) as info:
            feed(raw, 100_000)
        assert info.value.status == status, feed.__name__


def test_extensions_and_trailers_count_toward_the_body_limit() -> None:
    data = b"x" * 900
    ext = b";" + b"e" * 200
    assert decode(b"384\r\n" + data + b"\r\n0\r\n\r\n") is not None  # 900 bytes of data fit in 1000
    with pytest.raises(ProtocolError) as info:
        decode(b"384" + ext + b"\r\n" + data + b"\r\n0\r\n\r\n")
    assert info.value.status == 413
    with pytest.raises(ProtocolError) as info:
        decode(b"384\r\n" + data + b"\r\n0\r\nX: " + b"t" * 200 + b"\r\n\r\n")
    assert info.value.status == 413


def test_framing_may_not_dwarf_the_data() -> None:
    # A small body may be chunked any way at all, here one byte per chunk with an extension each.
    small = b"".join(b"1;n=%d\r\n%c\r\n" % (i, 97 + i % 26) for i in range(900)) + b"0\r\n\r\n"
    assert decode(small, 100_000) == (bytes(97 + i % 26 for i in range(900)), len(small))
    # A megabyte in one-byte chunks (5 bytes of framing each) is refused once the framing passes
    # its allowance, after ~3,400 chunks, not a million.
    decoder = ChunkedDecoder(1 << 20)
    with pytest.raises(ProtocolError) as info:
        decoder.feed(b"1\r\nx\r\n" * 1_000_000)
    assert info.value.status == 413 and "larger chunks" in info.value.message
    assert CHUNK_FRAMING_ALLOWANCE // 5 < len(decoder.body) < CHUNK_FRAMING_ALLOWANCE // 4
    # Chunks of a few hundred bytes, as a streaming client sends, are fine up to the body limit.
    streamed = (b"100\r\n" + b"y" * 256 + b"\r\n") * 4000 + b"0\r\n\r\n"
    assert decode(streamed, 1 << 20) == (b"y" * 1_024_000, len(streamed))


def test_decoded_bytes_are_dropped_so_nothing_is_read_twice() -> None:
    """The decoder keeps its place: what it consumed is gone, so a later packet cannot make it start over.

    The old decoder kept the whole raw body and parsed it from the start on every packet, which made a
    body in N chunks cost N² (a million one-byte chunks: 17 s of CPU).
    """
    r = reader(100_000)
    r.feed(CHUNKED_HEAD)
    assert r.next_request() is None
    for i in range(500):
        r.feed(b"1;i=%d\r\n" % i)
        assert r.next_request() is None
        r.feed(b"z\r\n")
        assert r.next_request() is None
        assert len(r.buffer) == 0  # every complete chunk was consumed at once
    r.feed(b"1;long=" + b"v" * 500)  # a line cut short waits, and is searched only once
    assert r.next_request() is None and len(r.buffer) == 507
    r.feed(b"\r\nz\r\n0\r\n\r\n")
    request = r.next_request()
    assert request is not None and request.body == b"z" * 501 and not r.buffer


def test_a_bad_chunk_poisons_the_pipeline() -> None:
    # A size line `1;a\nb` (a bare LF in its extension) was read as size 1, and the request after the
    # body was served too (issue 14).
    r = reader()
    r.feed(CHUNKED_HEAD + b"1;a\nb\r\nX\r\n0\r\n\r\nGET /after HTTP/1.1\r\nHost: x\r\n\r\n")
    with pytest.raises(ProtocolError) as info:
        r.next_request()
    assert info.value.status == 400


def test_pipelined_requests_of_every_framing_in_order() -> None:
    data = b"".join(
        [
            b"\r\nGET /a HTTP/1.1\r\nHost: x\r\n\r\n",
            b"POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc",
            CHUNKED_HEAD + b"3\r\ndef\r\n0\r\nT: v\r\n\r\n",
            b"GET /d HTTP/1.1\r\nHost: x\r\n\r\n",
        ]
    )
    for step in (0, 1, 7):
        got = requests_from(data, step=step)
        assert [(q.method, q.path, q.body) for q in got] == [
            ("GET", "/a", b""),
            ("POST", "/b", b"abc"),
            ("POST", "/c", b"def"),
            ("GET", "/d", b""),
        ]
        assert got[0].client == "198.51.100.7"


def test_held_counts_what_a_content_length_announces() -> None:
    r = reader(LIMIT)
    assert r.idle and r.held() == 0
    r.feed(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 800\r\n\r\nab")
    assert r.read_head() is not None and not r.idle
    assert r.held() == 800  # reserved when the head arrives, before the body does
    r.feed(b"c" * 798 + b"GET / HTTP/1.1\r\n")
    assert r.next_request() is not None
    assert r.held() == len(b"GET / HTTP/1.1\r\n")
    chunked = reader(LIMIT)
    chunked.feed(CHUNKED_HEAD + b"10\r\n" + b"d" * 16 + b"\r\n5\r\nab")
    assert chunked.next_request() is None
    assert chunked.held() == 18  # decoded data, including the start of the chunk in progress


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"a" * MAX_HEAD_BYTES, 431),
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1001\r\n\r\n", 413),
        (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3e9\r\n", 413),
        (b"BAD\r\n\r\n", 400),
    ],
    ids=["head-too-large", "length-over-limit", "chunk-over-limit", "bad-head"],
)
def test_reader_errors(data: bytes, status: int) -> None:
    with pytest.raises(ProtocolError) as info:
        requests_from(data)
    assert info.value.status == status


def test_head_search_resumes_where_it_stopped() -> None:
    r = reader()
    head = b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 10_000 + b"\r\n\r\n"
    for i in range(len(head) - 1):
        r.feed(head[i : i + 1])
        assert r.read_head() is None
    r.feed(head[-1:])
    assert r.read_head() is not None and not r.buffer


# Property tests: the invariants every parser here states.


@given(st.binary(max_size=600), st.integers(0, 600))
@settings(max_examples=3000, deadline=None)
def test_any_bytes_decode_or_give_a_4xx(data: bytes, split: int) -> None:
    """Invariant: any bytes, in any split, give a body or a ProtocolError with 400, 413 or 431; never
    another exception; and feeding them in two parts gives what feeding them at once does."""
    outcomes = []
    for parts in ((data,), (data[:split], data[split:])):
        decoder, buf = ChunkedDecoder(256), bytearray()
        try:
            for part in parts:
                buf += part
                del buf[: decoder.feed(buf)]
        except ProtocolError as exc:
            assert exc.status in (400, 413, 431)
            outcomes.append(("error", exc.status))
        else:
            assert len(decoder.body) <= 256
            outcomes.append(("done" if decoder.done else "waiting", bytes(decoder.body), bytes(buf)))
    if outcomes[0][0] != "waiting" and outcomes[1][0] != "waiting":
        assert outcomes[0] == outcomes[1]


_token = st.text(alphabet="abcxyz-_!~0189", min_size=1, max_size=6).map(str.encode)
_extension = st.tuples(_token, st.none() | _token | st.text(alphabet=' az"\\\t', max_size=6).map(
    lambda s: b'"' + s.encode().replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'
))  # fmt: skip


@st.composite
def chunkings(draw: st.DrawFn) -> tuple[bytes, bytes]:
    """A body and a valid chunked encoding of it: random chunk sizes, extensions and trailers."""
    body = draw(st.binary(max_size=400))
    cuts = sorted(draw(st.lists(st.integers(0, len(body)), max_size=12)))
    pieces = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True) if b > a]
    out = bytearray()
    for piece in [*pieces, b""]:
        size = b"%x" % len(piece)
        out += size.upper() if draw(st.booleans()) else size
        for name, value in draw(st.lists(_extension, max_size=2)):
            out += draw(st.sampled_from([b";", b" ;", b"; ", b"\t;\t"])) + name
            if value is not None:
                out += draw(st.sampled_from([b"=", b" = "])) + value
        out += b"\r\n"
        if piece:
            out += piece + b"\r\n"
    for name, value in draw(st.lists(st.tuples(_token, st.text(alphabet="ab \t:", max_size=8)), max_size=3)):
        out += name + b":" + value.encode() + b"\r\n"
    return body, bytes(out + b"\r\n")


@given(chunkings(), st.integers(1, 50))
@settings(max_examples=1000, deadline=None)
def test_chunked_and_plain_encodings_give_the_same_request(case: tuple[bytes, bytes], step: int) -> None:
    body, chunked = case
    plain = b"POST /c HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    after = b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n"
    for data in (CHUNKED_HEAD + chunked + after, plain + after):
        for feed_step in (0, step):
            got = requests_from(data, step=feed_step)
            assert [(q.path, q.body) for q in got] == [("/c", body), ("/next", b"")]


@given(st.binary(max_size=1500), st.integers(1, 64))
@settings(max_examples=1000, deadline=None)
def test_any_bytes_on_a_connection_give_requests_or_a_4xx(data: bytes, step: int) -> None:
    """Invariant: whatever a client sends after any head, requests or a ProtocolError with a 4xx."""
    for prefix in (CHUNKED_HEAD, b"", b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n"):
        try:
            requests_from(prefix + data, step=step)
        except ProtocolError as exc:
            assert 400 <= exc.status < 500


def test_size_line_limit_is_the_named_one() -> None:
    longest = b"1;" + b"a" * (MAX_CHUNK_LINE - 4) + b"\r\n"  # MAX_CHUNK_LINE bytes with its CRLF
    assert decode(longest + b"b\r\n0\r\n\r\n", 100_000) == (b"b", len(longest) + 8)
    with pytest.raises(ProtocolError) as info:
        decode(b"1;a" + longest[2:] + b"b\r\n0\r\n\r\n", 100_000)
    assert info.value.status == 400 and "too long" in info.value.message
