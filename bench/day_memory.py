"""Memory of one filtered read and of one day copy over big days, each in a fresh process (issue 20).

At 10 M views in 30 days with 1 M distinct paths a day holds ~333k views and
~45k paths; the peak RSS of the server is its base plus the largest single
read or unit of background work (the gate in store/sqlite/db.py keeps them
apart). This bench builds a few such days with bench/stats.py's generator
(rollups and column copies included, as a settled server has them) and runs
each case alone in a child process: a page-filtered and a country+browser-
filtered list, detail table, /time and /summary over the whole span, and the
copy of one day's columns (rolled back). It prints, per case, the RSS the
case added (VmHWM after, reset through /proc/self/clear_refs, minus VmRSS
before), the Python peak under
tracemalloc (a second child, as tracing slows the case and adds its own
memory), the case's CPU time and a digest of its answer (equal digests
between two trees mean equal answers).

Usage: python bench/day_memory.py [--db /tmp/medama-daymem.db] [--rows 1000000] [--days 3] [--paths 100000]
       [--cases pages,time,...] [--no-trace]
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[0] = str(ROOT)  # not bench/ itself: its http.py would hide the standard library's http package

from medama_core.store.filters import Filter  # noqa: E402
from medama_core.store.sqlite import columns, db, stats  # noqa: E402

SITE = "example.com"
PAGE = (Filter("path", "eq", "/blog/post-1"), Filter("country", "eq", "country 0"))
OTHER = (Filter("country", "eq", "country 0"), Filter("browser", "eq", "chrome"))
CACHE_KIB = 1024  # a reader's page cache on the server (db.READER_CACHE_KIB)


def _bench_stats() -> Any:
    """bench/stats.py, for its generator and bulk load (bench/ is not a package)."""
    spec = importlib.util.spec_from_file_location("bench_stats", ROOT / "bench" / "stats.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_stats"] = module  # its dataclasses look their module up while it runs
    spec.loader.exec_module(module)
    return module


def _cases(conn: Any, days: list[int]) -> dict[str, Callable[[], object]]:
    lo, hi = days[0] * 86_400_000, (days[-1] + 1) * 86_400_000 - 1

    def query(filters: tuple[Filter, ...]) -> Any:
        return stats.Query(SITE, lo * 1000, hi * 1000, filters)

    def copy() -> object:
        conn.execute("BEGIN")
        try:
            columns.build_day(conn, SITE, days[len(days) // 2])
        finally:
            conn.execute("ROLLBACK")
        return None

    cases: dict[str, Callable[[], object]] = {}
    for tag, filters in (("page", PAGE), ("other", OTHER)):
        cases[f"{tag} pages"] = lambda f=filters: stats.list_stats(conn, query(f), "pages", True, stats.Page(5))
        cases[f"{tag} pages/100"] = lambda f=filters: stats.list_stats(conn, query(f), "pages", False, stats.Page(100))
        cases[f"{tag} time"] = lambda f=filters: stats.time_stats(conn, query(f), True, stats.Page(5))
        cases[f"{tag} time/100"] = lambda f=filters: stats.time_stats(conn, query(f), False, stats.Page(100))
        cases[f"{tag} summary"] = lambda f=filters: stats.summary(conn, query(f), True, "day")
    cases["day copy"] = copy
    return cases


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def child(path: str, case: str, trace: bool) -> None:
    """Run one case in this (fresh) process and print what it cost as one JSON line."""
    conn = db.connect(path)
    conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
    days = [d for (d,) in conn.execute("SELECT DISTINCT day FROM column_days WHERE hostname = ? ORDER BY day", (SITE,))]
    run = _cases(conn, days)[case]
    if trace:
        tracemalloc.start()
    else:  # VmHWM from here on: start-up's own peak (imports, the connection) would hide a small case's
        Path("/proc/self/clear_refs").write_text("5")
    before = _status_kib("VmRSS")
    started = time.process_time()
    answer = run()
    cpu = time.process_time() - started
    out: dict[str, object] = {"cpu_s": round(cpu, 2)}
    if trace:
        out["traced_mb"] = round(tracemalloc.get_traced_memory()[1] / 1e6, 1)
    else:
        out["rss_added_mb"] = round((_status_kib("VmHWM") - before) / 1e3, 1)
        text = json.dumps(answer, sort_keys=True, default=str)
        out["answer"] = hashlib.sha256(text.encode()).hexdigest()[:10] if answer is not None else "-"
    print(json.dumps(out), flush=True)


def _run_child(path: str, case: str, trace: bool) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", case, "--db", path] + (["--trace"] if trace else [])
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default="/tmp/medama-daymem.db", help="built once for a shape, then reused")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--paths", type=int, default=100_000)
    parser.add_argument("--cases", default="", help="comma-separated case names (default: all)")
    parser.add_argument("--no-trace", action="store_true", help="skip the tracemalloc runs")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--trace", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.db, args.child, args.trace)
        return
    bench = _bench_stats()
    shape = bench.Shape(rows=args.rows, days=args.days, paths=args.paths)
    stamp = Path(args.db + ".shape")
    if not (Path(args.db).exists() and stamp.exists() and stamp.read_text() == shape.key()):
        bench.bulk_load(args.db, shape)
        stamp.write_text(shape.key())
    names = args.cases.split(",") if args.cases else list(_cases(None, [0]))
    print(f"{shape.key()}: {args.rows // args.days:,} views a day; load average {os.getloadavg()[0]:.1f}")
    print(f"{'case':<20} {'RSS added MB':>12} {'traced MB':>10} {'CPU s':>6}  answer")
    for name in names:
        plain = _run_child(args.db, name, False)
        traced = "-" if args.no_trace else f"{_run_child(args.db, name, True)['traced_mb']:.1f}"
        print(f"{name:<20} {plain['rss_added_mb']:>12.1f} {traced:>10} {plain['cpu_s']:>6.2f}  {plain['answer']}")


if __name__ == "__main__":
    main()
