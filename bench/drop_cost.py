"""CPU per request of stored and dropped hits, through the app in-process (no sockets, no HTTP parsing).

A flood of dropped hits should cost the server less than stored ones. Over
HTTP (`bench/ingest.py --modes load,bot,unknown,bad`) the difference drowns
in the socket and parsing work both share and in the noise of a shared
machine; here each kind of hit goes through `App.handle` with 64 in flight,
on real databases with the group-commit writer running, and the figure is
the process's CPU time (every thread, the writer's included) per request,
once the drop counts of the round have been written. Best of `--rounds`.

Kinds: load (stored), bot (204, dropped), unknown (404, an unregistered
site), bad (400, a field of the wrong type).

Usage: python bench/drop_cost.py [--requests 3000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[0] = str(ROOT)  # not bench/, whose http.py would hide the standard library's http

sys.path.append(str(ROOT / "bench"))  # last: its http.py must not hide the standard library's

from fastpath import SITE, close_context, site_context  # noqa: E402

from medama_core.app import App  # noqa: E402
from medama_core.http.protocol import Request  # noqa: E402

CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
BOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
KINDS = ("load", "bot", "unknown", "bad")
IN_FLIGHT = 64  # as wrk's connections would keep
FLUSH_WAIT_S = 1.2  # drop counts reach the writer within events.DROP_FLUSH_S


def request(kind: str, i: int) -> Request:
    host = f"unregistered{i % 50}.example" if kind == "unknown" else SITE
    hit = {"b": f"b{kind}{i}", "e": "load", "u": f"https://{host}/p{i % 14}", "r": "https://www.google.com/",
           "p": True, "q": False, "t": "Europe/Paris"}  # fmt: skip
    if kind == "bad":
        hit["p"] = "yes"
    headers = {"user-agent": BOT if kind == "bot" else CHROME, "accept-language": "en-GB", "content-type": "text/plain"}
    return Request("POST", "/api/event/hit", headers=headers, body=json.dumps(hit).encode(), client="127.0.0.1")


async def run(count: int, rounds: int, workdir: Path) -> dict[str, float]:
    ctx = await site_context(workdir)
    app = App(ctx)
    gate = asyncio.Semaphore(IN_FLIGHT)

    async def send(one: Request) -> None:
        async with gate:
            await app.handle(one)

    best: dict[str, float] = {}
    serial = 0
    for _ in range(rounds):
        for kind in KINDS:
            batch = [request(kind, serial + i) for i in range(count)]
            serial += count
            started = time.process_time()
            await asyncio.gather(*(send(one) for one in batch))
            await asyncio.sleep(FLUSH_WAIT_S)
            per_request = (time.process_time() - started) / count * 1e6
            best[kind] = min(best.get(kind, per_request), per_request)
    await close_context(ctx)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description="CPU per stored and dropped hit, in-process")
    parser.add_argument("--requests", type=int, default=3000, help="requests per kind and round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        best = asyncio.run(run(args.requests, args.rounds, Path(tmp)))
    for kind in KINDS:
        print(f"{kind:8} {best[kind]:7.1f} us CPU per request (all threads, best of {args.rounds})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
