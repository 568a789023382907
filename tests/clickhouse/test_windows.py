"""The split of a period into span-level rows of the hourly tables and raw ranges: exact cover, nothing twice."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from medama_core.store.clickhouse.schema import DAY_HOURS, DAY_LEVEL, HOUR_MS, LEVEL_HOURS
from medama_core.store.clickhouse.windows import SPAN_SHARE, Windows, plan, spans
from medama_core.store.query import STEPS_US
from medama_core.store.query import month_index as _month_index

BASE_HOUR = 480_000  # 2024-10-03 00:00 UTC, a multiple of every span level's hours
DAY_MS = 24 * HOUR_MS


def _window(windows: Windows, ms: int) -> int:
    """The index of the window holding `ms`, as the store's SQL computes it."""
    if windows.interval is None:
        return 0
    if windows.interval == "month":
        return _month_index(ms) - _month_index(windows.origin_us // 1000)
    return (ms * 1000 - windows.origin_us) // STEPS_US[windows.interval]


def _span_bound(hours: int) -> int:
    """At most (ratio - 1) spans of each lower level at either end, and the top level's between."""
    ratios = [LEVEL_HOURS[i + 1] // LEVEL_HOURS[i] for i in range(len(LEVEL_HOURS) - 1)]
    return 2 * sum(ratio - 1 for ratio in ratios) + hours // LEVEL_HOURS[-1] + 1


@given(st.integers(0, 3000), st.integers(0, 3000))
def test_spans_cover_the_hours_once_aligned_and_few(first_off: int, length: int) -> None:
    first = BASE_HOUR - 1500 + first_off
    last = first + length - 1
    found = spans(first, last)
    covered = [hour for level, start in found for hour in range(start, start + LEVEL_HOURS[level])]
    assert covered == list(range(first, last + 1))
    assert all(start % LEVEL_HOURS[level] == 0 for level, start in found)
    assert len(found) <= _span_bound(length)


@settings(max_examples=500)  # a plan takes microseconds; a wrong span shows only for some intervals and origins
@given(
    st.integers(-72, 960),
    st.sampled_from([0, 1, 999, 30 * 60_000, HOUR_MS - 1, 5 * 60_000 + 7]),
    st.integers(0, 45 * DAY_MS),
    st.sampled_from([None, "minute", "hour", "day", "week", "month"]),
    st.integers(0, 999),
)
def test_a_plan_covers_the_period_once_and_each_span_lies_in_one_window(
    hours: int, minutes: int, length: int, interval: str | None, sub_ms_us: int
) -> None:
    """Raw ranges, and the whole hours not cut (as spans when listed), tile [lo, hi] exactly. The buckets
    start at the query's start (microseconds), on or off the hour, as stats.py asks for them."""
    lo = (BASE_HOUR + hours) * HOUR_MS + minutes
    hi = lo + length
    if interval == "minute":
        hi = lo + length % (4 * DAY_MS)  # minute buckets over days are read raw; keep the cases fast
    origin_us = lo * 1000 - sub_ms_us  # the start in µs; its first whole millisecond is lo
    windows = Windows(lo, hi, interval, origin_us if interval else 0)
    p = plan(windows)
    pieces: list[tuple[int, int]] = []
    for start, end in p.raw:
        assert start is not None and end is not None
        pieces.append((start, end))
    if p.hours:
        assert p.first is not None and p.last is not None
        whole = [hour for hour in range(p.first, p.last + 1) if hour not in p.cut]
        pieces += [(hour * HOUR_MS, hour * HOUR_MS + HOUR_MS - 1) for hour in whole]
        for hour in whole:  # a whole hour read from a table answers for one window
            assert _window(windows, hour * HOUR_MS) == _window(windows, hour * HOUR_MS + HOUR_MS - 1)
        if p.spans is not None:
            covered = sorted(hour for level, start in p.spans for hour in range(start, start + LEVEL_HOURS[level]))
            assert covered == whole
            for level, start in p.spans:
                assert start % LEVEL_HOURS[level] == 0
                end_ms = (start + LEVEL_HOURS[level]) * HOUR_MS - 1
                assert _window(windows, start * HOUR_MS) == _window(windows, end_ms), (level, start)
        by_days = plan(windows, days=True)
        if by_days.day_spans is not None:  # 24-hour spans and the rest's spans tile the same whole hours
            assert by_days.days
            covered = [hour for start in by_days.days for hour in range(start, start + DAY_HOURS)]
            covered += [hour for level, start in by_days.day_spans for hour in range(start, start + LEVEL_HOURS[level])]
            assert sorted(covered) == whole
            for start in by_days.days:
                end_ms = (start + DAY_HOURS) * HOUR_MS - 1
                assert _window(windows, start * HOUR_MS) == _window(windows, end_ms), start
    pieces.sort()
    at = lo
    for start, end in pieces:
        assert start == at and end >= start, (start, end, at)
        at = end + 1
    assert at == hi + 1


def test_spans_are_listed_only_when_they_are_far_fewer_than_the_hours() -> None:
    """Day buckets from 07:00 UTC leave mostly one-hour spans: then the hours are read by range (SPAN_SHARE)."""
    lo = BASE_HOUR * HOUR_MS
    whole = plan(Windows(lo, lo + 90 * DAY_MS - 1))
    assert whole.spans is not None and len(whole.spans) * SPAN_SHARE <= 90 * 24
    start_us = (lo + 7 * HOUR_MS) * 1000
    buckets = plan(Windows(lo + 7 * HOUR_MS, lo + 7 * HOUR_MS + 30 * DAY_MS - 1, "day", start_us))
    assert buckets.spans is None and (buckets.first, buckets.last) == (BASE_HOUR + 7, BASE_HOUR + 7 + 30 * 24 - 1)
    assert buckets.spans_sql({}, "p").startswith("level = 0 AND hour >= ")
    utc_days = plan(Windows(lo, lo + 30 * DAY_MS - 1, "day", lo * 1000))
    assert utc_days.spans is None  # a UTC day is a 16-hour span and eight hours: 9 spans for 24 hours
    weeks = plan(Windows(lo, lo + 28 * DAY_MS - 1, "week", lo * 1000))
    assert weeks.spans is not None and len(weeks.spans) * SPAN_SHARE <= 28 * 24


def test_day_buckets_of_any_time_zone_read_one_24_hour_span_each() -> None:
    """The site's durations over day buckets from 07:00 UTC: 30 spans of 24 hours (DAY_LEVEL + 7), not 720 hours."""
    lo = (BASE_HOUR + 7) * HOUR_MS
    buckets = plan(Windows(lo, lo + 30 * DAY_MS - 1, "day", lo * 1000), days=True)
    assert buckets.days == tuple(range(BASE_HOUR + 7, BASE_HOUR + 7 + 30 * 24, 24)) and buckets.day_spans == ()
    sql = buckets.duration_hours_sql("0", {}, "p")
    assert f"level = {DAY_LEVEL + 7} AND hour IN ({BASE_HOUR + 7}, " in sql and "level = 0" not in sql
    # One window of 90 days from 07:00:00.001 (the previous period): 89 spans from 08:00, the last hours as spans.
    whole = plan(Windows(lo + 1, lo + 90 * DAY_MS - 1), days=True)
    assert len(whole.days) == 89 and whole.day_spans is not None and len(whole.day_spans) < 23
    levels = re.findall(r"level = (\d+)", whole.duration_hours_sql("0", {}, "p"))
    assert str(DAY_LEVEL + 8) in levels and all(
        int(level) < DAY_LEVEL or level == str(DAY_LEVEL + 8) for level in levels
    )
    # Hour buckets have no whole 24 hours in a window: the spans as before.
    hours = plan(Windows(lo, lo + 2 * DAY_MS - 1, "hour", lo * 1000), days=True)
    assert hours.day_spans is None and hours.duration_hours_sql("0", {}, "p") == "kind = 0 AND " + hours.spans_sql(
        {}, "p"
    )


def test_a_plan_is_made_once_per_windows() -> None:
    # A summary plans each family in each of its reads: 90 day buckets' spans cost ~10 ms of Python each time.
    days = Windows(1_711_929_600_000, 1_711_929_600_000 + 90 * 86_400_000 - 1, "day", 1_711_929_600_000_000)
    assert plan(days) is plan(Windows(days.lo, days.hi, "day", days.origin_us))
    assert plan(days, days=True) is plan(days, days=True) and plan(days, days=True) is not plan(days)
