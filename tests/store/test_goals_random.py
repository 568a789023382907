"""Goals over seeded random views and events: the numbers through the stats' fast paths equal a plain count of rows."""

from __future__ import annotations

import random
from typing import Any

import pytest

from medama_core import goals
from medama_core.store.filters import Filter
from medama_core.store.meta_rows import Goal
from medama_core.store.sqlite import columns, goal_counts, rollups, stats
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


def computed(conn: Any, filters: tuple[Filter, ...]) -> list[tuple[int, int]]:
    """As api/goals.py counts them: every goal at once, through the store's goal_counts; its visitors are the
    summary's."""
    query = stats.Query(SITE, T0 * 1000, (T0 + 5 * DAY) * 1000, filters)
    visitors, counts = goal_counts.goal_counts(conn, query, [goals.goal_filters(goal, ()) for goal in GOALS])
    assert visitors == stats.site_metrics(conn, query)["visitors"]
    return counts


@pytest.mark.parametrize("small", [True, False], ids=["small-site", "every-kind"])
@pytest.mark.parametrize("seed", range(4))
def test_goal_numbers_equal_a_plain_count(seed: int, small: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """A small site's paths are read raw; a larger one's (here every site) from the pages rollup, its rare
    paths from the hour rows (goal_counts.path_counts)."""
    if not small:
        monkeypatch.setattr(rollups, "SMALL_SITE_VIEWS", 0)
    rnd = random.Random(seed)
    conn = new_db()
    rows = [
        view(
            # One view in ten on a path of its own: a long tail's rare values (rollups.RARE_VIEWS).
            pathname=rnd.choice(PATHS) if rnd.random() < 0.9 else f"/{rnd.choice(['signup', 'docs'])}/{i}/done",
            is_unique_user=rnd.random() < 0.5,
            is_unique_page=rnd.random() < 0.6,
            country=rnd.choice(["Germany", "France"]),
            duration_ms=rnd.choice([None, rnd.randrange(0, 8000)]),
            date_created=T0 + rnd.randrange(0, 4 * DAY),
        )
        for i in range(rnd.randrange(80, 400))
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
        assert computed(conn, ()) == [reference(rows, events, goal, None) for goal in GOALS], stage
        assert computed(conn, (germany,)) == [reference(rows, events, goal, germany) for goal in GOALS], stage
        for goal in GOALS:
            # goal[eq]: the goal's filters keep exactly its views (the overlaps excluded by path neq).
            only = stats.Query(SITE, T0 * 1000, (T0 + 5 * DAY) * 1000, goals.goal_filters(goal, (germany,)))
            assert stats.site_metrics(conn, only)["pageviews"] == reference(rows, events, goal, germany)[0]
