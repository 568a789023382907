"""Instructions per stored tracker request, in-process, counted by callgrind (repeatable on a noisy machine).

`bench/ingest.py` measures CPU time end to end, which other jobs on a shared
machine swing by more than a few µs; `valgrind --tool=callgrind` counts the
user-space instructions the process executes, which they do not move. This
runs the real `HTTPServer` connection (`_Connection`, fed raw bytes as in
`bench/fastpath.py`) on real SQLite databases, the writer thread included,
for `--batches` batches of `--connections` requests (`load`: one load hit per
connection; `pairs`: a batch of loads, then a batch of their unloads), each
batch waited for. Without `--inner` it runs itself under callgrind twice,
with 10 and with 40 batches after the same warm-up, and prints the
difference per request, so start-up and imports cancel out. The modes
`writer-load` and `writer-pairs` count the writer's `apply_batch` alone, on
one thread, over batches of `--connections` prepared ops (loads; or half
loads and the unloads of the batch before's loads), per row. The kernel's
socket and file work is not counted; the harness's making of the requests'
bytes and its wait for each batch's answers (one future a batch) are, the
same for any tree. `--root=DIR` measures the server of another checkout (e.g.
main's) with this harness. Under valgrind a run takes minutes of wall time on a busy
machine (its threads run one at a time).

Usage: python bench/hot_instructions.py [--modes load,pairs,writer-load,writer-pairs] [--connections 64]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The tree whose server is measured (`--root`, e.g. main's checkout for a before/after with the same harness).
TREE = next((Path(arg[len("--root=") :]).resolve() for arg in sys.argv if arg.startswith("--root=")), ROOT)
sys.path[0] = str(TREE)  # not bench/, whose http.py would hide the standard library's http

SMALL, LARGE = 10, 40  # batches counted in the two runs whose difference is reported
WARM_UP = 5  # batches before counting starts (caches filled, statements prepared)


def unload(i: int) -> bytes:
    """The tracker's unload beacon for `bench/fastpath.py`'s load `i`."""
    from fastpath import CHROME, SITE  # noqa: PLC0415 (bench/ is on the path once run)

    body = f'{{"b":"b{i}","e":"unload","m":{1000 + i % 5000}}}'.encode()
    head = (
        f"POST /api/event/hit HTTP/1.1\r\nHost: localhost\r\nUser-Agent: {CHROME}\r\nAccept: */*\r\n"
        f"Accept-Language: en-GB,en;q=0.9\r\nContent-Type: text/plain;charset=UTF-8\r\n"
        f"Origin: https://{SITE}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


class Answers:
    """The answers written on every connection so far, and the harness's wait for a batch's last one."""

    def __init__(self) -> None:
        self.count = 0
        self.target = 0
        self.waiter: asyncio.Future[None] | None = None

    def add(self, count: int) -> None:
        self.count += count
        waiter = self.waiter
        if waiter is not None and self.count >= self.target and not waiter.done():
            waiter.set_result(None)


async def run(mode: str, batches: int, connections: int, workdir: Path) -> int:
    """Send WARM_UP + `batches` batches; return the requests answered."""
    from medama_core.app import App  # noqa: PLC0415
    from medama_core.http.server import HTTPServer, _Connection  # noqa: PLC0415

    sys.path.append(str(ROOT / "bench"))  # last: its http.py must not hide the standard library's
    from fastpath import CountingTransport, close_context, hit, site_context  # noqa: PLC0415

    class Transport(CountingTransport):
        """Counts into `answers` too, which wakes the harness (no polling: its count would follow the wall time
        of the writer's batches, which other jobs on the machine stretch)."""

        def write(self, data: bytes) -> None:
            count = data.count(b"HTTP/1.1 ")
            self.answers += count
            answers.add(count)

    answers = Answers()
    ctx = await site_context(workdir)
    server = HTTPServer(App(ctx))
    conns = []
    for _ in range(connections):
        conn = _Connection(server)
        transport = Transport()
        conn.connection_made(transport)  # type: ignore[arg-type]
        conns.append((conn, transport))
    rounds: list[list[bytes]] = []
    for b in range(WARM_UP + batches):
        loads = [hit(b * connections + i) for i in range(connections)]
        rounds.append(loads)
        if mode == "pairs":
            rounds.append([unload(b * connections + i) for i in range(connections)])
    answered = 0
    for requests in rounds:
        for (conn, _), data in zip(conns, requests, strict=True):
            conn.data_received(data)
        answered += len(requests)
        if answers.count < answered:
            answers.target = answered
            answers.waiter = asyncio.get_running_loop().create_future()
            await answers.waiter
            answers.waiter = None
    assert not any(t.closed for _, t in conns), "a connection closed: the bench's requests are wrong"
    await close_context(ctx)
    return answered


def run_writer(mode: str, batches: int, size: int, workdir: Path) -> None:
    """`apply_batch` over WARM_UP + `batches` batches of `size` prepared ops (`writer-load`, `writer-pairs`)."""
    from medama_core.store.sqlite import analytics, db, hits  # noqa: PLC0415

    sites, paths = ("example.com", "blog.example.org", "shop.example.net"), ("/", "/about", "/pricing", "/docs")

    def load(i: int, now_ms: int) -> hits.NewView:
        odd = i % 2 == 1
        row = (f"b{i:012d}", sites[i % 3], paths[i % 4], odd, i % 3 == 0, "google.com" if odd else "")
        row += ("Search" if odd else "", "Germany", "en", "GB", "Firefox" if odd else "Chrome", "Windows")
        row += ("desktop", "", "", "", None, now_ms + i)
        return hits.NewView(row, (), "/" if odd else "")

    conn = db.open_file(str(workdir / "me_analytics.db"), analytics.MIGRATIONS)
    now_ms = int(time.time() * 1000) - 3_600_000
    for b in range(WARM_UP + batches):
        if mode == "writer-load":
            ops: list[hits.Op] = [load(b * size + i, now_ms) for i in range(size)]
        else:
            ops = [load(b * size + i, now_ms) for i in range(size // 2)]
            ops += [hits.Duration(f"b{(b - 1) * size + i:012d}", 1000 + i) for i in range(size // 2)]
        hits.apply_batch(conn, ops)
    conn.close()


def instructions(mode: str, batches: int, connections: int) -> int:
    """Instructions callgrind counts for a run of `batches` (all threads)."""
    with tempfile.TemporaryDirectory(prefix="hot_instructions") as tmp:
        out = Path(tmp) / "callgrind.out"
        command = [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={out}",
            sys.executable,
            __file__,
            "--inner",
            f"--modes={mode}",
            f"--batches={batches}",
            f"--connections={connections}",
            f"--root={TREE}",
        ]
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        found = re.search(r"Collected : (\d+)", done.stderr)
        assert found is not None, done.stderr[-2000:]
        return int(found.group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description="callgrind instructions per stored tracker request")
    parser.add_argument("--modes", default="load,pairs")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--batches", type=int, default=SMALL)
    parser.add_argument("--inner", action="store_true", help="run once, without callgrind")
    parser.add_argument("--root", default=str(ROOT), help="--root=DIR: the tree whose server is measured")
    args = parser.parse_args()
    if args.inner:
        with tempfile.TemporaryDirectory() as tmp:
            if args.modes.startswith("writer-"):
                run_writer(args.modes, args.batches, args.connections, Path(tmp))
            else:
                asyncio.run(run(args.modes, args.batches, args.connections, Path(tmp)))
        return 0
    for mode in args.modes.split(","):
        small = instructions(mode, SMALL, args.connections)
        large = instructions(mode, LARGE, args.connections)
        per_batch = 2 if mode == "pairs" else 1
        requests = (LARGE - SMALL) * args.connections * per_batch
        unit = "row" if mode.startswith("writer-") else "request"
        print(f"{mode:12} {(large - small) / requests:10,.0f} instructions per {unit} ({requests} counted)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
