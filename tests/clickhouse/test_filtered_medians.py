"""Filtered /summary and /time on ClickHouse: medians from light reads of the filtered rows, answers unchanged.

A filtered summary reads its rows twice (medians.raw_middles): the counts and the
durations per bucket of every window, then the values of the buckets holding each
window's middles only (a PREWHERE on their durations). A filtered /time reads the
median of the pages it shows only. Each answer must equal the plain Reference,
over day buckets whose middles lie in buckets far apart, unload pairs, views
without a duration, and the instant both periods share.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Iterator, Mapping
from typing import Any

from medama_core.store.clickhouse import stats as ch_stats
from medama_core.store.clickhouse.client import Client, Transport
from medama_core.store.clickhouse.medians import _duration_ranges
from medama_core.store.filters import Filter
from medama_core.store.query import Page, Query, previous_period
from tests.clickhouse.test_equivalence import store
from tests.store.test_equivalence import START, Reference, random_view
from tests.store.test_stats import DAY, HOUR, SITE

S = START + 20 * DAY  # a midnight
# Each day's durations: the first day's middles near 100 ms, the second's near 100 s, the third's spread.
DAY_DURATIONS = ((90, 100, 110, 120, None), (99_000, 100_000, 101_000, None), (0, 1, 2, 5_000, 700_000))


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


def _views(rnd: random.Random) -> list[dict[str, Any]]:
    """Views on three days from S and the three before, one at S itself (the instant both periods share)."""
    rows = []
    for day in range(-3, 3):
        for i, duration in enumerate(DAY_DURATIONS[day % 3] * 4):
            row = random_view(rnd, S + day * DAY + (i % 24) * HOUR + rnd.randrange(HOUR))
            row["duration_ms"] = duration
            rows.append(row)
    rows.append(random_view(rnd, S))
    return rows


def test_filtered_summary_reads_middles_by_bucket(ch: Client) -> None:
    rnd = random.Random(21)
    rows = _views(rnd)
    store(ch, rnd, rows, [], orphans=False)  # loads, then unloads (some twice: unload pairs)
    ref = Reference(rows, [])
    recording = _Recording(ch.transport)
    client = Client(recording)
    for flt in (Filter("browser", "eq", "firefox"), Filter("path", "neq", "/")):
        for start_us, end_us in ((S * 1000, (S + 3 * DAY) * 1000 - 1), (S * 1000 + 1, (S + 3 * DAY) * 1000)):
            q = Query(SITE, start_us, end_us, (flt,))
            before = Query(SITE, *previous_period(start_us, end_us), (flt,))
            for interval in (None, "day"):
                got = ch_stats.summary(client, q, True, interval)
                expected: dict[str, Any] = {"current": ref.summary(q), "previous": ref.summary(before)}
                if interval is not None:
                    expected["interval"] = ref.interval(q, interval)
                assert got == expected, (flt, start_us, interval)
            assert ch_stats.summary(client, q, False, None) == {"current": ref.summary(q)}
    reads = [sql for sql in recording.statements if "FROM views" in sql]
    assert reads and not any("quantilesExactWeighted" in sql for sql in reads)
    assert any("PREWHERE" in sql for sql in reads)  # the middle values' read, by the durations of their buckets


def test_filtered_time_reads_medians_of_shown_pages(ch: Client) -> None:
    rnd = random.Random(22)
    rows = _views(rnd) + _views(rnd)
    for row in rows:
        row["pathname"] = f"/p{rnd.randrange(5)}"  # pages with views enough to be kept
    store(ch, rnd, rows, [], orphans=False)
    ref = Reference(rows, [])
    recording = _Recording(ch.transport)
    client = Client(recording)
    q = Query(SITE, (S - 3 * DAY) * 1000, (S + 3 * DAY) * 1000 - 1, (Filter("browser", "neq", "safari"),))
    assert len(ref.time(q, True)) > 2
    for limit in (None, 2):
        assert ch_stats.time_stats(client, q, True, Page(limit)) == Page(limit).cut(ref.time(q, True))
    medians = [sql for sql in recording.statements if "quantilesExactWeighted" in sql]
    assert len(medians) == 2 and all("pathname IN" in sql for sql in medians)


def _bucket(duration: int) -> int:
    """schema.BUCKET in Python: the top 16 bits of the duration as a Float64."""
    return int.from_bytes(struct.pack(">d", float(duration)), "big") >> 48


def test_duration_ranges_hold_their_buckets_durations() -> None:
    rnd = random.Random(23)
    durations = [0, 1, 2, 31, 32, 33, 99, 100, 101, 5_000, 2**40, 2**53 - 1]
    durations += [rnd.randrange(0, 10**7) for _ in range(3000)]
    for buckets in ([0], [_bucket(100)], [_bucket(100), _bucket(100) + 1, _bucket(5_000)], [_bucket(2**53 - 1)]):
        condition = _duration_ranges(buckets)
        assert condition is not None
        ranges = [
            (int(part.split(">= ")[1].split(" ")[0]), int(part.split("< ")[1].rstrip(")")))
            for part in condition.split(" OR ")
        ]
        assert len(ranges) == len({b - i for i, b in enumerate(buckets)})  # one per run of consecutive buckets
        for duration in durations:
            inside = any(low <= duration < high for low, high in ranges)
            assert inside == (_bucket(duration) in buckets), (buckets, duration)
    assert _duration_ranges([_bucket(2**53)]) is None  # no longer exact as a Float64
    assert _duration_ranges([0x8000]) is None  # negative
