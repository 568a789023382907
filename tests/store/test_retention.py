"""Retention on SQLite (store/sqlite/retention.py): old raw rows go, every unfiltered answer stays the same."""

from __future__ import annotations

import random
import sqlite3
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medama_core.store import imported_stats
from medama_core.store.sqlite import analytics, columns, imported_merge, retention, rollups, site_data, stats
from medama_core.store.sqlite.db import Transaction, migrate
from tests.store.test_equivalence import SPAN_DAYS, START, random_rows, random_view, use_full_site
from tests.store.test_stats import DAY, FAR_FUTURE, HOUR, SITE, event, insert, insert_events, new_db, view


def unfiltered_answers(conn: sqlite3.Connection, q: stats.Query) -> dict[str, Any]:
    """Every unfiltered stats answer for `q`: summary (with the previous period and day buckets), each list
    in both shapes and variants, /time in both shapes, /properties."""

    def ours(fn: Any, *args: Any) -> Any:
        return stats.snapshot(conn, fn, *args)

    found: dict[str, Any] = {"site": ours(stats.site_metrics, q)}
    if q.start_us is not None and q.end_us is not None:
        found["summary"] = ours(stats.summary, q, True, "day")
        found["weeks"] = ours(stats.interval_metrics, q, "week", q.start_us, q.end_us)
        found["months"] = ours(stats.interval_metrics, q, "month", q.start_us, q.end_us)
    for endpoint in stats.LISTS:
        for summary in (True, False):
            for variant in (False, True) if endpoint in ("referrers", "languages") else (False,):
                found[f"{endpoint} {summary} {variant}"] = ours(
                    stats.list_stats, q, endpoint, summary, stats.Page(), variant
                )
    for summary in (True, False):
        found[f"time {summary}"] = ours(stats.time_stats, q, summary, stats.Page())
    found["properties"] = ours(stats.properties, q, stats.Page())
    return found


def purge_all(conn: sqlite3.Connection, before: int) -> int:
    """Purge steps until none deletes more, rebuilding rollups when the purge waits for them; the views deleted."""
    deleted = 0
    for _ in range(10_000):
        step = retention.purge_step(conn, SITE, before)
        deleted += step.deleted
        if step.waiting:
            assert rollups.refresh(conn, FAR_FUTURE), "a waiting purge has hours to rebuild"
        elif not step.deleted:
            return deleted
    raise AssertionError("the purge never finished")


def periods(rnd: random.Random, cutoff_day: int) -> list[stats.Query]:
    """All time, and UTC-day periods before, across and after the cutoff (what a dashboard in UTC asks)."""
    queries = [stats.Query(SITE)]
    first = START // DAY
    for lo, hi in ((0, cutoff_day - first), (0, SPAN_DAYS), (cutoff_day - first, SPAN_DAYS)):
        for _ in range(3):
            a = rnd.randrange(lo, hi)
            b = rnd.randrange(a, hi)
            queries.append(stats.Query(SITE, (first + a) * DAY * 1000, ((first + b + 1) * DAY - 1) * 1000 + 999))
    return queries


def edge_views(rnd: random.Random) -> list[dict[str, Any]]:
    """Views in the first and last hour of random days, a millisecond to an hour from midnight, where the
    periods (and their previous periods, which start a microsecond after a midnight) cut hours. Not on a
    midnight itself: that millisecond is the one a purge cannot keep apart (store/sqlite/rollups.py)."""
    found = []
    for _ in range(rnd.randrange(20, 60)):
        midnight = START + rnd.randrange(1, SPAN_DAYS) * DAY
        offset = rnd.choice([1, 2, 999, rnd.randrange(1, HOUR)])
        found.append(random_view(rnd, midnight + offset if rnd.random() < 0.7 else midnight - offset))
    return found


@pytest.mark.parametrize("seed", range(12))
def test_purge_deletes_old_raw_rows_and_keeps_every_unfiltered_answer(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Seeds 0 to 5 are a small site (its lists read raw until the purge makes it keep every kind) whose
    days are too small for day blocks; seeds 6 to 11 keep every kind and block. Odd seeds purge 50 views
    a step, so batches end inside days. Each adds views near midnights (edge_views)."""
    if seed >= 6:
        use_full_site(monkeypatch)
    if seed % 2:
        monkeypatch.setattr(retention, "PURGE_BATCH_VIEWS", 50)
    rnd = random.Random(seed)
    conn = new_db()
    rows, events = random_rows(rnd)
    extra = random.Random(f"edges {seed}")  # its own source: the rows above are the ones drawn before it
    rows += edge_views(extra)
    insert(conn, rows)
    insert_events(conn, events)
    rollups.refresh(conn, FAR_FUTURE)
    cutoff_day = START // DAY + rnd.randrange(30, SPAN_DAYS - 30)
    before = cutoff_day * DAY
    queries = periods(rnd, cutoff_day)
    expected = [unfiltered_answers(conn, q) for q in queries]
    old = conn.execute("SELECT COUNT(*) FROM views WHERE hostname = ? AND date_created < ?", (SITE, before))
    old_views = old.fetchone()[0]
    assert old_views > 50
    assert retention.raw_floor(conn, SITE) is None

    assert purge_all(conn, before) == old_views

    assert conn.execute("SELECT MIN(date_created) FROM views WHERE hostname = ?", (SITE,)).fetchone()[0] >= before
    kept = conn.execute("SELECT COUNT(*) FROM views WHERE hostname = ?", (SITE,)).fetchone()[0]
    assert kept == sum(1 for row in rows if row["hostname"] == SITE and row["date_created"] >= before)
    assert conn.execute("SELECT COUNT(*) FROM views WHERE hostname = 'other.org'").fetchone()[0] == 1
    gone_bids = {row["bid"] for row in rows if row["hostname"] == SITE and row["date_created"] < before}
    left = {bid for (bid,) in conn.execute("SELECT bid FROM events")}
    assert not left & gone_bids  # a deleted view's events went with it
    assert left == {e[0] for e in events if e[0] not in gone_bids}
    assert retention.raw_floor(conn, SITE) == before
    assert conn.execute("SELECT COUNT(*) FROM rollup_dirty").fetchone()[0] == 0  # nothing to rebuild from nothing
    copies = conn.execute(
        "SELECT day, name, length(data) FROM column_days WHERE hostname = ? AND day < ?", (SITE, cutoff_day)
    ).fetchall()
    assert {(name, size) for _, name, size in copies} <= {(columns.META, 0)}  # no copied data of a purged day
    for q, answers in zip(queries, expected, strict=True):
        assert unfiltered_answers(conn, q) == answers, q
    # The background work finds nothing to redo, and the answers stay.
    rollups.refresh(conn, FAR_FUTURE)
    assert columns.backfill(conn) == 0
    for q, answers in zip(queries, expected, strict=True):
        assert unfiltered_answers(conn, q) == answers, q
    assert purge_all(conn, before) == 0
    conn.close()


# A view's time in the small hypothesis site: a day of ten, an hour, and a millisecond in it but its first
# (the one millisecond a purge cannot keep apart, store/sqlite/rollups.py _purged_edges).
EDGE_TIMES = st.builds(
    lambda day, hour, ms: 100 * DAY + day * DAY + hour * HOUR + ms,
    st.integers(0, 9),
    st.sampled_from([0, 1, 22, 23]),
    st.one_of(st.sampled_from([1, 2, HOUR - 1]), st.integers(1, HOUR - 1)),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    times=st.lists(EDGE_TIMES, min_size=1, max_size=25),
    cutoff=st.integers(1, 10),
    period=st.tuples(st.integers(0, 9), st.integers(1, 4), st.sampled_from([0, 1, 23])),
)
def test_a_summary_and_its_previous_period_stay_after_a_purge(
    times: list[int], cutoff: int, period: tuple[int, int, int]
) -> None:
    """Periods of whole days or hours, and their previous periods (which start a microsecond after a
    midnight or an hour, so cut an hour), over a purged site with views near those edges: the summary
    with its previous period and day buckets is the same after the purge as before."""
    conn = new_db()
    insert(conn, [view(date_created=at, pathname=f"/{i % 3}", duration_ms=i * 7) for i, at in enumerate(times)])
    rollups.refresh(conn, FAR_FUTURE)
    day, days, hour = period
    start = 100 * DAY + day * DAY + hour * HOUR
    q = stats.Query(SITE, start * 1000, (start + days * DAY) * 1000 - 1)
    before = stats.snapshot(conn, stats.summary, q, True, "day")
    purge_all(conn, 100 * DAY + cutoff * DAY)
    assert stats.snapshot(conn, stats.summary, q, True, "day") == before
    conn.close()


def test_purge_waits_for_dirty_hours_and_keeps_their_numbers() -> None:
    """A day with a dirty hour is not purged until that hour is rolled up: its rows would be lost."""
    conn = new_db()
    t0 = 100 * DAY
    insert(conn, [view(date_created=t0 + HOUR * h, pathname=f"/{h}") for h in range(30)])
    rollups.refresh(conn, FAR_FUTURE)
    insert(conn, [view(date_created=t0 + 2 * HOUR, pathname="/late")])  # hour 2 of day 100 is dirty again
    step = retention.purge_step(conn, SITE, t0 + 2 * DAY)
    assert step == retention.Step(0, waiting=True)
    assert conn.execute("SELECT COUNT(*) FROM views").fetchone()[0] == 31
    rollups.refresh(conn, FAR_FUTURE)
    while retention.purge_step(conn, SITE, t0 + 2 * DAY).deleted:
        pass
    assert conn.execute("SELECT COUNT(*) FROM views").fetchone()[0] == 0
    pages = stats.snapshot(conn, stats.list_stats, stats.Query(SITE), "pages", True, stats.Page())
    assert len(pages) == 31 and {"path": "/late", "visitors": 1, "visitors_percentage": 0.0323} in pages
    conn.close()


PLAN_PRO = [{"name": "plan", "events": 1, "events_percentage": 1.0}]


def test_an_event_after_the_cutoff_keeps_its_count() -> None:
    """A view just before the cutoff with its event just after: both go, the event's hour keeps its rollup."""
    conn = new_db()
    before = 200 * DAY
    old = view(date_created=before - 60_000)
    insert(conn, [old, view(date_created=before + HOUR)])
    insert_events(conn, [event(old["bid"], "plan", "pro", before + 60_000)])
    rollups.refresh(conn, FAR_FUTURE)
    q = stats.Query(SITE, before * 1000, (before + DAY) * 1000 - 1)
    assert stats.snapshot(conn, stats.properties, q, stats.Page()) == PLAN_PRO
    assert purge_all(conn, before) == 1
    assert conn.execute("SELECT COUNT(*) FROM events").fetchone()[0] == 0
    assert conn.execute("SELECT COUNT(*) FROM rollup_dirty").fetchone()[0] == 0
    assert stats.snapshot(conn, stats.properties, q, stats.Page()) == PLAN_PRO
    conn.close()


def test_freed_pages_are_reused(tmp_path: Any) -> None:
    """After a purge the file keeps its size, and new rows fill the freed pages before it grows."""
    conn = new_db_at(tmp_path / "a.db")
    old = [view(date_created=10 * DAY + i * 1000, pathname=f"/old/{i % 300}") for i in range(6_000)]
    with Transaction(conn):  # one commit, not one per row
        insert(conn, old)
    rollups.refresh(conn, FAR_FUTURE)
    assert purge_all(conn, 11 * DAY) == 6_000
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    free = conn.execute("PRAGMA freelist_count").fetchone()[0]
    assert free > pages // 4  # the raw rows' pages are free now, not given back to the file system
    with Transaction(conn):
        insert(conn, [view(date_created=40 * DAY + i * 1000, pathname=f"/new/{i % 300}") for i in range(3_000)])
    assert conn.execute("PRAGMA page_count").fetchone()[0] == pages  # the new rows took freed pages
    assert conn.execute("PRAGMA freelist_count").fetchone()[0] < free
    conn.close()


def new_db_at(path: Any) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    migrate(conn, analytics.MIGRATIONS)
    return conn


def test_rename_and_delete_carry_a_purged_site_kept_days() -> None:
    """A rename moves the rollups of purged days with the site; a delete leaves nothing for a new site of the name."""
    conn = new_db()
    insert(conn, [view(date_created=50 * DAY + h * HOUR, pathname=f"/{h % 3}") for h in range(10)])
    insert(conn, [view(date_created=90 * DAY)])
    rollups.refresh(conn, FAR_FUTURE)
    assert purge_all(conn, 60 * DAY) == 10
    old = stats.Query(SITE, 50 * DAY * 1000, 51 * DAY * 1000 - 1)
    kept = unfiltered_answers(conn, old)
    site_data.rename_site_data(conn, SITE, "new.example")
    rollups.refresh(conn, FAR_FUTURE)
    assert unfiltered_answers(conn, stats.Query("new.example", old.start_us, old.end_us)) == kept
    assert stats.snapshot(conn, stats.site_metrics, old)["pageviews"] == 0
    assert retention.raw_floor(conn, "new.example") == 60 * DAY and retention.raw_floor(conn, SITE) is None
    site_data.delete_site_data(conn, ["new.example"])
    rollups.refresh(conn, FAR_FUTURE)
    assert stats.snapshot(conn, stats.site_metrics, stats.Query("new.example"))["pageviews"] == 0
    assert conn.execute("SELECT COUNT(*) FROM rollup WHERE hostname = 'new.example'").fetchone()[0] == 0
    conn.close()


def test_imported_days_are_not_purged_days() -> None:
    """Imported daily totals are no raw rows: they stay, and days that only have them set no floor."""
    conn = new_db()
    conn.execute("INSERT INTO imported_days VALUES (?, ?, '', '', 'plausible', 5, 9, 6, 2, 60)", (SITE, 10 * DAY))
    insert(conn, [view(date_created=20 * DAY)])
    rollups.refresh(conn, FAR_FUTURE)
    assert purge_all(conn, 15 * DAY) == 0
    assert retention.raw_floor(conn, SITE) is None
    assert purge_all(conn, 21 * DAY) == 1
    assert retention.raw_floor(conn, SITE) == 21 * DAY
    q = stats.Query(SITE, 10 * DAY * 1000, 21 * DAY * 1000 - 1)
    current = stats.snapshot(conn, imported_stats.summary, q, False, None, imported_merge.ENGINE)["current"]
    assert (current["visitors"], current["pageviews"]) == (6, 10)
    conn.close()
