"""store/sqlite/hits.py: a batch through the writer marks exactly the dirty hours the insert triggers would have."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medama_core.store.sqlite import analytics, db, hits

HOUR_MS = 3_600_000
BIDS = ("b1", "b2", "b3", "b4")  # few, so new views meet old events and new events old views
SITES = ("a.com", "b.com")


def view(bid: str, site: str, hour: int) -> hits.Row:
    return (bid, site, "/", 1, 1, "", "", "Unknown", "English", "English", "Firefox", "Linux", "Desktop",
            "", "", "", None, hour * HOUR_MS + 5)  # fmt: skip


def event(bid: str, site: str, hour: int, name: str) -> hits.Row:
    return (bid, "event_1", site, name, "v", hour * HOUR_MS + 7)


views = st.builds(view, st.sampled_from(BIDS), st.sampled_from(SITES), st.integers(0, 5))
events = st.builds(event, st.sampled_from(BIDS), st.sampled_from(SITES), st.integers(0, 5), st.sampled_from("xy"))
ops = st.one_of(
    st.builds(hits.NewView, views, st.lists(events, max_size=2)),
    st.builds(hits.NewEvents, st.lists(events, min_size=1, max_size=2)),
    st.builds(hits.Duration, st.sampled_from(BIDS), st.integers(0, 9000)),
)


def fresh(path: Path, old_views: list[hits.Row], old_events: list[hits.Row]) -> sqlite3.Connection:
    """A migrated database holding earlier rows (marked by the triggers), with no hour left dirty."""
    path.unlink(missing_ok=True)
    conn = db.connect(str(path))
    db.migrate(conn, analytics.MIGRATIONS)
    with db.Transaction(conn):
        conn.executemany(hits.insert_sql("views"), old_views)
        conn.executemany(hits.INSERT_EVENT, old_events)
        conn.execute("DELETE FROM rollup_dirty")
    return conn


def dirty(conn: sqlite3.Connection) -> list[tuple[str, int]]:
    return sorted(conn.execute("SELECT hostname, hour FROM rollup_dirty"))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(old_views=st.lists(views, max_size=4), old_events=st.lists(events, max_size=4), batch=st.lists(ops, max_size=8))
def test_a_batch_marks_the_hours_the_triggers_marked(
    tmp_path: Path, old_views: list[hits.Row], old_events: list[hits.Row], batch: list[hits.Op]
) -> None:
    by_writer = fresh(tmp_path / "writer.db", old_views, old_events)
    by_triggers = fresh(tmp_path / "triggers.db", old_views, old_events)
    try:
        assert hits.apply_batch(by_writer, batch) == [None] * len(batch)
        with db.Transaction(by_triggers):  # the same statements with the triggers on, as before migration 16
            hits._write_all(by_triggers, batch)
        assert dirty(by_writer) == dirty(by_triggers)
        assert by_writer.execute("SELECT marking FROM rollup_marking").fetchall() == [(0,)]
        # ... and the rows themselves are the same
        for table in ("views", "events"):
            query = f"SELECT * FROM {table} ORDER BY rowid"
            assert by_writer.execute(query).fetchall() == by_triggers.execute(query).fetchall()
    finally:
        by_writer.close()
        by_triggers.close()


def test_other_writers_are_still_marked_by_the_triggers(tmp_path: Path) -> None:
    """Outside the writer's batch the triggers are on: a plain INSERT (imports, transfers) marks its hour."""
    conn = fresh(tmp_path / "a.db", [], [])
    hits.apply_batch(conn, [hits.NewView(view("b1", "a.com", 1))])
    conn.execute("DELETE FROM rollup_dirty")
    conn.execute(hits.insert_sql("views"), view("b2", "b.com", 3))
    conn.execute(hits.INSERT_EVENT, event("b2", "b.com", 4, "x"))
    assert dirty(conn) == [("b.com", 3), ("b.com", 4)]
    conn.close()


def test_a_batch_after_the_largest_rowid_is_marked_by_the_triggers(tmp_path: Path) -> None:
    """Past the largest rowid SQLite picks free rowids at random, so a batch's new rows are not all above where
    it started: the switch stays off and the triggers mark every row, as they would have."""
    batch: list[hits.Op] = [hits.NewView(view(f"n{i}", SITES[i % 2], i)) for i in range(6)]
    batch.append(hits.NewEvents([event("n0", "b.com", 7, "x")]))
    marked = []
    for name, write in (("writer.db", hits.apply_batch), ("triggers.db", hits._write_all)):
        conn = fresh(tmp_path / name, [view("b1", "a.com", 9)], [])
        conn.execute("UPDATE views SET rowid = 9223372036854775807")  # the largest rowid there is
        conn.execute("DELETE FROM rollup_dirty")
        with db.Transaction(conn) if write is hits._write_all else contextlib.nullcontext():
            write(conn, batch)
        marked.append(dirty(conn))
        conn.close()
    assert marked[0] == marked[1]
    assert len(marked[0]) == 7
