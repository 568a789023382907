"""Stats benchmark: our SQLite answers vs DuckDB running upstream's SQL over the same rows.

Generates N page views over 90 days (hundreds of paths, ~50 referrers, 30 countries, UTM mixes,
custom events on 10% of views), builds the rollups, then times the dashboard's overview set
(summary with previous+interval, every list with summary=true&limit=5, properties) for 30- and
90-day ranges, with and without two filters (path and country): p50 of --runs runs per query.
Also measures insert throughput with and without the rollup triggers.

Usage: python bench/stats.py --rows 1000000 [--runs 5] [--dir /tmp/medama-bench]
Needs `pip install duckdb` (bench only).
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import resource
import sqlite3
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from medama_core.store import analytics, db, rollups, stats  # noqa: E402
from medama_core.store.filters import Filter  # noqa: E402

DAY = 86_400_000
END = 1_717_200_000_000  # 2024-06-01T00:00:00Z, the end of the generated data
SITE = "example.com"
COLUMNS = (
    "bid hostname pathname is_unique_user is_unique_page referrer_host referrer_group country language_base "
    "language_dialect ua_browser ua_os ua_device_type utm_source utm_medium utm_campaign duration_ms date_created"
).split()


def zipf(rnd: random.Random, items: list[str], s: float = 1.1) -> list[str]:
    weights = [1 / (i + 1) ** s for i in range(len(items))]
    return rnd.choices(items, weights, k=200_000)


def generate(n: int, seed: int = 1) -> list[tuple[object, ...]]:
    rnd = random.Random(seed)
    paths = zipf(rnd, ["/"] + [f"/blog/post-{i}" for i in range(400)])
    refs = zipf(rnd, [""] * 1 + [f"ref{i}.example" for i in range(50)], 0.8)
    countries = zipf(rnd, [f"Country {i}" for i in range(30)])
    browsers = zipf(rnd, ["Chrome", "Safari", "Firefox", "Edge", "Opera", "Samsung Browser"])
    oses = zipf(rnd, ["Windows", "iOS", "Android", "MacOS", "Linux", "ChromeOS"])
    devices = zipf(rnd, ["Desktop", "Mobile", "Tablet"])
    langs = zipf(rnd, ["English", "German", "French", "Spanish", "Japanese", "Unknown"])
    sources = [""] * 8 + ["newsletter", "twitter", "google"]
    rows = []
    for i in range(n):
        k = i % 200_000
        ref = refs[(k * 7) % 200_000]
        utm = rnd.random() < 0.15
        lang = langs[(k * 11) % 200_000]
        duration = None if rnd.random() < 0.3 else int(rnd.lognormvariate(10, 1.3))
        rows.append(
            (
                f"b{i}",
                SITE,
                paths[k],
                rnd.random() < 0.4,
                rnd.random() < 0.6,
                ref,
                "Google" if ref == "ref0.example" else "",
                countries[(k * 3) % 200_000],
                lang,
                lang + " (dialect)",
                browsers[(k * 13) % 200_000],
                oses[(k * 17) % 200_000],
                devices[(k * 19) % 200_000],
                rnd.choice(sources) if utm else "",
                "email" if utm else "",
                f"c{rnd.randrange(5)}" if utm else "",
                duration,
                END - 90 * DAY + i * (90 * DAY // n),
            )
        )
    return rows


INSERT = f"INSERT INTO views ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"


def load_sqlite(path: str, rows: list[tuple[object, ...]], triggers: bool = True) -> float:
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)
    conn = db.connect(path)
    db.migrate(conn, analytics.MIGRATIONS)
    if not triggers:
        for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
            conn.execute(f"DROP TRIGGER {name}")
    started = time.perf_counter()
    for i in range(0, len(rows), 1000):
        with db.Transaction(conn):
            conn.executemany(INSERT, rows[i : i + 1000])
            conn.executemany(
                "INSERT INTO events (bid, batch_id, group_name, name, value, date_created) VALUES (?, 'x', ?, ?, ?, ?)",
                [
                    (r[0], SITE, "plan", "pro" if j % 3 else "free", r[-1])
                    for j, r in enumerate(rows[i : i + 1000])
                    if j % 10 == 0
                ],
            )
    rate = len(rows) / (time.perf_counter() - started)
    conn.close()
    return rate


UPSTREAM_LIST = """
WITH total AS MATERIALIZED (SELECT COUNT(*) FILTER (WHERE is_unique_user = true) AS total_visitors FROM views WHERE {w})
SELECT {col} AS label, COUNT(*) FILTER (is_unique_user = true) AS visitors,
  ifnull(ROUND(visitors / (SELECT total_visitors FROM total), 4), 0) AS visitors_percentage
FROM views WHERE {w} GROUP BY label ORDER BY visitors DESC, label ASC LIMIT 5"""
UPSTREAM_PAGES = UPSTREAM_LIST.replace("is_unique_user", "is_unique_page").replace("{col}", "pathname")
UPSTREAM_SUMMARY = """SELECT COUNT(*) FILTER (WHERE is_unique_user = true) AS visitors, COUNT(*) AS pageviews,
  CASE WHEN COUNT(*) FILTER (WHERE is_unique_user = true AND duration_ms IS NOT NULL) > 5 THEN
  ifnull(ROUND(COUNT(*) FILTER (WHERE is_unique_user = true AND duration_ms BETWEEN 100 AND 5000) * 1.0
  / NULLIF(COUNT(*) FILTER (WHERE is_unique_user = true AND duration_ms IS NOT NULL), 0), 4), 0) ELSE 0 END,
  CAST(ifnull(median(duration_ms), 0) AS INTEGER) FROM views WHERE {w}"""
UPSTREAM_INTERVAL = """WITH intervals AS MATERIALIZED (SELECT generate_series AS interval FROM
  generate_series(to_timestamp({s}), to_timestamp({e}), INTERVAL 1 DAY)),
stats AS MATERIALIZED (SELECT time_bucket(INTERVAL 1 DAY, date_created, to_timestamp({s})) AS interval,
  COUNT(*) FILTER (WHERE is_unique_user) AS visitors, COUNT(*) AS pageviews,
  CAST(ifnull(median(duration_ms), 0) AS INTEGER) AS duration FROM views WHERE {w} GROUP BY interval)
SELECT CAST(intervals.interval AS VARCHAR), COALESCE(stats.visitors, 0), COALESCE(stats.pageviews, 0),
  COALESCE(stats.duration, 0) FROM intervals LEFT JOIN stats USING (interval) ORDER BY 1"""
UPSTREAM_TIME = """WITH d AS (SELECT pathname, CAST(ifnull(median(duration_ms), 0) AS INTEGER) AS duration,
  SUM(duration_ms) AS total_duration, COUNT(*) FILTER (WHERE is_unique_page) AS visitors FROM views WHERE {w}
  GROUP BY pathname HAVING duration > 0 AND visitors >= 3)
SELECT pathname, duration, ROUND(total_duration / SUM(total_duration) OVER (), 4) AS p FROM d
ORDER BY p DESC, duration DESC, visitors DESC, pathname LIMIT 5"""
UPSTREAM_PROPS = """SELECT name, COUNT(*) AS events FROM views LEFT JOIN events USING (bid)
  WHERE {w} AND name IS NOT NULL GROUP BY name ORDER BY events DESC, name"""
LIST_COLUMNS = {
    "referrers": "IF(referrer_group = '', referrer_host, referrer_group)",
    "sources": "utm_source",
    "mediums": "utm_medium",
    "campaigns": "utm_campaign",
    "browsers": "ua_browser",
    "os": "ua_os",
    "devices": "ua_device_type",
    "countries": "country",
    "languages": "language_base",
}


def p50(fn: object, runs: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(runs):
        started = time.perf_counter()
        result = fn()  # type: ignore[operator]
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--dir", default="/tmp/medama-bench")
    parser.add_argument("--trigger-rows", type=int, default=200_000)
    args = parser.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    import duckdb

    started = time.perf_counter()
    rows = generate(args.rows)
    print(f"generated {len(rows):,} views in {time.perf_counter() - started:.1f} s")
    sample = rows[: args.trigger_rows]
    without = load_sqlite(os.path.join(args.dir, "notrig.db"), sample, triggers=False)
    with_t = load_sqlite(os.path.join(args.dir, "trig.db"), sample, triggers=True)
    print(
        f"insert rate (1000-row transactions, +10% events): without triggers {without:,.0f} rows/s, "
        f"with triggers {with_t:,.0f} rows/s ({(1 - with_t / without) * 100:.0f}% slower)"
    )
    path = os.path.join(args.dir, f"stats-{args.rows}.db")
    load_sqlite(path, rows)
    conn = db.connect(path)
    started = time.perf_counter()
    hours = rollups.refresh(conn, END + DAY)
    print(f"rollups: rebuilt {hours} hours in {time.perf_counter() - started:.1f} s")
    conn.close()
    duck = duckdb.connect()
    duck.execute(
        "CREATE TABLE views (bid TEXT, hostname TEXT, pathname TEXT, is_unique_user BOOLEAN, "
        "is_unique_page BOOLEAN, referrer_host TEXT, referrer_group TEXT, country TEXT, language_base TEXT, "
        "language_dialect TEXT, ua_browser TEXT, ua_os TEXT, ua_device_type TEXT, utm_source TEXT, "
        "utm_medium TEXT, utm_campaign TEXT, duration_ms UINTEGER, date_created TIMESTAMPTZ)"
    )
    del rows
    reader = sqlite3.connect(path)
    csv_views = os.path.join(args.dir, "views.csv")
    csv_events = os.path.join(args.dir, "events.csv")
    with open(csv_views, "w", newline="") as out:
        csv.writer(out).writerows(reader.execute(f"SELECT {', '.join(COLUMNS)} FROM views"))
    with open(csv_events, "w", newline="") as out:
        csv.writer(out).writerows(reader.execute("SELECT bid, name, value, date_created FROM events"))
    reader.close()
    duck.execute(
        f"INSERT INTO views SELECT column00, column01, column02, column03::INTEGER::BOOLEAN, "
        f"column04::INTEGER::BOOLEAN, column05, column06, column07, column08, column09, column10, column11, column12, "
        f"column13, column14, column15, column16::UINTEGER, make_timestamptz(column17::BIGINT * 1000) "
        f"FROM read_csv('{csv_views}', header = false, all_varchar = true)"
    )
    duck.execute("CREATE TABLE events (bid TEXT, name TEXT, value TEXT, date_created TIMESTAMPTZ)")
    duck.execute(
        f"INSERT INTO events SELECT column0, column1, column2, make_timestamptz(column3::BIGINT * 1000) "
        f"FROM read_csv('{csv_events}', header = false, all_varchar = true)"
    )
    for file in (csv_views, csv_events):
        os.remove(file)

    conn = db.connect(path, readonly=True)
    print(f"\n{'range':>5} {'filters':>7} {'query':<10} {'ours ms':>8} {'duckdb ms':>9} {'ratio':>6}")
    for days in (30, 90):
        start = END - days * DAY
        for filtered in (False, True):
            filters: tuple[Filter, ...] = ()
            dw = f"hostname = '{SITE}' AND date_created >= make_timestamptz({start * 1000}) AND date_created <= make_timestamptz({(END - 1) * 1000})"
            if filtered:
                filters = (Filter("path", "eq", "/blog/post-1"), Filter("country", "eq", "country 0"))
                dw += " AND pathname ILIKE '/blog/post-1' AND country ILIKE 'country 0'"
            q = stats.Query(SITE, start * 1000, (END - 1) * 1000, filters)
            prev = stats.Query(SITE, *stats.previous_period(start * 1000, (END - 1) * 1000), filters)
            pw = dw.replace(
                f"make_timestamptz({start * 1000})", f"make_timestamptz({(start - days * DAY) * 1000})"
            ).replace(f"make_timestamptz({(END - 1) * 1000})", f"make_timestamptz({start * 1000})")
            page = stats.Page(5)
            ours = {
                "summary": lambda q=q, prev=prev: (
                    stats.site_metrics(conn, q),
                    stats.site_metrics(conn, prev),
                    stats.interval_metrics(conn, q, "day", q.start_us, q.end_us),
                ),
                "time": lambda q=q: stats.time_stats(conn, q, True, page),
                "pages": lambda q=q: stats.list_stats(conn, q, "pages", True, page),
                **{name: (lambda q=q, name=name: stats.list_stats(conn, q, name, True, page)) for name in LIST_COLUMNS},
                "properties": lambda q=q: stats.properties(conn, q, page),
            }
            s, e = start / 1000, (END - 1) / 1000
            theirs = {
                "summary": [
                    UPSTREAM_SUMMARY.format(w=dw),
                    UPSTREAM_SUMMARY.format(w=pw),
                    UPSTREAM_INTERVAL.format(w=dw, s=s, e=e),
                ],
                "time": [UPSTREAM_TIME.format(w=dw)],
                "pages": [UPSTREAM_PAGES.format(w=dw)],
                **{name: [UPSTREAM_LIST.format(w=dw, col=col)] for name, col in LIST_COLUMNS.items()},
                "properties": [UPSTREAM_PROPS.format(w=dw.replace("date_created", "events.date_created"))],
            }
            total_ours = total_duck = 0.0
            for name, fn in ours.items():
                mine, _ = p50(fn, args.runs)
                duck_ms, _ = p50(lambda sqls=theirs[name]: [duck.execute(x).fetchall() for x in sqls], args.runs)
                total_ours += mine
                total_duck += duck_ms
                print(
                    f"{days:>4}d {'yes' if filtered else 'no':>7} {name:<10} {mine:8.1f} {duck_ms:9.1f} {mine / duck_ms:6.2f}"
                )
            print(
                f"{days:>4}d {'yes' if filtered else 'no':>7} {'SET':<10} {total_ours:8.1f} {total_duck:9.1f} "
                f"{total_ours / total_duck:6.2f}"
            )
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak RSS of this process (includes DuckDB and the generator): {rss:.0f} MB")


if __name__ == "__main__":
    main()
