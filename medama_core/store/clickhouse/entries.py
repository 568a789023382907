"""Entry and exit pages on ClickHouse (/entries, /exits): the numbers of store/sqlite/entries.py, from `views`.

No pre-aggregate holds the internal referrer's path, so both read the site's range of `views` (one pass
for entries, two for exits; with a page or country filter, a sorted copy's narrower range: stats._table),
every count summing `sign` as everywhere here. The rows, their sort and their shares are the SQLite
store's own (entry_rows, exit_rows), so both engines answer alike.
"""

from __future__ import annotations

from typing import Any

from medama_core.store.aggregate import Group
from medama_core.store.answers import entry_rows, exit_rows
from medama_core.store.clickhouse.client import Client
from medama_core.store.clickhouse.stats import _resolve, _table, _where
from medama_core.store.query import Page, Query

__all__ = ["entries", "exits"]

# The counts of store/entries.ENTRY_FIELDS, each summing `sign`.
_ENTRY_COUNTS = (
    "sumIf(sign, is_unique_user = 1)",  # visitors
    "sumIf(sign, is_unique_page = 1)",  # page_visitors
    "sum(sign)",  # pageviews
    "sumIf(sign, is_unique_user = 1 AND ifNull(duration_ms, -1) BETWEEN 100 AND 5000)",  # bounces
    "sumIf(sign, is_unique_user = 1 AND isNotNull(duration_ms))",  # timed
)


def _entry_group(counts: list[Any]) -> Group:
    visitors, page_visitors, pageviews, bounces, timed = (int(n) for n in counts)
    return Group(visitors, page_visitors, pageviews, bounces, timed)


def entries(client: Client, query: Query, summary: bool, page: Page) -> list[dict[str, Any]]:
    """/entries (store/sqlite/entries.py entries)."""
    query = _resolve(client, query)
    params: dict[str, object] = {}
    sql = (
        f"SELECT pathname, {', '.join(_ENTRY_COUNTS)} FROM {_table(query)} WHERE {_where(query, params)}"
        " AND referrer_path = ''"
        " GROUP BY pathname HAVING sum(sign) > 0"
    )
    groups = [(str(path), _entry_group(counts)) for path, *counts in client.rows(sql, params)]
    total = sum(group.pageviews for _, group in groups)
    visitors = sum(group.page_visitors for _, group in groups)
    groups.sort(key=lambda item: (-item[1].pageviews, -item[1].page_visitors, item[0]))
    return entry_rows([(path, group, total, visitors) for path, group in page.cut(groups)], summary)


def exits(client: Client, query: Query, summary: bool, page: Page) -> list[dict[str, Any]]:
    """/exits (store/sqlite/entries.py exits)."""
    query = _resolve(client, query)
    params: dict[str, object] = {}
    where, table = _where(query, params), _table(query)  # a sorted copy for a page or country filter
    views = client.rows(
        f"SELECT pathname, sumIf(sign, is_unique_page = 1), sum(sign) FROM {table} WHERE {where} GROUP BY pathname",
        params,
    )
    departures = {
        str(path): int(n)
        for path, n in client.rows(
            f"SELECT referrer_path, sum(sign) FROM {table} WHERE {where} AND referrer_path != ''"
            " GROUP BY referrer_path",
            params,
        )
    }
    rows: list[tuple[str, int, int, int]] = []
    for path, page_visitors, pageviews in views:
        n = max(int(pageviews) - departures.get(str(path), 0), 0)
        if n > 0:
            rows.append((str(path), int(page_visitors), int(pageviews), n))
    total = sum(row[3] for row in rows)
    visitors = sum(row[1] for row in rows)
    rows.sort(key=lambda row: (-row[3], -row[1], row[0]))
    return exit_rows([(*row, total, visitors) for row in page.cut(rows)], summary)
