"""Entry and exit pages (/entries, /exits) from rollup kinds 13 and 14 and their column copies.

There is no visit identifier. A view is an *entry* when it has no internal referrer (its referrer is not
a page of the site, or it has none); views stored before analytics migration 13 are all entries. Every
view that arrived from page P by an internal link (its `referrer_path` is P) is one departure from P that
was not an exit, so exits(P) = views(P) - departures(P), floored at 0 (docs/insights.md says where this
errs). Unfiltered answers sum the rollups (kind 13: each entry's path behind rollups.ENTRY_MARK; kind 14:
the internal referrer's path) and the raw rows of the hours they cannot answer; filtered ones tally the
column copies of the same two columns and raw rows (store/sqlite/stats.py). Both agree with a plain count over
the raw rows (tests/store/test_entries_random.py).
"""

from __future__ import annotations

import re
import sqlite3
from collections import Counter
from collections.abc import Sequence
from typing import Any, Final

from medama_core.store.answers import entry_rows, exit_rows
from medama_core.store.query import Page, Query
from medama_core.store.sqlite import columns, rollups, scan, stats
from medama_core.store.sqlite.rollups import ENTRY_MARK, KIND_SQL, KINDS, NOT_ENTRY

__all__ = ["ENTRY_FIELDS", "EXIT_FIELDS", "entries", "entry_rows", "exit_rows", "exits"]

ENTRY_KIND: Final = KINDS["entry"]
CAME_FROM_KIND: Final = KINDS["came_from"]
PATH_KIND: Final = KINDS["path"]
# The counts each answer sums per path (rollup's column names).
ENTRY_FIELDS: Final = ("visitors", "page_visitors", "pageviews", "bounces", "timed")
EXIT_FIELDS: Final = ("page_visitors", "pageviews")
_PARAM_RE: Final = re.compile(r":([A-Za-z_]\w*)")


def _renamed(sql: str, params: dict[str, object], prefix: str) -> tuple[str, dict[str, object]]:
    """`sql` and its named `params` with every parameter name prefixed, to share a statement with others."""
    return _PARAM_RE.sub(lambda m: f":{prefix}{m.group(1)}", sql), {f"{prefix}{k}": v for k, v in params.items()}


def _limit(page: Page) -> str:
    return "" if page.limit is None else f" LIMIT {int(page.offset + page.limit)}"


def _kind_rows(
    conn: sqlite3.Connection, query: Query, kind: int, names: Sequence[str], prefix: str
) -> tuple[str, dict[str, object]]:
    """A SELECT of (value, `names`...) rows of `kind` over an unfiltered query, whose sums per value are exact."""
    params: dict[str, object] = {}
    plan = stats.plan_for(conn, query, kind)
    rows = stats._group_rows(query, kind, plan, "all", params, names)
    return _renamed(rows, params, prefix)


# ---- entries ----------------------------------------------------------------------------------------

_ENTRIES_SQL = """
    SELECT value, {names}, SUM(pageviews) OVER (), SUM(page_visitors) OVER () FROM {summed}
    WHERE value <> :none ORDER BY pageviews DESC, page_visitors DESC, value{limit}"""


def entries(conn: sqlite3.Connection, query: Query, summary: bool, page: Page) -> list[dict[str, Any]]:
    """/entries: per page, the views that entered the site there (`entries`) and their share of all
    entries, the entries that were the visitor's first view of that page that day (`visitors`) and,
    for full rows, the bounce rate of the entries (the summary's rule, over the entries alone)."""
    names = ENTRY_FIELDS
    if query.filters:
        tally = stats._filtered_tally(conn, query, ENTRY_KIND, names)
        try:
            sql = _ENTRIES_SQL.format(names=", ".join(names), summed=tally.summed(), limit=_limit(page))
            found = tally.db.execute(sql, {"none": NOT_ENTRY}).fetchall()
        finally:
            tally.close()
    else:
        rows, params = _kind_rows(conn, query, ENTRY_KIND, names, "e_")
        params["none"] = NOT_ENTRY
        summed = stats._summed(rows, names)
        sql = _ENTRIES_SQL.format(names=", ".join(names), summed=summed, limit=_limit(page))
        found = conn.execute(sql, params).fetchall()
    return entry_rows(
        [
            (value[len(ENTRY_MARK) :], stats._group(names, counts), total, visitors)
            for value, *counts, total, visitors in page.cut(found)
        ],
        summary,
    )


# ---- exits ------------------------------------------------------------------------------------------

# Per path: its page visitors and views, and the views that came from it by an internal link; exits are
# the views less those departures, floored at 0 (a departure whose view of the path fell before the period).
_EXITS_SQL = """
    SELECT value, page_visitors, pageviews, exits, SUM(exits) OVER (), SUM(page_visitors) OVER () FROM (
        SELECT value, SUM(page_visitors) AS page_visitors, SUM(pageviews) AS pageviews,
            max(SUM(pageviews) - SUM(departures), 0) AS exits
        FROM ({rows}) GROUP BY value)
    WHERE exits > 0 ORDER BY exits DESC, page_visitors DESC, value{limit}"""


def _exit_rows(path_rows: str, came_from_rows: str) -> str:
    return (
        f"SELECT value, page_visitors, pageviews, 0 AS departures FROM ({path_rows})"
        f" UNION ALL SELECT value, 0, 0, pageviews FROM ({came_from_rows}) WHERE value <> :none"
    )


def exits(conn: sqlite3.Connection, query: Query, summary: bool, page: Page) -> list[dict[str, Any]]:
    """/exits: per page with exits, its exits (views less the views that came from it by an internal link,
    at least 0) and their share of all exits, its page visitors as /pages counts them (`visitors`) and
    their share of the page visitors of the pages listed, and for full rows its views (`pageviews`) and
    the share of them that were exits (`exit_percentage`)."""
    if query.filters:
        views, came_from = _filtered_exit_tallies(conn, query)
        try:
            departures = came_from.db.execute(f"SELECT value, pageviews FROM {came_from.summed()}").fetchall()
            views.db.execute("CREATE TABLE departures (value TEXT NOT NULL, pageviews INTEGER NOT NULL)")
            views.db.executemany("INSERT INTO departures VALUES (?, ?)", departures)
            rows = _exit_rows(f"SELECT * FROM {views.summed()}", "SELECT * FROM departures")
            found = views.db.execute(_EXITS_SQL.format(rows=rows, limit=_limit(page)), {"none": NOT_ENTRY}).fetchall()
        finally:
            views.close()
            came_from.close()
    else:
        path_rows, params = _kind_rows(conn, query, PATH_KIND, EXIT_FIELDS, "p_")
        came_rows, more = _kind_rows(conn, query, CAME_FROM_KIND, ("pageviews",), "c_")
        params.update(more, none=NOT_ENTRY)
        sql = _EXITS_SQL.format(rows=_exit_rows(path_rows, came_rows), limit=_limit(page))
        found = conn.execute(sql, params).fetchall()
    return exit_rows(page.cut(found), summary)


def _filtered_exit_tallies(conn: sqlite3.Connection, query: Query) -> tuple[stats.Tally, stats.Tally]:
    """A filtered query's page visitors and views per path, and views per internal referrer path: the two
    tallies of store/sqlite/stats.py's _filtered_tally, from one pass over the column copies (one filter mask a
    day for both columns), then raw rows for the rest."""
    the_plan = columns.plan(conn, query.hostname, query.start, query.end, props=bool(query.prop_filters))
    path, came = columns.KIND_COLUMNS[PATH_KIND], columns.KIND_COLUMNS[CAME_FROM_KIND]
    hours = the_plan.hours_by_day()
    selection = scan.Selection(query.view_filters, query.prop_filters)
    views, came_from = stats.Tally(EXIT_FIELDS), stats.Tally(("pageviews",))
    names = [*selection.columns, path, came]
    for copy in columns.load(conn, query.hostname, list(hours), names, False, partial=the_plan.partial_days()):
        day_scan = scan.DayScan(copy)
        mask = day_scan.filters_mask(selection)
        if mask:
            mask &= day_scan.hours_in(hours[copy.day])
        if mask:
            views.add(day_scan.group_counts(path, mask, EXIT_FIELDS, False)[0])
            came_from.add(day_scan.group_counts(came, mask, ("pageviews",), False)[0])
    for tally, kind in ((views, PATH_KIND), (came_from, CAME_FROM_KIND)):
        sums = ", ".join(rollups.GROUP_SQL[field] for field in tally.fields)
        for where, params in stats._filtered_pieces(query, the_plan.raw):
            cursor = conn.execute(stats._RAW_GROUPS_SQL.format(label=KIND_SQL[kind], columns=sums, where=where), params)
            while rows := cursor.fetchmany(stats.RAW_ROWS_CHUNK):
                tally.add({field: Counter({row[0]: row[i] for row in rows}) for i, field in enumerate(tally.fields, 1)})
    return views, came_from
