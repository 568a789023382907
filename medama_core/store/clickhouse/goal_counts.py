"""Goal counts on ClickHouse: every goal's views and page visitors over a query, with the query's visitors.

The same numbers as store/sqlite/goal_counts.py (which explains them): without
request filters a goal of path filters only is summed from `hourly`'s pages
(every path's views and page visitors, read once for all such goals); any other
goal is one count of the raw rows that pass the request's filters and its own.
"""

from __future__ import annotations

from collections.abc import Sequence

from medama_core.store import imported_stats
from medama_core.store.clickhouse import stats as ch_stats
from medama_core.store.clickhouse.client import Client
from medama_core.store.clickhouse.imported import ENGINE
from medama_core.store.filters import Filter, matcher
from medama_core.store.query import Query

__all__ = ["Counts", "goal_counts"]

Counts = tuple[int, int]  # (views, page visitors)


def _raw(client: Client, query: Query, goal: Sequence[Filter]) -> Counts:
    """The views that pass the query's filters and the goal's, and those among them with `is_unique_page`."""
    narrowed = ch_stats._resolve(client, Query(query.hostname, query.start_us, query.end_us, (*query.filters, *goal)))
    params: dict[str, object] = {}
    where = ch_stats._where(narrowed, params)
    sql = f"SELECT sum(sign), sumIf(sign, is_unique_page = 1) FROM {ch_stats._table(narrowed)} WHERE {where}"
    rows = client.rows(sql, params)
    return (int(rows[0][0] or 0), int(rows[0][1] or 0)) if rows else (0, 0)


def goal_counts(client: Client, query: Query, goals: Sequence[tuple[Filter, ...]]) -> tuple[int, list[Counts]]:
    """As store/goal_counts.goal_counts: the query's visitors as /summary counts them, and each goal's
    (views, page visitors) among the query's views."""
    visitors = int(imported_stats.summary(client, query, False, None, ENGINE)["current"]["visitors"])
    by_path = None
    if not query.filters and any(all(flt.field == "path" for flt in goal) for goal in goals):
        resolved = ch_stats._resolve(client, query)
        by_path = ch_stats._hourly_groups(client, resolved, "path", ("pageviews", "page_visitors"))
    found = []
    for goal in goals:
        if by_path is not None and all(flt.field == "path" for flt in goal):
            tests = [matcher(flt) for flt in goal]
            chosen = [group for path, group in by_path.items() if all(test(path) for test in tests)]
            found.append((sum(group.pageviews for group in chosen), sum(group.page_visitors for group in chosen)))
        else:
            found.append(_raw(client, query, goal))
    return visitors, found
