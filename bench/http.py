"""HTTP server benchmark: our server vs a bare uvloop Protocol ceiling, under wrk on 127.0.0.1.

Prints requests/s and latency percentiles for, in one run:
  * ceiling  - a bare asyncio.Protocol on uvloop answering fixed bytes after a hand-found blank line;
  * ours     - `medama.py start` (uvloop when importable) on a trivial route;
  * ours-std - the same with the stdlib event loop (MEDAMA_NO_UVLOOP=1);
plus idle RSS of our server and start-up time of dist/medama.pyz to a listening socket, and its size.

Usage: python bench/http.py [--duration 10] [--connections 64] [--path /api/event/ping]
Needs Debian's `wrk` (apt-get install wrk).

`--startup-only [--runs 15] [--python /usr/bin/python3]` skips wrk and prints only exec-to-listening times
(median, min, max) of `medama.py start` and of a freshly built medama.pyz under that interpreter, with the
load average before and after (the machine is shared; a high load inflates every number).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CEILING = textwrap.dedent(
    """
    import asyncio, sys
    import uvloop
    RESPONSE = (b"HTTP/1.1 200 OK\\r\\nContent-Type: text/plain; charset=utf-8\\r\\n"
                b"Content-Length: 1\\r\\nCache-Control: no-cache\\r\\n\\r\\n0")
    class Bare(asyncio.Protocol):
        def connection_made(self, transport):
            self.t = transport
            self.buf = b""
        def data_received(self, data):
            buf = self.buf + data
            out = []
            while True:
                end = buf.find(b"\\r\\n\\r\\n")
                if end < 0:
                    break
                buf = buf[end + 4:]
                out.append(RESPONSE)
            self.buf = buf
            if out:
                self.t.write(b"".join(out))
    async def main():
        loop = asyncio.get_running_loop()
        server = await loop.create_server(Bare, "127.0.0.1", int(sys.argv[1]))
        await server.serve_forever()
    uvloop.run(main())
    """
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_port(port: int, timeout: float = 20.0) -> float:
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return time.perf_counter() - start
        except OSError:
            time.sleep(0.002)
    raise RuntimeError(f"nothing listening on {port}")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def run_wrk(port: int, path: str, duration: int, connections: int) -> dict[str, float]:
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency", f"http://127.0.0.1:{port}{path}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    result = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))}  # type: ignore[union-attr]
    units = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    for pct in ("50", "99"):
        match = re.search(rf"\s{pct}%\s+([\d.]+)(us|ms|s)", out)
        result[f"p{pct}_ms"] = float(match.group(1)) * units[match.group(2)] if match else float("nan")
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    result["non2xx"] = float(non2xx.group(1)) if non2xx else 0.0
    return result


def start_ours(port: int, workdir: Path, stdlib_loop: bool) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    if stdlib_loop:
        env["MEDAMA_NO_UVLOOP"] = "1"
    cmd = [
        sys.executable,
        str(ROOT / "medama.py"),
        "start",
        "-port",
        str(port),
        "-level",
        "warn",
        "-ratelimit",
        "0",
        "-appdb",
        str(workdir / "me_meta.db"),
        "-analyticsdb",
        str(workdir / "me_analytics.db"),
    ]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def bench_pyz_startup(workdir: Path) -> tuple[float, int]:
    pyz = workdir / "medama.pyz"
    subprocess.run([sys.executable, str(ROOT / "build_zipapp.py"), "-o", str(pyz)], check=True, capture_output=True)
    times = startup_times([sys.executable, str(pyz)], workdir, 5)
    return times[len(times) // 2] * 1000, pyz.stat().st_size


def startup_times(program: list[str], workdir: Path, runs: int) -> list[float]:
    """Seconds from exec to an accepted connection for `runs` restarts, sorted."""
    times = []
    for i in range(runs):
        port = free_port()
        data = workdir / f"start{i}"
        data.mkdir()
        # Databases are created first so the measured start matches a normal restart, not the first run.
        for warm in (True, False):
            t0 = time.perf_counter()
            proc = subprocess.Popen(
                [*program, "start", "-port", str(port), "-level", "warn"],
                cwd=data,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            wait_port(port)
            elapsed = time.perf_counter() - t0
            proc.terminate()
            proc.wait(10)
            if not warm:
                times.append(elapsed)
        shutil.rmtree(data)
    times.sort()
    return times


def startup_only(python: str, runs: int) -> int:
    load = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        pyz = workdir / "medama.pyz"
        subprocess.run([python, str(ROOT / "build_zipapp.py"), "-o", str(pyz)], check=True, capture_output=True)
        for label, program in (("medama.py", [python, str(ROOT / "medama.py")]), ("medama.pyz", [python, str(pyz)])):
            ms = [t * 1000 for t in startup_times(program, workdir, runs)]
            print(
                f"{python} {label}: exec to listening, {runs} runs: median {ms[len(ms) // 2]:.0f} ms, "
                f"min {ms[0]:.0f}, max {ms[-1]:.0f}"
            )
    after = os.getloadavg()
    print(f"load average before {load[0]:.2f} {load[1]:.2f}, after {after[0]:.2f} {after[1]:.2f} (2 cores, shared)")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description="HTTP server benchmark")
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--path", default="/api/event/ping")
    parser.add_argument("--startup-only", action="store_true", help="only time exec to listening, no wrk")
    parser.add_argument("--runs", type=int, default=15, help="restarts timed by --startup-only")
    parser.add_argument("--python", default=sys.executable, help="interpreter used by --startup-only")
    args = parser.parse_args()
    if args.startup_only:
        return startup_only(args.python, args.runs)
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install wrk", file=sys.stderr)
        return 1
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        port = free_port()
        ceiling = subprocess.Popen([sys.executable, "-c", CEILING, str(port)])
        try:
            wait_port(port)
            run_wrk(port, args.path, 2, args.connections)  # warm-up
            rows.append(("ceiling (bare uvloop Protocol)", run_wrk(port, args.path, args.duration, args.connections)))
        finally:
            ceiling.terminate()
            ceiling.wait()
        for label, stdlib in (("ours (uvloop)", False), ("ours (stdlib asyncio)", True)):
            port = free_port()
            proc = start_ours(port, workdir, stdlib)
            try:
                wait_port(port)
                time.sleep(0.5)
                idle = rss_kib(proc.pid)
                run_wrk(port, args.path, 2, args.connections)
                result = run_wrk(port, args.path, args.duration, args.connections)
                result["idle_rss_mib"] = idle / 1024
                result["loaded_rss_mib"] = rss_kib(proc.pid) / 1024
                rows.append((label, result))
            finally:
                proc.terminate()
                proc.wait()
        startup_ms, size = bench_pyz_startup(workdir)
    ceiling_rps = rows[0][1]["rps"]
    print(f"\npath {args.path}, {args.connections} connections, {args.duration} s, wrk -t2, 2-core machine\n")
    print(f"{'server':32} {'req/s':>10} {'% ceiling':>10} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8}", end="")
    print(f" {'RSS idle/load MiB':>18}")
    for label, r in rows:
        rss = f"{r['idle_rss_mib']:.1f}/{r['loaded_rss_mib']:.1f}" if "idle_rss_mib" in r else "-"
        print(
            f"{label:32} {r['rps']:>10.0f} {100 * r['rps'] / ceiling_rps:>9.0f}% {r['p50_ms']:>8.2f} "
            f"{r['p99_ms']:>8.2f} {r['non2xx']:>8.0f} {rss:>18}"
        )
    print(f"\nmedama.pyz: {size / 1024:.0f} KiB; start-up to a listening socket, median of 5: {startup_ms:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
