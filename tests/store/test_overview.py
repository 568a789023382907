"""store/sqlite/overview.py: many sites' 24-h visitors equal raw rows and each /summary in every rollup state."""

from __future__ import annotations

import random
import sqlite3
from typing import Any

import pytest

from medama_core.store.sqlite import overview, rollups, stats
from tests.store.test_stats import DAY, FAR_FUTURE, HOUR, insert, new_db, view

NOW = 1_717_243_200_000 + 25 * 60_000  # 2024-06-01T12:25:00Z: the current hour is open
SITES = [f"s{i}.example" for i in range(7)]  # s6 gets no views at all


def random_views(rnd: random.Random) -> list[dict[str, Any]]:
    """Views of s0..s5 over the three days before NOW and an hour after it (future-dated rows exist too),
    some exactly on hour edges, sizes from a handful to a busy hour."""
    rows = []
    for site in SITES[:-1]:
        for _ in range(rnd.choice([1, 5, 40, 300])):
            at = NOW - 3 * DAY + rnd.randrange(3 * DAY + HOUR)
            if rnd.random() < 0.1:
                at -= at % HOUR  # on an hour edge
            rows.append(view(hostname=site, is_unique_user=int(rnd.random() < 0.5), date_created=at))
    rows.append(view(hostname="other.example", date_created=NOW - HOUR))  # a site not asked for
    return rows


def reference(rows: list[dict[str, Any]], hostnames: list[str], since: int) -> dict[str, int]:
    counts = dict.fromkeys(hostnames, 0)
    for row in rows:
        if row["hostname"] in counts and row["date_created"] > since and row["is_unique_user"]:
            counts[row["hostname"]] += 1
    return counts


def per_site(conn: sqlite3.Connection, hostnames: list[str], since: int) -> dict[str, int]:
    """Each site's /summary from `since` + 1 ms on, with no end: the same window, one site at a time."""
    return {
        site: stats.snapshot(conn, stats.site_metrics, stats.Query(site, (since + 1) * 1000))["visitors"]
        for site in hostnames
    }


def random_since(rnd: random.Random, rows: list[dict[str, Any]]) -> int:
    """A window start on an hour edge, just before one, next to a row, or anywhere."""
    day_ago = NOW - DAY
    return rnd.choice(
        [
            day_ago,
            day_ago - day_ago % HOUR,
            day_ago - day_ago % HOUR - 1,
            rnd.choice(rows)["date_created"],
            rnd.choice(rows)["date_created"] - 1,
            NOW - rnd.randrange(3 * DAY),
            NOW + 2 * HOUR,  # after every row
        ]
    )


@pytest.mark.parametrize("seed", range(6))
def test_visitors_since_equals_the_rows_and_each_sites_summary(seed: int) -> None:
    rnd = random.Random(seed)
    conn = new_db()
    rows = random_views(rnd)
    insert(conn, rows)
    for state in ["dirty", "built", "touched", "all built"]:
        if state == "built":
            rollups.refresh(conn, NOW)  # closed hours only: the current and future ones stay dirty
        elif state == "touched":  # a late unload and a deletion dirty some closed hours again
            for row in rnd.sample(rows[:-1], 3):
                conn.execute("UPDATE views SET duration_ms = 5 WHERE bid = ?", (row["bid"],))
            gone = rows.pop(rnd.randrange(len(rows) - 1))
            conn.execute("DELETE FROM views WHERE bid = ?", (gone["bid"],))
        elif state == "all built":  # future hours rolled up too (the clock moved on)
            rollups.refresh(conn, FAR_FUTURE)
        for _ in range(6):
            since = random_since(rnd, rows)
            hostnames = rnd.sample(SITES, rnd.randrange(1, len(SITES) + 1))
            got = stats.snapshot(conn, overview.visitors_since, hostnames, since)
            assert got == reference(rows, hostnames, since), (state, since)
            assert got == per_site(conn, hostnames, since), (state, since)
    conn.close()


def test_clean_hours_come_from_the_rollups() -> None:
    """After a refresh the closed hours are read from the hour rollups, not the rows: a rollup row changed by
    hand shows in the answer, while the open hour and the hour the window starts in are still read raw."""
    conn = new_db()
    since = NOW - DAY  # 12:25 the day before: hour 12 of that day is read raw from 12:25:00.001 on
    insert(
        conn,
        [
            view(hostname="a.example", date_created=since),  # not after `since`
            view(hostname="a.example", date_created=since + 1),  # the part-hour
            view(hostname="a.example", date_created=NOW - 5 * HOUR),  # a closed hour
            view(hostname="a.example", date_created=NOW - 60_000),  # the open hour
        ],
    )
    rollups.refresh(conn, NOW)
    assert stats.snapshot(conn, overview.visitors_since, ["a.example"], since) == {"a.example": 3}
    closed = (NOW - 5 * HOUR) // HOUR
    conn.execute(
        "UPDATE rollup SET visitors = 100 WHERE hostname = 'a.example' AND span = 1 AND kind = 0 AND period = ?",
        (closed,),
    )
    assert stats.snapshot(conn, overview.visitors_since, ["a.example"], since) == {"a.example": 102}
    conn.close()


def test_site_intervals_are_each_sites_summary_buckets() -> None:
    rnd = random.Random(7)
    conn = new_db()
    insert(conn, random_views(rnd))
    rollups.refresh(conn, NOW)
    start_us, end_us = (NOW - 2 * DAY) * 1000, NOW * 1000
    for interval in ["hour", "day"]:
        got = stats.snapshot(conn, overview.site_intervals, SITES, start_us, end_us, interval)
        for site, buckets in zip(SITES, got, strict=True):
            summary = stats.snapshot(conn, stats.summary, stats.Query(site, start_us, end_us), False, interval)
            assert buckets == summary["interval"]
    conn.close()
