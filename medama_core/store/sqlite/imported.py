"""Imported daily totals (table `imported_days`): written by the Plausible importer, read by the stats merge.

A tool that exports only aggregates (Plausible) leaves no rows to store as
views, so its days live here, per site, day, dimension and value. Writing a
day's values again replaces them, so importing the same export twice changes
nothing.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable

from medama_core.store.rows import Totals

__all__ = ["Totals", "periods", "site_days", "store", "totals", "visitors_since"]


_UPSERT = (
    "INSERT INTO imported_days (hostname, day, dimension, value, tool, visitors, pageviews, visits, bounces,"
    " duration_s) VALUES (:hostname, :day, :dimension, :value, :tool, :visitors, :pageviews, :visits, :bounces,"
    " :duration_s) ON CONFLICT (hostname, dimension, day, value) DO UPDATE SET tool = excluded.tool,"
    " visitors = excluded.visitors, pageviews = excluded.pageviews, visits = excluded.visits,"
    " bounces = excluded.bounces, duration_s = excluded.duration_s"
    " WHERE (visitors, pageviews, visits, bounces, duration_s) IS NOT"
    " (excluded.visitors, excluded.pageviews, excluded.visits, excluded.bounces, excluded.duration_s)"
)


def store(conn: sqlite3.Connection, rows: Iterable[dict[str, object]]) -> int:
    """Upsert day totals (the table's columns by name); how many rows were new or changed."""
    before = conn.total_changes
    conn.executemany(_UPSERT, rows)
    return conn.total_changes - before


def totals(
    conn: sqlite3.Connection, hostname: str, dimension: str, start_ms: int | None, end_ms: int | None
) -> dict[str, Totals]:
    """Per value, the sums over the imported days whose 00:00 UTC lies in [start_ms, end_ms]."""
    rows = conn.execute(
        "SELECT value, sum(visitors), sum(pageviews), sum(visits), sum(bounces), sum(duration_s) FROM imported_days"
        " WHERE hostname = :h AND dimension = :d AND day BETWEEN :lo AND :hi GROUP BY value",
        {
            "h": hostname,
            "d": dimension,
            "lo": -(2**62) if start_ms is None else start_ms,
            "hi": 2**62 if end_ms is None else end_ms,
        },
    )
    return {str(value): Totals(*map(int, counts)) for value, *counts in rows}


def site_days(conn: sqlite3.Connection, hostname: str, start_ms: int | None, end_ms: int | None) -> dict[int, Totals]:
    """The site's imported totals per day (Unix ms of 00:00 UTC) within [start_ms, end_ms]."""
    rows = conn.execute(
        "SELECT day, visitors, pageviews, visits, bounces, duration_s FROM imported_days"
        " WHERE hostname = :h AND dimension = '' AND day BETWEEN :lo AND :hi",
        {"h": hostname, "lo": -(2**62) if start_ms is None else start_ms, "hi": 2**62 if end_ms is None else end_ms},
    )
    return {int(day): Totals(*map(int, counts)) for day, *counts in rows}


def periods(conn: sqlite3.Connection, hostname: str) -> list[tuple[str, int, int]]:
    """(tool, first day, last day) of each tool's imported days for the site (Unix ms of 00:00 UTC)."""
    rows = conn.execute(
        "SELECT tool, min(day), max(day) FROM imported_days WHERE hostname = :h AND dimension = '' GROUP BY tool",
        {"h": hostname},
    )
    return [(str(tool), int(first), int(last)) for tool, first, last in rows]


def visitors_since(conn: sqlite3.Connection, hostnames: list[str], since_ms: int) -> dict[str, int]:
    """Per site, the imported visitors of the days whose 00:00 UTC is after `since_ms` (absent sites 0):
    one seek per site, for the websites list however many sites it has."""
    rows = conn.execute(
        "SELECT d.hostname, sum(d.visitors) FROM json_each(:hostnames) h CROSS JOIN imported_days d"
        " WHERE d.hostname = h.value AND d.dimension = '' AND d.day > :since GROUP BY d.hostname",
        {"hostnames": json.dumps(hostnames), "since": since_ms},
    )
    counts = dict.fromkeys(hostnames, 0)
    counts.update({str(hostname): int(visitors) for hostname, visitors in rows})
    return counts
