"""Stats benchmark: our SQLite answers vs DuckDB running upstream's SQL over the same rows.

Generates N page views over 90 days (401 paths, 50 referrers, 30 countries,
UTM tags on 15% of views, custom events on 13%), bulk-loads them (indexes and
triggers created after the load, then every hour rebuilt once, as after an
import), and writes the same rows to CSV for DuckDB.

Two worker processes answer the queries: one runs our store functions on a
read-only connection with the server's pragmas, the other runs upstream's SQL
in DuckDB. Each query is timed inside its worker, ours and DuckDB's
alternately, and the table shows the median of --runs runs for the
dashboard's overview set (summary with previous and day interval, every list
with summary=true&limit=5, /properties) over the last 30 and 90 days as a
dashboard in UTC-7 asks for them (from local midnight, so days and buckets
start at 07:00 UTC, up to now; the current hour is dirty, as on a live site),
without filters and with two (a page and a country; or, with --filters
no,page,other,prop, also a country and a browser, and a custom property:
plan=pro). The first answer of every
query is compared with DuckDB's. The RSS reported is our worker's alone.

--ingest measures instead what the rollup triggers and the stats indexes cost
ingestion: 1000-row transactions of inserts, unload updates and events, on
copies of a 200k-row database, the configurations alternating.

Usage: python bench/stats.py --rows 1000000 [--runs 5] [--dir /tmp/medama-bench] [--filters no,page,other,prop]
       python bench/stats.py --ingest
Needs duckdb (requirements-dev.txt).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from medama_core.store import analytics, columns, db, rollups, stats  # noqa: E402
from medama_core.store.filters import Filter  # noqa: E402

DAY = 86_400_000
END = 1_717_200_000_000  # 2024-06-01T00:00:00Z, the end of the generated data
SPAN_DAYS = 90
LOCAL_MIDNIGHT = 7 * 3_600_000  # the dashboard's days start at local midnight; UTC-7 here, so 07:00 UTC
SITE = "example.com"
CHUNK = 100_000  # rows per generated chunk and per load transaction
INGEST_PREFILL = 200_000  # rows already stored when ingestion is timed
INGEST_ROWS = 50_000  # rows inserted per timed ingestion run
INGEST_BATCH = 1000  # rows per ingestion transaction, like the writer's group commit under load
INGEST_ROUNDS = 5
COLUMNS = (
    "bid hostname pathname is_unique_user is_unique_page referrer_host referrer_group country language_base "
    "language_dialect ua_browser ua_os ua_device_type utm_source utm_medium utm_campaign duration_ms date_created"
).split()
INSERT_VIEW = f"INSERT INTO views ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
INSERT_EVENT = "INSERT INTO events (bid, batch_id, group_name, name, value, date_created) VALUES (?, 'b', ?, ?, ?, ?)"
# Filter sets: ours, and upstream's WHERE for the same rows. "page": a page and a country, as a
# dashboard user gets by clicking a page and then a country; "other": no page (country and browser);
# "prop": a custom property (views with an event plan=pro; upstream's join would count a view once per
# such event, spec §10.15: a view counts once, as ours does).
FILTERS: dict[str, tuple[tuple[Filter, ...], str]] = {
    "no": ((), ""),
    "page": (
        (Filter("path", "eq", "/blog/post-1"), Filter("country", "eq", "country 0")),
        " AND pathname ILIKE '/blog/post-1' AND country ILIKE 'country 0'",
    ),
    "other": (
        (Filter("country", "eq", "country 1"), Filter("browser", "eq", "firefox")),
        " AND country ILIKE 'country 1' AND ua_browser ILIKE 'firefox'",
    ),
    "prop": (
        (Filter("prop_name", "eq", "plan"), Filter("prop_value", "eq", "pro")),
        " AND bid IN (SELECT bid FROM events WHERE name ILIKE 'plan' AND value ILIKE 'pro')",
    ),
}
# /properties applies prop filters to the events themselves (and, with a name, lists its values).
EVENT_FILTERS = {"prop": " AND name ILIKE 'plan' AND value ILIKE 'pro'"}

PATHS = ["/", *(f"/blog/post-{i}" for i in range(400))]
GROUPS = {"www.google.com": "Google", "www.bing.com": "Bing", "t.co": "Twitter", "duckduckgo.com": "DuckDuckGo"}
REFERRERS = ["", *GROUPS, *(f"site{i}.example" for i in range(45))]
COUNTRIES = [f"Country {i}" for i in range(30)]
BROWSERS = ["Chrome", "Safari", "Firefox", "Edge", "Opera", "Samsung Internet"]
SYSTEMS = ["Windows", "iOS", "Android", "macOS", "Linux", "ChromeOS"]
DEVICES = ["Desktop", "Mobile", "Tablet"]
LANGUAGES = [("English", "American English"), ("English", "British English"), ("German", "German")]
LANGUAGES += [("French", "French"), ("Spanish", "Spanish"), ("Japanese", "Japanese"), ("Unknown", "Unknown")]
UTM = [("newsletter", "email", "spring"), ("newsletter", "email", "summer"), ("twitter", "social", "launch")]
UTM += [("google", "cpc", "brand"), ("google", "cpc", "generic"), ("reddit", "social", "launch"), ("hn", "", "")]


def _zipf(items: list[Any], s: float) -> list[float]:
    """Cumulative weights of a Zipf-like popularity: item i has weight 1 / (i + 1) ** s."""
    total, cumulative = 0.0, []
    for i in range(len(items)):
        total += 1 / (i + 1) ** s
        cumulative.append(total)
    return cumulative


def generate(n: int, seed: int = 1) -> Iterator[tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]]:
    """Chunks of (views, events), in time order over the SPAN_DAYS days before END."""
    rnd = random.Random(seed)
    start = END - SPAN_DAYS * DAY
    weights = {
        "path": _zipf(PATHS, 1.1),
        "ref": _zipf(REFERRERS, 0.9),
        "country": _zipf(COUNTRIES, 1.0),
        "browser": _zipf(BROWSERS, 1.2),
        "os": _zipf(SYSTEMS, 1.2),
        "device": _zipf(DEVICES, 1.5),
        "lang": _zipf(LANGUAGES, 1.3),
        "utm": _zipf(UTM, 0.8),
    }
    for first in range(0, n, CHUNK):
        k = min(CHUNK, n - first)
        paths = rnd.choices(PATHS, cum_weights=weights["path"], k=k)
        refs = rnd.choices(REFERRERS, cum_weights=weights["ref"], k=k)
        countries = rnd.choices(COUNTRIES, cum_weights=weights["country"], k=k)
        browsers = rnd.choices(BROWSERS, cum_weights=weights["browser"], k=k)
        systems = rnd.choices(SYSTEMS, cum_weights=weights["os"], k=k)
        devices = rnd.choices(DEVICES, cum_weights=weights["device"], k=k)
        langs = rnd.choices(LANGUAGES, cum_weights=weights["lang"], k=k)
        utms = rnd.choices(UTM, cum_weights=weights["utm"], k=k)
        views, events = [], []
        for j in range(k):
            i = first + j
            at = start + i * (SPAN_DAYS * DAY) // n
            bid = f"{i:010x}"
            ref = refs[j]
            utm = utms[j] if rnd.random() < 0.15 else ("", "", "")
            r = rnd.random()
            duration = None if r < 0.3 else rnd.randrange(0, 5000) if r < 0.5 else int(rnd.lognormvariate(10, 1.2))
            lang = langs[j]
            views.append(
                (
                    bid,
                    SITE,
                    paths[j],
                    int(r < 0.45 or r > 0.9),
                    int(r < 0.65 or r > 0.8),
                    ref,
                    GROUPS.get(ref, ""),
                    countries[j],
                    lang[0],
                    lang[1],
                    browsers[j],
                    systems[j],
                    devices[j],
                    *utm,
                    duration,
                    at,
                )
            )
            if r < 0.1 or 0.7 < r < 0.73:
                events.append((bid, SITE, "plan", ("free", "pro", "team")[j % 3], at + 1000))
            if j % 33 == 0:
                events.append((bid, SITE, "theme", ("dark", "light")[j % 2], at + 2000))
        yield views, events


# ---- loading ----------------------------------------------------------------------------------------


def _remove(path: str) -> None:
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)


def bulk_load(path: str, n: int, csv_dir: str | None) -> None:
    """Rows in big transactions with indexes and triggers dropped; then recreate them and build every hour."""
    _remove(path)
    conn = db.connect(path)
    db.migrate(conn, analytics.MIGRATIONS)
    saved = conn.execute(
        "SELECT type, name, sql FROM sqlite_master WHERE type IN ('index', 'trigger') AND sql IS NOT NULL"
        " AND tbl_name IN ('views', 'events')"
    ).fetchall()
    for kind, name, _ in saved:
        conn.execute(f"DROP {kind.upper()} {name}")
    writers = {}
    if csv_dir is not None:
        os.makedirs(csv_dir, exist_ok=True)
        files = {name: open(os.path.join(csv_dir, f"{name}.csv"), "w", newline="") for name in ("views", "events")}
        writers = {name: csv.writer(file) for name, file in files.items()}
    started = time.perf_counter()
    for views, events in generate(n):
        with db.Transaction(conn):
            conn.executemany(INSERT_VIEW, views)
            conn.executemany(INSERT_EVENT, events)
        if writers:
            writers["views"].writerows(views)
            writers["events"].writerows(events)
    if csv_dir is not None:
        for file in files.values():
            file.close()
    print(f"loaded {n:,} views in {time.perf_counter() - started:.1f} s", flush=True)
    started = time.perf_counter()
    with db.Transaction(conn):
        for _, _, sql in saved:
            conn.execute(sql)
        conn.execute("INSERT OR IGNORE INTO rollup_dirty SELECT DISTINCT hostname, date_created / 3600000 FROM views")
    print(f"indexes and triggers in {time.perf_counter() - started:.1f} s", flush=True)
    refresh_all(conn)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def refresh_all(conn: sqlite3.Connection) -> None:
    """Build every hour, then mark the last one dirty again: a live site's current hour is always read raw."""
    started = time.perf_counter()
    hours = rollups.refresh(conn, END + DAY, 10**9)
    print(f"rollups: rebuilt {hours:,} hours in {time.perf_counter() - started:.1f} s", flush=True)
    started = time.perf_counter()
    copied = 0
    while added := columns.backfill(conn, 10**6):  # days built before the column copies existed
        copied += added
    if copied:
        print(f"columns: copied {copied:,} days in {time.perf_counter() - started:.1f} s", flush=True)
    conn.execute("INSERT OR IGNORE INTO rollup_dirty VALUES (?, ?)", (SITE, END // rollups.HOUR_MS - 1))


def prepare(path: str, n: int, csv_dir: str, rebuild: bool) -> None:
    """Build the database and CSV files, or bring an existing one up to the current migrations."""
    fresh = rebuild or not os.path.exists(path) or not os.path.exists(os.path.join(csv_dir, "events.csv"))
    if fresh:
        bulk_load(path, n, csv_dir)
        return
    conn = db.connect(path)
    before = conn.execute("PRAGMA user_version").fetchone()[0]
    started = time.perf_counter()
    after = db.migrate(conn, analytics.MIGRATIONS)
    if after != before:
        print(f"migrated {before} -> {after} in {time.perf_counter() - started:.1f} s", flush=True)
    refresh_all(conn)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


# ---- the overview set, ours and upstream's ----------------------------------------------------------

LISTS = ("pages", "time", "referrers", "sources", "mediums", "campaigns", "browsers", "os", "devices")
LISTS += ("countries", "languages")
ENDPOINTS = ("summary", *LISTS, "properties")
LIMIT = 5  # the dashboard's panels ask for five rows


def case_bounds(days: int) -> tuple[int, int]:
    """The dashboard's "last N days" seen from UTC-7 at END: from local midnight N-1 days back to now."""
    return END - days * DAY + LOCAL_MIDNIGHT, END - 1


def case_query(days: int, filters: str) -> stats.Query:
    start, end = case_bounds(days)
    return stats.Query(SITE, start * 1000, end * 1000, FILTERS[filters][0])


def ours(conn: sqlite3.Connection, endpoint: str, q: stats.Query) -> Any:
    """What the endpoint returns for the dashboard's overview request."""
    page = stats.Page(LIMIT)
    if endpoint == "summary":
        return stats.summary(conn, q, True, "day")
    if endpoint == "time":
        return stats.time_stats(conn, q, True, page)
    if endpoint == "properties":
        return stats.properties(conn, q, page)
    return stats.list_stats(conn, q, endpoint, True, page)


def _ts(ms: int) -> str:
    return f"make_timestamptz({ms * 1000})"


BOUNCE = """CASE WHEN COUNT(*) FILTER (WHERE is_unique_user AND duration_ms IS NOT NULL) > 5 THEN
  ifnull(ROUND(COUNT(*) FILTER (WHERE is_unique_user AND duration_ms BETWEEN 100 AND 5000) * 1.0
  / NULLIF(COUNT(*) FILTER (WHERE is_unique_user AND duration_ms IS NOT NULL), 0), 4), 0) ELSE 0 END"""
UPSTREAM_SUMMARY = f"""SELECT COUNT(*) FILTER (WHERE is_unique_user) AS visitors, COUNT(*) AS pageviews,
  {BOUNCE} AS bounce_percentage, CAST(ifnull(median(duration_ms), 0) AS INTEGER) AS duration FROM views WHERE {{w}}"""
UPSTREAM_INTERVAL = f"""WITH intervals AS MATERIALIZED (SELECT generate_series AS interval FROM
  generate_series({{s}}, {{e}}, INTERVAL 1 DAY)),
stats AS MATERIALIZED (SELECT time_bucket(INTERVAL 1 DAY, date_created, {{s}}) AS interval,
  COUNT(*) FILTER (WHERE is_unique_user) AS visitors, COUNT(*) AS pageviews, {BOUNCE} AS bounce_percentage,
  CAST(ifnull(median(duration_ms), 0) AS INTEGER) AS duration FROM views WHERE {{w}} GROUP BY interval)
SELECT CAST(intervals.interval AS VARCHAR), COALESCE(stats.visitors, 0), COALESCE(stats.pageviews, 0),
  COALESCE(stats.bounce_percentage, 0), COALESCE(stats.duration, 0)
FROM intervals LEFT JOIN stats USING (interval) ORDER BY 1"""
UPSTREAM_LIST = """WITH total AS MATERIALIZED (SELECT COUNT(*) FILTER (WHERE {unique}) AS total FROM views WHERE {w})
SELECT {col} AS label, COUNT(*) FILTER (WHERE {unique}) AS visitors,
  ifnull(ROUND(visitors / (SELECT total FROM total), 4), 0) AS visitors_percentage
FROM views WHERE {w} GROUP BY label {having} ORDER BY visitors DESC, label ASC LIMIT 5"""
UPSTREAM_TIME = """WITH d AS (SELECT pathname, CAST(ifnull(median(duration_ms), 0) AS INTEGER) AS duration,
  SUM(duration_ms) AS total_duration, COUNT(*) FILTER (WHERE is_unique_page) AS visitors FROM views WHERE {w}
  GROUP BY pathname HAVING duration > 0 AND visitors >= 3)
SELECT pathname, duration, ROUND(total_duration / SUM(total_duration) OVER (), 4) AS p FROM d
ORDER BY p DESC, duration DESC, visitors DESC, pathname LIMIT 5"""
UPSTREAM_PROPS = """WITH base AS MATERIALIZED (SELECT name FROM views LEFT JOIN events USING (bid) WHERE {w}),
total AS MATERIALIZED (SELECT COUNT(*) FILTER (WHERE name IS NOT NULL) AS total FROM base)
SELECT name, COUNT(*) AS events, ifnull(ROUND(events / (SELECT total FROM total), 4), 0)
FROM base WHERE name IS NOT NULL GROUP BY name ORDER BY events DESC, name LIMIT 5"""
UPSTREAM_PROP_VALUES = """WITH base AS MATERIALIZED (SELECT value FROM views LEFT JOIN events USING (bid) WHERE {w}),
total AS MATERIALIZED (SELECT COUNT(*) FILTER (WHERE value IS NOT NULL) AS total FROM base)
SELECT value, COUNT(*) AS events, ifnull(ROUND(events / (SELECT total FROM total), 4), 0)
FROM base WHERE value IS NOT NULL GROUP BY value ORDER BY events DESC, value LIMIT 5"""
LIST_COLUMNS = {
    "pages": "pathname",
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


def upstream(endpoint: str, days: int, filters: str) -> list[str]:
    """Upstream's SQL (spec §4) for one endpoint of the overview set."""
    start, end = case_bounds(days)
    extra = FILTERS[filters][1]

    def where(lo: int, hi: int, column: str = "date_created", extra: str = extra) -> str:
        return f"hostname = '{SITE}' AND {column} >= {_ts(lo)} AND {column} <= {_ts(hi)}{extra}"

    w = where(start, end)
    if endpoint == "summary":
        before = where(start - (end - start), start)
        return [
            UPSTREAM_SUMMARY.format(w=w),
            UPSTREAM_SUMMARY.format(w=before),
            UPSTREAM_INTERVAL.format(w=w, s=_ts(start), e=_ts(end)),
        ]
    if endpoint == "time":
        return [UPSTREAM_TIME.format(w=w)]
    if endpoint == "properties":
        if filters in EVENT_FILTERS:
            w = where(start, end, "events.date_created", EVENT_FILTERS[filters])
            return [UPSTREAM_PROP_VALUES.format(w=w)]
        return [UPSTREAM_PROPS.format(w=where(start, end, "events.date_created"))]
    unique = "is_unique_page" if endpoint == "pages" else "is_unique_user"
    having = "HAVING visitors > 0" if endpoint == "pages" else ""
    return [UPSTREAM_LIST.format(w=w, col=LIST_COLUMNS[endpoint], unique=unique, having=having)]


def comparable(endpoint: str, answer: Any) -> Any:
    """Our answer in the shape of DuckDB's rows."""
    if endpoint == "summary":
        fields = ("visitors", "pageviews", "bounce_percentage", "duration")
        rows = [[answer[key][f] for f in fields] for key in ("current", "previous")]
        rows.append([[b["date"], *(b[f] for f in fields)] for b in answer["interval"]])
        return rows
    return [[*row.values()] for row in answer]


def duck_comparable(endpoint: str, results: list[list[Any]]) -> Any:
    if endpoint == "summary":
        return [list(results[0][0]), list(results[1][0]), [list(row) for row in results[2]]]
    return [list(row) for row in results[0]]


# ---- workers ----------------------------------------------------------------------------------------


def memory_kib() -> dict[str, int]:
    """This process's resident set now (VmRSS) and at its peak (VmHWM), in KiB."""
    found = {}
    with open("/proc/self/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                found[key] = int(value.split()[0])
    return found


def serve(handle: Callable[[dict[str, Any]], Any]) -> None:
    """Answer JSON requests from stdin, one per line, with {"ms": ..., "result": ...} lines."""
    print(json.dumps({"ready": memory_kib()}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        if request.get("memory"):
            print(json.dumps({"memory": memory_kib()}), flush=True)
            continue
        started = time.perf_counter()
        result = handle(request)
        elapsed = (time.perf_counter() - started) * 1000
        print(json.dumps({"ms": elapsed, "result": result}), flush=True)


def serve_ours(path: str) -> None:
    conn = db.connect(path, readonly=True)
    serve(lambda r: stats.snapshot(conn, ours, r["endpoint"], case_query(r["days"], r["filters"])))


def serve_duck(csv_dir: str) -> None:
    import duckdb

    duck = duckdb.connect()
    duck.execute("SET TimeZone = 'UTC'")
    views, events = os.path.join(csv_dir, "views.csv"), os.path.join(csv_dir, "events.csv")
    duck.execute(
        "CREATE TABLE views (bid TEXT, hostname TEXT, pathname TEXT, is_unique_user BOOLEAN, is_unique_page BOOLEAN,"
        " referrer_host TEXT, referrer_group TEXT, country TEXT, language_base TEXT, language_dialect TEXT,"
        " ua_browser TEXT, ua_os TEXT, ua_device_type TEXT, utm_source TEXT, utm_medium TEXT, utm_campaign TEXT,"
        " duration_ms UINTEGER, date_created TIMESTAMPTZ)"
    )
    # read_csv reads an empty field as NULL: the text columns get their '' back.
    columns = [f"coalesce(column{i:02d}, '')" for i in range(16)]
    columns[3:5] = ["column03::INTEGER::BOOLEAN", "column04::INTEGER::BOOLEAN"]
    duck.execute(
        f"INSERT INTO views SELECT {', '.join(columns)}, "
        "NULLIF(column16, '')::UINTEGER, make_timestamptz(column17::BIGINT * 1000) "
        f"FROM read_csv('{views}', header = false, all_varchar = true)"
    )
    duck.execute("CREATE TABLE events (bid TEXT, name TEXT, value TEXT, date_created TIMESTAMPTZ)")
    duck.execute(
        "INSERT INTO events SELECT column0, column2, column3, make_timestamptz(column4::BIGINT * 1000) "
        f"FROM read_csv('{events}', header = false, all_varchar = true)"
    )
    serve(lambda r: [duck.execute(sql).fetchall() for sql in r["sql"]])


class Worker:
    """A child process running `serve`, spoken to in JSON lines."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        self.ready = self._read()["ready"]

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"worker exited with {self.proc.wait()}")
        return json.loads(line)  # type: ignore[no-any-return]

    def ask(self, request: dict[str, Any]) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait()


# ---- ingestion cost ---------------------------------------------------------------------------------


def ingest_base(path: str, migrations: int, triggers: bool) -> None:
    """A database with INGEST_PREFILL rows under the first `migrations` migrations."""
    _remove(path)
    conn = db.connect(path)
    db.migrate(conn, analytics.MIGRATIONS[:migrations])
    if not triggers:
        for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
            conn.execute(f"DROP TRIGGER {name}")
    for views, events in generate(INGEST_PREFILL, seed=2):
        with db.Transaction(conn):
            conn.executemany(INSERT_VIEW, views)
            conn.executemany(INSERT_EVENT, events)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def ingest_rate(base: str, work: str, rows: list[tuple[Any, ...]], events: list[tuple[Any, ...]]) -> float:
    """Rows/s storing `rows` in INGEST_BATCH transactions: inserts, their events, and unloads of 70% of them."""
    _remove(work)
    shutil.copyfile(base, work)
    conn = db.connect(work)
    by_bid: dict[str, list[tuple[Any, ...]]] = {}
    for event in events:
        by_bid.setdefault(event[0], []).append(event)
    started = time.perf_counter()
    for i in range(0, len(rows), INGEST_BATCH):
        batch = rows[i : i + INGEST_BATCH]
        with db.Transaction(conn):
            conn.executemany(INSERT_VIEW, [(f"i{r[0]}", *r[1:16], None, r[17]) for r in batch])
            conn.executemany(INSERT_EVENT, [(f"i{e[0]}", *e[1:]) for r in batch for e in by_bid.get(r[0], ())])
            conn.executemany(
                "UPDATE views SET duration_ms = ? WHERE bid = ? AND hostname = ?",
                [(r[16], f"i{r[0]}", r[1]) for r in batch if r[16] is not None],
            )
    rate = len(rows) / (time.perf_counter() - started)
    conn.close()
    _remove(work)
    return rate


def measure_ingest(directory: str) -> None:
    configs = {
        "no triggers, migrations 1-3": (3, False),
        "rollup triggers (migration 3)": (3, True),
        f"triggers + stats indexes (1-{len(analytics.MIGRATIONS)})": (len(analytics.MIGRATIONS), True),
    }
    bases = {}
    for i, (name, (migrations, triggers)) in enumerate(configs.items()):
        bases[name] = os.path.join(directory, f"ingest-base-{i}.db")
        ingest_base(bases[name], migrations, triggers)
    rows, events = [], []
    for chunk_rows, chunk_events in generate(INGEST_ROWS, seed=3):
        rows += chunk_rows
        events += chunk_events
    rates: dict[str, list[float]] = {name: [] for name in configs}
    for _ in range(INGEST_ROUNDS):
        for name in configs:
            rates[name].append(ingest_rate(bases[name], os.path.join(directory, "ingest-work.db"), rows, events))
    first = statistics.median(rates[next(iter(configs))])
    print(f"\ningestion, {INGEST_BATCH}-row transactions (insert + events + unload), median of {INGEST_ROUNDS}:")
    for name, values in rates.items():
        rate = statistics.median(values)
        print(f"  {name:<40} {rate:>9,.0f} rows/s  ({rate / first - 1:+.0%})")
    for path in bases.values():
        _remove(path)


# ---- main -------------------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> None:
    os.makedirs(args.dir, exist_ok=True)
    if args.ingest:
        measure_ingest(args.dir)
        return
    path = os.path.join(args.dir, f"stats-{args.rows}.db")
    csv_dir = os.path.join(args.dir, f"csv-{args.rows}")
    prepare(path, args.rows, csv_dir, args.rebuild)
    mine = Worker("--serve-ours", path)
    started = time.perf_counter()
    duck = Worker("--serve-duck", csv_dir)
    print(f"duckdb loaded the CSV in {time.perf_counter() - started:.1f} s", flush=True)
    print(f"\nour worker after connecting: RSS {mine.ready['VmRSS'] / 1024:.1f} MB", flush=True)
    print(f"\n{'range':>5} {'filters':>7} {'endpoint':<10} {'ours ms':>8} {'duckdb ms':>9} {'ratio':>6}  same")
    mismatches = 0
    for days in (30, 90):
        for filters in args.filters.split(","):
            total_ours = total_duck = 0.0
            for endpoint in ENDPOINTS:
                request = {"endpoint": endpoint, "days": days, "filters": filters}
                sql = {"sql": upstream(endpoint, days, filters)}
                our_ms, duck_ms = [], []
                same = True
                for i in range(args.runs):
                    answer = mine.ask(request)
                    reference = duck.ask(sql)
                    our_ms.append(answer["ms"])
                    duck_ms.append(reference["ms"])
                    if i == 0:
                        same = comparable(endpoint, answer["result"]) == duck_comparable(endpoint, reference["result"])
                        if not same:
                            mismatches += 1
                            print(f"  ours:   {comparable(endpoint, answer['result'])}")
                            print(f"  duckdb: {duck_comparable(endpoint, reference['result'])}")
                a, b = statistics.median(our_ms), statistics.median(duck_ms)
                total_ours += a
                total_duck += b
                print(
                    f"{days:>4}d {filters:>7} {endpoint:<10} {a:8.1f} {b:9.1f} {a / b:6.2f}  {'=' if same else 'DIFF'}"
                )
            ratio = total_ours / total_duck
            print(f"{days:>4}d {filters:>7} {'SET':<10} {total_ours:8.1f} {total_duck:9.1f} {ratio:6.2f}")
    memory = mine.ask({"memory": True})["memory"]
    duck_memory = duck.ask({"memory": True})["memory"]
    mine.close()
    duck.close()
    print(
        f"\nour worker: RSS {memory['VmRSS'] / 1024:.1f} MB now, peak {memory['VmHWM'] / 1024:.1f} MB "
        f"(DuckDB's worker: peak {duck_memory['VmHWM'] / 1024:.0f} MB)"
    )
    print(f"answers differing from DuckDB's: {mismatches}")


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--serve-ours":
        return serve_ours(sys.argv[2])
    if len(sys.argv) == 3 and sys.argv[1] == "--serve-duck":
        return serve_duck(sys.argv[2])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--dir", default="/tmp/medama-bench")
    parser.add_argument("--rebuild", action="store_true", help="regenerate the data even if the files exist")
    parser.add_argument("--filters", default="no,page", help="filter sets to time, of: no, page, other, prop")
    parser.add_argument("--ingest", action="store_true", help="measure the ingestion cost instead")
    run(parser.parse_args())


if __name__ == "__main__":
    main()
