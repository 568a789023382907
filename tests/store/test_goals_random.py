"""Goals over seeded random views and events: the numbers through the stats' fast paths equal a plain count of rows."""

from __future__ import annotations

import random
from typing import Any

import pytest

from medama_core import goals
from medama_core.store import columns, rollups, stats
from medama_core.store.filters import Filter
from medama_core.store.meta import Goal
from tests.store.test_stats import DAY, FAR_FUTURE, SITE, T0, event, insert, insert_events, new_db, view

PATHS = ["/", "/signup/a/done", "/signup/B/done", "/SIGNUP/x/y/done", "/signup/done", "/docs", "/docs/a_b", "/a%b/done"]
GOALS = [
    Goal("g1", SITE, "signup", "/signup/*/done", None, None, 0),
    Goal("g2", SITE, "docs", "/docs*", None, None, 0),
    Goal("g3", SITE, "ends", "*/done", None, None, 0),
    Goal("g4", SITE, "all", "*", None, None, 0),
    Goal("g5", SITE, "exact", "/Docs", None, None, 0),
    Goal("g8", SITE, "middle", "*A%B*", None, None, 0),  # % and _ are no wildcards of ours
    Goal("g6", SITE, "plan", None, "plan", None, 0),
    Goal("g7", SITE, "plan=pro", None, "plan", "PRO", 0),  # values match ASCII case-insensitively, as prop filters
]


def reference(
    rows: list[dict[str, Any]], events: list[tuple[Any, ...]], goal: Goal, flt: Filter | None
) -> tuple[int, int]:
    """Views in the goal, counted (conversions) and by their first-view-of-the-page flag (visitors)."""
    pattern = None if goal.page is None else goals.Pattern.of(goal.page)
    conversions = visitors = 0
    for row in rows:
        if flt is not None and row["country"].lower() != flt.value.lower():
            continue
        if pattern is not None:
            hit = pattern.matches(row["pathname"])
        else:
            hit = any(
                e[0] == row["bid"]
                and e[3] == goal.prop_name
                and (goal.prop_value is None or e[4].lower() == goal.prop_value.lower())
                for e in events
            )
        if hit:
            conversions += 1
            visitors += int(row["is_unique_page"])
    return conversions, visitors


def computed(conn: Any, goal: Goal, filters: tuple[Filter, ...]) -> tuple[int, int]:
    """As api/goals.py counts them: the narrowed views' page views less the overlaps', and /pages' visitors."""
    narrowed = goals.narrowing(goal, filters)

    def query(extra: tuple[Filter, ...] = ()) -> stats.Query:
        return stats.Query(SITE, T0 * 1000, (T0 + 5 * DAY) * 1000, (*narrowed, *extra))

    conversions = stats.site_metrics(conn, query())["pageviews"]
    for path in () if goal.page is None else goals.Pattern.of(goal.page).overlaps():
        conversions -= stats.site_metrics(conn, query((Filter("path", "eq", path),)))["pageviews"]
    return conversions, goals.visitors(goal, stats.list_stats(conn, query(), "pages", True, stats.Page()))


@pytest.mark.parametrize("seed", range(4))
def test_goal_numbers_equal_a_plain_count(seed: int) -> None:
    rnd = random.Random(seed)
    conn = new_db()
    rows = [
        view(
            pathname=rnd.choice(PATHS),
            is_unique_user=rnd.random() < 0.5,
            is_unique_page=rnd.random() < 0.6,
            country=rnd.choice(["Germany", "France"]),
            duration_ms=rnd.choice([None, rnd.randrange(0, 8000)]),
            date_created=T0 + rnd.randrange(0, 4 * DAY),
        )
        for _ in range(rnd.randrange(80, 400))
    ]
    insert(conn, rows)
    events = [
        event(r["bid"], "plan", rnd.choice(["pro", "Pro", "free"]), r["date_created"] + 5)
        for r in rows
        if rnd.random() < 0.3
    ]
    insert_events(conn, events)
    germany = Filter("country", "eq", "germany")
    for stage in ("raw", "rollups", "copies"):
        if stage == "rollups":
            rollups.refresh(conn, FAR_FUTURE)
        if stage == "copies":
            while columns.backfill(conn, columns.BACKFILL_DAYS_PER_CALL):
                pass
        for goal in GOALS:
            assert computed(conn, goal, ()) == reference(rows, events, goal, None), (stage, goal.name)
            # goal[eq]: the goal's filters keep exactly its views (the overlaps excluded by path neq).
            only = stats.Query(SITE, T0 * 1000, (T0 + 5 * DAY) * 1000, goals.goal_filters(goal, (germany,)))
            assert stats.site_metrics(conn, only)["pageviews"] == reference(rows, events, goal, germany)[0]
            assert computed(conn, goal, (germany,)) == reference(rows, events, goal, germany), (stage, goal.name)
