"""Periods split for the hourly tables: the whole hours they answer for, and the raw rows around them.

The tables with span levels (`hourly`, `duration_hours`) also hold each
hour's counts summed over aligned spans of 16 and 256 hours, so a 90-day
period reads a few dozen spans (23 for the benchmark's) instead of 2,160 hours.

A stats query asks for one window of time (a period, or the previous one) or
for consecutive windows (the buckets of an interval). The hourly tables
(`hourly`, `duration_hours`, `durations`) answer for every hour that lies
whole inside one window; the rest (the partial hours at the period's edges,
and the hours that a bucket edge cuts, as in a time zone half an hour off
UTC) is read from `views`. Both parts carry the same window index, computed
in SQL from a time: `Windows.index_sql`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Final

from medama_core.store.clickhouse.schema import DAY_HOURS, DAY_LEVEL, HOUR_MS, LEVEL_HOURS
from medama_core.store.query import STEPS_US
from medama_core.store.query import month_index as _month_index

__all__ = ["MAX_RAW_RANGES", "MAX_SPANS", "SPAN_SHARE", "Plan", "Windows", "plan", "spans", "whole_hours"]

# Raw ranges OR-ed in one condition. Past this (minute buckets over days, cut hours of a long run of
# buckets off UTC) the whole period is read raw, as a filtered query is: one range, exact either way.
MAX_RAW_RANGES: Final = 200
# Spans listed in one condition: a year of hour buckets is ~9,000 one-hour spans, past this; then the hours'
# level-0 rows are read by range, as many rows but a short statement.
MAX_SPANS: Final = 4000
# Spans are listed only when there are at most one per this many hours. Buckets that do not start on a UTC
# midnight (a dashboard's time zone) leave mostly one-hour spans, and 18.16 matches a long IN list slower than
# it reads the hours' level-0 rows by range (bench, 10 M views, 30 day buckets at 07:00 UTC: `hourly` 8.9 ms
# for 488 spans against 4.2 ms for the range's 713 rows, `duration_hours` 13.5 against 6.4 ms).
SPAN_SHARE: Final = 4


@dataclass(frozen=True)
class Windows:
    """Disjoint windows covering [lo, hi] (Unix ms, inclusive; None: unbounded).

    With no interval, one window (index 0); with one, the buckets of `interval` from `origin_us`
    (index 0 the first), as store/sqlite/stats.py numbers them.
    """

    lo: int | None
    hi: int | None
    interval: str | None = None
    origin_us: int = 0

    def index_sql(self, ms_sql: str, params: dict[str, object], prefix: str) -> str:
        """The window index of the Unix-milliseconds value `ms_sql`."""
        if self.interval is None:
            return "0"
        if self.interval == "month":
            params[f"{prefix}_month0"] = _month_index(self.origin_us // 1000)
            moment = f"toDateTime(intDiv({ms_sql}, 1000), 'UTC')"
            return f"(toYear({moment}) * 12 + toMonth({moment}) - 1 - {{{prefix}_month0:Int64}})"
        params[f"{prefix}_origin"] = self.origin_us
        params[f"{prefix}_step"] = STEPS_US[self.interval]
        return f"intDiv({ms_sql} * 1000 - {{{prefix}_origin:Int64}}, {{{prefix}_step:Int64}})"

    def bounds(self, index: int) -> tuple[int | None, int | None]:
        """The first and last millisecond of window `index`, inside [lo, hi]."""
        if self.interval is None:
            return self.lo, self.hi
        if self.interval == "month":
            month = _month_index(self.origin_us // 1000) + index
            start_us = _month_start_ms(month) * 1000
            next_us = _month_start_ms(month + 1) * 1000
        else:
            start_us = self.origin_us + index * STEPS_US[self.interval]
            next_us = start_us + STEPS_US[self.interval]
        first, last = -(-start_us // 1000), -(-next_us // 1000) - 1
        if self.lo is not None:
            first = max(first, self.lo)
        if self.hi is not None:
            last = min(last, self.hi)
        return first, last

    def count(self) -> int:
        """How many windows there are (lo and hi bounded)."""
        assert self.lo is not None and self.hi is not None
        if self.interval is None:
            return 1
        if self.interval == "month":
            return _month_index(self.hi) - _month_index(self.origin_us // 1000) + 1
        return (self.hi * 1000 - self.origin_us) // STEPS_US[self.interval] + 1

    def cut_hours(self, first: int, last: int) -> list[int] | None:
        """The hours from first to last that a bucket edge cuts (None: too many to read raw)."""
        if self.interval is None or self.interval == "month":  # month edges are midnights UTC
            return []
        step = STEPS_US[self.interval]
        hour_us = HOUR_MS * 1000
        if step % hour_us == 0 and self.origin_us % hour_us == 0:
            return []
        if step < hour_us or (last - first + 1) * hour_us // step > MAX_RAW_RANGES:
            return None
        cut = []
        edge = self.origin_us + step * max(1, -(-(first * hour_us - self.origin_us) // step))
        while edge <= (last + 1) * hour_us:
            ms = -(-edge // 1000)  # the first millisecond of the bucket that starts at this edge
            if ms % HOUR_MS and first <= ms // HOUR_MS <= last:
                cut.append(ms // HOUR_MS)
            edge += step
        return cut


def _month_start_ms(month: int) -> int:
    """The first millisecond of a month index (year * 12 + month - 1), UTC."""
    return int(datetime(month // 12, month % 12 + 1, 1, tzinfo=timezone.utc).timestamp()) * 1000


def whole_hours(lo: int | None, hi: int | None) -> tuple[int | None, int | None]:
    """The first and last hour whose every millisecond is in [lo, hi] (None: unbounded)."""
    return (None if lo is None else -(-lo // HOUR_MS)), (None if hi is None else (hi + 1) // HOUR_MS - 1)


@dataclass(frozen=True)
class Plan:
    """Which hours come from an hourly table, and which ranges of raw rows complete them."""

    first: int | None  # first and last whole hour (None: unbounded); `hours` False: none at all
    last: int | None
    hours: bool
    cut: tuple[int, ...]  # hours between first and last that are read raw instead
    raw: tuple[tuple[int | None, int | None], ...]  # inclusive ms ranges (None: unbounded)
    # The same whole hours as aligned spans (level, first hour) of LEVEL_HOURS[level] hours, each inside one
    # window; None when unbounded, too many, or hardly fewer than the hours (SPAN_SHARE): then the hours'
    # level-0 rows are read by range.
    spans: tuple[tuple[int, int], ...] | None = None
    # With `days` planned (the site's durations in `duration_hours`): the first hours of 24-hour spans (DAY_LEVEL)
    # lying whole inside one window, and the spans of the other whole hours (None: no such 24 hours).
    days: tuple[int, ...] = ()
    day_spans: tuple[tuple[int, int], ...] | None = None

    def duration_hours_sql(self, kind: str, params: dict[str, object], prefix: str) -> str:
        """The condition on kind, level and hour of `duration_hours`' rows (only when `hours`), `kind` its SQL:
        the 24-hour spans and the rest's spans when there are days. Those of one time zone are one range of the
        sort order, where a span of 16 or 256 hours is a range each: fewer granules even for a single window."""
        if self.day_spans is None:
            return f"kind = {kind} AND {self.spans_sql(params, prefix)}"
        rest = Plan(self.first, self.last, True, self.cut, self.raw, self.day_spans).spans_sql(params, prefix)
        by_level: dict[int, list[int]] = {}
        for hour in self.days:
            by_level.setdefault(DAY_LEVEL + hour % DAY_HOURS, []).append(hour)
        days = " OR ".join(
            f"(level = {level} AND hour IN ({', '.join(str(hour) for hour in hours)}))"
            for level, hours in sorted(by_level.items())
        )
        return f"kind = {kind} AND ({rest} OR {days})"

    def spans_sql(self, params: dict[str, object], prefix: str) -> str:
        """The condition on `level` and `hour` of a table with span levels (only when `hours`)."""
        if self.spans is None:
            return f"level = 0 AND {self.hours_sql(params, prefix)}"
        by_level: dict[int, list[int]] = {}
        for level, hour in self.spans:
            by_level.setdefault(level, []).append(hour)
        clauses = []
        for level, hours in sorted(by_level.items()):
            clauses.append(f"(level = {level} AND hour IN ({', '.join(str(hour) for hour in hours)}))")
        return "(" + " OR ".join(clauses) + ")" if clauses else "0"

    def hours_sql(self, params: dict[str, object], prefix: str) -> str:
        """The condition on `hour` of an hourly table's rows (only when `hours`)."""
        clauses = []
        if self.first is not None:
            clauses.append(f"hour >= {{{prefix}_first:Int64}}")
            params[f"{prefix}_first"] = self.first
        if self.last is not None:
            clauses.append(f"hour <= {{{prefix}_last:Int64}}")
            params[f"{prefix}_last"] = self.last
        if self.cut:
            names = []
            for i, hour in enumerate(self.cut):
                params[f"{prefix}_cut{i}"] = hour
                names.append(f"{{{prefix}_cut{i}:Int64}}")
            clauses.append(f"hour NOT IN ({', '.join(names)})")
        return " AND ".join(clauses) or "1"

    def raw_sql(self, params: dict[str, object], prefix: str) -> str | None:
        """The condition on `date_created` of the raw rows to read, or None when there are none."""
        if not self.raw:
            return None
        ranges = []
        for i, (lo, hi) in enumerate(self.raw):
            clauses = []
            if lo is not None:
                clauses.append(f"date_created >= {{{prefix}_lo{i}:Int64}}")
                params[f"{prefix}_lo{i}"] = lo
            if hi is not None:
                clauses.append(f"date_created <= {{{prefix}_hi{i}:Int64}}")
                params[f"{prefix}_hi{i}"] = hi
            ranges.append(" AND ".join(clauses) or "1")
        return "(" + ") OR (".join(ranges) + ")"


def spans(first: int, last: int) -> list[tuple[int, int]]:
    """Hours first..last as the fewest aligned spans (level, first hour): greedy, largest first."""
    found = []
    hour = first
    while hour <= last:
        level = len(LEVEL_HOURS) - 1
        while hour % LEVEL_HOURS[level] or hour + LEVEL_HOURS[level] - 1 > last:
            level -= 1
        found.append((level, hour))
        hour += LEVEL_HOURS[level]
    return found


def _spans(windows: Windows, first: int | None, last: int | None) -> tuple[tuple[int, int], ...] | None:
    """The spans of every window's whole hours (a bucket edge's hour is whole in neither)."""
    if windows.lo is None or windows.hi is None or first is None or last is None:
        return None
    found: list[tuple[int, int]] = []
    for index in range(windows.count()):
        lo, hi = whole_hours(*windows.bounds(index))
        if lo is not None and hi is not None:
            found += spans(max(lo, first), min(hi, last))
            if len(found) > MAX_SPANS:
                return None
    if len(found) * SPAN_SHARE > last - first + 1:
        return None
    return tuple(found)


def _day_spans(windows: Windows, first: int, last: int) -> tuple[tuple[int, ...], tuple[tuple[int, int], ...]] | None:
    """Each window's whole hours as 24-hour spans from its first (their first hours) and the spans of the hours
    left at its end; None when no window holds 24 whole hours, or when there are too many spans."""
    days: list[int] = []
    rest: list[tuple[int, int]] = []
    for index in range(windows.count()):
        lo, hi = whole_hours(*windows.bounds(index))
        if lo is None or hi is None:
            continue
        lo, hi = max(lo, first), min(hi, last)
        end = lo + (hi - lo + 1) // DAY_HOURS * DAY_HOURS  # after the last whole 24 hours
        days += range(lo, end, DAY_HOURS)
        rest += spans(end, hi)
        if len(days) + len(rest) > MAX_SPANS:
            return None
    return (tuple(days), tuple(rest)) if days else None


# Plans kept: a summary plans each family's windows in each of its three reads (a period of 90 day buckets: 90
# windows' spans, ~10 ms of Python each time); Windows and Plan are frozen.
PLANS_KEPT: Final = 256


@functools.lru_cache(maxsize=PLANS_KEPT)
def plan(windows: Windows, days: bool = False) -> Plan:
    """Split `windows` into whole hours inside one window and raw ranges for the rest; with `days`, those hours
    as 24-hour spans too (Plan.days: the site's durations in `duration_hours`, which has them)."""
    lo, hi = windows.lo, windows.hi
    if lo is not None and hi is not None and hi < lo:
        return Plan(None, None, False, (), ())
    first, last = whole_hours(lo, hi)
    if first is not None and last is not None and first > last:
        return Plan(None, None, False, (), ((lo, hi),))
    cut: list[int] = []
    if windows.interval is not None:
        found = None if first is None or last is None else windows.cut_hours(first, last)
        if found is None:
            return Plan(None, None, False, (), ((lo, hi),))
        cut = found
    raw: list[tuple[int | None, int | None]] = []
    if lo is not None and first is not None and lo < first * HOUR_MS:
        raw.append((lo, first * HOUR_MS - 1))
    raw += [(hour * HOUR_MS, hour * HOUR_MS + HOUR_MS - 1) for hour in cut]
    if hi is not None and last is not None and hi > last * HOUR_MS + HOUR_MS - 1:
        raw.append(((last + 1) * HOUR_MS, hi))
    split = None
    if days and windows.lo is not None and windows.hi is not None and first is not None and last is not None:
        split = _day_spans(windows, first, last)
    by_days: tuple[tuple[int, ...], tuple[tuple[int, int], ...] | None] = split if split is not None else ((), None)
    return Plan(first, last, True, tuple(cut), tuple(raw), _spans(windows, first, last), *by_days)
