"""Imported daily totals in ClickHouse (table `imported_days`, migration 4): the SQLite calls on this engine.

The same rows and answers as the SQLite table: one row per (site, dimension,
day, value), and writing a key again replaces its values. ClickHouse has no
upsert, so a write reads the site's stored values first and inserts only the
rows that are new or differ, each with a higher `version`; the table is a
ReplacingMergeTree on that version and every read takes FINAL, so a key's
newest row is the one read before and after the background merges. Importing
the same export again inserts nothing.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any, Final

from medama_core.store import imported_stats
from medama_core.store.clickhouse import site_data
from medama_core.store.clickhouse import stats as ch_stats
from medama_core.store.clickhouse.client import Client
from medama_core.store.clickhouse.sql import in_list
from medama_core.store.query import Query
from medama_core.store.rows import Totals

__all__ = ["ENGINE", "periods", "site_days", "site_intervals", "store", "totals", "visitors_since"]

_KEY: Final = ("hostname", "dimension", "day", "value")
_VALUES: Final = ("tool", "visitors", "pageviews", "visits", "bounces", "duration_s")
# The bounds of a period left open: Int64 days far beyond any real one.
_FAR: Final = 2**62


def _bounds(start_ms: int | None, end_ms: int | None) -> dict[str, object]:
    return {"lo": -_FAR if start_ms is None else start_ms, "hi": _FAR if end_ms is None else end_ms}


def store(client: Client, rows: Iterable[dict[str, object]]) -> int:
    """Write day totals (the table's columns by name), replacing stored ones; how many rows were new or changed."""
    wanted: dict[tuple[object, ...], tuple[object, ...]] = {}
    for row in rows:
        wanted[tuple(row[c] for c in _KEY)] = tuple(row[c] for c in _VALUES)  # the last of a key wins, as in SQLite
    if not wanted:
        return 0
    stored: dict[tuple[object, ...], tuple[object, ...]] = {}
    for hostname in sorted({str(key[0]) for key in wanted}):
        days = [int(str(key[2])) for key in wanted if key[0] == hostname]
        found = client.rows(
            f"SELECT {', '.join((*_KEY, *_VALUES))} FROM imported_days FINAL"
            " WHERE hostname = {h:String} AND day BETWEEN {lo:Int64} AND {hi:Int64}",
            {"h": hostname, "lo": min(days), "hi": max(days)},
        )
        for values in found:
            stored[tuple(values[: len(_KEY)])] = tuple(values[len(_KEY) :])
    changed = [(*key, *values) for key, values in wanted.items() if stored.get(key) != values]
    if changed:
        version = time.time_ns()  # later writes win; one write's rows share it (their keys differ)
        client.insert("imported_days", (*_KEY, *_VALUES, "version"), [(*row, version) for row in changed])
    return len(changed)


def totals(
    client: Client, hostname: str, dimension: str, start_ms: int | None, end_ms: int | None
) -> dict[str, Totals]:
    """Per value, the sums over the imported days whose 00:00 UTC lies in [start_ms, end_ms]."""
    rows = client.rows(
        "SELECT value, sum(visitors), sum(pageviews), sum(visits), sum(bounces), sum(duration_s)"
        " FROM imported_days FINAL WHERE hostname = {h:String} AND dimension = {d:String}"
        " AND day BETWEEN {lo:Int64} AND {hi:Int64} GROUP BY value",
        {"h": hostname, "d": dimension, **_bounds(start_ms, end_ms)},
    )
    return {str(value): Totals(*map(int, counts)) for value, *counts in rows}


def site_days(client: Client, hostname: str, start_ms: int | None, end_ms: int | None) -> dict[int, Totals]:
    """The site's imported totals per day (Unix ms of 00:00 UTC) within [start_ms, end_ms]."""
    rows = client.rows(
        "SELECT day, visitors, pageviews, visits, bounces, duration_s FROM imported_days FINAL"
        " WHERE hostname = {h:String} AND dimension = '' AND day BETWEEN {lo:Int64} AND {hi:Int64}",
        {"h": hostname, **_bounds(start_ms, end_ms)},
    )
    return {int(day): Totals(*map(int, counts)) for day, *counts in rows}


def periods(client: Client, hostname: str) -> list[tuple[str, int, int]]:
    """(tool, first day, last day) of each tool's imported days for the site (Unix ms of 00:00 UTC)."""
    rows = client.rows(
        "SELECT tool, min(day), max(day) FROM imported_days FINAL WHERE hostname = {h:String} AND dimension = ''"
        " GROUP BY tool ORDER BY tool",
        {"h": hostname},
    )
    return [(str(tool), int(first), int(last)) for tool, first, last in rows]


def visitors_since(client: Client, hostnames: list[str], since_ms: int) -> dict[str, int]:
    """Per site, the imported visitors of the days whose 00:00 UTC is after `since_ms` (absent sites 0)."""
    counts = dict.fromkeys(hostnames, 0)
    if not hostnames:
        return counts
    params: dict[str, object] = {"since": since_ms}
    names = in_list("h", hostnames, params)
    rows = client.rows(
        f"SELECT hostname, sum(visitors) FROM imported_days FINAL WHERE hostname IN ({names}) AND dimension = ''"
        " AND day > {since:Int64} GROUP BY hostname",
        params,
    )
    counts.update({str(hostname): int(visitors) for hostname, visitors in rows})
    return counts


def site_intervals(
    client: Client, hostnames: list[str], start_us: int, end_us: int, interval: str
) -> list[list[dict[str, Any]]]:
    """Each site's /summary buckets over [start_us, end_us] (the sparklines), from its own rows."""
    return [
        ch_stats.interval_metrics(client, Query(hostname, start_us, end_us), interval, start_us, end_us)
        for hostname in hostnames
    ]


# ClickHouse's reads for store/imported_stats.py's merge of imported days into the stats answers.
ENGINE: Final = imported_stats.Engine(
    ch_stats.summary,
    ch_stats.list_stats,
    site_intervals,
    site_data.unique_visitors_since,
    site_days,
    totals,
    visitors_since,
)
