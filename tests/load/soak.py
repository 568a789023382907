"""A soak run: steady hits, dashboard reads and a crowd of idle and slowloris connections, with /proc samples.

Everything on the client side runs on one asyncio loop in this process; the
server is a subprocess (`tests.faults.process`), so its memory and descriptors
are its own. The load:

  hits       `hit_rate` load beacons per second, open loop: each is due at a
             fixed time and its latency counts from then, so a stall shows
             as latency instead of as fewer requests (no coordinated omission);
  reads      every `read_interval_s`, what the dashboard fetches for one page
             view (site list, summary with interval, ten panels, the app shell);
  idle       connections that never send a byte (the server drops them once
             its 10-second header timeout, counted from accept, has passed;
             they are reopened);
  slowloris  connections that send a request head one header every few
             seconds and never finish it: the server must answer 408 and close
             once the head has taken its 10-second header timeout; reopened.

The crowd comes from CROWD_SOURCES, loopback addresses in networks of their
own, so that it stays under the server's per-network connection cap (an
eighth of the slots, 512) the way a crowd of strangers would.

The report gives RSS and descriptor samples, hit latency percentiles and how
the slowloris connections ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import random
import resource
import time
from dataclasses import dataclass, field

from tests.faults.process import ADMIN, ServerProcess

SITE = "example.com"
CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
HIT_CONNECTIONS = 8  # keep-alive connections the hits are spread over, as a few browsers' worth of beacons
SLOWLORIS_DRIP_S = 3.0  # seconds between the header lines a slowloris connection sends
CONNECT_BATCH = 100  # connections opened at once when building the crowd, so the backlog never overflows
REQUEST_TIMEOUT_S = 30.0
SLOW_HIT_MS = 50.0  # hits slower than this are listed with their time, to tell what they coincided with
# Four /24s of loopback: 1,000 crowd connections are 250 a network, under the server's per-network cap.
CROWD_SOURCES = ("127.0.1.1", "127.0.2.1", "127.0.3.1", "127.0.4.1")
PANELS = ("pages", "time", "referrers", "sources", "mediums", "campaigns", "browsers", "os", "devices", "countries")


@dataclass(frozen=True)
class SoakConfig:
    duration_s: float = 60.0
    hit_rate: float = 100.0
    read_interval_s: float = 2.0
    idle: int = 500
    slowloris: int = 500
    sample_every_s: float = 5.0
    header_timeout_s: float = 10.0  # the server's HEADER_TIMEOUT_S; slowloris closes are judged against it
    memory_limit: str = ""  # set through PATCH /api/settings/usage first ("" keeps SQLite's page caches at default)


@dataclass
class Sample:
    at_s: float
    rss_kib: int
    sockets: int
    other_fds: int  # database files, WAL, the log, pipes: everything but sockets
    load_average: float  # the machine's 1-minute load average: how much else wanted the CPU

    @property
    def fds(self) -> int:
        return self.sockets + self.other_fds


@dataclass
class SoakResult:
    samples: list[Sample] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)
    latency_at_s: list[float] = field(default_factory=list)  # when each hit of `latencies_ms` was due, into the run
    slow_hits: list[tuple[float, float]] = field(default_factory=list)  # (seconds into the run, ms) over SLOW_HIT_MS
    hit_failures: list[str] = field(default_factory=list)
    reads: int = 0
    read_ms: list[float] = field(default_factory=list)  # each dashboard read request, from send to full answer
    read_failures: list[str] = field(default_factory=list)
    slowloris_closed: list[float] = field(default_factory=list)  # seconds from connecting to the server's close
    slowloris_statuses: dict[int, int] = field(default_factory=dict)
    slowloris_unclosed: int = 0  # still open at the end, older than the header timeout + 3 s
    idle_closed: int = 0
    sockets_before: int = 0  # server sockets before the load: the listener and the event loop's self-pipe
    sockets_after: int = 0  # and after every client connection has closed
    fds_before: int = 0
    fds_after: int = 0
    crowd_peak: int = 0

    def percentile(self, p: float, values: list[float] | None = None) -> float:
        """The p-th percentile (nearest rank) of the hit latencies, or of `values`."""
        ordered = sorted(self.latencies_ms if values is None else values)
        if not ordered:
            return math.nan
        return ordered[min(len(ordered) - 1, math.ceil(p / 100 * len(ordered)) - 1)]

    def p99_by_minute(self) -> list[float]:
        """The p99 hit latency of each minute of the run: a stall that grows with time shows as a trend."""
        minutes: dict[int, list[float]] = {}
        for at, latency in zip(self.latency_at_s, self.latencies_ms, strict=True):
            minutes.setdefault(int(at // 60), []).append(latency)
        return [self.percentile(99, minutes[m]) for m in sorted(minutes)]

    def summary(self) -> str:
        first, last = self.samples[0], self.samples[-1]
        peak = max(s.rss_kib for s in self.samples)
        closes = sorted(self.slowloris_closed)
        close_range = f"{closes[0]:.1f}-{closes[-1]:.1f} s" if closes else "none"
        return "\n".join(
            [
                f"hits: {len(self.latencies_ms)} ok, {len(self.hit_failures)} failed; latency p50 "
                f"{self.percentile(50):.1f} ms, p99 {self.percentile(99):.1f} ms, max {max(self.latencies_ms):.1f} ms",
                "p99 by minute: " + ", ".join(f"{p:.0f}" for p in self.p99_by_minute()) + " ms",
                f"dashboard reads: {self.reads} ok, {len(self.read_failures)} failed; latency p50 "
                f"{self.percentile(50, self.read_ms):.1f} ms, p99 {self.percentile(99, self.read_ms):.1f} ms",
                f"RSS: {first.rss_kib / 1024:.1f} MiB at {first.at_s:.0f} s, {last.rss_kib / 1024:.1f} MiB at "
                f"{last.at_s:.0f} s, peak {peak / 1024:.1f} MiB",
                f"fds: {first.fds} at {first.at_s:.0f} s, {last.fds} at {last.at_s:.0f} s (sockets {first.sockets}, "
                f"{last.sockets}); before load {self.fds_before} ({self.sockets_before} sockets), after it "
                f"{self.fds_after} ({self.sockets_after} sockets)",
                f"crowd: peak {self.crowd_peak} idle+slowloris connections; slowloris closed by the server: "
                f"{len(closes)} after {close_range} ({self.slowloris_statuses}), {self.slowloris_unclosed} overdue; "
                f"idle closed by the server: {self.idle_closed}",
                f"machine load average: {min(s.load_average for s in self.samples):.1f}-"
                f"{max(s.load_average for s in self.samples):.1f} on {os.cpu_count()} cores",
            ]
        )


def hit_request(bid: str, path: str) -> bytes:
    body = json.dumps({"e": "load", "b": bid, "u": f"https://{SITE}{path}", "r": "https://www.google.com/",
                       "p": True, "q": True, "t": "Europe/Paris"}).encode()  # fmt: skip
    head = (
        f"POST /api/event/hit HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: {CHROME}\r\nAccept-Language: en-GB\r\n"
        f"Content-Type: text/plain;charset=UTF-8\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, data: bytes) -> tuple[int, bytes]:
    """Send one request on a keep-alive connection and read its response."""
    writer.write(data)
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.lower() == "content-length":
            length = int(value)
    body = await reader.readexactly(length) if length else b""
    return status, body


class Soak:
    def __init__(self, server: ServerProcess, config: SoakConfig, cookie: str) -> None:
        self.server = server
        self.config = config
        self.cookie = cookie
        self.result = SoakResult()
        self.crowd: set[asyncio.Task[None]] = set()
        self.open_crowd = 0
        self.spawned = 0
        self.stopping = False

    async def run(self) -> SoakResult:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        wanted = self.config.idle + self.config.slowloris + 200
        if soft < wanted:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, wanted), hard))
        self.result.sockets_before, other = self.server.fd_kinds()
        self.result.fds_before = self.result.sockets_before + other
        await self._build_crowd()
        started = time.monotonic()
        tasks = [asyncio.create_task(self._hits(started, n)) for n in range(HIT_CONNECTIONS)]
        tasks.append(asyncio.create_task(self._reads(started)))
        tasks.append(asyncio.create_task(self._sampler(started)))
        await asyncio.gather(*tasks)
        self.stopping = True
        for task in list(self.crowd):
            task.cancel()
        await asyncio.gather(*self.crowd, return_exceptions=True)
        await asyncio.sleep(1.0)  # the server notices the closes
        self.result.sockets_after, other = self.server.fd_kinds()
        self.result.fds_after = self.result.sockets_after + other
        return self.result

    # the crowd of idle and slowloris connections

    async def _build_crowd(self) -> None:
        """Open the crowd, spread over one header timeout as strangers' would, so the 408s and the
        silent closes (the head clock starts at accept) come as a steady trickle rather than all in
        the same sweep. It is all up by the time the samples count (`header_timeout_s` in)."""
        rng = random.Random(7)
        kinds = ["idle"] * self.config.idle + ["slowloris"] * self.config.slowloris
        rng.shuffle(kinds)
        for start in range(0, len(kinds), CONNECT_BATCH):
            for kind in kinds[start : start + CONNECT_BATCH]:
                self._spawn(kind, rng.uniform(0, self.config.header_timeout_s))
            await asyncio.sleep(0.05)

    def _spawn(self, kind: str, delay: float = 0.0) -> None:
        if self.stopping:
            return
        source = CROWD_SOURCES[self.spawned % len(CROWD_SOURCES)]
        self.spawned += 1
        task = asyncio.create_task(self._idle(source, delay) if kind == "idle" else self._slowloris(source, delay))
        self.crowd.add(task)

        def done(finished: asyncio.Task[None]) -> None:
            self.crowd.discard(finished)
            if not finished.cancelled():
                self._spawn(kind)  # keep the crowd at its size (from the next source in turn)

        task.add_done_callback(done)

    async def _idle(self, source: str, delay: float) -> None:
        await asyncio.sleep(delay)
        reader, writer = await asyncio.open_connection("127.0.0.1", self.server.port, local_addr=(source, 0))
        self.open_crowd += 1
        self.result.crowd_peak = max(self.result.crowd_peak, self.open_crowd)
        try:
            if await reader.read(1) == b"":
                self.result.idle_closed += 1
        finally:
            self.open_crowd -= 1
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def _slowloris(self, source: str, delay: float) -> None:
        await asyncio.sleep(delay)
        connecting = time.monotonic()  # the server's head clock starts at accept, just after this
        reader, writer = await asyncio.open_connection("127.0.0.1", self.server.port, local_addr=(source, 0))
        self.open_crowd += 1
        self.result.crowd_peak = max(self.result.crowd_peak, self.open_crowd)
        answer = asyncio.create_task(reader.read())
        try:
            writer.write(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            line = 0
            overdue = False
            while not answer.done():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(answer), SLOWLORIS_DRIP_S)
                if not answer.done():
                    line += 1
                    if not overdue and time.monotonic() - connecting > self.config.header_timeout_s + 3:
                        self.result.slowloris_unclosed += 1
                        overdue = True
                    with contextlib.suppress(ConnectionError):
                        writer.write(b"X-Drip-%d: %d\r\n" % (line, line))
            data = answer.result()
            self.result.slowloris_closed.append(time.monotonic() - connecting)
            status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.1 ") else 0
            self.result.slowloris_statuses[status] = self.result.slowloris_statuses.get(status, 0) + 1
        finally:
            answer.cancel()
            self.open_crowd -= 1
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    # the measured load

    async def _hits(self, started: float, lane: int) -> None:
        interval = HIT_CONNECTIONS / self.config.hit_rate
        due = started + lane * interval / HIT_CONNECTIONS
        end = started + self.config.duration_s
        reader, writer = await asyncio.open_connection("127.0.0.1", self.server.port)
        i = 0
        try:
            while due < end:
                now = time.monotonic()
                if due > now:
                    await asyncio.sleep(due - now)
                i += 1
                data = hit_request(f"soak{lane}x{i}", f"/page{i % 50}")
                try:
                    status, body = await asyncio.wait_for(exchange(reader, writer, data), REQUEST_TIMEOUT_S)
                except (OSError, asyncio.IncompleteReadError, TimeoutError) as exc:
                    self.result.hit_failures.append(repr(exc))
                    writer.close()
                    reader, writer = await asyncio.open_connection("127.0.0.1", self.server.port)
                else:
                    if status == 204:
                        latency = (time.monotonic() - due) * 1000
                        self.result.latencies_ms.append(latency)
                        self.result.latency_at_s.append(due - started)
                        if latency > SLOW_HIT_MS:
                            self.result.slow_hits.append((due - started, latency))
                    else:
                        self.result.hit_failures.append(f"{status} {body[:200]!r}")
                due += interval
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    def _read_requests(self) -> list[bytes]:
        now = time.time()
        start = time.strftime("%Y-%m-%dT%H:00:00Z", time.gmtime(now - 86400))
        end = time.strftime("%Y-%m-%dT%H:59:59Z", time.gmtime(now))
        window = f"start={start}&end={end}"
        cookie = f"Cookie: _me_sess={self.cookie}\r\n"
        paths = ["/api/websites?summary=true", f"/api/website/{SITE}/summary?previous=true&interval=hour&{window}"]
        paths += [f"/api/website/{SITE}/{panel}?summary=true&limit=5&{window}" for panel in PANELS]
        paths.append(f"/api/website/{SITE}/properties?{window}")
        requests = [f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{cookie}\r\n".encode() for path in paths]
        requests.append(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept-Encoding: gzip\r\n\r\n")
        return requests

    async def _reads(self, started: float) -> None:
        end = started + self.config.duration_s
        reader, writer = await asyncio.open_connection("127.0.0.1", self.server.port)
        try:
            while time.monotonic() < end:
                for data in self._read_requests():
                    sent = time.monotonic()
                    try:
                        status, body = await asyncio.wait_for(exchange(reader, writer, data), REQUEST_TIMEOUT_S)
                    except (OSError, asyncio.IncompleteReadError, TimeoutError) as exc:
                        self.result.read_failures.append(repr(exc))
                        writer.close()
                        reader, writer = await asyncio.open_connection("127.0.0.1", self.server.port)
                        continue
                    if status == 200:
                        self.result.reads += 1
                        self.result.read_ms.append((time.monotonic() - sent) * 1000)
                    else:
                        self.result.read_failures.append(f"{status} {body[:200]!r}")
                await asyncio.sleep(max(0.0, min(self.config.read_interval_s, end - time.monotonic())))
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def _sampler(self, started: float) -> None:
        end = started + self.config.duration_s
        while True:
            now = time.monotonic()
            sockets, other = self.server.fd_kinds()
            self.result.samples.append(Sample(now - started, self.server.rss_kib(), sockets, other, os.getloadavg()[0]))
            if now >= end:
                return
            await asyncio.sleep(min(self.config.sample_every_s, max(0.0, end - now)))


def login(server: ServerProcess, memory_limit: str = "") -> str:
    """Log in as the default admin, register the site, set the memory limit, return the session cookie."""
    from tests.helpers import Client

    client = Client(server.port)
    try:
        client.login(*ADMIN)
        assert client.post("/api/websites", json_body={"hostname": SITE}).status == 201
        if memory_limit:
            assert client.patch("/api/settings/usage", json_body={"memory_limit": memory_limit}).status == 201
        # The first hit builds the block lists and warms the parsers (~0.5 s): start-up, not load.
        warm_up = hit_request("warm-up", "/").split(b"\r\n\r\n", 1)[1]
        headers = {"User-Agent": CHROME, "Accept-Language": "en-GB", "Content-Type": "text/plain"}
        assert client.post("/api/event/hit", body=warm_up, headers=headers).status == 204
        return client.cookies["_me_sess"]
    finally:
        client.close()


def soak(server: ServerProcess, config: SoakConfig) -> SoakResult:
    cookie = login(server, config.memory_limit)
    return asyncio.run(Soak(server, config, cookie).run())
