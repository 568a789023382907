"""`medama migrate` at scale: build an N-view me_analytics.db, move it up into a real clickhouse-server and back down.

The views and events are bench/stats.py's (N page views over 90 days, 401
paths, custom events on 13%), loaded into SQLite as that benchmark loads them
(kept in --data and reused when its size matches). A clickhouse-server is
started here (tests/engines.py: free ports, a temporary folder). Then
`python medama.py migrate -analyticsdb FILE -to-analyticsdb clickhouse://…` runs
as a child process, and the same back down into a new file. Reported for each
direction: wall time, rows (views and events) per second, the child's peak RSS
and CPU, the server's CPU, and the command's own check line (the counts, and
each site's all-time summary and top pages, equal on both sides). App data
(a few rows) is not part of this benchmark. Numbers from a shared 2-core
machine are noisy: the load average is printed with them.

Usage: python bench/migrate.py [--rows 1000000] [--data DIR] [--skip down]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
sys.path[0] = str(ROOT)  # not bench/ itself: its http.py would hide the standard library's http package
_spec = importlib.util.spec_from_file_location("bench_stats", ROOT / "bench" / "stats.py")
assert _spec is not None and _spec.loader is not None
data = importlib.util.module_from_spec(_spec)
sys.modules["bench_stats"] = data  # its dataclasses look their module up
_spec.loader.exec_module(data)

from tests.engines import TEST_PASSWORD, TEST_USER, clickhouse_server  # noqa: E402


def server_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rows_in(path: str) -> int:
    import sqlite3

    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("SELECT (SELECT count(*) FROM views) + (SELECT count(*) FROM events)").fetchone()[0])
    finally:
        conn.close()


def run(label: str, args: list[str], rows: int, pid: int) -> None:
    """One migrate in a child process; its numbers on one line, then its check line."""
    cpu_before, started = server_cpu(pid), time.perf_counter()
    command = [sys.executable, str(ROOT / "medama.py"), "migrate", *args]
    with tempfile.TemporaryFile("w+") as err:
        child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(child.pid, 0)  # this child's own peak RSS and CPU
        child.returncode = os.waitstatus_to_exitcode(status)
        elapsed = time.perf_counter() - started
        err.seek(0)
        stderr = err.read()
    if child.returncode != 0:
        sys.exit(f"{label}: exit {child.returncode}: {stderr[-2000:]}")
    child_cpu = usage.ru_utime + usage.ru_stime
    check = [line for line in stderr.splitlines() if line.startswith("check:")]
    print(
        f"{label}: {elapsed:.1f} s, {rows / elapsed:,.0f} rows/s, peak RSS {usage.ru_maxrss / 1024:.0f} MiB,"
        f" CPU {child_cpu:.1f} s (migrate) + {server_cpu(pid) - cpu_before:.1f} s (clickhouse-server),"
        f" load average {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    print(f"  {check[0] if check else 'no check line: ' + stderr[-500:]}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--data", default=os.path.join(tempfile.gettempdir(), "medama-bench-migrate"))
    parser.add_argument("--skip", default="", help="comma-separated: down")
    args = parser.parse_args()
    os.makedirs(args.data, exist_ok=True)
    source = os.path.join(args.data, f"me_analytics-{args.rows}.db")
    shape = data.Shape(args.rows)
    if not os.path.exists(source):
        data.bulk_load(source, shape)
    rows = rows_in(source)
    print(f"{source}: {args.rows:,} views, {rows:,} rows with the events; cores {os.cpu_count()}", flush=True)
    work = tempfile.mkdtemp(prefix="medama-bench-migrate-")
    try:
        with clickhouse_server() as server:
            server.query("CREATE DATABASE bench")
            credentials = f"{quote(TEST_USER, safe='')}:{quote(TEST_PASSWORD, safe='')}"
            url = f"clickhouse://{credentials}@127.0.0.1:{server.http_port}/bench"
            pid = server.proc.pid
            run("up", ["-analyticsdb", source, "-to-analyticsdb", url], rows, pid)
            if "down" not in args.skip.split(","):
                down = os.path.join(work, "me_analytics.db")
                run("down", ["-analyticsdb", url, "-to-analyticsdb", down], rows, pid)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
