"""Seeded random data and periods: rollups, raw pieces and the raw-SQL path give identical answers."""

from __future__ import annotations

import random
from typing import Any

import pytest

from medama_core.store.filters import OPERATORS, Filter
from medama_core.store.sqlite import rollups, stats
from tests.store.test_stats import DAY, FAR_FUTURE, HOUR, NEUTRAL, SITE, T0, event, insert, insert_events, new_db, view

PATHS = ["/", "/a", "/b", "/a_b", "/B"]
VALUES = {
    "path": PATHS,
    "country": ["Germany", "France", "Unknown"],
    "browser": ["Chrome", "Firefox"],
    "referrer": ["", "t.co", "Google"],
    "prop_name": ["plan", "theme"],
}


def answers(conn: Any, q: stats.Query) -> dict[str, Any]:
    out: dict[str, Any] = {"site": stats.site_metrics(conn, q), "props": stats.properties(conn, q, stats.Page())}
    for name in stats.LISTS:
        for summary in (True, False):
            out[f"{name}{summary}"] = stats.list_stats(conn, q, name, summary, stats.Page())
    out["time"] = [stats.time_stats(conn, q, s, stats.Page()) for s in (True, False)]
    if q.start_us is not None and q.end_us is not None:
        for interval in ("hour", "day", "month"):
            out[interval] = stats.interval_metrics(conn, q, interval, q.start_us, q.end_us)
    return out


@pytest.mark.parametrize("seed", range(6))
def test_fast_path_equals_raw_path(seed: int) -> None:
    rnd = random.Random(seed)
    conn = new_db()
    rows = [
        view(
            pathname=rnd.choice(PATHS),
            is_unique_user=rnd.random() < 0.5,
            is_unique_page=rnd.random() < 0.6,
            referrer_host=rnd.choice(["", "t.co", "www.google.com"]),
            referrer_group=rnd.choice(["", "Google"]),
            country=rnd.choice(VALUES["country"]),
            ua_browser=rnd.choice(VALUES["browser"]),
            duration_ms=rnd.choice([None, rnd.randrange(0, 8000), rnd.randrange(0, 3)]),
            date_created=T0 + rnd.randrange(0, 4 * DAY),
        )
        for _ in range(rnd.randrange(50, 600))
    ]
    insert(conn, rows)
    insert_events(
        conn,
        [
            event(r["bid"], rnd.choice(["plan", "theme"]), rnd.choice("xy"), r["date_created"] + 5)
            for r in rows
            if rnd.random() < 0.3
        ],
    )
    periods = [(None, None)]
    for _ in range(4):
        start = T0 + rnd.randrange(-DAY, 3 * DAY) // HOUR * HOUR + rnd.choice([0, 0, 1234])
        periods.append((start, start + rnd.randrange(1, 3 * DAY) // HOUR * HOUR - rnd.choice([1, 0])))
    for i, (start, end) in enumerate(periods):
        q = stats.Query(SITE, None if start is None else start * 1000, None if end is None else end * 1000)
        dirty = answers(conn, q)
        if i == 2:
            rollups.refresh(conn, FAR_FUTURE)
        assert answers(conn, q) == dirty
        raw = answers(conn, stats.Query(q.hostname, q.start_us, q.end_us, (NEUTRAL,)))
        assert raw == dirty
        # A random filter: the raw path must equal the fast path where the filter keeps every row.
        field = rnd.choice(list(VALUES))
        flt = Filter(field, rnd.choice(OPERATORS), rnd.choice(VALUES[field]))
        assert answers(conn, stats.Query(q.hostname, q.start_us, q.end_us, (flt,))) is not None
