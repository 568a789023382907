"""store/sqlite/marking.py: rows written by every writer of `views`/`events` reach the rollups (no insert triggers
mark them: a writer that forgets to mark leaves its hours out of the rebuilt rollups)."""

from __future__ import annotations

import io
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from medama_core import transfer
from medama_core.store.sqlite import analytics, db, hits, marking, meta, rollups

HOUR_MS = 3_600_000
NOW_MS = 1_000 * HOUR_MS  # every hour written below is closed
SITE = "example.com"


def view(bid: str, hour: int) -> hits.Row:
    return (bid, SITE, "/", 1, 1, "", "", "Unknown", "English", "English", "Firefox", "Linux", "Desktop",
            "", "", "", None, hour * HOUR_MS + 5)  # fmt: skip


def event(bid: str, hour: int) -> hits.Row:
    return (bid, "event_1", SITE, "plan", "pro", hour * HOUR_MS + 7)


def fresh(path: Path) -> sqlite3.Connection:
    conn = db.connect(str(path))
    db.migrate(conn, analytics.MIGRATIONS)
    return conn


def by_batch(conn: sqlite3.Connection, views: list[hits.Row], events: list[hits.Row]) -> None:
    ops: list[hits.Op] = [hits.NewView(row) for row in views]
    assert hits.apply_batch(conn, [*ops, hits.NewEvents(events)]) == [None] * (len(ops) + 1)


def by_replay(conn: sqlite3.Connection, views: list[hits.Row], events: list[hits.Row]) -> None:
    """A batch with one bad op: the writer replays it op by op."""
    ops: list[hits.Op] = [hits.NewView(row) for row in views]
    errors = hits.apply_batch(conn, [*ops, hits.NewView(view("bad", 1)[:-1]), hits.NewEvents(events)])
    assert [error is None for error in errors] == [True] * len(ops) + [False, True]


def by_import(conn: sqlite3.Connection, views: list[hits.Row], events: list[hits.Row]) -> None:
    """`medama import` of a views file, then of an events file."""
    meta_conn = db.connect(":memory:")
    db.migrate(meta_conn, meta.MIGRATIONS)
    meta.insert_user(meta_conn, "user_1", "admin", "x", 100)
    meta.insert_website(meta_conn, SITE, "user_1", 0)
    for kind, columns, rows in (("views", hits.VIEW_COLUMNS, views), ("events", hits.EVENT_COLUMNS, events)):
        records = [dict(zip(columns, row, strict=True)) for row in rows]
        lines = "".join(
            json.dumps({**r, "date_created": transfer.format_time(r["date_created"])}) + "\n" for r in records
        )
        result = transfer.import_rows(conn, meta_conn, io.BytesIO(lines.encode()), kind=kind)
        assert result.stored == len(rows)
    meta_conn.close()


WRITERS: dict[str, Callable[[sqlite3.Connection, list[hits.Row], list[hits.Row]], None]] = {
    "tracker batch": by_batch,
    "op-by-op replay": by_replay,
    "import": by_import,
}


@pytest.mark.parametrize("writer", WRITERS)
@pytest.mark.parametrize("held", [False, True], ids=["empty", "holding rows"])
def test_rows_of_every_writer_reach_the_rollups(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, writer: str, held: bool
) -> None:
    """Into an empty database (an import sets the indexes aside) and one holding rows (it keeps them)."""
    monkeypatch.setattr(transfer, "REBUILD_RATIO", 0 if held else 2)
    conn = fresh(tmp_path / "a.db")
    if held:  # an old view whose hour gains an event, and rolled-up hours before the write
        by_batch(conn, [view("old", 2)], [])
        rollups.refresh(conn, NOW_MS)
    # A view after its event's hour, and an event of the old view: each marks another row's hour too.
    WRITERS[writer](conn, [view("v1", 3), view("v2", 5)], [event("v2", 4), event("old", 6)])
    assert conn.execute("SELECT count(*) FROM rollup_dirty").fetchone()[0] > 0, "the writer marked its hours"
    rollups.refresh(conn, NOW_MS)
    site = conn.execute(
        "SELECT period, pageviews FROM rollup WHERE hostname = :site AND kind = 0 AND span = 1 ORDER BY period",
        {"site": SITE},
    ).fetchall()
    assert site == [*([(2, 1)] if held else []), (3, 1), (5, 1)]
    props = conn.execute("SELECT period, events FROM rollup_props WHERE span = 1 ORDER BY period").fetchall()
    assert props == ([(4, 1), (6, 1)] if held else [(4, 1)])
    conn.close()


def test_past_the_largest_rowid_every_row_counts_as_new(tmp_path: Path) -> None:
    conn = fresh(tmp_path / "a.db")
    by_batch(conn, [view("old", 2)], [])
    assert marking.starts(conn) == marking.Starts(2, marking.starts(conn).events)
    conn.execute("UPDATE views SET rowid = :rowid", {"rowid": marking.MAX_START_ROWID})
    conn.execute("DELETE FROM rollup_dirty")
    marking.mark_since(conn, marking.starts(conn))
    assert conn.execute("SELECT hostname, hour FROM rollup_dirty").fetchall() == [(SITE, 2)]
    conn.close()
