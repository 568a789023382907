"""Analytics migration 13: the rollups of views stored before it get entry and exit pages by copying, no rebuild."""

from __future__ import annotations

import sqlite3

import pytest

from medama_core.store.sqlite import analytics, entries, rollups, stats
from tests.store.test_stats import DAY, FAR_FUTURE, HOUR, NEUTRAL, SITE, T0, insert, new_db, view

PATHS = ["/", "/a", "/b/c"] + [f"/tail/{i}" for i in range(6)]  # the tail: rare values, one view each
COUNTS = "visitors, page_visitors, pageviews, bounces, timed, duration_sum, measured, zeros, ones, twos"
NEW_KINDS = {
    "rollup": f"SELECT hostname, span, kind, period, value, {COUNTS} FROM rollup",
    "rollup_rare": f"SELECT hostname, kind, hour, value, {COUNTS} FROM rollup_rare",
    "rollup_common": "SELECT hostname, kind, value FROM rollup_common",
}


def new_kind_rows(conn: sqlite3.Connection) -> dict[str, list[tuple[object, ...]]]:
    return {table: sorted(conn.execute(f"{sql} WHERE kind IN (13, 14)").fetchall()) for table, sql in NEW_KINDS.items()}


def test_copied_rollups_equal_rebuilt_ones_and_answer_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rollups, "SMALL_SITE_VIEWS", 0)  # every kind rolled up, every block built
    monkeypatch.setattr(rollups, "MIN_BLOCK_VIEWS", 0)
    conn = new_db()
    # Views as stored before the migration: no internal referrer path ('').
    rows = [
        view(pathname=PATHS[i % 3] if i < 60 else PATHS[3 + i % 6], is_unique_page=i % 2, date_created=T0 + i * HOUR)
        for i in range(66)
    ]
    insert(conn, rows)
    rollups.refresh(conn, FAR_FUTURE)
    assert conn.execute("SELECT COUNT(*) FROM rollup WHERE span > 1 AND kind = 13").fetchone()[0] > 0  # blocks too
    assert conn.execute("SELECT COUNT(*) FROM rollup_rare WHERE kind = 13").fetchone()[0] > 0
    rebuilt = new_kind_rows(conn)
    # The store as migration 13 finds it: no rows of kinds 13 and 14. Its copies make the same rows.
    for table in NEW_KINDS:
        conn.execute(f"DELETE FROM {table} WHERE kind IN (13, 14)")
    (migration,) = [m for m in analytics.MIGRATIONS if m.version == 13]
    for statement in migration.statements:
        if statement.lstrip().startswith("INSERT"):
            conn.execute(statement)
    assert new_kind_rows(conn) == rebuilt
    assert conn.execute("SELECT COUNT(*) FROM rollup_dirty").fetchone()[0] == 0  # nothing to rebuild
    # Every view stored before is an entry, and none a departure: entries and exits are the views per path.
    for start, end in ((None, None), (T0 + 5 * HOUR + 1, T0 + 2 * DAY + 30 * 60_000)):
        q = stats.Query(SITE, None if start is None else start * 1000, None if end is None else end * 1000)
        chosen = [
            r
            for r in rows
            if (start is None or r["date_created"] >= start) and (end is None or r["date_created"] <= end)
        ]
        expected = {path: n for path in PATHS if (n := sum(1 for r in chosen if r["pathname"] == path))}
        assert {
            r["path"]: r["entries"] for r in stats.snapshot(conn, entries.entries, q, True, stats.Page())
        } == expected
        assert {r["path"]: r["exits"] for r in stats.snapshot(conn, entries.exits, q, True, stats.Page())} == expected
        raw = stats.Query(q.hostname, q.start_us, q.end_us, (NEUTRAL,))
        for answer in (entries.entries, entries.exits):
            for summary in (True, False):
                fast = stats.snapshot(conn, answer, q, summary, stats.Page())
                assert fast == stats.snapshot(conn, answer, raw, summary, stats.Page())
