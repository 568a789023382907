"""Live-visitors benchmark: `store.live.live` (what GET /api/website/{h}/live runs) at millions of views.

The shape: --views page views (10,000,000) over the last --days days (90), across
--sites sites (200) whose sizes follow a Zipf law (the biggest site holds about a
fifth of the views), so the busiest site has a steady stream of recent views. Views
are spread evenly in time; a view older than --open-share of its age spread has a
duration (left), the rest are open, so every half hour holds both. Pages follow a
Zipf head and a long flat tail (--paths distinct).

Prints, for the biggest site, a middle one and the smallest: the rows its last
30 minutes hold, the open pages /live counts, and the median and worst wall time
of --runs calls on a reader connection (cold: the first call after opening the file).
Target (issue 15): /live <= 10 ms at 10 M views.

Usage: python bench/live.py [--views 10000000] [--db /tmp/medama-live.db] [--reuse]
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from medama_core.store.rows import VIEW_COLUMNS  # noqa: E402
from medama_core.store.sqlite import analytics, live  # noqa: E402
from medama_core.store.sqlite.db import migrate  # noqa: E402

COUNTRIES = ("Germany", "United States", "France", "United Kingdom", "India", "Brazil", "Japan", "Unknown")
REFERRERS = (("", ""), ("www.google.com", "Google"), ("t.co", "Twitter"), ("news.ycombinator.com", "Hacker News"))


def zipf_weights(n: int, s: float = 1.1) -> list[float]:
    return [1 / (rank**s) for rank in range(1, n + 1)]


def build(path: Path, views: int, days: int, sites: int, paths: int, now_ms: int, seed: int) -> None:
    rng = random.Random(seed)
    if path.exists():
        path.unlink()
    conn = sqlite3.connect(path, isolation_level=None)
    migrate(conn, analytics.MIGRATIONS)
    conn.execute("PRAGMA journal_mode=OFF")
    conn.execute("PRAGMA synchronous=OFF")
    site_names = [f"site{i:04}.example" for i in range(sites)]
    site_pick = rng.choices(range(sites), weights=zipf_weights(sites), k=min(views, 1_000_000))
    head = [f"/p/{i}" for i in range(min(paths, 500))]
    span_ms = days * 86_400_000
    sql = f"INSERT INTO views ({', '.join(VIEW_COLUMNS)}) VALUES ({', '.join('?' * len(VIEW_COLUMNS))})"
    batch: list[tuple[object, ...]] = []
    started = time.perf_counter()
    conn.execute("BEGIN")
    for i in range(views):
        created = now_ms - span_ms + (span_ms * i) // views
        if rng.random() < 0.7:  # the head, Pareto-skewed
            path_name = head[min(int(rng.paretovariate(1.2)) - 1, len(head) - 1)]
        else:  # the flat tail
            path_name = f"/t/{rng.randrange(paths)}"
        ref_host, ref_group = REFERRERS[rng.randrange(len(REFERRERS))]
        left = rng.random() < 0.8 or now_ms - created > live.OPEN_MS
        row = {
            "bid": f"{i:012x}",
            "hostname": site_names[site_pick[i % len(site_pick)]],
            "pathname": path_name,
            "is_unique_user": int(rng.random() < 0.6),
            "is_unique_page": int(rng.random() < 0.8),
            "referrer_host": ref_host,
            "referrer_group": ref_group,
            "country": COUNTRIES[rng.randrange(len(COUNTRIES))],
            "language_base": "English",
            "language_dialect": "English",
            "ua_browser": "Chrome",
            "ua_os": "Linux",
            "ua_device_type": "Desktop",
            "utm_source": "",
            "utm_medium": "",
            "utm_campaign": "",
            "duration_ms": rng.randrange(100, 600_000) if left else None,
            "date_created": created,
        }
        batch.append(tuple(row[c] for c in VIEW_COLUMNS))
        if len(batch) == 50_000:
            conn.executemany(sql, batch)
            batch.clear()
            if i % 1_000_000 < 50_000:
                print(f"  {i + 1:,} views ({time.perf_counter() - started:.0f} s)", flush=True)
    conn.executemany(sql, batch)
    conn.execute("COMMIT")
    conn.close()
    print(f"built {views:,} views in {time.perf_counter() - started:.0f} s: {path} ({path.stat().st_size >> 20} MiB)")


def measure(path: Path, now_ms: int, runs: int) -> None:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    sizes = conn.execute("SELECT hostname, count(*) FROM views GROUP BY hostname ORDER BY 2 DESC").fetchall()
    picks = [sizes[0], sizes[len(sizes) // 2], sizes[-1]]
    conn.close()
    head = f"{'site':<20} {'views':>10} {'last 30 min':>12} {'open':>6}"
    print(f"{head} {'cold ms':>8} {'median ms':>10} {'worst ms':>9}")
    for hostname, total in picks:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        recent = conn.execute(
            "SELECT count(*) FROM views WHERE hostname = ? AND date_created >= ?", (hostname, now_ms - live.OPEN_MS)
        ).fetchone()[0]
        conn.close()
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        started = time.perf_counter()
        answer = live.live(conn, hostname, now_ms)
        cold = (time.perf_counter() - started) * 1000
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            live.live(conn, hostname, now_ms)
            times.append((time.perf_counter() - started) * 1000)
        conn.close()
        print(
            f"{hostname:<20} {total:>10,} {recent:>12,} {answer['visitors']:>6,} {cold:>8.2f} "
            f"{statistics.median(times):>10.2f} {max(times):>9.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--views", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--sites", type=int, default=200)
    parser.add_argument("--paths", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--db", type=Path, default=Path("/tmp/medama-live.db"))
    parser.add_argument("--reuse", action="store_true", help="measure the database --db already holds")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    now_ms = int(time.time() * 1000)
    if args.reuse and args.db.exists():
        now_ms = int(os.stat(args.db).st_mtime * 1000)  # the views were laid out up to the build's "now"
    else:
        build(args.db, args.views, args.days, args.sites, args.paths, now_ms, args.seed)
    load = os.getloadavg()
    print(f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} (a shared machine: read times with it)")
    measure(args.db, now_ms, args.runs)


if __name__ == "__main__":
    main()
