"""Request framing, sans-IO: one connection's bytes in, complete requests out, in linear time.

Theory of operation. `RequestReader` holds the bytes a connection has sent and
not yet turned into requests. `read_head` finds the end of the next head (the
first blank line) and has `parse_request_head` validate it; `read_body` then
collects the body the head announces: `content_length` bytes, or a chunked
body that `ChunkedDecoder` decodes as it arrives. Both keep their place
between calls (how far a line or head has been searched, which chunk is being
read), so bytes that trickle in are each looked at a bounded number of times:
a body in a million one-byte chunks costs time linear in its size, never
quadratic. Consumed bytes are dropped at once, so a reader holds at most the
unfinished head, the body so far and what a client pipelined behind it;
`held` says how much that is, and the server charges it to its memory budget.
Nothing here touches a socket, so every rule is tested by calling a method.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable
from typing import Final

from medama_core.http.errors import ProtocolError
from medama_core.http.protocol import MAX_HEAD_BYTES, MAX_HEADERS, Request, RequestHead, parse_request_head
from medama_core.http.trackerhead import parse_tracker_head

# A chunk-size line is hex digits plus optional extensions, which no client we serve sends; 1 KiB
# is room for a signature extension and bounds the search for the line's end.
MAX_CHUNK_LINE: Final = 1024
# Trailer fields are header fields sent after the body: the head's bounds serve (431 past them).
MAX_TRAILER_BYTES: Final = MAX_HEAD_BYTES
MAX_TRAILER_FIELDS: Final = MAX_HEADERS
# Framing (chunk-size lines with their extensions, and the CRLF after each chunk's data) may take
# this many bytes plus one byte per CHUNK_FRAMING_RATIO bytes of data. Real senders use chunks of
# kilobytes (curl and Python's http.client: 8-64 KiB), so their framing is under 1%; a small
# body may be sent in chunks of any size; and a body in one-byte chunks (5 framing bytes per data
# byte) is refused after ~3,400 chunks instead of costing a Python step per byte of its megabyte.
# Go's net/http has a rule of the same kind (more lenient: one-byte chunks pass there).
CHUNK_FRAMING_ALLOWANCE: Final = 16 * 1024
CHUNK_FRAMING_RATIO: Final = 8

# RFC 9112 §7.1.1 and RFC 9110 §5.6: one chunk-size line without its CRLF.
#   chunk-size [ chunk-ext ], chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS ( token / quoted-string ) ] )
# No part can match what the next one needs (hex digits, blanks, ";", "=", token characters and
# quotes are disjoint sets), so backtracking never finds a second way and a hostile line costs one
# pass. (Possessive quantifiers would say so to the engine, but Python 3.10 lacks them.)
_TOKEN = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_QUOTED = rb'"(?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*"'
_CHUNK_LINE = re.compile(
    rb"([0-9A-Fa-f]{1,16})((?:[ \t]*;[ \t]*%s(?:[ \t]*=[ \t]*(?:%s|%s))?)*)" % (_TOKEN, _TOKEN, _QUOTED)
)
_WHOLE_CHUNK_HEAD = re.compile(_CHUNK_LINE.pattern + rb"\r\n")
# RFC 9112 §7.1.2 and §5: a trailer field line, field-name ":" OWS field-value OWS, where the value
# holds visible characters, spaces, tabs and obs-text only (no CR, LF, NUL or other controls).
_FIELD_LINE = re.compile(rb"%s:[\t\x20-\x7e\x80-\xff]*" % _TOKEN)


class _State(enum.Enum):
    SIZE = enum.auto()  # reading a chunk-size line
    DATA = enum.auto()  # reading chunk data
    DATA_END = enum.auto()  # expecting the CRLF after chunk data
    TRAILER = enum.auto()  # reading trailer lines, up to the empty one
    DONE = enum.auto()


class ChunkedDecoder:
    """Decode one chunked request body (RFC 9112 §7.1) from bytes fed in as they arrive.

    Data, extensions and trailer fields all count toward `max_body` (413); a line
    must end with CRLF (a bare LF is a 400), and anything the grammar does not
    allow is a 400. Trailer fields are checked and then dropped, as RFC 9110 §6.5.1
    permits a recipient that does not use them.
    """

    def __init__(self, max_body: int) -> None:
        self.max_body = max_body
        self.body = bytearray()
        self._state = _State.SIZE
        self._remaining = 0  # data bytes still to come in the current chunk
        self._scanned = 0  # bytes of an unfinished line already searched for its LF
        self._counted = 0  # data, extension and trailer bytes: what `max_body` bounds
        self._declared = 0  # data bytes announced by chunk sizes so far
        self._framing = 0  # chunk-size lines and data CRLFs: what the framing allowance bounds
        self._trailer_bytes = 0
        self._trailer_fields = 0

    @property
    def done(self) -> bool:
        return self._state is _State.DONE

    def feed(self, buf: bytes | bytearray, pos: int = 0) -> int:
        """Decode what it can of `buf[pos:]` and return the index just past what it consumed.

        The bytes before that index are done with. A line that has not all arrived
        is left unconsumed; the next call must pass it again, followed by what came
        since (it is not searched again). Raises `ProtocolError`: 400 for malformed
        framing, 413 past `max_body` or the framing allowance, 431 for trailers
        past their limits.
        """
        end = len(buf)
        while pos < end:
            state = self._state
            if state is _State.SIZE:
                if not self._scanned:  # not in the middle of a line that came in parts
                    pos = self._whole_chunks(buf, pos, end)
                    if pos == end:
                        break
                lf = self._line_end(buf, pos, MAX_CHUNK_LINE, "chunk size line")
                if lf < 0:
                    break
                self._size_line(buf, pos, lf)
                pos = lf + 1
            elif state is _State.DATA:
                take = min(self._remaining, end - pos)
                self.body += buf[pos : pos + take]
                pos += take
                self._remaining -= take
                if not self._remaining:
                    self._state = _State.DATA_END
            elif state is _State.DATA_END:
                if buf[pos : pos + 2] != b"\r\n"[: end - pos]:
                    raise ProtocolError(400, "chunk data not followed by CRLF")
                if end - pos < 2:
                    break
                pos += 2
                self._state = _State.SIZE
            elif state is _State.TRAILER:
                lf = self._line_end(buf, pos, MAX_TRAILER_BYTES - self._trailer_bytes, "trailer section")
                if lf < 0:
                    break
                self._trailer_line(buf, pos, lf)
                pos = lf + 1
            else:
                break  # DONE: what follows belongs to the next request
        return pos

    def _whole_chunks(self, buf: bytes | bytearray, pos: int, end: int) -> int:
        """Decode the chunks at `buf[pos:]` that arrived whole and are well within the limits, in one
        tight loop (the common case); return where it stopped. `_size_line` deals with the rest."""
        match = _WHOLE_CHUNK_HEAD.match
        body = self.body
        max_body = self.max_body
        counted, declared, framing = self._counted, self._declared, self._framing
        while True:
            head = match(buf, pos, pos + MAX_CHUNK_LINE)
            if head is None:
                break
            digits = head.group(1)
            size = int(digits, 16)
            start = head.end()
            stop = start + size
            if not size or stop + 2 > end or buf[stop : stop + 2] != b"\r\n":
                break
            line = start - pos
            counted += size + line - len(digits) - 2  # data and extensions
            declared += size
            framing += line + 2
            if counted > max_body or framing > CHUNK_FRAMING_ALLOWANCE + declared // CHUNK_FRAMING_RATIO:
                break
            body += buf[start:stop]
            self._counted, self._declared, self._framing = counted, declared, framing
            pos = stop + 2
        return pos

    def _line_end(self, buf: bytes | bytearray, pos: int, limit: int, what: str) -> int:
        """The index of the LF ending the line at `pos`, or -1 while it has not all arrived."""
        lf = buf.find(b"\n", pos + self._scanned, pos + limit)
        if lf < 0:
            if len(buf) - pos >= limit:
                if self._state is _State.TRAILER:
                    raise ProtocolError(431, f"chunked trailer section too large (at most {MAX_TRAILER_BYTES} bytes)")
                raise ProtocolError(400, f"{what} too long (at most {limit} bytes)")
            self._scanned = len(buf) - pos
            return -1
        self._scanned = 0
        if lf == pos or buf[lf - 1] != 0x0D:  # RFC 9112 §7.1: lines end with CRLF; a bare LF is not one
            raise ProtocolError(400, f"{what} does not end with CRLF")
        return lf

    def _size_line(self, buf: bytes | bytearray, pos: int, lf: int) -> None:
        match = _CHUNK_LINE.fullmatch(buf, pos, lf - 1)
        if match is None:
            raise ProtocolError(400, "malformed chunk size line")
        size = int(match.group(1), 16)
        self._counted += size + match.end(2) - match.start(2)
        if self._counted > self.max_body:
            raise ProtocolError(413, f"request body too large (at most {self.max_body} bytes)")
        self._declared += size
        self._framing += lf + 1 - pos + (2 if size else 0)
        if self._framing > CHUNK_FRAMING_ALLOWANCE + self._declared // CHUNK_FRAMING_RATIO:
            raise ProtocolError(413, "chunked body is mostly framing; send it in larger chunks")
        if size:
            self._remaining = size
            self._state = _State.DATA
        else:
            self._state = _State.TRAILER  # the last chunk

    def _trailer_line(self, buf: bytes | bytearray, pos: int, lf: int) -> None:
        self._trailer_bytes += lf + 1 - pos
        if lf - 1 == pos:
            self._state = _State.DONE  # the empty line that ends the message
            return
        if _FIELD_LINE.fullmatch(buf, pos, lf - 1) is None:
            raise ProtocolError(400, "malformed trailer field")
        self._trailer_fields += 1
        if self._trailer_fields > MAX_TRAILER_FIELDS:
            raise ProtocolError(431, f"too many trailer fields (at most {MAX_TRAILER_FIELDS})")
        self._counted += lf + 1 - pos
        if self._counted > self.max_body:
            raise ProtocolError(413, f"request body too large (at most {self.max_body} bytes)")


class RequestReader:
    """One connection's unread bytes, turned into requests one at a time, in order.

    `body_limit(path)` gives the largest body accepted for a request to `path`. `tracker_heads` False
    parses every head with the general parser (the tests compare the two).
    """

    def __init__(self, body_limit: Callable[[str], int], client: str = "", *, tracker_heads: bool = True) -> None:
        self.body_limit = body_limit
        self.tracker_heads = tracker_heads
        self.client = client
        self.tls = False  # the connection is TLS to this server (Request.tls)
        self.buffer = bytearray()  # received and not yet consumed
        self.head: RequestHead | None = None  # read, its body not yet complete
        self._chunks: ChunkedDecoder | None = None
        self._scanned = 0  # bytes of the buffer already searched for the end of a head

    def feed(self, data: bytes) -> None:
        self.buffer += data

    @property
    def idle(self) -> bool:
        """Between requests, with no byte of the next one received."""
        return self.head is None and not self.buffer

    def held(self) -> int:
        """Bytes held for requests not yet complete, counting those a Content-Length has announced."""
        held = len(self.buffer)
        if self.head is not None:
            if self._chunks is not None:
                held += len(self._chunks.body)
            else:
                held = max(held, self.head.content_length)
        return held

    def next_request(self) -> Request | None:
        """The next complete request, or None until more bytes arrive (`read_head`, then `read_body`)."""
        if self.read_head() is None:
            return None
        return self.read_body()

    def read_head(self) -> RequestHead | None:
        """The head of the request being read, once all of it has arrived; raises `ProtocolError`.

        A body larger than the path's limit is refused here (413), before it is sent.
        """
        if self.head is not None:
            return self.head
        buf = self.buffer
        while buf[:2] == b"\r\n":  # RFC 9112 §2.2: ignore blank lines before a request line
            del buf[:2]
            self._scanned = 0
        end = buf.find(b"\r\n\r\n", max(0, self._scanned - 3), MAX_HEAD_BYTES + 4)
        if end < 0:
            if len(buf) > MAX_HEAD_BYTES:
                raise ProtocolError(431, "request header block too large")
            self._scanned = len(buf)
            return None
        self._scanned = 0
        data = bytes(buf[:end])
        # The tracker's two requests have a parser of their own (the same heads, sooner); it leaves
        # everything else, every refusal included, to the general one.
        head = parse_tracker_head(data) if self.tracker_heads else None
        if head is None:
            head = parse_request_head(data)
        limit = self.body_limit(head.path)
        if head.content_length > limit:
            raise ProtocolError(413, f"request body too large (at most {limit} bytes)")
        del buf[: end + 4]
        self.head = head
        self._chunks = ChunkedDecoder(limit) if head.chunked else None
        return head

    def read_body(self) -> Request | None:
        """The request whose head was read, once its body is complete; raises `ProtocolError`."""
        head = self.head
        if head is None:
            return None
        buf = self.buffer
        if self._chunks is not None:
            del buf[: self._chunks.feed(buf)]
            if not self._chunks.done:
                return None
            body = bytes(self._chunks.body)
        else:
            length = head.content_length
            if len(buf) < length:
                return None
            body = bytes(buf[:length])
            del buf[:length]
        self.head = None
        self._chunks = None
        return Request.from_head(head, body, self.client, tls=self.tls)
