"""Goal counts on SQLite: every goal's views and page visitors over a query, with the query's visitors, at once.

A goal comes as its own filters (goals.goal_filters of no request filters):
path filters for a page goal, prop filters for an event goal. Its numbers are
the query's views that pass them: how many (conversions), and how many of
those are the visitor's first view of that page that day (visitors; the
`is_unique_page` flag the Pages list counts). Imported daily totals are never
added to them: they cannot be matched to a goal.

Without request filters, a goal of path filters only is summed from the pages
rollup: a view has one path, so the paths that pass the filters hold exactly
its views, and every path's views and page visitors are read once for all such
goals. Every other goal, and every goal of a filtered request, is counted in
one pass over the period's column copies (raw rows where no copy holds an
hour): each day's copy is filtered once for the request and then once per
goal, and the request's visitors come from the same pass. Before this, each
goal was a filtered summary, one more per overlapping path, and a Pages list:
three or more passes over the period per goal (docs/insights.md, "Goals").
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from medama_core.store import imported_stats
from medama_core.store.filters import PROP_FIELDS, Filter, matcher
from medama_core.store.sqlite import columns, imported_merge, scan, stats
from medama_core.store.sqlite.rollups import KINDS

__all__ = ["Counts", "goal_counts", "path_counts"]

Counts = tuple[int, int]  # (views, page visitors)

_PATH_FIELDS = ("pageviews", "page_visitors")
_RAW_COUNTS_SQL = (
    "SELECT COUNT(*), COUNT(*) FILTER (WHERE v.is_unique_page), COUNT(*) FILTER (WHERE v.is_unique_user)"
    " FROM views v WHERE {where}"
)


def path_only(flts: Sequence[Filter]) -> bool:
    """Whether a goal's filters test the path alone (a page goal): then paths' counts can answer it."""
    return all(flt.field == "path" for flt in flts)


def path_counts(conn: sqlite3.Connection, query: stats.Query) -> dict[str, Counts]:
    """Every path's views and page visitors over an unfiltered query, from the pages rollup and raw pieces
    (a small site's paths raw: stats.plan_for). Paths without a view are left out."""
    assert not query.filters, "path_counts reads the rollups: an unfiltered query only"
    kind = KINDS["path"]
    params: dict[str, object] = {}
    rows = stats._group_rows(query, kind, stats.plan_for(conn, query, kind), "all", params, _PATH_FIELDS)
    sql = f"SELECT value, pageviews, page_visitors FROM {stats._summed(rows, _PATH_FIELDS)} WHERE pageviews > 0"
    return {str(path): (int(views), int(visitors)) for path, views, visitors in conn.execute(sql, params)}


def goal_counts(
    conn: sqlite3.Connection, query: stats.Query, goals: Sequence[tuple[Filter, ...]]
) -> tuple[int, list[Counts]]:
    """The query's visitors as /summary counts them (imported days added when unfiltered), and per goal (its
    own filters) the query's views that pass them: how many, and how many with `is_unique_page`."""
    if query.filters:
        return _scan(conn, query, goals)
    visitors = int(imported_stats.summary(conn, query, False, None, imported_merge.ENGINE)["current"]["visitors"])
    found: list[Counts | None] = [None] * len(goals)
    by_path = path_counts(conn, query) if any(path_only(goal) for goal in goals) else {}
    for i, goal in enumerate(goals):
        if path_only(goal):
            tests = [matcher(flt) for flt in goal]
            chosen = [counts for path, counts in by_path.items() if all(test(path) for test in tests)]
            found[i] = (sum(views for views, _ in chosen), sum(visitors for _, visitors in chosen))
    rest = [i for i, counts in enumerate(found) if counts is None]
    if rest:
        _, scanned = _scan(conn, query, [goals[i] for i in rest])
        for i, counts in zip(rest, scanned, strict=True):
            found[i] = counts
    return visitors, [counts for counts in found if counts is not None]


def _split(flts: Sequence[Filter]) -> scan.Selection:
    """Filters as a copy's column tests: view filters on the view's columns, prop filters on its events."""
    return scan.Selection(
        [flt for flt in flts if flt.field not in PROP_FIELDS], [flt for flt in flts if flt.field in PROP_FIELDS]
    )


def _scan(
    conn: sqlite3.Connection, query: stats.Query, goals: Sequence[tuple[Filter, ...]]
) -> tuple[int, list[Counts]]:
    """One pass over the query's period for its visitors and every goal's counts: the column copies of clean
    days, each filtered for the query and then per goal, and raw rows (one count per goal) for the rest.

    A view's prop filters are one test of its events (an event matching all of them), so a goal's and the
    request's cannot both have some: goals.narrowing refuses that request first."""
    if query.prop_filters and any(flt.field in PROP_FIELDS for goal in goals for flt in goal):
        raise ValueError("an event goal under prop filters")
    props = bool(query.prop_filters) or any(flt.field in PROP_FIELDS for goal in goals for flt in goal)
    the_plan = columns.plan(conn, query.hostname, query.start, query.end, props=props)
    hours = the_plan.hours_by_day()
    base = scan.Selection(query.view_filters, query.prop_filters)
    selections = [_split(goal) for goal in goals]
    names = list(dict.fromkeys([*base.columns, *(name for selection in selections for name in selection.columns)]))
    visitors = 0
    found = [[0, 0] for _ in goals]
    for copy in columns.load(conn, query.hostname, list(hours), names, False, partial=the_plan.partial_days()):
        day_scan = scan.DayScan(copy)
        mask = day_scan.filters_mask(base)
        if mask:
            mask &= day_scan.hours_in(hours[copy.day])
        if not mask:
            continue
        visitors += day_scan.flag_count(mask, "unique_user")
        for selection, counts in zip(selections, found, strict=True):
            chosen = mask & day_scan.filters_mask(selection) if selection.parts else mask
            if chosen:
                counts[0] += chosen.bit_count() // 8
                counts[1] += day_scan.flag_count(chosen, "unique_page")
    if the_plan.raw:
        for where, params in stats._filtered_pieces(query, the_plan.raw):
            visitors += conn.execute(_RAW_COUNTS_SQL.format(where=where), params).fetchone()[2]
        for goal, counts in zip(goals, found, strict=True):
            narrowed = stats.Query(query.hostname, query.start_us, query.end_us, (*query.filters, *goal))
            for where, params in stats._filtered_pieces(narrowed, the_plan.raw):
                views, page_visitors, _ = conn.execute(_RAW_COUNTS_SQL.format(where=where), params).fetchone()
                counts[0] += views
                counts[1] += page_visitors
    return visitors, [(views, page_visitors) for views, page_visitors in found]
