"""CPU per request of the tracker's routes through the server's request loop, in-process (no sockets).

`bench/ingest.py` measures the same routes end to end, where the kernel's
socket work and wrk on a shared 2-core machine swing the figure by more than
a few µs of Python. Here the real `HTTPServer` connection (`_Connection`) is
fed raw request bytes by hand, with a transport that only counts what is
written: a ping is the event-loop thread's CPU per request (`time.thread_time`)
over `--requests` pings on `--connections` connections; a load hit is the
process's CPU (every thread, the writer's included) per stored hit, and the
event-loop thread's alone, sent `--connections` at a time (one per
connection) and each batch waited for, on real SQLite databases. Best of
`--rounds`. Each figure is given twice, with the tracker's head parser
(`http/trackerhead.py`, as served) and with the general parser only, in
alternating rounds of one process.

Usage: python bench/fastpath.py [--requests 20000] [--connections 64] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[0] = str(ROOT)  # not bench/, whose http.py would hide the standard library's http

from medama_core.app import App, Context, open_context  # noqa: E402
from medama_core.config import Config  # noqa: E402
from medama_core.http.server import HTTPServer, _Connection  # noqa: E402
from medama_core.log import Logger  # noqa: E402
from medama_core.store.protocol import DEFAULT_ADMIN_USERNAME  # noqa: E402

SITE = "example.com"


async def site_context(workdir: Path) -> Context:
    """The app's context on new SQLite files in `workdir`, with no rate limit and SITE registered to the default
    admin: what the in-process benches (this one, hot_instructions.py, drop_cost.py) serve."""
    config = Config(appdb=str(workdir / "me_meta.db"), analyticsdb=str(workdir / "me_analytics.db"), ratelimit=0)
    ctx = open_context(config, Logger("json", "error"))
    admin = await ctx.meta.get_user_by_username(DEFAULT_ADMIN_USERNAME)
    assert admin is not None
    await ctx.meta.insert_website(SITE, admin.id, 0)
    ctx.hostnames.add(SITE)
    return ctx


async def close_context(ctx: Context) -> None:
    """Run the context's shutdown hooks and close both stores, as the server does when it stops."""
    for hook in ctx.on_shutdown:
        await hook()
    ctx.meta.close()
    ctx.analytics.close()


POLL_S = 0.0005  # how often a batch of hits is checked for its answers: sleeping, so it costs next to no CPU
CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
PING = (
    f"GET /api/event/ping?u=https%3A%2F%2F{SITE}%2F HTTP/1.1\r\nHost: localhost\r\nUser-Agent: {CHROME}\r\n"
    "Accept: */*\r\nAccept-Language: en-GB,en;q=0.9\r\nOrigin: https://example.com\r\n\r\n"
).encode()


def hit(i: int) -> bytes:
    body = json.dumps(
        {
            "b": f"b{i}",
            "e": "load",
            "u": f"https://{SITE}/p{i % 14}",
            "r": "https://www.google.com/",
            "p": True,
            "q": False,
            "t": "Europe/Paris",
        },  # fmt: skip
        separators=(",", ":"),  # JSON.stringify's compact form, as tracker.js sends it
    ).encode()
    head = (
        f"POST /api/event/hit HTTP/1.1\r\nHost: localhost\r\nUser-Agent: {CHROME}\r\nAccept: */*\r\n"
        f"Accept-Language: en-GB,en;q=0.9\r\nContent-Type: text/plain;charset=UTF-8\r\n"
        f"Origin: https://{SITE}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


class CountingTransport:
    """What `_Connection` writes to, counting the answers (each starts with the status line)."""

    def __init__(self) -> None:
        self.answers = 0
        self.closed = False

    def write(self, data: bytes) -> None:
        self.answers += data.count(b"HTTP/1.1 ")

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 40000) if name == "peername" else default

    def close(self) -> None:
        self.closed = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def run(count: int, connections: int, rounds: int, workdir: Path) -> dict[str, float]:
    ctx = await site_context(workdir)
    server = HTTPServer(App(ctx))
    # The same connections twice: with the tracker's head parser (http/trackerhead.py), as served, and with
    # the general parser only (""); their rounds alternate, so the machine's drift falls on both alike.
    sets: dict[str, list[tuple[_Connection, CountingTransport]]] = {"": [], "general": []}
    for kind, conns in sets.items():
        for _ in range(connections):
            conn = _Connection(server)
            conn.reader.tracker_heads = kind == ""
            transport = CountingTransport()
            conn.connection_made(transport)  # type: ignore[arg-type]
            conns.append((conn, transport))
    best: dict[str, float] = {}
    serial = 0
    for round_ in range(rounds):
        for kind in sorted(sets, reverse=bool(round_ % 2)):
            conns = sets[kind]
            suffix = f"_{kind}" if kind else ""
            started = time.thread_time()
            for i in range(count):
                conns[i % connections][0].data_received(PING)
            per_ping = (time.thread_time() - started) / count * 1e6
            best["ping" + suffix] = min(best.get("ping" + suffix, per_ping), per_ping)
            hits = [hit(serial + i) for i in range(count)]
            serial += count
            started, started_loop = time.process_time(), time.thread_time()
            for first in range(0, count - connections + 1, connections):
                before = sum(t.answers for _, t in conns)
                for offset, (conn, _) in enumerate(conns):
                    conn.data_received(hits[first + offset])
                while sum(t.answers for _, t in conns) < before + connections:  # the batch's hits all answered
                    await asyncio.sleep(POLL_S)
            hits_sent = count // connections * connections
            per_hit = (time.process_time() - started) / hits_sent * 1e6
            best["load" + suffix] = min(best.get("load" + suffix, per_hit), per_hit)
            per_hit_loop = (time.thread_time() - started_loop) / hits_sent * 1e6
            best["load_loop" + suffix] = min(best.get("load_loop" + suffix, per_hit_loop), per_hit_loop)
            assert not any(t.closed for _, t in conns), "a connection closed: the bench's requests are wrong"
    await close_context(ctx)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description="CPU per fast-path request, in-process")
    parser.add_argument("--requests", type=int, default=20000, help="pings, and load hits, per round")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        best = asyncio.run(run(args.requests, args.connections, args.rounds, Path(tmp)))
    for suffix, which in (("", ""), ("_general", ", general head parser only")):
        print(f"ping {best['ping' + suffix]:7.2f} us event-loop thread CPU per request (best of {args.rounds}{which})")
        print(
            f"load {best['load' + suffix]:7.2f} us process CPU per stored hit, writer included"
            f" (best of {args.rounds}{which})"
        )
        loop = best["load_loop" + suffix]
        print(f"load {loop:7.2f} us event-loop thread CPU per stored hit (best of {args.rounds}{which})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
