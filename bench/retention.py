"""Retention on SQLite: how long one purge step holds the writer, and whether the freed space is reused.

Fills a fresh analytics file with `--views` views (and a custom event on every
fourth) spread over `--days` UTC days with 60 paths, rolls them up, then purges
the older half a step at a time (store/sqlite/retention.py PURGE_BATCH_VIEWS views a
step) and prints each step's time (the longest is how long a hit batch may
wait for the writer), the rows deleted per second, the file's pages and free
pages after the purge, and the pages after inserting as many new views as were
deleted (the file should not grow: the new rows take the freed pages).

Usage: python bench/retention.py [--views 200000] [--days 100]
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[0] = str(ROOT)  # not bench/, whose http.py would hide the standard library's http

from medama_core.store.sqlite import analytics, marking, retention, rollups  # noqa: E402
from medama_core.store.sqlite.db import Transaction, migrate  # noqa: E402

DAY_MS = 86_400_000
FAR_FUTURE = 4_102_444_800_000  # every hour counts as closed
SITE = "example.com"
COLUMNS = (
    "bid, hostname, pathname, is_unique_user, is_unique_page, referrer_host, referrer_group, country, language_base,"
    " language_dialect, ua_browser, ua_os, ua_device_type, utm_source, utm_medium, utm_campaign, duration_ms,"
    " date_created"
)


def views(rng: random.Random, count: int, first_day: int, days: int, tag: str) -> list[tuple[object, ...]]:
    rows = []
    times = sorted(first_day * DAY_MS + rng.randrange(days * DAY_MS) for _ in range(count))  # as a server stores them
    for i, at in enumerate(times):
        rows.append(
            (
                f"{tag}{i}",
                SITE,
                f"/p/{rng.randrange(60)}",
                int(rng.random() < 0.6),
                1,
                "",
                "",
                "Germany",
                "English",
                "English",
                rng.choice(["Chrome", "Firefox"]),
                "Linux",
                "Desktop",
                "",
                "",
                "",
                rng.randrange(0, 60_000),
                at,
            )
        )
    return rows


def insert(conn: sqlite3.Connection, rows: list[tuple[object, ...]]) -> None:
    with Transaction(conn):
        since = marking.starts(conn)
        conn.executemany(f"INSERT INTO views ({COLUMNS}) VALUES ({', '.join('?' * 18)})", rows)
        conn.executemany(
            "INSERT INTO events (bid, batch_id, group_name, name, value, date_created)"
            " VALUES (?, 'b', ?, 'plan', 'pro', ?)",
            [(row[0], SITE, row[-1]) for row in rows[::4]],
        )
        marking.mark_since(conn, since)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--views", type=int, default=200_000)
    parser.add_argument("--days", type=int, default=100)
    args = parser.parse_args()
    rng = random.Random(1)
    first_day = 19_000
    with tempfile.TemporaryDirectory() as tmp:
        conn = sqlite3.connect(Path(tmp) / "a.db", isolation_level=None)
        migrate(conn, analytics.MIGRATIONS)
        insert(conn, views(rng, args.views, first_day, args.days, "v"))
        started = time.perf_counter()
        rollups.refresh(conn, FAR_FUTURE)
        print(f"rolled up {args.views:,} views over {args.days} days in {time.perf_counter() - started:.1f} s")
        before = (first_day + args.days // 2) * DAY_MS
        steps: list[float] = []
        deleted = 0
        started = time.perf_counter()
        while True:
            t = time.perf_counter()
            step = retention.purge_step(conn, SITE, before)
            steps.append(time.perf_counter() - t)
            deleted += step.deleted
            if step.waiting:
                rollups.refresh(conn, FAR_FUTURE)
            elif not step.deleted:
                break
        took = time.perf_counter() - started
        steps.sort()
        print(
            f"purged {deleted:,} views in {len(steps)} steps, {took:.1f} s ({deleted / took:,.0f} views/s);"
            f" step median {steps[len(steps) // 2] * 1000:.0f} ms, longest {steps[-1] * 1000:.0f} ms"
        )
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        free = conn.execute("PRAGMA freelist_count").fetchone()[0]
        print(f"after the purge: {pages:,} pages, {free:,} free")
        insert(conn, views(rng, deleted, first_day + args.days, 10, "n"))
        grown = conn.execute("PRAGMA page_count").fetchone()[0]
        free = conn.execute("PRAGMA freelist_count").fetchone()[0]
        print(f"after inserting {deleted:,} new views: {grown:,} pages ({grown - pages:+,}), {free:,} free")
        conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
