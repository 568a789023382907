"""The unfiltered /summary in one statement on ClickHouse equals separate reads of each of its windows.

The period, the previous period and the buckets are one read of each table
(stats._window_groups); each answer must equal the plain Reference and the
reads of each window alone (site_metrics, interval_metrics), over periods
chosen for the edges: rows only in the previous period, a view at the
instant both periods share, empty periods, edges inside an hour, and
imported days added on top.
"""

from __future__ import annotations

import dataclasses
import random
import threading
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

from medama_core.store import imported_stats
from medama_core.store.clickhouse import hits, imported, schema
from medama_core.store.clickhouse import stats as ch_stats
from medama_core.store.clickhouse.client import Client, HTTPTransport, Transport
from medama_core.store.clickhouse.windows import plan
from medama_core.store.query import Query, previous_period
from medama_core.store.rows import VIEW_COLUMNS, Duration, NewView, Op
from tests.clickhouse.test_equivalence import store
from tests.engines import ChdbTransport
from tests.store.test_equivalence import START, Reference, random_view
from tests.store.test_stats import DAY, HOUR, SITE

S = START + 20 * DAY  # the first period's start, a midnight
MINUTE = 60_000


def _views(rnd: random.Random) -> list[dict[str, Any]]:
    """Views around S: in both 3-day periods, one at S itself (the shared instant), some only before
    S + 6 days (so the period after it has rows only in its previous period), at hour edges and inside hours."""
    times = [S, S, S - 1, S + 1, S + 3 * DAY - 1, S - 3 * DAY + 1, S - 3 * DAY, S + 6 * DAY - 1]
    times += [S - 3 * DAY + rnd.randrange(9 * DAY) for _ in range(250)]
    times += [S + rnd.randrange(24) * HOUR + rnd.choice([0, 1, HOUR - 1]) for _ in range(40)]
    rows = []
    for at in times:
        row = random_view(rnd, at)
        row["duration_ms"] = rnd.choice([None, 0, 1, 2, 150, 4000, rnd.randrange(0, 10**6)])
        rows.append(row)
    # Two days alone whose middles (200 and 500) lie in other buckets than the two days' together (300, 400).
    for day, durations in ((40, (100, 200, 300)), (41, (400, 500, 600))):
        for i, duration in enumerate(durations):
            row = random_view(rnd, S + day * DAY + (5 + i) * HOUR + 17)
            row["duration_ms"] = duration
            rows.append(row)
    return rows


def _periods() -> list[tuple[str, int, int]]:
    """(name, start_us, end_us) of the periods checked."""
    return [
        ("both", S * 1000, (S + 3 * DAY) * 1000 - 1),
        ("dashboard", S * 1000 + 1, (S + 3 * DAY) * 1000),  # the previous period starts a microsecond in
        ("previous only", (S + 6 * DAY) * 1000, (S + 9 * DAY) * 1000 - 1),
        ("empty", (S + 30 * DAY) * 1000, (S + 31 * DAY) * 1000 - 1),
        ("inside hours", (S + 30 * MINUTE + 7) * 1000, (S + 2 * DAY + 5 * MINUTE) * 1000 + 500),
        ("one hour", (S - HOUR) * 1000, S * 1000),
        ("middles apart", (S + 40 * DAY) * 1000, (S + 42 * DAY) * 1000 - 1),
    ]


def _expected(ref: Reference, q: Query, interval: str) -> dict[str, Any]:
    """The reference's summary of `q` with its previous period and `interval` buckets."""
    assert q.start_us is not None and q.end_us is not None
    return {
        "current": ref.summary(q),
        "previous": ref.summary(Query(q.hostname, *previous_period(q.start_us, q.end_us))),
        "interval": ref.interval(q, interval),
    }


def test_one_statement_summary_equals_separate_reads(ch: Client) -> None:
    rnd = random.Random(17)
    rows = _views(rnd)
    store(ch, rnd, rows, [], orphans=False)
    ref = Reference(rows, [])
    for name, start_us, end_us in _periods():
        q = Query(SITE, start_us, end_us)
        before = Query(SITE, *previous_period(start_us, end_us))
        for interval in ("hour", "day"):
            got = ch_stats.summary(ch, q, True, interval)
            separate = {
                "current": ch_stats.site_metrics(ch, q),
                "previous": ch_stats.site_metrics(ch, before),
                "interval": ch_stats.interval_metrics(ch, q, interval, start_us, end_us),
            }
            assert got == separate == _expected(ref, q, interval), f"{name} {interval}"
        assert ch_stats.summary(ch, q, False, None) == {"current": ref.summary(q)}, name
    # The previous-only period has views before it, none in it; the view at S counts in both windows around S.
    both = ch_stats.summary(ch, Query(SITE, S * 1000, (S + 3 * DAY) * 1000 - 1), True, None)
    assert both["current"]["pageviews"] > 0 and both["previous"]["pageviews"] > 0
    later = ch_stats.summary(ch, Query(SITE, (S + 6 * DAY) * 1000, (S + 9 * DAY) * 1000 - 1), True, None)
    assert later["current"]["pageviews"] == 0 and later["previous"]["pageviews"] > 0
    apart = ch_stats.summary(ch, Query(SITE, (S + 40 * DAY) * 1000, (S + 42 * DAY) * 1000 - 1), False, "day")
    assert [apart["current"]["duration"], *(row["duration"] for row in apart["interval"])] == [350, 200, 500]


class _Recording:
    """A transport that keeps every statement it sends to the real one."""

    def __init__(self, inner: Transport) -> None:
        self.inner = inner
        self.statements: list[str] = []

    def send(
        self, sql: str, params: Mapping[str, str], rows: bytes | None = None, stream: bool = False
    ) -> Iterator[bytes]:
        self.statements.append(sql)
        return self.inner.send(sql, params, rows, stream)

    def close(self) -> None:
        pass


def test_the_bucket_counts_group_by_the_values_index(ch: Client) -> None:
    """The summary's bucket counts group and pack each row by its value's index (a number; the site's one value:
    a constant) where they grouped by the value's String, with the same answers."""
    rnd = random.Random(19)
    rows = _views(rnd)
    store(ch, rnd, rows, [], orphans=False)
    ref = Reference(rows, [])
    recording = _Recording(ch.transport)
    client = Client(recording)
    for start_us, end_us in ((S * 1000 + 1, (S + 3 * DAY) * 1000), ((S + 40 * DAY) * 1000, (S + 42 * DAY) * 1000 - 1)):
        q = Query(SITE, start_us, end_us)
        assert ch_stats.summary(client, q, True, "day") == _expected(ref, q, "day")
    counts = [sql for sql in recording.statements if "FROM duration_hours" in sql]
    assert len(counts) == 2 and all("toUInt16(0) AS v" in sql and "'' AS v" not in sql for sql in counts)


def test_imported_days_add_to_every_window(ch: Client) -> None:
    rnd = random.Random(18)
    rows = _views(rnd)
    store(ch, rnd, rows, [], orphans=False)
    ref = Reference(rows, [])
    days = {S - 2 * DAY: 5, S: 7, S + 2 * DAY: 11}
    imported.store(
        ch,
        [
            {"hostname": SITE, "day": day, "dimension": "", "value": "", "tool": "plausible", "visitors": n,
             "pageviews": 3 * n, "visits": n, "bounces": 1, "duration_s": 20 * n}
            for day, n in days.items()
        ],
    )  # fmt: skip
    start_us, end_us = S * 1000 + 1, (S + 3 * DAY) * 1000
    q = Query(SITE, start_us, end_us)
    got = imported_stats.summary(ch, q, True, "day", imported.ENGINE)
    own = ch_stats.summary(ch, q, True, "day")
    # The current period's days start at S + 1 µs: S's import falls before it (its 00:00 UTC), as on SQLite.
    cur, prev = days[S + 2 * DAY], days[S - 2 * DAY] + days[S]
    assert own["current"] == ref.summary(q)
    assert (got["current"]["visitors"], got["current"]["pageviews"]) == (
        own["current"]["visitors"] + cur,
        own["current"]["pageviews"] + 3 * cur,
    )
    assert (got["previous"]["visitors"], got["previous"]["pageviews"]) == (
        own["previous"]["visitors"] + prev,
        own["previous"]["pageviews"] + 3 * prev,
    )
    added = [g["visitors"] - o["visitors"] for g, o in zip(got["interval"], own["interval"], strict=True)]
    assert added == [0, cur, 0]


def _database_at(ch: Client, name: str, version: int) -> Client:
    """A new database `name` of `ch`'s engine with the migrations up to `version` applied (an older release's)."""
    ch.command(f"CREATE DATABASE {name}")
    transport = ch.transport
    if isinstance(transport, HTTPTransport):
        old = Client(HTTPTransport(dataclasses.replace(transport.url, database=name)))
    else:
        assert isinstance(transport, ChdbTransport)
        old = Client(ChdbTransport(transport.session, name))
    schema.schema_version(old)
    for number, statements in schema.MIGRATIONS:
        if number <= version:
            for statement in statements:
                old.command(statement)
            old.insert("medama_schema", ("version", "applied_ms"), [(number, 0)])
    return old


def _day_bucket_views(rnd: random.Random) -> list[dict[str, Any]]:
    """Views over four days around S with durations, many in the hours at each day's edges (07:00 UTC, a
    time zone's midnight, and 00:00 UTC)."""
    rows = []
    for _ in range(400):
        at = S - DAY + rnd.randrange(4) * DAY + rnd.choice([0, 6, 7, 8, 23, rnd.randrange(24)]) * HOUR
        row = random_view(rnd, at + rnd.randrange(HOUR))
        row["duration_ms"] = rnd.choice([None, 0, 150, 4000, rnd.randrange(0, 10**6), rnd.randrange(0, 60_000)])
        rows.append(row)
    return rows


def test_day_bucket_medians_from_24_hour_spans_migrated_and_written_in_batches(ch: Client) -> None:
    """Day buckets from 07:00 UTC read the site's durations from the 24-hour spans (schema.DAY_LEVEL): those
    of a database migrated with rows in it (the backfill, and migration 14's copies of the tables) and those
    written after, in batches whose unloads arrive one batch later, after the day of their view has closed;
    each answer equals the reference."""
    rnd = random.Random(90)
    rows = _day_bucket_views(rnd)
    name = f"old_{uuid.uuid4().hex[:12]}"
    old = _database_at(ch, name, 12)  # the release before the 24-hour spans (13): this writer needs 9-12
    try:
        first, second = rows[:200], rows[200:]
        store(old, rnd, first, [], orphans=False)
        assert schema.migrate(old, 0) == schema.MIGRATIONS[-1][0]
        spans = old.rows(f"SELECT count() FROM duration_hours WHERE level >= {schema.DAY_LEVEL}")[0][0]
        assert int(spans) > 0  # the backfill wrote them
        for table in ("hourly", "duration_hours"):  # migration 14 swapped in the copies with small granules
            assert (
                f"index_granularity = {schema.PRE_AGGREGATE_GRANULE_ROWS}"
                in old.rows(f"SHOW CREATE TABLE {table}")[0][0]
            )
        left = old.rows("SELECT count() FROM system.tables WHERE database = currentDatabase() AND name LIKE '%\\_next'")
        assert int(left[0][0]) == 0
        # The rest as live traffic: loads in time order, each batch's unloads in the batch after it.
        second.sort(key=lambda row: row["date_created"])
        pending: list[Op] = []
        for start in range(0, len(second), 50):
            chunk = second[start : start + 50]
            loads: list[Op] = [
                NewView(tuple(None if c == "duration_ms" else row[c] for c in VIEW_COLUMNS), [], "") for row in chunk
            ]
            assert not any(hits.apply_batch(old, pending + loads))
            pending = [Duration(row["bid"], row["duration_ms"]) for row in chunk if row["duration_ms"] is not None]
        assert not any(hits.apply_batch(old, pending))
        ref = Reference(rows, [])
        for offset in (7 * HOUR, 0, 7 * HOUR + 30 * MINUTE):
            start_us, end_us = (S - DAY + offset) * 1000, (S + 3 * DAY + offset) * 1000 - 1
            q = Query(SITE, start_us, end_us)
            windows = ch_stats._bucket_windows(q, "day", start_us, end_us)
            if offset % HOUR == 0:
                assert plan(windows, days=True).days, offset  # the days are read from the 24-hour spans
            got = ch_stats.summary(old, q, True, "day")
            assert got == _expected(ref, q, "day"), offset
            assert got["current"]["duration"] > 0
    finally:
        old.command(f"DROP DATABASE {name}")
        old.close()


# How long the `hourly` statement waits for the middle values' first statement to start beside it: on the old
# code (one after another) it never does, and the test fails after this wait.
OVERLAP_WAIT_S = 2.0


class _Overlapping(_Recording):
    """Holds the summary's `hourly` statement until the bucket counts statement has been sent too, noting
    whether it was (the two are in flight at once) and on which threads each ran."""

    def __init__(self, inner: Transport) -> None:
        super().__init__(inner)
        self.counts_sent = threading.Event()
        self.overlapped: list[bool] = []
        self.threads: dict[str, set[int]] = {"hourly": set(), "durations": set()}

    def send(
        self, sql: str, params: Mapping[str, str], rows: bytes | None = None, stream: bool = False
    ) -> Iterator[bytes]:
        if "FROM hourly" in sql:
            self.threads["hourly"].add(threading.get_ident())
            self.overlapped.append(self.counts_sent.wait(OVERLAP_WAIT_S))
        if "FROM duration_hours" in sql:
            self.threads["durations"].add(threading.get_ident())
            self.counts_sent.set()
        return super().send(sql, params, rows, stream)


def test_the_counts_and_the_middle_values_run_side_by_side(ch: Client) -> None:
    """The unfiltered summary's `hourly` statement runs on a helper thread while the middle values' statements
    run on the caller's: both in flight at once, the answers unchanged."""
    rnd = random.Random(23)
    rows = _views(rnd)
    store(ch, rnd, rows, [], orphans=False)
    ref = Reference(rows, [])
    overlapping = _Overlapping(ch.transport)
    client = Client(overlapping)
    start_us, end_us = S * 1000 + 1, (S + 3 * DAY) * 1000
    q = Query(SITE, start_us, end_us)
    assert ch_stats.summary(client, q, True, "day") == _expected(ref, q, "day")
    assert overlapping.overlapped == [True]
    assert overlapping.threads["hourly"].isdisjoint(overlapping.threads["durations"])
    assert overlapping.threads["durations"] == {threading.get_ident()}
    client.close()
