"""A network fuzzer: malformed and random HTTP/1.1 requests on raw sockets, and a judge of every answer.

Each case is a byte string written to a fresh connection, whose write side is
then shut (half-close), so the server sees everything the case holds and then
the end of the stream. The rule the judge applies (h11's fuzz invariant, lifted
to the network): every answer is a well-framed HTTP/1.1 response below 500,
every error carries the JSON error shape with its own status, every response
says `X-Content-Type-Options: nosniff`, and nothing outside the served files
leaks. A case that holds a whole request must be answered; one that stops
mid-request may be closed without an answer (there is no request to answer).

Cases are drawn from weighted generators, each built around one way to be
wrong: request lines, headers, chunked framing, truncated bodies, JSON bodies,
wrong types in each hit field, stats query strings and filters, random routes,
byte-level mutations of valid requests, pipelines, and plain random bytes. The
generator is seeded: a failing case can be replayed from its seed and index.
"""

from __future__ import annotations

import errno
import json
import random
import re
import socket
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from urllib.parse import quote

SITE = "example.com"
CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
STATS = (
    "summary",
    "pages",
    "time",
    "referrers",
    "sources",
    "mediums",
    "campaigns",
    "browsers",
    "os",
    "devices",
    "countries",
    "languages",
    "properties",
)
FILTER_FIELDS = (
    "path",
    "referrer",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "browser",
    "os",
    "device",
    "country",
    "language",
    "prop_name",
    "prop_value",
)
OPERATORS = (
    "eq",
    "neq",
    "contains",
    "not_contains",
    "starts_with",
    "not_starts_with",
    "ends_with",
    "not_ends_with",
    "in",
    "not_in",
)
SOCKET_TIMEOUT_S = 20.0  # longer than the server's 10 s header timeout: a hang shows as a problem, not a wait
MAX_PROBLEMS_KEPT = 50  # the report keeps the first problems in full; the rest are only counted
# Strings that would betray a read outside the served files: Python sources, /etc/passwd.
LEAK_MARKERS = (b"from __future__", b"root:x:0:0")
_STATUS_LINE = re.compile(rb"HTTP/1\.1 (\d{3}) [^\r\n]*")

# Values of the wrong type (or of absurd size) for any JSON field.
WRONG_VALUES: tuple[object, ...] = (
    None,
    True,
    False,
    0,
    -1,
    2**64,
    10**400,
    1.5,
    -0.0,
    1e308,
    "",
    " ",
    "\u0000",
    "\ud800",  # a lone surrogate: valid JSON escape, not encodable as UTF-8
    "x" * 10_000,
    "<script>alert(1)</script>",
    "' OR 1=1 --",
    [],
    [1, "a", None],
    {},
    {"a": {"b": {"c": []}}},
)
# Text values for filters, paths, headers: injections, markup, escapes, Unicode, sizes.
NASTY_TEXT = (
    "",
    "'",
    '"',
    "' OR '1'='1",
    "1; DROP TABLE views; --",
    "%",
    "_",
    "\\",
    "a,b,,c",
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "\x00",
    "\x7f",
    "\u202e",
    "\ufeff",
    "\ud7ff\ue000",
    "😀" * 50,
    "ǅ",
    "İ",
    "../../etc/passwd",
    "x" * 3000,
)
HEADER_VALUES = (
    b"",
    b" ",
    b"\xff\xfe",
    b"\xc3\x28",
    b"\xe2\x82",
    b"caf\xc3\xa9",
    b"a" * 8000,
    b"${jndi:ldap://x}",
    b"() { :; }; echo",
    b"1.2.3.4, ::1, unknown, \xff",
    b"Mon, 32 Foo 2024 99:99:99 GMT",
    b"en-GB;q=2, *;q=-1, xx-YYYY-zzz;q=0.5",
)
GENERATOR_WEIGHTS: dict[str, int] = {
    "request_line": 8,
    "headers": 10,
    "chunked": 8,
    "truncated": 5,
    "json_body": 10,
    "hit_types": 14,
    "hit_headers": 6,
    "stats_query": 10,
    "filters": 10,
    "routes": 6,
    "authed_bodies": 5,
    "mutated": 10,
    "pipelined": 4,
    "random_bytes": 4,
}


@dataclass(frozen=True, slots=True)
class Case:
    """Bytes for one connection. `complete`: True if they hold a whole request (an answer is due),
    False if they cannot be answered, None if the generator cannot tell (a byte-level mutation)."""

    kind: str
    data: bytes
    complete: bool | None
    head_only: bool = False  # a HEAD request: the answer has Content-Length but no body


@dataclass
class Outcome:
    kind: str
    statuses: list[int]
    problem: str | None
    data: bytes


@dataclass
class Report:
    """What a run saw; `problems` holds the first MAX_PROBLEMS_KEPT in full."""

    requests: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    kinds: Counter[str] = field(default_factory=Counter)
    unanswered: Counter[str] = field(default_factory=Counter)  # incomplete requests closed without answer
    problems: list[tuple[str, str, bytes]] = field(default_factory=list)
    problem_count: int = 0
    seconds: float = 0.0

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500)

    def add(self, case: Case, outcome: Outcome) -> None:
        self.requests += 1
        self.kinds[case.kind] += 1
        self.statuses.update(outcome.statuses)
        if not outcome.statuses and outcome.problem is None:
            self.unanswered[case.kind] += 1
        if outcome.problem is not None:
            self.problem_count += 1
            if len(self.problems) < MAX_PROBLEMS_KEPT:
                self.problems.append((case.kind, outcome.problem, case.data[:600]))

    def summary(self) -> str:
        statuses = ", ".join(f"{status}: {n}" for status, n in sorted(self.statuses.items()))
        rate = self.requests / self.seconds if self.seconds else 0.0
        lines = [
            f"{self.requests} cases in {self.seconds:.1f} s ({rate:.0f}/s); {self.server_errors} 5xx; "
            f"{self.problem_count} problems; {sum(self.unanswered.values())} incomplete requests closed unanswered",
            f"statuses: {statuses}",
            "cases by kind: " + ", ".join(f"{kind} {n}" for kind, n in sorted(self.kinds.items())),
        ]
        for kind, problem, data in self.problems[:10]:
            lines.append(f"  {kind}: {problem}: {data[:300]!r}")
        return "\n".join(lines)


# --- building requests ---


def request(
    method: bytes,
    target: bytes,
    headers: Iterable[tuple[bytes, bytes]] = (),
    body: bytes = b"",
    *,
    version: bytes = b"HTTP/1.1",
    length: bool = True,
) -> bytes:
    lines = [method + b" " + target + b" " + version, b"Host: 127.0.0.1"]
    lines += [name + b": " + value for name, value in headers]
    if length and (body or method in (b"POST", b"PATCH", b"PUT")):
        lines.append(b"Content-Length: %d" % len(body))
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def _json(value: object) -> bytes:
    return json.dumps(value).encode("utf-8", "surrogatepass")


class Fuzzer:
    """Draws cases from the generators, seeded; `cookie` is a live session for the authenticated routes."""

    def __init__(self, seed: int, cookie: str) -> None:
        self.rng = random.Random(seed)
        self.cookie = cookie.encode()
        self._generators: dict[str, Callable[[], Case]] = {
            "request_line": self.request_line,
            "headers": self.headers,
            "chunked": self.chunked,
            "truncated": self.truncated,
            "json_body": self.json_body,
            "hit_types": self.hit_types,
            "hit_headers": self.hit_headers,
            "stats_query": self.stats_query,
            "filters": self.filters,
            "routes": self.routes,
            "authed_bodies": self.authed_bodies,
            "mutated": self.mutated,
            "pipelined": self.pipelined,
            "random_bytes": self.random_bytes,
        }
        self._names = list(GENERATOR_WEIGHTS)
        self._weights = [GENERATOR_WEIGHTS[name] for name in self._names]

    def cases(self, count: int) -> Iterator[Case]:
        for _ in range(count):
            name = self.rng.choices(self._names, self._weights)[0]
            yield self._generators[name]()

    # helpers

    def text(self) -> str:
        rng = self.rng
        if rng.random() < 0.6:
            return str(rng.choice(NASTY_TEXT))
        alphabet = "abcXYZ019 -_.~%/?#[]&=+;,'\"<>\\\t\u00e9\u4e2d\U0001f600"
        return "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 40)))

    def auth(self) -> list[tuple[bytes, bytes]]:
        return [(b"Cookie", b"_me_sess=" + self.cookie)]

    def valid_hit(self) -> dict[str, object]:
        rng = self.rng
        bid = f"fz{rng.getrandbits(48):x}"
        kind = rng.choice(("load", "load", "unload", "custom"))
        if kind == "load":
            return {"e": "load", "b": bid, "u": f"https://{SITE}/p{rng.randrange(20)}", "r": "", "p": True, "q": True,
                    "t": "Europe/Paris"}  # fmt: skip
        if kind == "unload":
            return {"e": "unload", "b": bid, "m": rng.randrange(1, 100_000)}
        return {"e": "custom", "g": SITE, "b": bid, "d": {"k": "v"}}

    def hit_request(self, body: bytes, extra: list[tuple[bytes, bytes]] | None = None) -> bytes:
        headers = [(b"User-Agent", CHROME.encode()), (b"Accept-Language", b"en-GB"),
                   (b"Content-Type", b"text/plain;charset=UTF-8")]  # fmt: skip
        return request(b"POST", b"/api/event/hit", headers + (extra or []), body)

    # generators: each returns one case

    def request_line(self) -> Case:
        rng = self.rng
        lines = [
            b"GET",
            b"GET /",
            b"GET / HTTP/1.1 extra",
            b"GET  / HTTP/1.1",
            b"GET / HTTP/2.0",
            b"GET / HTTP/1.2",
            b"GET / http/1.1",
            b"GET / HTTP/1",
            b"G\x00T / HTTP/1.1",
            b"GET\t/\tHTTP/1.1",
            b"\xff\xfe / HTTP/1.1",
            b"GET /\x00 HTTP/1.1",
            b"GET /caf\xc3\xa9 HTTP/1.1",
            b"GET /%ff%fe%fd HTTP/1.1",
            b"GET /%c0%af%c0%af HTTP/1.1",
            b"GET /%ed%a0%80 HTTP/1.1",
            b"GET /% HTTP/1.1",
            b"GET api/user HTTP/1.1",
            b"GET * HTTP/1.1",
            b"OPTIONS * HTTP/1.1",
            b"CONNECT 127.0.0.1:80 HTTP/1.1",
            b"GET http://evil.example HTTP/1.1",
            b"GET http://evil.example/api/health?x=1 HTTP/1.1",
            b"GET //etc/passwd HTTP/1.1",
            b"GET /" + b"a" * rng.choice((100, 4000, 15000, 17000)) + b" HTTP/1.1",
            b"X" * rng.choice((10, 1000, 20000)) + b" / HTTP/1.1",
            b"BREW /api/health HTTP/1.1",
            b" GET / HTTP/1.1",
            b"GET / HTTP/1.1 ",
        ]
        line = rng.choice(lines)
        ending = rng.choice((b"\r\n", b"\n"))
        if ending == b"\n":
            data = line + b"\nHost: x\n\n"
            return Case("request_line", data, None)
        return Case("request_line", line + b"\r\nHost: 127.0.0.1\r\n\r\n", True)

    def headers(self) -> Case:
        rng = self.rng
        target = rng.choice((b"/api/health", b"/api/event/ping", b"/", b"/api/user"))
        variants: list[list[bytes]] = [
            [b"X-Big: " + b"a" * rng.choice((8000, 16500, 40000))],
            [b"X-N%d: v" % i for i in range(rng.choice((50, 101, 300)))],
            [b"Host: other.example"],
            [b"Content-Length: 5", b"Content-Length: 6"],
            [b"Content-Length: 0", b"Content-Length: 0"],
            [b"Content-Length: -1"],
            [b"Content-Length: 0x10"],
            [b"Content-Length: 99999999999999999999999"],
            [b"Content-Length: 1 2"],
            [b"Content-Length: +5"],
            [b"Transfer-Encoding: chunked", b"Content-Length: 3"],
            [b"Transfer-Encoding: gzip"],
            [b"Transfer-Encoding: chunked, chunked"],
            [b"Transfer-Encoding: identity"],
            [b"Bad Name: x"],
            [b": empty-name"],
            [b"NoColon"],
            [b"X-Ctl: a\x01b"],
            [b"X-Null: \x00"],
            [b"X-Fold: a", b" folded"],
            [b"\tX-Tab: a"],
            [b"X-Utf8: caf\xc3\xa9 \xff\xfe"],
            [b"X-\xff: x"],
            [b"Expect: 100-continue"],
            [b"Expect: 42-nonsense"],
            [b"Connection: keep-alive, close, upgrade", b"Upgrade: h2c"],
            [b"Cookie: " + b";" * 5000],
            [b"Cookie: _me_sess=" + b"A" * 43, b"Cookie: _me_sess=" + self.cookie],
            [b"Cookie: _me_sess=\xff\xfe"],
            [b"Accept-Encoding: gzip;q=NaN, *;q=1e999"],
            [b"If-None-Match: " + b'"x",' * 2000],
            [b"Origin: null", b"Access-Control-Request-Method: DELETE"],
        ]
        extra = rng.choice(variants)
        lines = [b"GET " + target + b" HTTP/1.1"]
        if rng.random() < 0.9:
            lines.append(b"Host: 127.0.0.1")
        lines += extra
        data = b"\r\n".join(lines) + b"\r\n\r\n"
        return Case("headers", data, True)

    def chunked(self) -> Case:
        rng = self.rng
        body = _json(self.valid_hit())
        good = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
        bodies: list[tuple[bytes, bool | None]] = [
            (good, True),
            (b"%x;ext=1;y\r\n%s\r\n0\r\nTrailer: x\r\n\r\n" % (len(body), body), True),
            (b"zz\r\n" + body + b"\r\n0\r\n\r\n", True),
            (b"-5\r\n" + body + b"\r\n0\r\n\r\n", True),
            (b"ffffffffffffffffffff\r\n" + body + b"\r\n0\r\n\r\n", True),
            (b"fffffff\r\n" + body, True),  # 268 MB announced: 413 at once
            (b"%x\r\n%sXX0\r\n\r\n" % (len(body), body), True),  # data not followed by CRLF
            (b"%x\r\n%s\r\n" % (len(body), body), False),  # no last chunk
            (b"5\r\nab", False),
            (b"1" * 2000 + b"\r\n", True),  # chunk size line too long
            (b"0\r\n" + b"X-T: y\r\n" * 3000 + b"\r\n", True),  # trailers too large
            (b"".join(b"1\r\n%c\r\n" % c for c in body) + b"0\r\n\r\n", True),
            (b"0\r\n\r\n", True),
            (b"\r\n\r\n", True),
            (b"4\r\n\xff\xfe\xfd\xfc\r\n0\r\n\r\n", True),
        ]
        chunked_body, complete = rng.choice(bodies)
        headers = [(b"User-Agent", CHROME.encode()), (b"Content-Type", b"application/json"),
                   (b"Transfer-Encoding", rng.choice((b"chunked", b"Chunked", b" chunked ")))]  # fmt: skip
        target = rng.choice((b"/api/event/hit", b"/api/event/hit", b"/api/auth/login", b"/api/websites"))
        return Case("chunked", request(b"POST", target, headers, chunked_body, length=False), complete)

    def truncated(self) -> Case:
        rng = self.rng
        body = _json(self.valid_hit())
        cut = rng.randrange(0, len(body))
        announced = rng.choice((len(body), len(body) + 1, 10_000, 60_000))
        data = request(b"POST", b"/api/event/hit", [(b"Content-Type", b"application/json")], b"", length=False)
        data = data[:-2] + b"Content-Length: %d\r\n\r\n" % announced + body[:cut]
        if rng.random() < 0.3:  # a head cut short
            data = data[: rng.randrange(1, data.index(b"\r\n\r\n") + 3)]
        return Case("truncated", data, False)

    def json_body(self) -> Case:
        rng = self.rng
        depth = rng.choice((9, 100, 10_000, 60_000))
        many = b",".join(b'"k%d":1' % i for i in range(2000))  # far more properties than a hit may have
        bodies = [
            b"",
            b"{",
            b"[]",
            b"null",
            b'"text"',
            b"\xff\xfe{}",
            b"\xef\xbb\xbf{}",
            b'{"e":"load"',
            b"[" * depth + b"]" * depth,
            b'{"a":' * (depth // 4) + b"1" + b"}" * (depth // 4),
            b'{"e":"load","b":"x","m":' + b"9" * 5000 + b"}",
            b'{"e":"unload","b":"x","m":NaN}',
            b'{"e":"unload","b":"x","m":Infinity}',
            b'{"e":"unload","b":"x","m":1e999}',
            b'{"e":"load","e":"unload","b":"x","m":5}',
            b'{"e":"custom","g":"' + SITE.encode() + b'","d":{' + many + b"}}",
            b'{"e":"load","u":"' + b"a" * 70_000 + b'"}',
            b'{"e":"load","b":"\\ud800","u":"https://' + SITE.encode() + b'/\\udfff","p":true,"q":true}',
            b'{"e":"custom","g":"' + SITE.encode() + b'","d":{"\\u0000":"\\u0000"}}',
            bytes(rng.getrandbits(8) for _ in range(rng.randrange(1, 200))),
        ]
        body = rng.choice(bodies)
        target = rng.choice((b"/api/event/hit",) * 4 + (b"/api/auth/login", b"/api/websites", b"/api/tenant/settings"))
        method = b"PATCH" if target == b"/api/tenant/settings" else b"POST"
        content_type = rng.choice((b"application/json", b"text/plain;charset=UTF-8", b"text/plain; charset=latin-1"))
        headers = [(b"User-Agent", CHROME.encode()), (b"Content-Type", content_type)]
        if target != b"/api/event/hit" and rng.random() < 0.5:
            headers += self.auth()
        return Case("json_body", request(method, target, headers, body), True)

    def hit_types(self) -> Case:
        rng = self.rng
        hit = self.valid_hit()
        keys = list(hit) + ["e", "h", "d", "p", "q", "t", "r"]
        for _ in range(rng.choice((1, 1, 1, 2, 3))):
            key = rng.choice(keys)
            if rng.random() < 0.1:
                hit.pop(key, None)
            else:
                hit[key] = rng.choice(WRONG_VALUES) if rng.random() < 0.7 else self.text()
        if rng.random() < 0.2:
            hit["d"] = {self.text(): rng.choice(WRONG_VALUES) for _ in range(rng.randrange(1, 4))}
        return Case("hit_types", self.hit_request(_json(hit)), True)

    def hit_headers(self) -> Case:
        rng = self.rng
        names = (b"User-Agent", b"Accept-Language", b"Content-Type", b"X-Forwarded-For", b"X-Real-IP",
                 b"CF-Connecting-IP", b"Origin", b"Referer")  # fmt: skip
        extra = [(rng.choice(names), rng.choice(HEADER_VALUES)) for _ in range(rng.randrange(1, 4))]
        if rng.random() < 0.3:
            ims = rng.choice(HEADER_VALUES + (b"Thu, 01 Jan 1970 00:00:00 GMT", b"Fri, 31 Dec 9999 23:59:59 GMT"))
            query = quote(self.text()).encode()
            data = request(b"GET", b"/api/event/ping?u=" + query, [(b"If-Modified-Since", ims)] + extra)
            return Case("hit_headers", data, True)
        return Case("hit_headers", self.hit_request(_json(self.valid_hit()), extra), True)

    def query_value(self) -> str:
        rng = self.rng
        pools: tuple[tuple[str, ...], ...] = (
            ("", "now", "2024-13-45T99:99:99Z", "2024-06-01T00:00:00+02:00", "2024-06-01T00:00:00 02:00",
             "0001-01-01T00:00:00-23:59", "9999-12-31T23:59:59+14:00", "2024-02-30T00:00:00Z",
             "2024-06-01T00:00:00.1234567890123Z", "1" * 30),
            ("-1", "0", "1", "5000", "5001", "1e3", "99999999999999999999", "NaN", "0x10", " 5", "+5", "٥"),
            ("minute", "hour", "day", "week", "month", "century", "MINUTE", ""),
            ("true", "false", "TRUE", "1", "yes", "", "null"),
        )  # fmt: skip
        if rng.random() < 0.3:
            return self.text()
        return rng.choice(rng.choice(pools))

    def stats_query(self) -> Case:
        rng = self.rng
        names = ("start", "end", "limit", "offset", "interval", "summary", "previous", "grouped", "locale",
                 "stat", "chart[stat]", "start[]", "limit[eq]", "", "=", "&")  # fmt: skip
        pairs = [(rng.choice(names), self.query_value()) for _ in range(rng.randrange(1, 8))]
        if rng.random() < 0.05:
            pairs = [("x", "1")] * rng.choice((150, 201, 400))
        if rng.random() < 0.3:
            pairs += [("start", "2024-01-01T00:00:00Z"), ("end", "2026-01-01T00:00:00Z")]
        query = "&".join(f"{quote(k, safe='[]')}={quote(v, safe='')}" for k, v in pairs)
        return self._stats_request("stats_query", query)

    def filters(self) -> Case:
        rng = self.rng
        parts = []
        for _ in range(rng.randrange(1, 6)):
            name = rng.choice(FILTER_FIELDS + ("foo", "path]", "", "PATH", "prop_name[eq]"))
            op = rng.choice(OPERATORS + ("", "EQ", "like", "eq]", "in[]", "0"))
            value = ",".join(self.text() for _ in range(rng.randrange(1, 4))) if "in" in op else self.text()
            parts.append(f"{quote(name)}[{quote(op)}]={quote(value, safe='')}")
        return self._stats_request("filters", "&".join(parts))

    def _stats_request(self, kind: str, query: str) -> Case:
        rng = self.rng
        host = SITE if rng.random() < 0.9 else quote(self.text(), safe="") or "x"
        stat = rng.choice(STATS)
        target = f"/api/website/{host}/{stat}?{query}".encode()
        headers = self.auth() if rng.random() < 0.95 else []
        return Case(kind, request(b"GET", target, headers), True)

    def routes(self) -> Case:
        rng = self.rng
        paths = ("/api/", "/api", "/api/user", "/api/user/usage", "/api/settings/usage", "/api/tenant/settings",
                 "/api/websites", f"/api/websites/{SITE}", "/api/websites/%00", "/api/health", "/api/event/ping",
                 "/api/event/hit", "/api/auth/login", "/api/auth/logout", "/api/website/x/summary",
                 "/api/website//pages", "/api/website/" + "a" * 300 + "/pages", "/script.js", "/scripts/default.js",
                 "/scripts/../../medama_core/app.py", "/scripts/%2e%2e/%2e%2e/app.py", "/%2e%2e/%2e%2e/etc/passwd",
                 "/assets/../../medama_core/app.py", "/assets/..%2f..%2fmedama_core%2fapp.py", "/openapi.yaml",
                 "/favicon.svg", "/index.html", "/login", "/debug/profile", "/debug/stacks", "/.git/config",
                 "/medama_core/app.py", "/" + "x/" * 500)  # fmt: skip
        methods = (b"GET", b"HEAD", b"POST", b"PUT", b"PATCH", b"DELETE", b"OPTIONS", b"TRACE", b"FOO")
        method = rng.choice(methods)
        path = rng.choice(paths)
        if rng.random() < 0.2:
            path += "/" + quote(self.text(), safe="/")
        if method == b"DELETE" and rng.random() < 0.95:
            headers: list[tuple[bytes, bytes]] = []  # never delete our own user or site
        else:
            headers = self.auth() if rng.random() < 0.5 else []
        if (method == b"DELETE" and path in ("/api/user", f"/api/websites/{SITE}")) or path == "/api/auth/logout":
            headers = []  # the run's session must survive it: no deleting our user or site, no logout
        if rng.random() < 0.2:
            headers += [(b"Origin", b"https://evil.example"), (b"Access-Control-Request-Method", b"DELETE")]
        body = _json(rng.choice(WRONG_VALUES)) if method in (b"POST", b"PUT", b"PATCH") else b""
        headers.append((b"Content-Type", b"application/json"))
        return Case("routes", request(method, path.encode(), headers, body), True, head_only=method == b"HEAD")

    def authed_bodies(self) -> Case:
        """Logged-in writes whose fields have the wrong type, so they cannot change anything."""
        rng = self.rng
        choices: list[tuple[bytes, bytes, tuple[str, ...]]] = [
            (b"PATCH", b"/api/tenant/settings", ("script_type", "blockAbusiveIPs", "blockTorExitNodes", "blockedIPs")),
            (b"PATCH", b"/api/user", ("username", "password", "settings")),
            (b"POST", b"/api/websites", ("hostname",)),
            (b"PATCH", b"/api/settings/usage", ("threads", "memory_limit")),
            (b"POST", b"/api/auth/login", ("username", "password")),
        ]
        method, target, fields = rng.choice(choices)
        wrong = [v for v in WRONG_VALUES if not isinstance(v, str)]
        if target == b"/api/tenant/settings":  # lists of non-strings, strings for booleans
            wrong = [1, "yes", [1], [None], {"a": 1}, ["x"] * 3, ["default", "default"]]
        body = {name: rng.choice(wrong) for name in fields if rng.random() < 0.7} or {fields[0]: None}
        headers = [(b"Content-Type", b"application/json"), *self.auth()]
        return Case("authed_bodies", request(method, target, headers, _json(body)), True)

    def _valid_request(self) -> bytes:
        rng = self.rng
        pick = rng.randrange(5)
        if pick == 0:
            return self.hit_request(_json(self.valid_hit()))
        if pick == 1:
            return request(b"GET", b"/api/event/ping")
        if pick == 2:
            return request(b"GET", f"/api/website/{SITE}/{rng.choice(STATS)}?summary=true".encode(), self.auth())
        if pick == 3:
            return request(b"GET", b"/api/websites?summary=true", self.auth())
        return request(b"GET", rng.choice((b"/", b"/script.js", b"/openapi.yaml", b"/api/health")))

    def mutated(self) -> Case:
        rng = self.rng
        data = bytearray(self._valid_request())
        for _ in range(rng.randrange(1, 6)):
            op = rng.randrange(6)
            pos = rng.randrange(len(data))
            if op == 0:
                data[pos] = rng.getrandbits(8)
            elif op == 1:
                data[pos:pos] = bytes(rng.getrandbits(8) for _ in range(rng.randrange(1, 8)))
            elif op == 2:
                del data[pos : pos + rng.randrange(1, 16)]
            elif op == 3:
                end = min(len(data), pos + rng.randrange(1, 64))
                data[pos:pos] = data[pos:end] * rng.randrange(1, 4)
            elif op == 4:
                data[pos:pos] = rng.choice((b"\r\n", b"\n", b"\r", b"\x00", b":", b" ", b"\r\n\r\n", b"%"))
            else:
                data[pos:pos] = rng.choice((b"\xff", b"\xc3\x28", b"\xf0\x9f\x98", b"\xed\xa0\x80"))
        return Case("mutated", bytes(data), None)

    def pipelined(self) -> Case:
        rng = self.rng
        parts = [self._valid_request() for _ in range(rng.randrange(2, 5))]
        if rng.random() < 0.5:
            parts.insert(rng.randrange(len(parts) + 1), rng.choice((b"GARBAGE\r\n\r\n", b"GET / HTTP/9\r\n\r\n")))
        return Case("pipelined", b"".join(parts), True)

    def random_bytes(self) -> Case:
        rng = self.rng
        data = bytes(rng.getrandbits(8) for _ in range(rng.randrange(1, 400)))
        if rng.random() < 0.5:
            data += b"\r\n\r\n"
        return Case("random_bytes", data, None)


# --- sending and judging ---


def judge(case: Case, data: bytes) -> tuple[list[int], str | None]:
    """The statuses of the responses in `data` and the first thing wrong with them, if any."""
    statuses: list[int] = []
    pos = 0
    while pos < len(data):
        end = data.find(b"\r\n\r\n", pos)
        if end < 0:
            return statuses, "response head cut off"
        lines = data[pos:end].split(b"\r\n")
        found = _STATUS_LINE.fullmatch(lines[0])
        if found is None:
            return statuses, f"bad status line {lines[0][:80]!r}"
        status = int(found.group(1))
        headers: dict[bytes, list[bytes]] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            if not sep or not name or name != name.strip():
                return statuses, f"bad header line {line[:80]!r}"
            headers.setdefault(name.lower(), []).append(value.strip())
        pos = end + 4
        if 100 <= status < 200:
            continue  # 100 Continue precedes the real answer
        statuses.append(status)
        if status >= 500:
            return statuses, f"server error {status}: {data[pos : pos + 200]!r}"
        if headers.get(b"x-content-type-options") != [b"nosniff"]:
            return statuses, f"{status} without X-Content-Type-Options: nosniff"
        if status in (204, 304):
            continue
        lengths = headers.get(b"content-length", [])
        if len(lengths) != 1 or not lengths[0].isdigit():
            return statuses, f"{status} with Content-Length {lengths!r}"
        length = int(lengths[0])
        if case.head_only and pos == len(data):
            continue
        body = data[pos : pos + length]
        if len(body) < length:
            return statuses, f"{status} body cut off ({len(body)} of {length} bytes)"
        pos += length
        if any(marker in body for marker in LEAK_MARKERS):
            return statuses, f"{status} body leaks a file: {body[:120]!r}"
        if status >= 400:
            problem = _error_shape(status, headers, body)
            if problem is not None:
                return statuses, problem
    if not statuses and case.complete:
        return statuses, "a whole request got no answer"
    return statuses, None


def _error_shape(status: int, headers: dict[bytes, list[bytes]], body: bytes) -> str | None:
    if headers.get(b"content-type") != [b"application/json"]:
        return f"{status} error with content type {headers.get(b'content-type')!r}"
    try:
        error = json.loads(body)["error"]
    except (ValueError, KeyError, TypeError):
        return f"{status} error body is not the error shape: {body[:120]!r}"
    if not isinstance(error, dict) or error.get("code") != status or not isinstance(error.get("message"), str):
        return f"{status} error body does not match its status: {body[:120]!r}"
    return None


def send(port: int, case: Case) -> Outcome:
    """Write the case, half-close, read until the server closes; judge what came back."""
    received = bytearray()
    reset = False
    with socket.create_connection(("127.0.0.1", port), timeout=SOCKET_TIMEOUT_S) as sock:
        try:
            sock.sendall(case.data)
            sock.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            reset = True  # the server answered early (e.g. 431) and closed; read what it said
        except OSError as exc:
            if exc.errno != errno.ENOTCONN:
                raise
            reset = True  # the same, with the reset arriving between the last write and the half-close
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                received += chunk
        except ConnectionResetError:
            reset = True
        except TimeoutError:
            return Outcome(case.kind, [], f"no end of answer within {SOCKET_TIMEOUT_S:g} s", bytes(received))
    statuses, problem = judge(case, bytes(received))
    if reset and not statuses and problem is None and case.complete:
        problem = "connection reset without an answer"
    return Outcome(case.kind, statuses, problem, bytes(received))


def run(port: int, cases: Iterable[Case], *, workers: int = 8) -> Report:
    """Send every case on its own connection, `workers` at a time."""
    report = Report()
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        batch: list[Case] = []
        for case in cases:
            batch.append(case)
            if len(batch) >= workers * 64:
                for sent, outcome in zip(batch, pool.map(lambda c: send(port, c), batch), strict=True):
                    report.add(sent, outcome)
                batch = []
        for sent, outcome in zip(batch, pool.map(lambda c: send(port, c), batch), strict=True):
            report.add(sent, outcome)
    report.seconds = time.monotonic() - started
    return report
