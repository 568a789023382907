"""Live visitors on SQLite: open views of the last half hour, counted by hand (ClickHouse's test reuses them)."""

from __future__ import annotations

import sqlite3
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from medama_core.store.rows import VIEW_COLUMNS
from medama_core.store.sqlite import hits, live
from tests.store.test_stats import SITE, T0, new_db, view

NOW = T0 + 6 * 3_600_000
MINUTE = 60_000


def scenario() -> tuple[list[tuple[Any, ...]], list[tuple[str, int]]]:
    """(views as VIEW_COLUMNS rows, unloads as (bid, ms)) and, below, what /live must say of them at NOW."""
    rows = [
        view(bid="open1", pathname="/a", referrer_host="www.google.com", referrer_group="Google", country="DE"),
        view(bid="open2", pathname="/a", country="FR", date_created=NOW - 10 * MINUTE),
        view(bid="left", pathname="/b", referrer_host="news.example", country="DE", date_created=NOW - 2 * MINUTE),
        view(bid="stale", pathname="/c", date_created=NOW - live.OPEN_MS - 1),
        view(bid="edge", pathname="/b", referrer_host="t.co", referrer_group="Twitter", country="US"),
        view(bid="other", hostname="other.example", pathname="/a", date_created=NOW - MINUTE),
        view(bid="future", pathname="/d", country="DE", date_created=NOW - 1),
    ]
    rows[0]["date_created"] = NOW - MINUTE
    rows[4]["date_created"] = NOW - live.OPEN_MS  # exactly 30 minutes old: still open
    return [tuple(r[c] for c in VIEW_COLUMNS) for r in rows], [("left", 5_000)]


EXPECTED = {
    "visitors": 4,
    "pages": [{"path": "/a", "visitors": 2}, {"path": "/b", "visitors": 1}, {"path": "/d", "visitors": 1}],
    "referrers": [
        {"referrer": "", "visitors": 2},
        {"referrer": "Google", "visitors": 1},
        {"referrer": "Twitter", "visitors": 1},
    ],
    "countries": [
        {"country": "DE", "visitors": 2},
        {"country": "FR", "visitors": 1},
        {"country": "US", "visitors": 1},
    ],
}


def stored(conn: sqlite3.Connection) -> sqlite3.Connection:
    rows, unloads = scenario()
    assert hits.apply_batch(conn, [hits.NewView(row) for row in rows]) == [None] * len(rows)
    assert hits.apply_batch(conn, [hits.Duration(bid, ms) for bid, ms in unloads]) == [None] * len(unloads)
    return conn


def test_open_views_of_the_last_half_hour_by_hand() -> None:
    conn = stored(new_db())
    assert live.live(conn, SITE, NOW) == EXPECTED
    assert live.live(conn, "other.example", NOW)["visitors"] == 1
    assert live.live(conn, "nobody.example", NOW) == {"visitors": 0, "pages": [], "referrers": [], "countries": []}
    # Half an hour on, every one of them has gone stale.
    assert live.live(conn, SITE, NOW + live.OPEN_MS + MINUTE)["visitors"] == 0


def test_the_query_reads_the_recent_index_range_only() -> None:
    conn = stored(new_db())
    plan = " ".join(
        str(row[-1])
        for row in conn.execute(
            "EXPLAIN QUERY PLAN " + live._OPEN_GROUPS, {"hostname": SITE, "since": NOW - live.OPEN_MS}
        )
    )
    assert "USING INDEX views_hostname_date (hostname=? AND date_created>?)" in plan, plan


def test_lists_keep_the_top_rows_and_the_total_counts_every_view() -> None:
    groups = [(f"/p{i:02}", "", "DE", i + 1) for i in range(live.LIVE_ROWS + 5)]
    found = live.answer(groups)
    assert found["visitors"] == sum(count for *_, count in groups)
    assert [row["path"] for row in found["pages"]] == [f"/p{i:02}" for i in range(live.LIVE_ROWS + 4, 4, -1)]
    assert found["countries"] == [{"country": "DE", "visitors": found["visitors"]}]


@given(st.lists(st.tuples(st.text(max_size=3), st.text(max_size=2), st.text(max_size=2), st.integers(1, 50))))
def test_any_groups_give_lists_no_longer_than_the_cap_and_no_larger_than_the_total(
    groups: list[tuple[str, str, str, int]],
) -> None:
    found = live.answer(groups)
    for key in ("pages", "referrers", "countries"):
        assert len(found[key]) <= live.LIVE_ROWS
        assert sum(row["visitors"] for row in found[key]) <= found["visitors"]
        counts = [row["visitors"] for row in found[key]]
        assert counts == sorted(counts, reverse=True)
