"""The floor of issue 19: what a minimal stand-alone server pays here per ping, stored load hit and load+unload pair.

A server of its own, none of medama's http/, app.py or api/ layers, built up
in levels, each measured under the same wrk load as bench/ingest.py (its Lua
request generator, run through its `run_wrk`, and its /proc per-thread CPU
accounting; that module is loaded from its file, as bench/pipeline.py does):

  http    an asyncio.Protocol (on uvloop when importable, as medama runs) that
          finds each request's header end by hand, reads Content-Length and
          answers a fixed 204 (a GET: a fixed ping answer) at once;
  parse   + `json.loads` of the body, the checks a tracker beacon needs
          (types, lengths), and its `views` row as a tuple in VIEW_COLUMNS
          order, enriched from dicts keyed by (page URL, referrer) and
          (User-Agent, Accept-Language, time zone), bounded at CACHE_ENTRIES
          (a miss computes a crude value: in the steady state every lookup
          hits, as wrk's value mix repeats), answered at once, nothing stored;
  ack     + one writer thread that group-commits the rows into plain tables
          without any index or constraint (a load: an INSERT into
          plain_views; an unload: an INSERT into plain_durations, no UPDATE),
          each request answered only after its batch's COMMIT (WAL,
          synchronous=NORMAL, medama's connection pragmas), one
          `call_soon_threadsafe` per batch, batches of at most MAX_BATCH_OPS;
  schema  the same writer and hand-off, but into medama's analytics database
          (store/sqlite/db.Database with the real migrations and
          `checkpoint_beside`, the checkpointer thread nudged after each
          batch as Database's writer does) through the real
          `store/sqlite/hits.apply_batch` with NewView / Duration ops: the
          store's cost exactly as medama pays it (indexes, unload UPDATE join,
          site_hits, rollup marking).

`ack` uses the same connection pragmas, wal_autocheckpoint and checkpointer
as `schema`, so the two differ by the schema and `apply_batch` alone.
A ping is answered the same way at every level, so mode `ping` runs at
`http` only. The table gives, per level and mode, requests/s, p99, the
server's CPU µs per request split into the event-loop thread and the others
(writer and checkpointer), user + system, per stored hit (load) or pair
(pairs: two requests), with the 1-minute load average. No thresholds.

Usage: python bench/floor.py [--duration 8] [--levels http,parse,ack,schema] [--modes ping,load,pairs]
       python bench/floor.py --parse-cost 20000   (level parse's work on a request alone, in-process)
       python bench/floor.py --serve LEVEL --port PORT --dir DIR   (one server, until SIGTERM)
Needs `wrk` (apt-get install wrk).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import queue
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final, cast

ROOT = Path(__file__).resolve().parent.parent
# Not bench/ itself on the path: its http.py would hide the standard library's http package.
sys.path[0] = str(ROOT)


# bench/ingest.py (its wrk script, value mix and CPU accounting), as a module of the namespace package bench.
from bench import ingest as mix  # noqa: E402
from medama_core.backends.sqlite import WAL_CHECKPOINT_PAGES  # noqa: E402
from medama_core.store.rows import Duration, NewView, Op  # noqa: E402
from medama_core.store.sqlite import analytics, db, hits, malloc  # noqa: E402
from medama_core.store.sqlite.checkpointer import CHECKPOINT_PAGES, Checkpointer  # noqa: E402
from medama_core.writer import MAX_BATCH_OPS  # noqa: E402

LEVELS: Final = ("http", "parse", "ack", "schema")
SITES: Final = frozenset(mix.SITES)

NO_CONTENT: Final = b"HTTP/1.1 204 No Content\r\nAccess-Control-Allow-Origin: *\r\n\r\n"
PING_ANSWER: Final = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 1\r\nCache-Control: no-cache\r\n\r\n0"
)
BAD_REQUEST: Final = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"
NOT_FOUND: Final = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
UNAVAILABLE: Final = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n"

# Most servers refuse request heads over 8 KiB (nginx's default header buffer): a longer one is closed.
MAX_HEAD_BYTES: Final = 8192
# medama's bound on a beacon body (ingest/hit.py MAX_BODY_BYTES): a real one is well under 16 KiB.
MAX_BODY_BYTES: Final = 64 * 1024
# medama's bounds on a beacon's fields (ingest/hit.py): an id, a URL, a time zone, an unload's duration.
MAX_BEACON_CHARS: Final = 64
MAX_URL_CHARS: Final = 8192
MAX_TIMEZONE_CHARS: Final = 64
MAX_DURATION_MS: Final = 24 * 60 * 60 * 1000
# Entries each enrichment dict keeps before it is emptied: wrk's mix has ~1,100 (URL, referrer) and
# 2,400 (User-Agent, language, zone) keys, so in the steady state every lookup hits, the floor's case.
CACHE_ENTRIES: Final = 4096
# Seconds of wrk before each measured run: the caches, the page cache and the WAL fill.
WARMUP_S: Final = 2

CONTENT_LENGTH: Final = b"\r\ncontent-length:"
USER_AGENT: Final = b"\r\nuser-agent:"
ACCEPT_LANGUAGE: Final = b"\r\naccept-language:"

# Crude enrichment for a cache miss (only the first sight of each key): a few referrer groups, countries
# by time zone, browsers and systems by a token of the User-Agent, first match wins.
REFERRER_GROUPS: Final = {"www.google.com": "Google", "www.bing.com": "Bing", "duckduckgo.com": "DuckDuckGo"}
COUNTRIES: Final = {"America/New_York": "US", "Europe/London": "GB", "Europe/Berlin": "DE", "Asia/Tokyo": "JP"}
BROWSERS: Final = (("Edg/", "Edge"), ("OPR/", "Opera"), ("Firefox/", "Firefox"), ("Chrome/", "Chrome"))
SYSTEMS: Final = (("Windows", "Windows"), ("Android", "Android"), ("iPhone", "iOS"), ("Mac OS X", "macOS"))

Arrival = tuple[str, str, str, str, str, str, str, str]  # host, path, 3 UTM, referrer host, group, internal path
Visitor = tuple[bool, str, str, str, str, str, str]  # is a bot, browser, OS, device, country, language, dialect
_arrivals: dict[tuple[str, str], Arrival] = {}
_visitors: dict[tuple[str, str, str], Visitor] = {}


def arrival_of(url: str, referrer: str) -> Arrival | None:
    """Host, path, UTM tags and referrer of a page view (None: not an absolute http(s) URL)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    query = dict(urllib.parse.parse_qsl(parts.query))
    utm = (query.get("utm_source", ""), query.get("utm_medium", ""), query.get("utm_campaign", ""))
    ref_host = ref_group = ref_path = ""
    if referrer:
        ref = urllib.parse.urlsplit(referrer)
        if ref.hostname == parts.hostname:
            ref_path = ref.path or "/"
        else:
            ref_host = ref.hostname or ""
            ref_group = REFERRER_GROUPS.get(ref_host, "")
    return (parts.hostname, parts.path or "/", *utm, ref_host, ref_group, ref_path)


def visitor_of(user_agent: str, accept_language: str, timezone: str) -> Visitor:
    """Bot or not, browser, OS, device, country and language of a visitor."""
    browser = next((name for token, name in BROWSERS if token in user_agent), "")
    system = next((name for token, name in SYSTEMS if token in user_agent), "")
    device = "mobile" if "Mobile" in user_agent else "desktop"
    tag = accept_language.split(",", 1)[0].split(";", 1)[0].strip()
    base, _, dialect = tag.partition("-")
    bot = "bot" in user_agent.lower()
    return bot, browser, system, device, COUNTRIES.get(timezone, ""), base.lower(), dialect.upper()


def header(head: bytes, low: bytes, name: bytes) -> str:
    """The value of header `name` (b"\\r\\nname:", lower case) in a request head ('' if absent)."""
    at = low.find(name)
    if at < 0:
        return ""
    start = at + len(name)
    stop = low.find(b"\r\n", start)
    return head[start : stop if stop >= 0 else len(head)].strip().decode("latin-1")


def op_of(head: bytes, low: bytes, body: bytes, now_ms: int) -> Op | bytes | None:
    """The op a beacon stores, or the answer that refuses it (bytes), or None for a hit dropped (a bot)."""
    try:
        d = json.loads(body)
    except ValueError:
        return BAD_REQUEST
    if type(d) is not dict:
        return BAD_REQUEST
    bid = d.get("b")
    if type(bid) is not str or not 0 < len(bid) <= MAX_BEACON_CHARS or not bid.isascii():
        return BAD_REQUEST
    kind = d.get("e")
    if kind == "unload":
        ms = d.get("m")
        if type(ms) is not int or not 0 < ms <= MAX_DURATION_MS:
            return BAD_REQUEST
        return Duration(bid, ms)
    if kind != "load":
        return BAD_REQUEST
    url, ref, tz, user, page = d.get("u"), d.get("r", ""), d.get("t", ""), d.get("p"), d.get("q")
    if type(url) is not str or type(ref) is not str or type(tz) is not str:
        return BAD_REQUEST
    if type(user) is not bool or type(page) is not bool:
        return BAD_REQUEST
    if len(url) > MAX_URL_CHARS or len(ref) > MAX_URL_CHARS or len(tz) > MAX_TIMEZONE_CHARS:
        return BAD_REQUEST
    key = (url, ref)
    arrival = _arrivals.get(key)
    if arrival is None:
        arrival = arrival_of(url, ref)
        if arrival is None:  # not kept: a refused URL is rare
            return BAD_REQUEST
        if len(_arrivals) >= CACHE_ENTRIES:
            _arrivals.clear()
        _arrivals[key] = arrival
    host, path, utm_source, utm_medium, utm_campaign, ref_host, ref_group, ref_path = arrival
    if host not in SITES:
        return NOT_FOUND
    who = (header(head, low, USER_AGENT), header(head, low, ACCEPT_LANGUAGE), tz)
    visitor = _visitors.get(who)
    if visitor is None:
        if len(_visitors) >= CACHE_ENTRIES:
            _visitors.clear()
        visitor = _visitors[who] = visitor_of(*who)
    bot, browser, system, device, country, language, dialect = visitor
    if bot:
        return None
    view = (bid, host, path, user, page, ref_host, ref_group, country, language, dialect, browser, system, device,
            utm_source, utm_medium, utm_campaign, None, now_ms)  # fmt: skip
    return NewView(view, referrer_path=ref_path)


Write = Callable[[list[Op]], Sequence[Exception | None]]  # one batch in one transaction; per op, its error


class GroupCommit:
    """One writer thread: the ops that arrive while it writes go into its next transaction, and each op's
    connection is answered once that transaction committed (one `call_soon_threadsafe` per batch)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, write: Write) -> None:
        self.loop = loop
        self.write = write
        self.ops: list[Op] = []
        self.waiting: list[asyncio.Transport] = []
        self.busy = False  # a batch is with the writer thread
        self.handing = False  # a hand-off is scheduled on the loop
        self.batches: queue.SimpleQueue[tuple[list[Op], list[asyncio.Transport]] | None] = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._run, name="floor-writer", daemon=True)
        self.thread.start()

    def submit(self, op: Op, transport: asyncio.Transport) -> None:
        """Queue `op`; `transport` gets its answer after the commit (event-loop thread)."""
        self.ops.append(op)
        self.waiting.append(transport)
        if not self.busy and not self.handing:
            self.handing = True  # after this loop iteration's other reads: they join the batch
            self.loop.call_soon(self._hand)

    def _hand(self) -> None:
        self.handing = False
        if self.busy or not self.ops:
            return
        ops, waiting = self.ops[:MAX_BATCH_OPS], self.waiting[:MAX_BATCH_OPS]
        del self.ops[:MAX_BATCH_OPS], self.waiting[:MAX_BATCH_OPS]
        self.busy = True
        self.batches.put((ops, waiting))

    def _run(self) -> None:
        while (batch := self.batches.get()) is not None:
            ops, waiting = batch
            try:
                answers = [UNAVAILABLE if error else NO_CONTENT for error in self.write(ops)]
            except Exception as exc:  # a failed COMMIT: nothing of the batch was written
                print(f"batch of {len(ops)} failed: {exc!r}", file=sys.stderr)
                answers = [UNAVAILABLE] * len(ops)
            self.loop.call_soon_threadsafe(self._done, waiting, answers)

    def _done(self, waiting: list[asyncio.Transport], answers: list[bytes]) -> None:
        for transport, answer in zip(waiting, answers, strict=True):
            if not transport.is_closing():
                transport.write(answer)
        self.busy = False
        if self.ops:
            self._hand()

    def stop(self) -> None:
        self.batches.put(None)
        self.thread.join()


class Client(asyncio.Protocol):
    """One connection: requests framed by hand (head end, Content-Length), each given to `handle`."""

    def __init__(self, handle: Callable[[asyncio.Transport, bytes, bytes, bytes], None]) -> None:
        self.handle = handle
        self.buf = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports are no subclass of it

    def data_received(self, data: bytes) -> None:
        transport = self.transport
        assert transport is not None
        buf = self.buf + data if self.buf else data
        while (end := buf.find(b"\r\n\r\n")) >= 0:
            head = buf[:end]
            low = head.lower()
            length = 0
            at = low.find(CONTENT_LENGTH)
            if at >= 0:
                stop = low.find(b"\r\n", at + len(CONTENT_LENGTH))
                try:
                    length = int(low[at + len(CONTENT_LENGTH) : stop if stop >= 0 else len(low)])
                except ValueError:
                    length = -1
            if not 0 <= length <= MAX_BODY_BYTES:
                transport.write(BAD_REQUEST)
                transport.close()
                return
            start = end + 4
            if len(buf) - start < length:
                break
            body = buf[start : start + length]
            buf = buf[start + length :]
            self.handle(transport, head, low, body)
        if len(buf) > MAX_HEAD_BYTES + MAX_BODY_BYTES:
            transport.close()
            return
        self.buf = buf


def plain_store(path: str) -> tuple[Write, Callable[[], None]]:
    """Level `ack`'s store: tables without index or constraint, medama's pragmas and checkpointer."""
    malloc.limit_arenas()  # as store/sqlite/db.Database does before its threads start
    malloc.fix_mmap_threshold()
    conn = db.connect(path)
    conn.execute(
        "CREATE TABLE IF NOT EXISTS plain_views (bid TEXT, hostname TEXT, pathname TEXT, is_unique_user INTEGER,"
        " is_unique_page INTEGER, referrer_host TEXT, referrer_group TEXT, country TEXT, language_base TEXT,"
        " language_dialect TEXT, ua_browser TEXT, ua_os TEXT, ua_device_type TEXT, utm_source TEXT,"
        " utm_medium TEXT, utm_campaign TEXT, date_created INTEGER, referrer_path TEXT)"
    )
    conn.execute("CREATE TABLE IF NOT EXISTS plain_durations (bid TEXT, duration_ms INTEGER)")
    conn.execute(f"PRAGMA wal_autocheckpoint = {WAL_CHECKPOINT_PAGES}")  # as Database.checkpoint_beside
    checkpointer = Checkpointer(path, CHECKPOINT_PAGES, WAL_CHECKPOINT_PAGES)

    def insert(table: str, width: int, rows: list[tuple[object, ...]]) -> None:
        start = 0
        for size in hits.CHUNK_SIZES:  # multi-row INSERTs, as apply_batch's (its comment says why)
            while len(rows) - start >= size:
                values = ", ".join([f"({', '.join('?' * width)})"] * size)
                chunk = rows[start : start + size]
                conn.execute(f"INSERT INTO {table} VALUES {values}", list(itertools.chain.from_iterable(chunk)))
                start += size

    def write(ops: list[Op]) -> Sequence[Exception | None]:
        views: list[tuple[object, ...]] = []
        durations: list[tuple[object, ...]] = []
        for op in ops:
            if type(op) is NewView:
                v = op.view
                views.append((*v[:3], 1 if v[3] else 0, 1 if v[4] else 0, *v[5:16], v[17], op.referrer_path))
            elif type(op) is Duration:
                durations.append((op.bid, op.duration_ms))
        try:
            conn.execute("BEGIN IMMEDIATE")
            insert("plain_views", 18, views)
            insert("plain_durations", 2, durations)
            conn.execute("COMMIT")
        finally:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            checkpointer.nudge()
        return [None] * len(ops)

    def close() -> None:
        checkpointer.stop()
        conn.close()

    return write, close


def medama_store(path: str) -> tuple[Write, Callable[[], None]]:
    """Level `schema`'s store: medama's analytics database and `hits.apply_batch`, the checkpointer beside."""
    database = db.Database(path, analytics.MIGRATIONS, marker=analytics.MARKER_TABLE)
    database.checkpoint_beside(CHECKPOINT_PAGES, WAL_CHECKPOINT_PAGES)
    checkpointer = database.checkpointer
    assert checkpointer is not None

    def write(ops: list[Op]) -> Sequence[Exception | None]:
        try:
            return hits.apply_batch(database.writer_conn, ops)
        finally:
            checkpointer.nudge()

    return write, database.close


async def serve(level: str, port: int, folder: Path) -> None:
    """Serve `level` on 127.0.0.1:`port` until SIGTERM or SIGINT."""
    loop = asyncio.get_running_loop()
    store: tuple[Write, Callable[[], None]] | None = None
    if level == "ack":
        store = plain_store(str(folder / "floor_plain.db"))
    elif level == "schema":
        store = medama_store(str(folder / "me_analytics.db"))
    writer = GroupCommit(loop, store[0]) if store else None

    def handle(transport: asyncio.Transport, head: bytes, low: bytes, body: bytes) -> None:
        if not body:
            transport.write(PING_ANSWER if head.startswith(b"GET ") else NO_CONTENT)
            return
        if level == "http":
            transport.write(NO_CONTENT)
            return
        op = op_of(head, low, body, int(time.time() * 1000))
        if op is None:
            transport.write(NO_CONTENT)
        elif type(op) is bytes:
            transport.write(op)
        elif writer is None:
            transport.write(NO_CONTENT)
        else:
            writer.submit(op, transport)  # type: ignore[arg-type]

    server = await loop.create_server(lambda: Client(handle), "127.0.0.1", port, backlog=1024)
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    server.close()
    if writer is not None:
        writer.stop()
    if store is not None:
        store[1]()


def run_server(level: str, port: int, folder: Path) -> None:
    """`serve` on uvloop when it is importable (as medama runs), else on the standard library's loop."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(level, port, folder))
        return
    uvloop.run(serve(level, port, folder))


def stored(level: str, folder: Path) -> tuple[int, int]:
    """(views, durations) stored so far at `level` ((0, 0) for the levels that store nothing)."""
    if level == "schema":
        views, durations = mix.count_rows(folder)
        return int(views), int(durations)
    if level != "ack":
        return 0, 0
    conn = sqlite3.connect(folder / "floor_plain.db")
    try:
        views = conn.execute("SELECT count(*) FROM plain_views").fetchone()[0]
        durations = conn.execute("SELECT count(*) FROM plain_durations").fetchone()[0]
    finally:
        conn.close()
    return int(views), int(durations)


def bench_level(level: str, modes: list[str], args: argparse.Namespace) -> list[dict[str, float | str]]:
    """Start the `level` server and run each mode (a warm-up, then the measured run) against it."""
    rows: list[dict[str, float | str]] = []
    with tempfile.TemporaryDirectory(prefix="floor-") as tmp:
        folder = Path(tmp)
        port = mix.free_port()
        cmd = [sys.executable, str(Path(__file__).resolve()), "--serve", level, "--port", str(port), "--dir", tmp]
        log = (folder / "server.log").open("wb")
        server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log)
        try:
            mix.wait_port(port)
            pid = server.pid
            for mode in modes:
                mix.run_wrk(port, mode, WARMUP_S, args.connections, args.threads, folder)
                before = stored(level, folder)
                cpu_before = mix.thread_cpu(pid)
                switches_before = mix.context_switches(pid)
                result: dict[str, float | str] = {"level": level, "mode": mode}
                result.update(mix.run_wrk(port, mode, args.duration, args.connections, args.threads, folder))
                for name, now, then in zip(
                    ("loop_user", "loop_sys", "other_user", "other_sys"), mix.thread_cpu(pid), cpu_before, strict=True
                ):
                    result[name] = now - then
                result["switches"] = mix.context_switches(pid) - switches_before
                time.sleep(0.2)
                after = stored(level, folder)
                result["views"], result["durations"] = after[0] - before[0], after[1] - before[1]
                result["hwm_mib"] = mix.proc_status(pid, "VmHWM") / 1024
                result["loadavg"] = os.getloadavg()[0]
                rows.append(result)
                print(line(result), flush=True)
        finally:
            server.terminate()
            server.wait(30)
            log.close()
        errors = (folder / "server.log").read_text().strip()
        if errors:
            print(f"the {level} server wrote to stderr: {errors[:400]}")
    return rows


HEADER: Final = (
    f"{'level':7} {'mode':6} {'req/s':>7} {'p99 ms':>7} {'non2xx':>6} {'stored':>7} {'load':>5}"
    f" {'us/req':>7} {'loop u+s':>11} {'other u+s':>11} {'us/hit|pair':>11} {'cs/req':>6} {'RSS MiB':>7}"
)


def line(r: dict[str, float | str]) -> str:
    """One row of the table: CPU per request, by thread, and per stored hit (load) or pair (pairs)."""
    requests = max(float(r["requests"]), 1.0)
    per = 1e6 / requests
    parts = [float(r[name]) * per for name in ("loop_user", "loop_sys", "other_user", "other_sys")]
    total = sum(parts)
    unit = total * 2 if r["mode"] == "pairs" else total
    return (
        f"{r['level']:7} {r['mode']:6} {float(r['rps']):>7.0f} {float(r['p99_ms']):>7.2f} {float(r['non2xx']):>6.0f}"
        f" {float(r['views']):>7.0f} {float(r['loadavg']):>5.2f} {total:>7.1f} {parts[0]:>5.1f}+{parts[1]:<5.1f}"
        f" {parts[2]:>5.1f}+{parts[3]:<5.1f} {unit:>11.1f} {float(r['switches']) / requests:>6.2f}"
        f" {float(r['hwm_mib']):>7.1f}"
    )


def parse_cost(count: int, rounds: int = 3) -> None:
    """Print the CPU µs of level `parse`'s work on a request (`op_of`, its head lowered), in-process, over
    `count` loads of wrk's value mix; the first round fills the caches (bench/pipeline.py: medama's)."""
    rng = random.Random(1)
    requests = []
    for i in range(count):
        site = rng.choice(mix.SITES)
        ref = f"https://{site}{rng.choice(mix.PATHS)}" if rng.random() < 0.5 else rng.choice(mix.REFERRERS)
        beacon: dict[str, object] = {
            "b": f"lx{i:08d}{rng.randrange(10**9)}",
            "e": "load",
            "u": f"https://{site}{rng.choice(mix.PATHS)}",
        }
        beacon |= {"r": ref, "p": rng.random() < 0.3, "q": rng.random() < 0.6, "t": rng.choice(mix.TIMEZONES)}
        body = json.dumps(beacon, separators=(",", ":")).encode()
        head = (
            f"POST /api/event/hit HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: {rng.choice(mix.USER_AGENTS)}\r\n"
            f"Accept-Language: {rng.choice(mix.LANGUAGES)}\r\nContent-Type: text/plain;charset=UTF-8\r\n"
            f"Origin: https://example.com\r\nContent-Length: {len(body)}"
        ).encode()
        requests.append((head, body))
    print(f"level parse in-process, {count} loads, load avg {os.getloadavg()[0]:.2f}")
    for round_ in range(1, rounds + 1):
        start = time.thread_time()
        for head, body in requests:
            op_of(head, head.lower(), body, 0)
        json_start = time.thread_time()
        for _head, body in requests:
            json.loads(body)
        end = time.thread_time()
        whole, parse = (json_start - start) / count * 1e6, (end - json_start) / count * 1e6
        print(f"round {round_}: {whole:.2f} us a load, of which json.loads {parse:.2f}")


def main() -> int:
    parser = argparse.ArgumentParser(description="the floor of issue 19: a minimal server's CPU per hit, by level")
    parser.add_argument("--duration", type=int, default=8, help="seconds per measured run")
    parser.add_argument("--connections", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (the server has the other core)")
    parser.add_argument("--levels", default=",".join(LEVELS))
    parser.add_argument("--modes", default="ping,load,pairs", help="ping runs at level http only")
    parser.add_argument("--serve", choices=LEVELS, help="run one server of this level (no wrk)")
    parser.add_argument("--port", type=int, default=0, help="with --serve")
    parser.add_argument("--dir", help="with --serve: the folder of its database")
    parser.add_argument("--parse-cost", type=int, metavar="N", help="only time level parse's work in-process")
    args = parser.parse_args()
    if args.parse_cost:
        parse_cost(args.parse_cost)
        return 0
    if args.serve:
        run_server(args.serve, args.port, Path(args.dir or "."))
        return 0
    modes = args.modes.split(",")
    print(f"{args.connections} connections, wrk -t{args.threads}, {args.duration} s per run, {os.cpu_count()} cores")
    print("us/req: server CPU per request (loop: the event-loop thread; other: writer + checkpointer), user+system;")
    print("us/hit|pair: per load (load) or per load+unload pair (pairs); cs/req: context switches; RSS: peak")
    print(HEADER, flush=True)
    for level in args.levels.split(","):
        bench_level(level, [m for m in modes if m != "ping" or level == "http"], args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
