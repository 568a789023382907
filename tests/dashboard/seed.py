"""Deterministic analytics rows for the browser tests, written straight into the analytics database.

The server's own ingestion stamps hits with the current time; the dashboard also needs history
(weeks of data for presets, comparisons and custom ranges), so the rows are inserted with SQL,
the way an import would. The stats code finds them through the rollup triggers.
"""

from __future__ import annotations

import random
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from tests import stores

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
PATHS = [f"/blog/post-{i:02d}" for i in range(1, 31)] + ["/", "/pricing", "/about", "/docs/start"]
# Strings from strangers: the dashboard must show them as text, never as markup.
HOSTILE_PATH = '/<img src=x onerror="window.__xss=1">'
REFERRERS = [("", ""), ("www.google.com", "Google"), ("news.ycombinator.com", "Hacker News"), ("t.co", "Twitter")]
SOURCES = ["", "", "newsletter", "twitter"]
MEDIUMS = ["", "", "email", "social"]
CAMPAIGNS = ["", "", "spring_sale"]
BROWSERS = ["Chrome", "Firefox", "Safari", "Edge"]
OSES = ["Windows", "macOS", "Linux", "Android", "iOS"]
DEVICES = ["Desktop", "Mobile", "Tablet"]
COUNTRIES = ["United States", "Germany", "United Kingdom", "France", "Japan", "Côte d’Ivoire", "Unknown"]
LANGUAGES = [
    ("English", "British English"),
    ("English", "American English"),
    ("German", "German"),
    ("French", "French"),
]


@dataclass(frozen=True)
class Seeded:
    hostname: str
    views: int
    start_ms: int
    end_ms: int


def _insert(table: str, row: dict[str, object]) -> str:
    return f"INSERT INTO {table} ({', '.join(row)}) VALUES ({', '.join(':' + c for c in row)})"


def seed_views(db_path: Path | str, hostname: str, *, days: int = 40, per_day: int = 12, now_ms: int | None = None) -> Seeded:
    """Insert `per_day` views per day for `days` days before `now_ms` (the last ones in the past hour)."""
    rng = random.Random(f"{hostname}:{days}:{per_day}")
    now = int(time.time() * 1000) if now_ms is None else now_ms
    rows: list[dict[str, object]] = []
    events: list[dict[str, object]] = []
    for day in range(days):
        for i in range(per_day):
            created = now - day * DAY_MS - rng.randrange(0, DAY_MS) if day else now - rng.randrange(60_000, HOUR_MS)
            bid = f"seed{hostname}{day:03d}{i:03d}"
            referrer = rng.choice(REFERRERS)
            language = rng.choice(LANGUAGES)
            hostile = (day, i) == (0, 0)
            path = HOSTILE_PATH if hostile else rng.choice(PATHS)
            rows.append(
                {
                    "bid": bid,
                    "hostname": hostname,
                    "pathname": path,
                    "is_unique_user": int(hostile or rng.random() < 0.7),
                    "is_unique_page": int(hostile or rng.random() < 0.85),
                    "referrer_host": referrer[0],
                    "referrer_group": referrer[1],
                    "country": rng.choice(COUNTRIES),
                    "language_base": language[0],
                    "language_dialect": language[1],
                    "ua_browser": rng.choice(BROWSERS),
                    "ua_os": rng.choice(OSES),
                    "ua_device_type": rng.choice(DEVICES),
                    "utm_source": rng.choice(SOURCES),
                    "utm_medium": rng.choice(MEDIUMS),
                    "utm_campaign": rng.choice(CAMPAIGNS),
                    "duration_ms": rng.choice([None, rng.randrange(200, 4000), rng.randrange(5000, 400_000)]),
                    "date_created": created,
                }
            )
            if rng.random() < 0.5:
                for name, value in (("plan", rng.choice(["free", "pro"])), ("theme", rng.choice(["dark", "light"]))):
                    events.append(
                        {
                            "bid": bid,
                            "batch_id": bid,
                            "group_name": hostname,
                            "name": name,
                            "value": value,
                            "date_created": created,
                        }
                    )
    if stores.is_clickhouse(str(db_path)):  # the app on PostgreSQL + ClickHouse (tests/conftest.py)
        stores.insert_views(str(db_path), rows)
        stores.insert_events(str(db_path), events)
    else:
        with sqlite3.connect(db_path, timeout=30) as conn, stores.marked(conn):
            conn.executemany(_insert("views", rows[0]), rows)
            if events:
                conn.executemany(_insert("events", events[0]), events)
        conn.close()
    start = min(int(r["date_created"]) for r in rows)  # type: ignore[call-overload]
    return Seeded(hostname, len(rows), start, now)


def insert_views(db_path: Path | str, hostname: str, views: list[dict[str, object]]) -> None:
    """Insert hand-written views (`date_created`, `is_unique_user`, `duration_ms`, … ; the rest are plain defaults)."""
    rows = []
    for n, view in enumerate(views):
        row: dict[str, object] = {
            "bid": f"hand{hostname}{n:04d}",
            "hostname": hostname,
            "pathname": "/",
            "is_unique_user": 1,
            "is_unique_page": 1,
            "referrer_host": "",
            "referrer_group": "",
            "country": "Germany",
            "language_base": "English",
            "language_dialect": "British English",
            "ua_browser": "Firefox",
            "ua_os": "Linux",
            "ua_device_type": "Desktop",
            "utm_source": "",
            "utm_medium": "",
            "utm_campaign": "",
            "duration_ms": None,
        }
        row.update(view)
        rows.append(row)
    if stores.is_clickhouse(str(db_path)):
        stores.insert_views(str(db_path), rows)
        return
    with sqlite3.connect(db_path, timeout=30) as conn, stores.marked(conn):
        conn.executemany(_insert("views", rows[0]), rows)
    conn.close()
