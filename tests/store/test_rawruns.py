"""Raw durations as runs (store/sqlite/rawruns.py): in memory or in the temporary database, the same values."""

from __future__ import annotations

import random
import tracemalloc
from bisect import bisect_right
from itertools import chain
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from medama_core.store import aggregate
from medama_core.store.filters import Filter
from medama_core.store.sqlite import rawruns, stats
from tests.store.test_stats import DAY, SITE, T0, insert, new_db, view

GROUPS = st.lists(st.lists(st.integers(0, 2**40), max_size=300).map(sorted), min_size=1, max_size=4)


@given(GROUPS, st.one_of(st.none(), st.integers(0, 400)), st.integers(1, 130), st.data())
def test_runs_read_back_every_value(groups: list[list[int]], held: int | None, chunk: int, data: st.DataObject) -> None:
    """Whatever the bound and the row size: each label's run has its count, its every 64th value as samples,
    any window equal to the slice, `at_most` equal to a bisection, and its quantiles those of the values;
    at most `held` values stay in memory."""
    original = rawruns.SPILL_CHUNK
    rawruns.SPILL_CHUNK = chunk  # type: ignore[misc]
    raw = rawruns.RawRuns(held)
    try:
        rows = [(label, value) for label, values in enumerate(groups) for value in values]
        runs = dict(raw.runs(iter(rows)))
        for label, values in enumerate(groups):
            if not values:
                continue
            run = runs[label]
            assert run.count == len(values)
            assert list(run.samples) == values[aggregate.SAMPLE_STEP - 1 :: aggregate.SAMPLE_STEP]
            lo = data.draw(st.integers(0, len(values)))
            hi = data.draw(st.integers(lo, len(values)))
            assert list(run.window(lo, hi)) == values[lo:hi]
            source = rawruns.RunSource(run)
            assert (source.low, source.high) == (values[0], values[-1])
            for x in (values[lo - 1] if lo else -1, values[lo] if lo < len(values) else 2**41, values[0] + 1):
                assert source.at_most(x) == bisect_right(values, x)
            assert aggregate.quantile_cont([run], 0.5) == aggregate.quantile_cont([aggregate.Run.of(values)], 0.5)
        total = sum(map(len, groups))
        spilled = raw.db.execute("SELECT SUM(length(data)) / 8 FROM chunks").fetchone()[0] if raw.db else 0
        if held is None:
            assert raw.db is None
        else:
            assert raw.left is not None and 0 <= raw.left and held - raw.left + spilled == total
        every = sorted(chain.from_iterable(groups))
        if every:
            k = data.draw(st.integers(0, len(every) - 1))
            assert aggregate.kth(list(runs.values()), k)[0] == every[k]
    finally:
        raw.close()
        rawruns.SPILL_CHUNK = original  # type: ignore[misc]


VIEWS = 60_000  # 480 KB of durations as 8-byte integers, far above the bound the test sets


def test_a_request_holds_raw_durations_up_to_the_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    """Right after an import every hour is raw: the medians of /summary (whole period, day buckets, and with a
    filter) hold at most RAW_DURATIONS_HELD of the raw durations in memory (traced by tracemalloc, which sees
    Python's allocations, not SQLite's page cache), and answer as a plain sort of the durations does."""
    monkeypatch.setattr(rawruns, "RAW_DURATIONS_HELD", 1000)
    conn = new_db()
    rnd = random.Random(20)
    durations = [rnd.randrange(0, 10**9) for _ in range(VIEWS)]
    insert(conn, [view(duration_ms=d, date_created=T0 + n * (2 * DAY // VIEWS)) for n, d in enumerate(durations)])
    q = stats.Query(SITE, T0 * 1000, (T0 + 2 * DAY) * 1000 - 1)
    filtered = stats.Query(SITE, T0 * 1000, (T0 + 2 * DAY) * 1000 - 1, (Filter("browser", "eq", "chrome"),))
    expected = aggregate.quantile_cont([aggregate.Run.of(sorted(durations))], 0.5)
    assert expected is not None
    answer: Any = None
    calls: list[tuple[Any, tuple[Any, ...]]] = [
        (stats.site_metrics, (q,)),
        (stats.interval_metrics, (q, "day", q.start_us, q.end_us)),
        (stats.summary, (filtered, False, "day")),
    ]
    for fn, args in calls:
        tracemalloc.start()
        try:
            answer = stats.snapshot(conn, fn, *args)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < 250_000, (fn.__name__, peak)
    assert stats.snapshot(conn, stats.site_metrics, q)["duration"] == round(expected)
    assert answer["current"]["duration"] == round(expected)
    conn.close()
