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
plan=pro; browser and referrer: one such field alone). The first answer of every
query is compared with DuckDB's. The RSS reported is our worker's alone.

--goals adds the goals panel (GET /website/{hostname}/goals, computed as
api/goals.py does through the store) for two goals: a page goal /blog/post-1*
(post-1, post-10..19, post-100..199) and an event goal plan=pro; DuckDB counts
the same conversions, visitors and rate from the raw rows.

--ingest measures instead what the rollup triggers and the stats indexes cost
ingestion: 1000-row transactions of inserts, unload updates and events, on
copies of a 200k-row database, the configurations alternating.

Usage: python bench/stats.py --rows 1000000 [--runs 5] [--dir /tmp/medama-bench] [--filters no,page,other,prop]
       [--entries] [--goals] [--only goals]
       python bench/stats.py --ingest
Needs duckdb (requirements-dev.txt).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import importlib
import itertools
import json
import math
import os
import random
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from medama_core import goals  # noqa: E402
from medama_core.store.filters import Filter  # noqa: E402
from medama_core.store.meta_rows import Goal  # noqa: E402
from medama_core.store.sqlite import analytics, columns, db, entries, goal_counts, marking, rollups, stats  # noqa: E402

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
ENTRY_COLUMNS = [*COLUMNS, "referrer_path"]  # --entries
INSERT_ENTRY_VIEW = f"INSERT INTO views ({', '.join(ENTRY_COLUMNS)}) VALUES ({', '.join('?' * len(ENTRY_COLUMNS))})"
# --entries: the share of the views without a referrer that came from another page of the site (most views
# of a real site follow an internal link), its path drawn as the pages are.
ENTRY_SHARE = 0.7
INSERT_EVENT = "INSERT INTO events (bid, batch_id, group_name, name, value, date_created) VALUES (?, 'b', ?, ?, ?, ?)"
# Filter sets: ours, and upstream's WHERE for the same rows. "page": a page and a country, as a
# dashboard user gets by clicking a page and then a country; "other": no page (country and browser);
# "browser" and "referrer": one such field alone; "prop": a custom property (views with an event plan=pro;
# upstream's join would count a view once per such event, spec §10.15: a view counts once, as ours does);
# "propname": a property name alone (views with an event named plan); "propin" and "propcontains": filters matching
# several properties of one view (two names; values holding an r).
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
    # One field each, with no sorted copy before ClickHouse migrations 9-10 (bench/clickhouse.py).
    "browser": ((Filter("browser", "eq", "firefox"),), " AND ua_browser ILIKE 'firefox'"),
    "referrer": (
        (Filter("referrer", "eq", "google"),),
        " AND (referrer_host ILIKE 'google' OR referrer_group ILIKE 'google')",
    ),
    "prop": (
        (Filter("prop_name", "eq", "plan"), Filter("prop_value", "eq", "pro")),
        " AND bid IN (SELECT bid FROM events WHERE name ILIKE 'plan' AND value ILIKE 'pro')",
    ),
    # A property name alone, as the dashboard filters after a click on a name in the properties panel.
    "propname": ((Filter("prop_name", "eq", "plan"),), " AND bid IN (SELECT bid FROM events WHERE name ILIKE 'plan')"),
    # Property filters matching several keys of one view: two names, and a part of the values (free, pro, dark).
    "propin": (
        (Filter("prop_name", "in", "plan,theme"),),
        " AND bid IN (SELECT bid FROM events WHERE lower(name) IN ('plan', 'theme'))",
    ),
    "propcontains": (
        (Filter("prop_value", "contains", "r"),),
        " AND bid IN (SELECT bid FROM events WHERE lower(value) LIKE '%r%')",
    ),
}
# /properties applies prop filters to the events themselves (and, with a name, lists its values).
EVENT_FILTERS = {
    "prop": " AND name ILIKE 'plan' AND value ILIKE 'pro'",
    "propname": " AND name ILIKE 'plan'",
    "propin": " AND lower(name) IN ('plan', 'theme')",
    "propcontains": " AND lower(value) LIKE '%r%'",
}

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


# The tail of paths (when the shape asks for more than the head's 401): a share of the views such that
# each tail path is seen 1.5 times on average ("seen once or twice"), at most 30% of the views.
TAIL_VIEWS_PER_PATH = 1.5
TAIL_SHARE = 0.3
REFERRER_TAIL_SHARE = 0.1  # views from a tail referrer when the shape asks for more than the head's 50
ARTICLE_SHARE = 0.1  # views with an `article` event when the shape asks for property values
# Many sites: site sizes are log-normal with this sigma, so the median site has about 70% of the mean
# (2,000 sites sharing 1 M views: a median of ~350 views, the biggest ~20x the mean).
SITE_SIGMA = 0.85
WORDS = "tips guide review notes story howto intro deep-dive release faq news update recipe list".split()


@dataclass(frozen=True)
class Shape:
    """What the generated data looks like. The defaults are the original bench's data, row for row."""

    rows: int = 1_000_000
    days: int = SPAN_DAYS
    paths: int = len(PATHS)  # distinct paths: the Zipf head of PATHS, then a flat tail
    referrers: int = len(REFERRERS)  # likewise, the head of REFERRERS then a tail of hosts
    prop_values: int = 0  # distinct values of an `article` property on ARTICLE_SHARE of the views (0: none)
    sites: int = 1  # sites sharing the views, with log-normal sizes
    seed: int = 1
    # Views also carry an internal referrer's path (entry and exit pages): ENTRY_SHARE of the views without
    # a referrer come from a page of the site. Not with --server (the import format has no such column).
    entries: bool = False

    def key(self) -> str:
        """A file-name-safe summary, for caching generated data."""
        parts = [f"{self.rows}", f"{self.days}d"]
        if self.paths != len(PATHS):
            parts.append(f"p{self.paths}")
        if self.referrers != len(REFERRERS):
            parts.append(f"r{self.referrers}")
        if self.prop_values:
            parts.append(f"v{self.prop_values}")
        if self.sites != 1:
            parts.append(f"s{self.sites}")
        if self.seed != 1:
            parts.append(f"seed{self.seed}")
        if self.entries:
            parts.append("e")
        return "-".join(parts)

    def site_names(self) -> list[str]:
        """Biggest site first."""
        return [SITE] if self.sites == 1 else [f"site{i:04d}.example" for i in range(self.sites)]

    def site_weights(self) -> list[float]:
        rnd = random.Random(self.seed + 7)
        return sorted((math.exp(SITE_SIGMA * rnd.gauss(0, 1)) for _ in range(self.sites)), reverse=True)


class Tail:
    """A long tail of values: each draw is a new value with probability `count / draws` (until all
    `count` are out), else one already drawn, uniformly: new articles keep appearing, old ones get
    read again."""

    def __init__(self, rnd: random.Random, name: Callable[[int], str], count: int, draws: float) -> None:
        self.rnd, self.name, self.count = rnd, name, count
        self.new = min(1.0, count / max(draws, 1.0))
        self.seen = 0

    def draw(self) -> str:
        if self.seen < self.count and (self.seen == 0 or self.rnd.random() < self.new):
            self.seen += 1
            return self.name(self.seen - 1)
        return self.name(self.rnd.randrange(self.seen))


def _tail_path(i: int) -> str:
    return f"/articles/{i}-{WORDS[i % len(WORDS)]}-{WORDS[i // len(WORDS) % len(WORDS)]}"


def generate(shape: Shape) -> Iterator[tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]]:
    """Chunks of (views, events), in time order over the shape's days before END.

    The head values are drawn as the original bench drew them; tails, sites and articles come
    from a second random source, so the default shape gives the original rows.
    """
    n = shape.rows
    rnd = random.Random(shape.seed)
    more = random.Random(shape.seed + 1_000_003)  # tails, sites, articles
    start = END - shape.days * DAY
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
    tail_share = min(TAIL_SHARE, TAIL_VIEWS_PER_PATH * shape.paths / n)
    path_tail = Tail(more, _tail_path, shape.paths - len(PATHS), tail_share * n) if shape.paths > len(PATHS) else None
    ref_tail = None
    if shape.referrers > len(REFERRERS):
        ref_tail = Tail(more, lambda i: f"www.site{i}.example.net", shape.referrers - len(REFERRERS), 0.1 * n)
    articles = Tail(more, lambda i: f"a-{i}", shape.prop_values, ARTICLE_SHARE * n) if shape.prop_values else None
    came = random.Random(shape.seed + 2_000_003)  # internal referrers (--entries): the other rows stay as they were
    sites = shape.site_names()
    site_weights = list(itertools.accumulate(shape.site_weights())) if shape.sites > 1 else None
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
        chunk_sites = more.choices(sites, cum_weights=site_weights, k=k) if site_weights else [SITE] * k
        views, events = [], []
        for j in range(k):
            i = first + j
            at = start + i * (shape.days * DAY) // n
            bid = f"{i:010x}"
            site = chunk_sites[j]
            path = paths[j]
            if path_tail is not None and more.random() < tail_share:
                path = path_tail.draw()
            ref = refs[j]
            if ref_tail is not None and more.random() < REFERRER_TAIL_SHARE:
                ref = ref_tail.draw()
            utm = utms[j] if rnd.random() < 0.15 else ("", "", "")
            r = rnd.random()
            duration = None if r < 0.3 else rnd.randrange(0, 5000) if r < 0.5 else int(rnd.lognormvariate(10, 1.2))
            lang = langs[j]
            views.append(
                (
                    bid,
                    site,
                    path,
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
            if shape.entries:
                inside = not ref and came.random() < ENTRY_SHARE
                came_from = came.choices(PATHS, cum_weights=weights["path"])[0] if inside else ""
                views[-1] = (*views[-1], came_from)
            if r < 0.1 or 0.7 < r < 0.73:
                events.append((bid, site, "plan", ("free", "pro", "team")[j % 3], at + 1000))
            if j % 33 == 0:
                events.append((bid, site, "theme", ("dark", "light")[j % 2], at + 2000))
            if articles is not None and more.random() < ARTICLE_SHARE:
                events.append((bid, site, "article", articles.draw(), at + 3000))
        yield views, events


# ---- loading ----------------------------------------------------------------------------------------


def _remove(path: str) -> None:
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)


def _iso(ms: int) -> str:
    seconds, milli = divmod(ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{milli:03d}Z"


def write_files(shape: Shape, data_dir: str) -> None:
    """The shape's rows as `medama import` CSV files (views.csv, events.csv, with headers), which DuckDB
    reads too; written once per shape and reused (a `done` file marks them complete)."""
    done = os.path.join(data_dir, "done")
    if os.path.exists(done):
        return
    os.makedirs(data_dir, exist_ok=True)
    started = time.perf_counter()
    with (
        open(os.path.join(data_dir, "views.csv"), "w", newline="") as views_file,
        open(os.path.join(data_dir, "events.csv"), "w", newline="") as events_file,
    ):
        views_out, events_out = csv.writer(views_file), csv.writer(events_file)
        views_out.writerow(ENTRY_COLUMNS if shape.entries else COLUMNS)
        events_out.writerow(("bid", "batch_id", "group_name", "name", "value", "date_created"))
        bools = ("false", "true")
        for views, events in generate(shape):
            views_out.writerows(
                (*v[:3], bools[v[3]], bools[v[4]], *v[5:16], "" if v[16] is None else v[16], _iso(v[17]), *v[18:])
                for v in views
            )
            events_out.writerows((e[0], "b", e[1], e[2], e[3], _iso(e[4])) for e in events)
    with open(done, "w") as marker:
        marker.write(shape.key())
    print(f"wrote {shape.rows:,} views as CSV in {time.perf_counter() - started:.1f} s", flush=True)


def bulk_load(path: str, shape: Shape) -> None:
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
    started = time.perf_counter()
    for views, events in generate(shape):
        with db.Transaction(conn):
            conn.executemany(INSERT_ENTRY_VIEW if shape.entries else INSERT_VIEW, views)
            conn.executemany(INSERT_EVENT, events)
    print(f"loaded {shape.rows:,} views in {time.perf_counter() - started:.1f} s", flush=True)
    started = time.perf_counter()
    with db.Transaction(conn):
        for _, _, sql in saved:
            conn.execute(sql)
        conn.execute("INSERT OR IGNORE INTO rollup_dirty SELECT DISTINCT hostname, date_created / 3600000 FROM views")
    print(f"indexes and triggers in {time.perf_counter() - started:.1f} s", flush=True)
    refresh_all(conn, shape)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def refresh_all(conn: sqlite3.Connection, shape: Shape) -> None:
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
    for site in shape.site_names():
        conn.execute("INSERT OR IGNORE INTO rollup_dirty VALUES (?, ?)", (site, END // rollups.HOUR_MS - 1))


def prepare(path: str, shape: Shape, rebuild: bool) -> None:
    """Build the database, or bring an existing one up to the current migrations."""
    if rebuild or not os.path.exists(path):
        bulk_load(path, shape)
        return
    conn = db.connect(path)
    before = conn.execute("PRAGMA user_version").fetchone()[0]
    started = time.perf_counter()
    after = db.migrate(conn, analytics.MIGRATIONS)
    if after != before:
        print(f"migrated {before} -> {after} in {time.perf_counter() - started:.1f} s", flush=True)
    refresh_all(conn, shape)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


# ---- the panels, ours and upstream's ----------------------------------------------------------------

LISTS = ("pages", "time", "referrers", "sources", "mediums", "campaigns", "browsers", "os", "devices")
LISTS += ("countries", "languages")
ENDPOINTS = ("summary", *LISTS, "properties")
LIMIT = 5  # the dashboard's panels ask for five rows
DETAIL_LIMIT = 100  # a detail table of 100 rows (summary=false)


@dataclass(frozen=True)
class Panel:
    """One request of the dashboard: an overview panel (summary=true, 5 rows) or a detail table."""

    endpoint: str
    detail: bool = False
    prop: str = ""  # /properties listing the values of this property

    @property
    def name(self) -> str:
        return self.endpoint + ("/100" if self.detail else "") + (f"/{self.prop}" if self.prop else "")

    @property
    def limit(self) -> int:
        return DETAIL_LIMIT if self.detail else LIMIT


def panels(shape: Shape, details: bool, with_goals: bool = False) -> list[Panel]:
    """The overview set, then (with `details`) every list's detail table; with property values, the
    properties panel listing the `article` values too."""
    chosen = [Panel(endpoint) for endpoint in ENDPOINTS]
    if shape.prop_values:
        chosen.append(Panel("properties", prop="article"))
    if shape.entries:
        chosen += [Panel("entries"), Panel("exits")]
    if with_goals:
        chosen.append(Panel("goals"))
    if details:
        chosen += [Panel(endpoint, True) for endpoint in LISTS]
        if shape.entries:
            chosen += [Panel("entries", True), Panel("exits", True)]
    return chosen


def case_bounds(days: int) -> tuple[int, int]:
    """The dashboard's "last N days" seen from UTC-7 at END: from local midnight N-1 days back to now."""
    return END - days * DAY + LOCAL_MIDNIGHT, END - 1


def case_query(site: str, days: int, filters: str, panel: Panel) -> stats.Query:
    start, end = case_bounds(days)
    chosen = FILTERS[filters][0]
    if panel.prop:
        chosen = (*chosen, Filter("prop_name", "eq", panel.prop))
    return stats.Query(site, start * 1000, end * 1000, chosen)


# --goals: a page goal with one star (matching 111 of the paths) and an event goal on a property the bench
# generates; with prop filters the event goal is left out (the API answers 400 for it).
GOALS = (("/blog/post-1*", None, None), (None, "plan", "pro"))


def bench_goals(site: str, filters: str) -> list[Goal]:
    chosen = [Goal(f"g{i}", site, "", *goal, 0) for i, goal in enumerate(GOALS)]
    return [goal for goal in chosen if goal.page is not None or filters != "prop"]


def goal_stats(conn: sqlite3.Connection, q: stats.Query) -> list[dict[str, Any]]:
    """GET /website/{hostname}/goals as api/goals.get_goal_stats computes it, on one connection."""
    found = bench_goals(q.hostname, "prop" if any(f.field == "prop_name" for f in q.filters) else "")
    own = [goals.goal_filters(goal, ()) for goal in found]
    site_visitors, counts = goal_counts.goal_counts(conn, q, own)
    return [goals.goal_row(goal, *pair, site_visitors) for goal, pair in zip(found, counts, strict=True)]


def ours(conn: sqlite3.Connection, panel: Panel, q: stats.Query) -> Any:
    """What the endpoint returns for the panel's request."""
    page = stats.Page(panel.limit)
    if panel.endpoint == "goals":
        return goal_stats(conn, q)
    if panel.endpoint == "summary":
        return stats.summary(conn, q, True, "day")
    if panel.endpoint == "time":
        return stats.time_stats(conn, q, not panel.detail, page)
    if panel.endpoint == "properties":
        return stats.properties(conn, q, page)
    if panel.endpoint in ("entries", "exits"):
        answer = entries.entries if panel.endpoint == "entries" else entries.exits
        return answer(conn, q, not panel.detail, page)
    return stats.list_stats(conn, q, panel.endpoint, not panel.detail, page)


def url(site: str, days: int, filters: str, panel: Panel) -> str:
    """The panel's request as the dashboard sends it (filters as query parameters)."""
    start, end = case_bounds(days)
    params = {"start": _iso(start), "end": _iso(end)}
    if panel.endpoint == "summary":
        params.update(previous="true", interval="day")
    else:
        params["limit"] = str(panel.limit)
        if panel.endpoint != "properties":
            params["summary"] = "false" if panel.detail else "true"
    for flt in FILTERS[filters][0]:
        params[f"{flt.field}[{flt.op}]"] = flt.value
    if panel.prop:
        params["prop_name[eq]"] = panel.prop
    return f"/api/website/{site}/{panel.endpoint}?{urllib.parse.urlencode(params)}"


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
FROM views WHERE {w} GROUP BY label {having} ORDER BY visitors DESC, label ASC LIMIT {limit}"""
UPSTREAM_LIST_FULL = f"""WITH total AS MATERIALIZED (SELECT COUNT(*) FILTER (WHERE is_unique_user) AS total
  FROM views WHERE {{w}})
SELECT {{col}} AS label, COUNT(*) FILTER (WHERE is_unique_user) AS visitors,
  ifnull(ROUND(visitors / (SELECT total FROM total), 4), 0), {BOUNCE},
  CAST(ifnull(median(duration_ms), 0) AS INTEGER)
FROM views WHERE {{w}} GROUP BY label ORDER BY visitors DESC, label ASC LIMIT {{limit}}"""
UPSTREAM_PAGES_FULL = f"""WITH total AS MATERIALIZED (SELECT COUNT(*) FILTER (WHERE is_unique_page) AS visitors,
  COUNT(*) AS pageviews FROM views WHERE {{w}})
SELECT pathname, COUNT(*) FILTER (WHERE is_unique_page) AS visitors,
  ifnull(ROUND(visitors / (SELECT visitors FROM total), 4), 0), COUNT(*) AS pageviews,
  ifnull(ROUND(pageviews / (SELECT pageviews FROM total), 4), 0), {BOUNCE},
  CAST(ifnull(median(duration_ms), 0) AS INTEGER)
FROM views WHERE {{w}} GROUP BY pathname HAVING visitors > 0 ORDER BY visitors DESC, pageviews DESC, pathname
LIMIT {{limit}}"""
UPSTREAM_TIME = """WITH d AS (SELECT pathname, CAST(ifnull(median(duration_ms), 0) AS INTEGER) AS duration,
  SUM(duration_ms) AS total_duration, COUNT(*) FILTER (WHERE is_unique_page) AS visitors FROM views WHERE {w}
  GROUP BY pathname HAVING duration > 0 AND visitors >= 3)
SELECT pathname, duration, ROUND(total_duration / SUM(total_duration) OVER (), 4) AS p FROM d
ORDER BY p DESC, duration DESC, visitors DESC, pathname LIMIT 5"""
UPSTREAM_TIME_FULL = """WITH d AS (SELECT pathname,
  CAST(ifnull(quantile_cont(duration_ms, 0.5), 0) AS INTEGER) AS duration,
  CAST(ifnull(quantile_cont(duration_ms, 0.75), 0) AS INTEGER) AS upper,
  CAST(ifnull(quantile_cont(duration_ms, 0.25), 0) AS INTEGER) AS lower,
  SUM(duration_ms) AS total_duration, COUNT(*) FILTER (WHERE is_unique_page) AS visitors FROM views WHERE {w}
  GROUP BY pathname HAVING duration > 0 AND visitors >= 3 AND lower > 0)
SELECT pathname, duration, upper, lower, ROUND(total_duration / SUM(total_duration) OVER (), 4), visitors FROM d
ORDER BY visitors DESC, duration DESC, pathname LIMIT {limit}"""
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


# Entry and exit pages (ours, no upstream SQL): the plainest SQL for the same numbers (docs/insights.md).
ENTRIES_SQL = """WITH e AS (SELECT pathname, COUNT(*) AS entries, COUNT(*) FILTER (WHERE is_unique_page) AS visitors,
    COUNT(*) FILTER (WHERE is_unique_user AND duration_ms BETWEEN 100 AND 5000) AS bounces,
    COUNT(*) FILTER (WHERE is_unique_user AND duration_ms IS NOT NULL) AS timed
  FROM views WHERE {w} AND referrer_path = '' GROUP BY pathname)
SELECT pathname, entries, ROUND(entries / SUM(entries) OVER (), 4), visitors,
  ifnull(ROUND(visitors / SUM(visitors) OVER (), 4), 0){full}
FROM e ORDER BY entries DESC, visitors DESC, pathname LIMIT {limit}"""
ENTRIES_FULL = "CASE WHEN timed > 5 THEN ROUND(bounces / timed, 4) ELSE 0 END"
EXITS_SQL = """WITH v AS (SELECT pathname AS p, COUNT(*) AS views, COUNT(*) FILTER (WHERE is_unique_page) AS visitors
  FROM views WHERE {w} GROUP BY 1),
d AS (SELECT referrer_path AS p, COUNT(*) AS departures FROM views WHERE {w} AND referrer_path <> '' GROUP BY 1),
x AS (SELECT * FROM (SELECT v.p, v.views, v.visitors, greatest(v.views - coalesce(d.departures, 0), 0) AS exits
  FROM v LEFT JOIN d ON d.p = v.p) WHERE exits > 0)
SELECT p, exits, ROUND(exits / SUM(exits) OVER (), 4), visitors,
  ifnull(ROUND(visitors / SUM(visitors) OVER (), 4), 0){full}
FROM x ORDER BY exits DESC, visitors DESC, p LIMIT {limit}"""
EXITS_FULL = "views, ROUND(exits / views, 4)"
# A goal's numbers from the raw rows (docs/insights.md, "Goals"): its views, their page visitors, and the
# rate over the site's visitors under the same filters.
GOAL_SQL = """WITH site AS (SELECT COUNT(*) FILTER (WHERE is_unique_user) AS visitors FROM views WHERE {w}),
g AS (SELECT COUNT(*) AS conversions, COUNT(*) FILTER (WHERE is_unique_page) AS visitors FROM views WHERE {w}{goal})
SELECT conversions, visitors, least(1, ifnull(ROUND(visitors / (SELECT visitors FROM site), 4), 0)) FROM g"""


def goal_where(goal: Goal) -> str:
    """The goal's views in DuckDB: the pattern's star as LIKE's %, or a view with a matching event."""
    if goal.page is not None:
        return f" AND pathname ILIKE '{goal.page.replace('*', '%')}'"
    value = "" if goal.prop_value is None else f" AND value ILIKE '{goal.prop_value}'"
    return f" AND bid IN (SELECT bid FROM events WHERE name ILIKE '{goal.prop_name}'{value})"


def upstream(site: str, days: int, filters: str, panel: Panel) -> list[str]:
    """Upstream's SQL (spec §4) for one panel."""
    start, end = case_bounds(days)
    extra = FILTERS[filters][1]
    endpoint = panel.endpoint

    def where(lo: int, hi: int, column: str = "date_created", extra: str = extra) -> str:
        return f"hostname = '{site}' AND {column} >= {_ts(lo)} AND {column} <= {_ts(hi)}{extra}"

    w = where(start, end)
    if endpoint == "summary":
        before = where(start - (end - start), start)
        return [
            UPSTREAM_SUMMARY.format(w=w),
            UPSTREAM_SUMMARY.format(w=before),
            UPSTREAM_INTERVAL.format(w=w, s=_ts(start), e=_ts(end)),
        ]
    if endpoint == "goals":
        return [GOAL_SQL.format(w=w, goal=goal_where(goal)) for goal in bench_goals(site, filters)]
    if endpoint in ("entries", "exits"):
        sql = ENTRIES_SQL if endpoint == "entries" else EXITS_SQL
        return [
            sql.format(
                w=w,
                limit=panel.limit,
                full=", " + (ENTRIES_FULL if endpoint == "entries" else EXITS_FULL) if panel.detail else "",
            )
        ]
    if endpoint == "time":
        return [UPSTREAM_TIME_FULL.format(w=w, limit=panel.limit) if panel.detail else UPSTREAM_TIME.format(w=w)]
    if endpoint == "properties":
        events = EVENT_FILTERS.get(filters, "")
        if panel.prop:
            events += f" AND name ILIKE '{panel.prop}'"
        if events:
            return [UPSTREAM_PROP_VALUES.format(w=where(start, end, "events.date_created", events))]
        return [UPSTREAM_PROPS.format(w=where(start, end, "events.date_created"))]
    if panel.detail:
        if endpoint == "pages":
            return [UPSTREAM_PAGES_FULL.format(w=w, limit=panel.limit)]
        return [UPSTREAM_LIST_FULL.format(w=w, col=LIST_COLUMNS[endpoint], limit=panel.limit)]
    unique = "is_unique_page" if endpoint == "pages" else "is_unique_user"
    having = "HAVING visitors > 0" if endpoint == "pages" else ""
    return [UPSTREAM_LIST.format(w=w, col=LIST_COLUMNS[endpoint], unique=unique, having=having, limit=panel.limit)]


def comparable(endpoint: str, answer: Any) -> Any:
    """Our answer in the shape of DuckDB's rows."""
    if endpoint == "summary":
        fields = ("visitors", "pageviews", "bounce_percentage", "duration")
        rows = [[answer[key][f] for f in fields] for key in ("current", "previous")]
        rows.append([[b["date"], *(b[f] for f in fields)] for b in answer["interval"]])
        return rows
    if endpoint == "goals":
        return [[row["conversions"], row["visitors"], row["rate"]] for row in answer]
    return [[*row.values()] for row in answer]


def duck_comparable(endpoint: str, results: list[list[Any]]) -> Any:
    def clean(row: Any) -> list[Any]:
        return [0 if value != value else value for value in row]  # 0 / 0 is NaN in DuckDB; we answer 0

    if endpoint == "summary":
        return [clean(results[0][0]), clean(results[1][0]), [clean(row) for row in results[2]]]
    if endpoint == "goals":
        return [clean(result[0]) for result in results]
    return [clean(row) for row in results[0]]


# ---- workers ----------------------------------------------------------------------------------------


def memory_kib(pid: int | str = "self") -> dict[str, int]:
    """A process's resident set now (VmRSS) and at its peak (VmHWM), in KiB."""
    found = {}
    with open(f"/proc/{pid}/status") as status:
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

    def handle(r: dict[str, Any]) -> Any:
        panel = Panel(**r["panel"])
        return stats.snapshot(conn, ours, panel, case_query(r["site"], r["days"], r["filters"], panel))

    serve(handle)


def serve_duck(data_dir: str) -> None:
    import duckdb

    duck = duckdb.connect()
    duck.execute("SET TimeZone = 'UTC'")
    views, events = os.path.join(data_dir, "views.csv"), os.path.join(data_dir, "events.csv")
    duck.execute(
        "CREATE TABLE views (bid TEXT, hostname TEXT, pathname TEXT, is_unique_user BOOLEAN, is_unique_page BOOLEAN,"
        " referrer_host TEXT, referrer_group TEXT, country TEXT, language_base TEXT, language_dialect TEXT,"
        " ua_browser TEXT, ua_os TEXT, ua_device_type TEXT, utm_source TEXT, utm_medium TEXT, utm_campaign TEXT,"
        " duration_ms UINTEGER, date_created TIMESTAMPTZ, referrer_path TEXT)"
    )
    with open(views) as header:
        came_from = "coalesce(referrer_path, '')" if "referrer_path" in header.readline() else "''"
    # read_csv reads an empty field as NULL: the text columns get their '' back.
    columns = [f"coalesce({name}, '')" for name in COLUMNS[:16]]
    columns[3:5] = ["is_unique_user::BOOLEAN", "is_unique_page::BOOLEAN"]
    duck.execute(
        f"INSERT INTO views SELECT {', '.join(columns)}, "
        f"NULLIF(duration_ms, '')::UINTEGER, date_created::TIMESTAMPTZ, {came_from} "
        f"FROM read_csv('{views}', header = true, all_varchar = true)"
    )
    duck.execute("CREATE TABLE events (bid TEXT, name TEXT, value TEXT, date_created TIMESTAMPTZ)")
    duck.execute(
        "INSERT INTO events SELECT bid, name, value, date_created::TIMESTAMPTZ "
        f"FROM read_csv('{events}', header = true, all_varchar = true)"
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


# ---- the real server --------------------------------------------------------------------------------


def _http_client() -> Any:
    """The standard library's http.client: bench/http.py, beside this script, hides the `http` package."""
    here = str(Path(__file__).resolve().parent)
    saved = sys.path[:]
    sys.path[:] = [entry for entry in sys.path if str(Path(entry or ".").resolve()) != here]
    try:
        return importlib.import_module("http.client")
    finally:
        sys.path[:] = saved


class Server:
    """`medama.py start` as a subprocess on a free port, logged in as the default admin."""

    def __init__(self, checkout: str, workdir: str) -> None:
        http_client = _http_client()
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.flags = ["-appdb", os.path.join(workdir, "me_meta.db"), "-analyticsdb", analytics_path(workdir)]
        command = [sys.executable, os.path.join(checkout, "medama.py"), "start", "-port", str(self.port)]
        command += ["-host", "127.0.0.1", "-ratelimit", "0", *self.flags]
        self.proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while True:
            try:
                self.conn = http_client.HTTPConnection("127.0.0.1", self.port, timeout=600)
                self.conn.connect()
                break
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("the server did not start") from None
                time.sleep(0.1)
        self.cookie = ""
        login = json.dumps({"username": "admin", "password": "CHANGE_ME_ON_FIRST_LOGIN"}).encode()
        status, _, headers = self.request("POST", "/api/auth/login", login)
        assert status == 200, status
        self.cookie = headers["set-cookie"].split(";")[0]

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, Any, dict[str, str]]:
        headers = {"Cookie": self.cookie} if self.cookie else {}
        if body is not None:
            headers["Content-Type"] = "application/json"
        try:
            self.conn.request(method, path, body=body, headers=headers)
            response = self.conn.getresponse()
        except (ConnectionError, _http_client().RemoteDisconnected):  # the server closed an idle keep-alive
            self.conn.close()
            self.conn.connect()
            self.conn.request(method, path, body=body, headers=headers)
            response = self.conn.getresponse()
        data = response.read()
        return response.status, json.loads(data) if data else None, {k.lower(): v for k, v in response.getheaders()}

    def get(self, path: str) -> tuple[float, Any]:
        """The answer to a GET and its wall time in ms, as the client sees it."""
        started = time.perf_counter()
        status, answer, _ = self.request("GET", path)
        elapsed = (time.perf_counter() - started) * 1000
        if status != 200:
            raise RuntimeError(f"GET {path}: {status} {answer}")
        return elapsed, answer

    def memory(self) -> dict[str, int]:
        return memory_kib(self.proc.pid)

    def cpu(self) -> float:
        """The server's CPU seconds so far (user and system): the wall times follow the machine's load."""
        with open(f"/proc/{self.proc.pid}/stat") as stat:
            fields = stat.read().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def reset_peak(self) -> None:
        """Start VmHWM over from the RSS now (Linux's clear_refs 5): logging in hashes the password with
        argon2 or scrypt, 64 MiB by design, and that peak says nothing about the stats."""
        with open(f"/proc/{self.proc.pid}/clear_refs", "w") as refs:
            refs.write("5")

    def stop(self) -> None:
        self.conn.close()
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=120)


def analytics_path(workdir: str) -> str:
    return os.path.join(workdir, "me_analytics.db")


def run_import(checkout: str, workdir: str, path: str) -> tuple[float, int, float]:
    """`medama.py import --create-websites FILE`: wall seconds, the import process's peak RSS (KiB) and its
    CPU seconds (the wall time follows the machine's load)."""
    flags = ["-appdb", os.path.join(workdir, "me_meta.db"), "-analyticsdb", analytics_path(workdir)]
    command = [sys.executable, os.path.join(checkout, "medama.py"), "import", "--create-websites", *flags, path]
    started = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    assert proc.stderr is not None
    if proc.returncode:
        raise RuntimeError(f"import failed: {proc.stderr.read().decode()}")
    proc.stderr.close()
    return time.perf_counter() - started, usage.ru_maxrss, usage.ru_utime + usage.ru_stime


def pending_work(workdir: str) -> int:
    """Closed dirty hours (and with this tree's store, blocks and column copies) still waiting for the
    server's background work."""
    conn = db.connect(analytics_path(workdir), readonly=True)
    now_ms = int(time.time() * 1000)
    try:
        if hasattr(rollups, "pending"):
            return sum(rollups.pending(conn, now_ms).values())  # type: ignore[attr-defined]
        dirty = conn.execute("SELECT COUNT(*) FROM rollup_dirty WHERE hour < ?", (now_ms // rollups.HOUR_MS,))
        return int(dirty.fetchone()[0]) + int(columns.has_missing(conn))
    finally:
        conn.close()


# ---- ingestion cost ---------------------------------------------------------------------------------


def ingest_base(path: str, migrations: int, triggers: bool) -> None:
    """A database with INGEST_PREFILL rows under the first `migrations` migrations."""
    _remove(path)
    conn = db.connect(path)
    db.migrate(conn, analytics.MIGRATIONS[:migrations])
    if not triggers:
        for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
            conn.execute(f"DROP TRIGGER {name}")
    for views, events in generate(Shape(INGEST_PREFILL, seed=2)):
        with db.Transaction(conn):
            conn.executemany(INSERT_VIEW, views)
            conn.executemany(INSERT_EVENT, events)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def ingest_rate(
    base: str, work: str, rows: list[tuple[Any, ...]], events: list[tuple[Any, ...]], mark: bool = False
) -> float:
    """Rows/s storing `rows` in INGEST_BATCH transactions: inserts, their events, and unloads of 70% of them
    (`mark`: and their hours marked by the writer, as since analytics migration 17, which has no insert triggers)."""
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
            since = marking.starts(conn)  # what a writer does since analytics migration 17
            conn.executemany(INSERT_VIEW, [(f"i{r[0]}", *r[1:16], None, r[17]) for r in batch])
            conn.executemany(INSERT_EVENT, [(f"i{e[0]}", *e[1:]) for r in batch for e in by_bid.get(r[0], ())])
            conn.executemany(
                "UPDATE views SET duration_ms = ? WHERE bid = ? AND hostname = ?",
                [(r[16], f"i{r[0]}", r[1]) for r in batch if r[16] is not None],
            )
            if mark:
                marking.mark_since(conn, since)
    rate = len(rows) / (time.perf_counter() - started)
    conn.close()
    _remove(work)
    return rate


def measure_ingest(directory: str) -> None:
    configs = {
        "no triggers, migrations 1-3": (3, False),
        "rollup triggers (migration 3)": (3, True),
        f"writer's marking + stats indexes (1-{len(analytics.MIGRATIONS)})": (len(analytics.MIGRATIONS), True),
    }
    bases = {}
    for i, (name, (migrations, triggers)) in enumerate(configs.items()):
        bases[name] = os.path.join(directory, f"ingest-base-{i}.db")
        ingest_base(bases[name], migrations, triggers)
    rows, events = [], []
    for chunk_rows, chunk_events in generate(Shape(INGEST_ROWS, seed=3)):
        rows += chunk_rows
        events += chunk_events
    rates: dict[str, list[float]] = {name: [] for name in configs}
    for _ in range(INGEST_ROUNDS):
        for name in configs:
            work = os.path.join(directory, "ingest-work.db")
            rates[name].append(ingest_rate(bases[name], work, rows, events, configs[name][0] >= 17))
    first = statistics.median(rates[next(iter(configs))])
    print(f"\ningestion, {INGEST_BATCH}-row transactions (insert + events + unload), median of {INGEST_ROUNDS}:")
    for name, values in rates.items():
        rate = statistics.median(values)
        print(f"  {name:<40} {rate:>9,.0f} rows/s  ({rate / first - 1:+.0%})")
    for path in bases.values():
        _remove(path)


# ---- main -------------------------------------------------------------------------------------------


def query_sites(shape: Shape) -> list[str]:
    """The sites whose panels are timed: the only one, or the biggest and the median one."""
    names = shape.site_names()
    return names if len(names) == 1 else [names[0], names[len(names) // 2]]


STOPPED = object()  # the answer of a read the server stopped at its read limit (503)


def compare_panels(
    shape: Shape,
    args: argparse.Namespace,
    ask: Callable[[str, int, str, Panel], tuple[float, Any]],
    duck: Worker,
    runs: int,
    server: Callable[[], tuple[float, float]] | None = None,
) -> int:
    """Time every panel `runs` times, ours (`ask`) and DuckDB's alternating; print the medians; return how
    many answers differ from DuckDB's (the first of each is compared). With `server` (the server's peak RSS
    in MB and its CPU ms over the last `ask`), each panel's highest peak and median CPU time too."""
    mismatches = 0
    print(
        f"\n{'site':<20} {'range':>5} {'filters':>7} {'panel':<22} {'ours ms':>8} {'duckdb ms':>9} {'ratio':>6}  same"
        + ("  peak MB  cpu ms" if server else "")
    )
    for site in query_sites(shape):
        for days in (int(d) for d in args.ranges.split(",")):
            for filters in args.filters.split(","):
                total_ours = total_duck = 0.0
                chosen = panels(shape, args.details, args.goals)
                if args.only:
                    chosen = [panel for panel in chosen if panel.endpoint in args.only.split(",")]
                for panel in chosen:
                    sql = {"sql": upstream(site, days, filters, panel)}
                    our_ms, duck_ms = [], []
                    same = True
                    highest, cpu_ms = 0.0, []
                    for i in range(runs):
                        elapsed, answer = ask(site, days, filters, panel)
                        if server:
                            peak, cpu = server()
                            highest = max(highest, peak)
                            cpu_ms.append(cpu)
                        reference = duck.ask(sql)
                        our_ms.append(elapsed)
                        duck_ms.append(reference["ms"])
                        if answer is STOPPED:
                            same = False
                        elif i == 0:
                            mine = comparable(panel.endpoint, answer)
                            same = mine == duck_comparable(panel.endpoint, reference["result"])
                            if not same:
                                mismatches += 1
                                print(f"  ours:   {mine}")
                                print(f"  duckdb: {duck_comparable(panel.endpoint, reference['result'])}")
                    a, b = statistics.median(our_ms), statistics.median(duck_ms)
                    total_ours += a
                    total_duck += b
                    print(
                        f"{site[:20]:<20} {days:>4}d {filters:>7} {panel.name:<22} {a:8.1f} {b:9.1f} {a / b:6.2f}"
                        f"  {'=' if same else '503' if answer is STOPPED else 'DIFF'}"
                        + (f"  {highest:7.1f} {statistics.median(cpu_ms):7.0f}" if server else ""),
                        flush=True,
                    )
                ratio = total_ours / total_duck
                label = f"{site[:20]:<20} {days:>4}d {filters:>7} {'SET':<22}"
                print(f"{label} {total_ours:8.1f} {total_duck:9.1f} {ratio:6.2f}")
    return mismatches


def run_worker(args: argparse.Namespace, shape: Shape) -> None:
    """Our store functions in a worker process on a database loaded in bulk and fully refreshed."""
    base = os.path.join(args.dir, shape.key())
    data_dir = os.path.join(base, "data")
    write_files(shape, data_dir)
    path = os.path.join(base, "worker.db")
    prepare(path, shape, args.rebuild)
    mine = Worker("--serve-ours", path)
    started = time.perf_counter()
    duck = Worker("--serve-duck", data_dir)
    print(f"duckdb loaded the CSV in {time.perf_counter() - started:.1f} s", flush=True)
    print(f"\nour worker after connecting: RSS {mine.ready['VmRSS'] / 1024:.1f} MB", flush=True)

    def ask(site: str, days: int, filters: str, panel: Panel) -> tuple[float, Any]:
        answer = mine.ask({"site": site, "days": days, "filters": filters, "panel": dataclasses.asdict(panel)})
        return answer["ms"], answer["result"]

    mismatches = compare_panels(shape, args, ask, duck, args.runs)
    memory = mine.ask({"memory": True})["memory"]
    duck_memory = duck.ask({"memory": True})["memory"]
    mine.close()
    duck.close()
    print(
        f"\nour worker: RSS {memory['VmRSS'] / 1024:.1f} MB now, peak {memory['VmHWM'] / 1024:.1f} MB "
        f"(DuckDB's worker: peak {duck_memory['VmHWM'] / 1024:.0f} MB)"
    )
    print(f"answers differing from DuckDB's: {mismatches}")


def run_server(args: argparse.Namespace, shape: Shape) -> None:
    """The real server (`medama.py start` of --checkout) on databases filled by `medama.py import`: the
    panels right after the import, the time until its background work has settled, the panels then,
    and the server's peak RSS over all of it."""
    base = os.path.join(args.dir, shape.key())
    data_dir = os.path.join(base, "data")
    write_files(shape, data_dir)
    workdir = os.path.join(base, "server")
    imported = os.path.join(base, "imported")  # the databases right after the import, kept for --reuse-import
    if args.as_is:
        print("databases as an earlier run left them", flush=True)
    elif args.reuse_import and os.path.exists(os.path.join(imported, "done")):
        shutil.rmtree(workdir, ignore_errors=True)
        shutil.copytree(imported, workdir)
        print("databases as right after the import: copied from an earlier run", flush=True)
    else:
        shutil.rmtree(workdir, ignore_errors=True)
        os.makedirs(workdir)
        Server(args.checkout, workdir).stop()  # creates the databases and the admin user
        for name in ("views", "events"):
            seconds, peak, cpu = run_import(args.checkout, workdir, os.path.join(data_dir, f"{name}.csv"))
            print(
                f"medama import {name}.csv: {seconds:.1f} s ({cpu:.1f} s CPU), import process peak RSS"
                f" {peak / 1024:.1f} MB",
                flush=True,
            )
        shutil.rmtree(imported, ignore_errors=True)
        shutil.copytree(workdir, imported)
        with open(os.path.join(imported, "done"), "w") as marker:
            marker.write(shape.key())
    duck = Worker("--serve-duck", data_dir)
    started = time.monotonic()
    server = Server(args.checkout, workdir)
    server.reset_peak()
    up = time.monotonic() - started
    print(f"server up and logged in after {up:.1f} s, RSS {server.memory()['VmRSS'] / 1024:.1f} MB")

    # --panel-rss: the peaks (MB) over the settled panels and over the last one, and the last one's server CPU
    # ms; "on" once settled (the first pass keeps the peak of the background work whole).
    highest = {"settled": 0.0, "last": 0.0, "cpu": 0.0, "on": 0.0}

    def ask(site: str, days: int, filters: str, panel: Panel) -> tuple[float, Any]:
        if highest["on"]:
            server.reset_peak()
            highest["cpu"] = server.cpu()
        try:
            return server.get(url(site, days, filters, panel))
        except RuntimeError as exc:  # a raw read past the server's read limit (while catching up) is a result
            if ": 503 " not in str(exc):
                raise
            return db.READ_TIME_LIMIT_S * 1000, STOPPED
        finally:
            if highest["on"]:
                highest["last"] = server.memory()["VmHWM"] / 1024
                highest["cpu"] = (server.cpu() - highest["cpu"]) * 1000
                highest["settled"] = max(highest["settled"], highest["last"])

    def last_request() -> tuple[float, float]:
        return highest["last"], highest["cpu"]

    try:
        mismatches = 0
        if args.first_pass:
            print("\nright after the import (background work running):")
            mismatches += compare_panels(shape, args, ask, duck, 1)
        since = time.monotonic() - started
        print(f"after that pass: {since:.0f} s since start, {pending_work(workdir):,} units waiting")
        while (waiting := pending_work(workdir)) and time.monotonic() - started < args.settle_limit:
            memory = server.memory()
            rss, high = memory["VmRSS"] / 1024, memory["VmHWM"] / 1024
            print(
                f"  {time.monotonic() - started:6.0f} s: {waiting:,} waiting, RSS {rss:.1f} MB (peak {high:.1f}),"
                f" server CPU {server.cpu():.0f} s, load {os.getloadavg()[0]:.1f}",
                flush=True,
            )
            time.sleep(args.poll)
        settled = time.monotonic() - started
        state = f"settled {settled:.0f} s after start" if not waiting else f"NOT settled after {settled:.0f} s"
        print(f"{state} (server CPU {server.cpu():.0f} s, load {' '.join(f'{x:.1f}' for x in os.getloadavg())})")
        background = server.memory()
        print(f"server peak RSS so far (first pass and background work): {background['VmHWM'] / 1024:.1f} MB")
        server.reset_peak()
        highest["on"] = float(args.panel_rss)
        print("\nsettled:")
        mismatches += compare_panels(shape, args, ask, duck, args.runs, last_request if args.panel_rss else None)
        if shape.sites > 1:
            elapsed, _ = server.get("/api/websites?summary=true")
            print(f"\nGET /api/websites?summary=true: {elapsed:.0f} ms")
        memory = server.memory()
        if args.panel_rss:  # each panel started the peak over: the settled panels' peak is the highest of theirs
            memory["VmHWM"] = max(memory["VmHWM"], int(highest["settled"] * 1024))
    except BaseException:  # never leave the server running
        server.proc.kill()
        duck.close()
        raise
    server.stop()
    duck.close()
    print(
        f"\nserver: RSS {memory['VmRSS'] / 1024:.1f} MB at the end, peak {memory['VmHWM'] / 1024:.1f} MB over the"
        f" settled queries, {max(memory['VmHWM'], background['VmHWM']) / 1024:.1f} MB since logging in"
    )
    print(f"answers differing from DuckDB's: {mismatches}")


def run(args: argparse.Namespace) -> None:
    os.makedirs(args.dir, exist_ok=True)
    if args.ingest:
        measure_ingest(args.dir)
        return
    shape = Shape(args.rows, args.days, args.paths, args.referrers, args.prop_values, args.sites, entries=args.entries)
    if args.entries and args.server:
        raise SystemExit("--entries: the import format has no internal referrer paths; run it without --server")
    if args.goals and args.server:
        raise SystemExit("--goals: times the goals in-process (the server would need them created); no --server")
    print(f"shape {shape.key()}", flush=True)
    if args.server:
        run_server(args, shape)
    else:
        run_worker(args, shape)


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--serve-ours":
        return serve_ours(sys.argv[2])
    if len(sys.argv) == 3 and sys.argv[1] == "--serve-duck":
        return serve_duck(sys.argv[2])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=SPAN_DAYS, help="days the views span, ending at END")
    parser.add_argument("--paths", type=int, default=len(PATHS), help="distinct paths (above 401: a tail)")
    parser.add_argument("--referrers", type=int, default=len(REFERRERS), help="distinct referrers (above 50: a tail)")
    parser.add_argument("--prop-values", type=int, default=0, help="distinct values of an `article` property")
    parser.add_argument("--sites", type=int, default=1, help="sites sharing the views (log-normal sizes)")
    parser.add_argument("--ranges", default="30,90", help="the dashboard's last N days to time, comma-separated")
    parser.add_argument("--details", action="store_true", help="time the detail tables (100 rows) too")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--dir", default="/tmp/medama-bench")
    parser.add_argument("--rebuild", action="store_true", help="rebuild the worker's database even if it exists")
    parser.add_argument(
        "--filters", default="no,page", help="filter sets to time, of: no, page, other, browser, referrer, prop"
    )
    parser.add_argument("--server", action="store_true", help="import into and query the real server instead")
    parser.add_argument("--checkout", default=str(ROOT), help="the medama checkout whose server --server runs")
    parser.add_argument("--settle-limit", type=float, default=1800, help="seconds to wait for background work")
    parser.add_argument("--poll", type=float, default=5, help="seconds between looks at the background work")
    parser.add_argument(
        "--reuse-import",
        action="store_true",
        help="with --server, start from a copy of an earlier run's databases as they were right after the import",
    )
    parser.add_argument(
        "--as-is", action="store_true", help="with --server, start on the databases an earlier run left (settled)"
    )
    parser.add_argument(
        "--no-first-pass",
        dest="first_pass",
        action="store_false",
        help="with --server, do not time the panels right after the import (at 10 M views each reads every row)",
    )
    parser.add_argument(
        "--panel-rss",
        action="store_true",
        help="with --server, each settled panel's peak RSS (started over before each request) and server CPU ms",
    )
    parser.add_argument("--ingest", action="store_true", help="measure the ingestion cost instead")
    parser.add_argument(
        "--entries", action="store_true", help="views with internal referrers, and the entry and exit pages timed"
    )
    parser.add_argument("--goals", action="store_true", help="the goals panel too (a page goal, an event goal)")
    parser.add_argument("--only", default="", help="time only these panels (endpoints, comma-separated: goals)")
    run(parser.parse_args())


if __name__ == "__main__":
    main()
