"""Store-side cost of a hit: prepared rows through `store.hits.apply_batch` on a fresh SQLite file.

No HTTP, no parsing, no enrichment: the batches the writer thread would commit
(loads, then load+unload pairs, then unloads of the first loads in batches
of their own), timed with CPU time of this thread. Variants
take parts of the schema away on a copy to say what each costs per row:
  full        the schema as migrated (what a hit pays today)
  -triggers   without the rollup_dirty triggers (their work, not a proposal)
  -indexes    without the non-unique indexes on views and events (the unique (bid, hostname) one stays:
              the insert's ON CONFLICT needs it)
  bare        without both
The database is on the file system as in production (WAL, synchronous=NORMAL
as store/db.connect sets). Numbers are noisy on a shared machine: compare
variants of one run, and say the load average with them.

Usage: python bench/store_hits.py [--rows 50000] [--batch 1000]
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from medama_core.store.sqlite import analytics, db, hits  # noqa: E402

SITES = ("example.com", "blog.example.org", "shop.example.net")
PATHS = ("/", "/about", "/blog/a-post", "/pricing", "/docs/start", "/contact")
BROWSERS = ("Chrome", "Firefox", "Safari", "Edge")


def view(i: int, now_ms: int) -> hits.NewView:
    rng = random.Random(i)
    row = (
        f"b{i:012d}",
        SITES[i % 3],
        rng.choice(PATHS),
        rng.random() < 0.5,
        rng.random() < 0.7,
        rng.choice(("", "google.com", "news.ycombinator.com")),
        rng.choice(("", "Search", "Social")),
        rng.choice(("United Kingdom", "Germany", "France")),
        "en",
        rng.choice(("", "GB", "US")),
        rng.choice(BROWSERS),
        rng.choice(("Windows", "macOS", "Android")),
        rng.choice(("desktop", "mobile")),
        "",
        "",
        "",
        None,
        now_ms + i,
    )
    return hits.NewView(row, (), rng.choice(("", "/", "/about")))


def strip(conn: sqlite3.Connection, what: str) -> None:
    kinds = {"-triggers": ("trigger",), "-indexes": ("index",), "bare": ("trigger", "index")}.get(what, ())
    for kind in kinds:
        names = conn.execute(
            "SELECT name FROM sqlite_master WHERE type = ? AND tbl_name IN ('views', 'events')"
            " AND sql IS NOT NULL AND sql NOT LIKE 'CREATE UNIQUE%'",
            (kind,),
        ).fetchall()
        for (name,) in names:
            conn.execute(f'DROP {kind.upper()} "{name}"')


def run(variant: str, rows: int, batch: int) -> tuple[float, float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        conn = db.open_file(str(Path(tmp) / "me_analytics.db"), analytics.MIGRATIONS)
        strip(conn, variant)
        now_ms = int(time.time() * 1000) - 3_600_000
        loads = [view(i, now_ms) for i in range(rows)]
        start = time.thread_time()
        for at in range(0, rows, batch):
            hits.apply_batch(conn, loads[at : at + batch])
        load_us = (time.thread_time() - start) / rows * 1e6
        pairs = [view(rows + i, now_ms) for i in range(rows)]
        start = time.thread_time()
        for at in range(0, rows, batch):
            chunk = pairs[at : at + batch]
            ops: list[hits.Op] = [*chunk, *(hits.Duration(str(v.view[0]), 1234) for v in chunk)]
            hits.apply_batch(conn, ops)
        pair_us = (time.thread_time() - start) / rows * 1e6
        # Unloads in batches of their own, as they mostly come (seconds after their load's batch).
        start = time.thread_time()
        for at in range(0, rows, batch):
            hits.apply_batch(conn, [hits.Duration(str(v.view[0]), 4321) for v in loads[at : at + batch]])
        unload_us = (time.thread_time() - start) / rows * 1e6
        conn.close()
    return load_us, pair_us, unload_us


def main() -> int:
    parser = argparse.ArgumentParser(description="store-side cost per hit (SQLite)")
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--variants", default="full,-triggers,-indexes,bare")
    args = parser.parse_args()
    print(f"{args.rows} rows, batches of {args.batch}, load avg {os.getloadavg()[0]:.2f}")
    print(f"{'variant':10} {'load µs/row':>12} {'pair µs':>9} {'unload µs':>10}")
    for variant in args.variants.split(","):
        load_us, pair_us, unload_us = run(variant, args.rows, args.batch)
        print(f"{variant:10} {load_us:>12.1f} {pair_us:>9.1f} {unload_us:>10.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
