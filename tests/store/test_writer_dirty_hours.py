"""store/sqlite/hits.py: a batch through the writer marks exactly the dirty hours the insert triggers (analytics
migrations 3-16, dropped by 17) marked for the same statements."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medama_core.store.sqlite import analytics, db, hits, marking

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


# The last schema with insert triggers; its `rollup_marking.marking` is 0, so they mark every inserted row.
TRIGGERS: Final = analytics.MIGRATIONS[:16]
assert TRIGGERS[-1].version == 16


def fresh(
    path: Path, old_views: list[hits.Row], old_events: list[hits.Row], migrations: Sequence[db.Migration] = ()
) -> sqlite3.Connection:
    """A database migrated to the last version (or to `migrations`) holding earlier rows, no hour left dirty."""
    path.unlink(missing_ok=True)
    conn = db.connect(str(path))
    db.migrate(conn, migrations or analytics.MIGRATIONS)
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
    by_triggers = fresh(tmp_path / "triggers.db", old_views, old_events, TRIGGERS)
    try:
        assert hits.apply_batch(by_writer, batch) == [None] * len(batch)
        with db.Transaction(by_triggers):  # the same statements, marked by the triggers
            hits._write_rows(by_triggers, hits._Batch(batch))
        assert dirty(by_writer) == dirty(by_triggers)
        # ... and the rows themselves are the same
        for table in ("views", "events"):
            query = f"SELECT * FROM {table} ORDER BY rowid"
            assert by_writer.execute(query).fetchall() == by_triggers.execute(query).fetchall()
    finally:
        by_writer.close()
        by_triggers.close()


def test_the_op_by_op_replay_marks_the_hours_of_the_ops_it_stored(tmp_path: Path) -> None:
    """A batch with a bad op is replayed op by op: the good ops' rows are stored and their hours marked."""
    conn = fresh(tmp_path / "a.db", [view("b1", "a.com", 1)], [])
    bad = hits.NewView(view("b9", "b.com", 8)[:-1])  # a row one value short
    batch = [hits.NewView(view("b2", "b.com", 3)), bad, hits.NewEvents([event("b1", "a.com", 4, "x")])]
    errors = hits.apply_batch(conn, batch)
    assert [error is None for error in errors] == [True, False, True]
    assert dirty(conn) == [("a.com", 1), ("a.com", 4), ("b.com", 3)]
    conn.close()


def test_a_batch_after_the_largest_rowid_marks_every_row(tmp_path: Path) -> None:
    """Past the largest rowid SQLite picks free rowids at random, so a batch's new rows are not all above where
    it started: every row's hours are marked then (more than the triggers did, never fewer)."""
    batch: list[hits.Op] = [hits.NewView(view(f"n{i}", SITES[i % 2], i)) for i in range(6)]
    batch.append(hits.NewEvents([event("n0", "b.com", 7, "x")]))
    marked = []
    for name, migrations in (("writer.db", analytics.MIGRATIONS), ("triggers.db", TRIGGERS)):
        conn = fresh(tmp_path / name, [view("b1", "a.com", 9)], [], migrations)
        conn.execute("UPDATE views SET rowid = 9223372036854775807")  # the largest rowid there is
        conn.execute("DELETE FROM rollup_dirty")
        if migrations is TRIGGERS:
            with db.Transaction(conn):
                hits._write_rows(conn, hits._Batch(batch))
        else:
            hits.apply_batch(conn, batch)
        marked.append(dirty(conn))
        conn.close()
    assert set(marked[1]) < set(marked[0]) == {*marked[1], ("a.com", 9)}
    assert len(marked[1]) == 7


# Where the earlier rows' rowids start: SQLite's own (1), far off either way, just under and at the rowid past which
# `marking` counts every row as new, and at the end, where SQLite picks new rowids at random.
ROWID_BASES = (0, -(2**40), 2**40, marking.MAX_START_ROWID - 3, marking.MAX_START_ROWID, 2**63 - 1 - len(BIDS))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    old_views=st.lists(views, max_size=4),
    old_events=st.lists(events, max_size=4),
    base=st.sampled_from(ROWID_BASES),
    batch=st.lists(ops, max_size=8),
)
def test_a_batch_marks_what_the_largest_rowids_before_it_give(
    tmp_path: Path, old_views: list[hits.Row], old_events: list[hits.Row], base: int, batch: list[hits.Op]
) -> None:
    """A batch marks from its INSERTs' counts (`marking.mark_inserted`) the hours that the largest rowids read
    before its inserts (`marking.starts`, `mark_since`) give, wherever the earlier rows' rowids lie."""
    marked = []
    for name in ("counts.db", "starts.db"):
        conn = fresh(tmp_path / name, old_views, old_events)
        for table in ("views", "events"):  # old rows at most len(BIDS) apart: no new rowid meets an old one
            conn.execute(f"UPDATE {table} SET rowid = rowid + :base", {"base": base})  # noqa: S608 (table named above)
        try:
            if name == "counts.db":
                assert hits.apply_batch(conn, batch) == [None] * len(batch)
            else:
                with db.Transaction(conn):
                    since = marking.starts(conn)
                    hits._write_rows(conn, hits._Batch(batch), hits._BATCH_SQL)
                    marking.mark_since(conn, since)
            marked.append(dirty(conn))
        finally:
            conn.close()
    assert marked[0] == marked[1]
