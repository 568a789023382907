"""Per-group aggregates and upstream's arithmetic: exact quantiles, DuckDB rounding, the bounce rule.

Upstream computes stats in DuckDB; these functions reproduce its numbers bit
for bit (checked against DuckDB in tests/store/test_equivalence.py):

* `quantile_cont` interpolates linearly between the two nearest order
  statistics in double precision, and `CAST(double AS INTEGER)` then rounds
  half to even, which is Python's `round()`.
* `ROUND(double, 4)` rounds the exact binary value half away from zero.

Durations come as sorted runs (`Run`), one per stored period or raw piece. A
run may live in a database blob: then only every SAMPLE_STEP-th value is in
memory, and `kth` reads the few windows of the blobs that can hold the
wanted order statistic.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from itertools import chain

BOUNCE_MIN_MS = 100  # a landing view shorter than this is a glitch, not a bounce (upstream)
BOUNCE_MAX_MS = 5000  # the "5-second rule": a landing view up to 5 s is a bounce (upstream)
BOUNCE_MIN_VIEWS = 6  # with 5 or fewer timed landing views the bounce rate is 0 (upstream's `> 5`)
# Every SAMPLE_STEP-th value of a stored run is kept beside it, so a selection over R runs reads
# about 2 * R * SAMPLE_STEP values from the blobs instead of whole runs (a day of a busy site is
# ~100k durations; a day bucket in a time zone off UTC merges 24 hour runs). 64 keeps the samples
# at 1.6% of the runs. Stored runs carry samples at this step: changing it needs a migration that
# rebuilds the rollups.
SAMPLE_STEP = 64
CANDIDATES_AT_MOST = 8192  # up to this many samples in all, the search runs over them (about 13 steps)
MERGE_AT_MOST = 4096  # up to this many values, sorting the windows (merging sorted runs in C) beats a search
_FOUR_PLACES = Decimal("0.0001")


class Run:
    """A sorted run of durations: its length, every SAMPLE_STEP-th value, and a reader of any window."""

    __slots__ = ("count", "samples", "_read")

    def __init__(self, count: int, samples: Sequence[int], read: Callable[[int, int], Sequence[int]]) -> None:
        self.count = count
        self.samples = samples  # samples[j] is the value at position (j + 1) * SAMPLE_STEP - 1
        self._read = read

    @classmethod
    def of(cls, values: Sequence[int]) -> Run:
        """A run held in memory."""
        return cls(len(values), values[SAMPLE_STEP - 1 :: SAMPLE_STEP], lambda lo, hi: values[lo:hi])

    def window(self, lo: int, hi: int) -> Sequence[int]:
        """The values at positions lo..hi-1."""
        return self._read(lo, hi)


Runs = list[Run]  # sorted runs whose union is a group's multiset of durations


@dataclass(slots=True)
class Group:
    """What every stat of one group (a page, a referrer, a time bucket...) is computed from."""

    visitors: int = 0  # views with is_unique_user
    page_visitors: int = 0  # views with is_unique_page
    pageviews: int = 0
    bounces: int = 0  # unique-user views lasting BOUNCE_MIN_MS..BOUNCE_MAX_MS
    timed: int = 0  # unique-user views with a recorded duration
    duration_sum: int = 0  # over every view with a recorded duration
    measured: int = 0  # views with a recorded duration
    zeros: int = 0  # views whose duration is 0
    ones: int = 0  # views whose duration is at most 1
    twos: int = 0  # views whose duration is at most 2
    runs: Runs | None = None  # the durations, when loaded
    fixed: dict[float, float | None] | None = None  # quantiles computed while streaming the raw rows
    loader: Callable[[], Runs] | None = None  # reads the durations on first use

    def add(self, other: Group) -> None:
        self.visitors += other.visitors
        self.page_visitors += other.page_visitors
        self.pageviews += other.pageviews
        self.bounces += other.bounces
        self.timed += other.timed
        self.duration_sum += other.duration_sum
        self.measured += other.measured
        self.zeros += other.zeros
        self.ones += other.ones
        self.twos += other.twos

    def counts(self) -> tuple[int, ...]:
        """The additive counts, in the order of the fields (and of rollups.COUNT_NAMES)."""
        return (
            self.visitors,
            self.page_visitors,
            self.pageviews,
            self.bounces,
            self.timed,
            self.duration_sum,
            self.measured,
            self.zeros,
            self.ones,
            self.twos,
        )

    def durations(self) -> Runs:
        if self.runs is None:
            self.runs = self.loader() if self.loader is not None else []
        return self.runs

    def quantile(self, q: float) -> float | None:
        """DuckDB's `quantile_cont(duration_ms, q)`; None when no view has a duration."""
        if self.fixed is not None:
            return self.fixed[q]
        return quantile_cont(self.durations(), q)

    def duration(self, q: float = 0.5) -> int:
        """`CAST(ifnull(quantile_cont(duration_ms, q), 0) AS INTEGER)`."""
        value = self.quantile(q)
        return 0 if value is None else round(value)

    def median_positive(self) -> bool:
        """Whether `duration() > 0`, decided from the counts of durations at most 0 and 1."""
        return self.positive(0.5)

    def positive(self, q: float) -> bool:
        """Whether `duration(q) > 0` for q = 0.25 or 0.5, decided from the counts of small durations."""
        if self.fixed is not None:
            return self.duration(q) > 0
        return positive(q, self.measured, self.zeros, self.ones, self.twos)

    def bounce_rate(self) -> float:
        if self.timed < BOUNCE_MIN_VIEWS:
            return 0
        return round4(self.bounces / self.timed)


# The quantiles `positive` decides: q -> how many quarters (q = parts / 4).
_QUARTERS = {0.25: 1, 0.5: 2}


def positive(q: float, n: int, zeros: int, ones: int, twos: int) -> bool:
    """Whether CAST(quantile_cont(d, q) AS INTEGER) > 0 for n non-negative integer durations of which `zeros`
    are 0, `ones` at most 1 and `twos` at most 2 (q = 0.25 or 0.5).

    The quantile is x[lo] + (x[lo + 1] - x[lo]) * f at position (n - 1) * q = lo + f, and rounds (half
    to even) to 0 exactly when it is at most 0.5. With x[lo] >= 1 it is not; with x[lo] = 0 it is
    x[lo + 1] * f, above 0.5 when x[lo + 1] is at least 3 (f = 1/4), 2 (f = 1/2) or 1 (f = 3/4); and
    x[i] >= c exactly when fewer than i + 1 durations are at most c - 1. `positive_sql` says the same in SQL.
    """
    if n <= 0:
        return False
    parts = _QUARTERS[q]
    lower, rest = divmod((n - 1) * parts, 4)
    if zeros <= lower:
        return True
    at_most = {0: None, 1: twos, 2: ones, 3: zeros}[rest]  # durations below the least upper value that counts
    return at_most is not None and at_most <= lower + 1


def positive_sql(q: float, n: str, zeros: str, ones: str, twos: str) -> str:
    """`positive` as an SQL condition over integer expressions (SQLite's integer `/` and `%`)."""
    parts = _QUARTERS[q]
    lower, rest = f"(({n} - 1) * {parts} / 4)", f"(({n} - 1) * {parts} % 4)"
    return (
        f"({n} > 0 AND ({zeros} <= {lower} OR {rest} = 1 AND {twos} <= {lower} + 1"
        f" OR {rest} = 2 AND {ones} <= {lower} + 1 OR {rest} = 3 AND {zeros} <= {lower} + 1))"
    )


def round4(value: float) -> float:
    """DuckDB's `ROUND(value, 4)` on a DOUBLE: half away from zero on the exact binary value."""
    return float(Decimal(value).quantize(_FOUR_PLACES, rounding=ROUND_HALF_UP))


def fraction(part: int, whole: int) -> float:
    """`ifnull(ROUND(part / whole, 4), 0)`: a share with 4 decimals, 0 when the whole is 0."""
    return round4(part / whole) if whole else 0


def quantile_cont(runs: Sequence[Run], q: float) -> float | None:
    """The `q` quantile with linear interpolation, as DuckDB's `quantile_cont`."""
    n = sum(run.count for run in runs)
    if n == 0:
        return None
    position = (n - 1) * q
    lower = math.floor(position)
    upper = math.ceil(position)
    low, high = kth(runs, lower, upper)
    if upper == lower:
        return float(low)
    return float(low) + float(high - low) * (position - lower)


def kth(runs: Sequence[Run], k: int, k2: int | None = None) -> tuple[int, int]:
    """The k-th and k2-th smallest values (0-based, k <= k2; k2 defaults to k) of the union of the runs.

    The samples bound how many values of each run are at most x: at least
    SAMPLE_STEP * m and fewer than SAMPLE_STEP * (m + 1), m being the samples at
    most x. Binary searches on x over those bounds bracket the answers, and
    only the windows of the runs inside the bracket are read.
    """
    k2 = k if k2 is None else k2
    runs = [run for run in runs if run.count]
    if len(runs) == 1:
        values = runs[0].window(k, k2 + 1)
        return values[0], values[-1]
    step = SAMPLE_STEP
    sampled = [run for run in runs if len(run.samples)]

    def at_most(x: int) -> int:  # an upper bound on how many values are <= x
        return sum(min(run.count, (bisect_right(run.samples, x) + 1) * step - 1) for run in runs)

    def surely_at_most(x: int) -> int:  # a lower bound on the same count
        return sum(bisect_right(run.samples, x) * step for run in sampled)

    low = high = None  # the answers are above low and at most high (None: unbounded)
    if sum(len(run.samples) for run in sampled) <= CANDIDATES_AT_MOST:
        # Search the samples themselves: few steps.
        # Sorting the concatenated runs merges them (timsort); repeated values do no harm to the bisections.
        candidates = sorted(chain.from_iterable(run.samples for run in sampled))
        i = bisect_right(candidates, k, key=at_most)  # candidates[:i] have at most k values <= them
        j = bisect_right(candidates, k2, key=surely_at_most)  # candidates[j:] have more than k2
        low = candidates[i - 1] if i > 0 else None
        high = candidates[j] if j < len(candidates) else None
    else:  # Search the value range: at most 64 steps whatever the number of samples.
        smallest = min(run.samples[0] for run in sampled)
        largest = max(run.samples[-1] for run in sampled)
        if at_most(smallest - 1) <= k:
            low = _last(smallest - 1, largest, lambda x: at_most(x) <= k)
        if surely_at_most(largest) > k2:
            high = _last(smallest - 1, largest, lambda x: surely_at_most(x) <= k2) + 1
    parts, before = [], 0
    for run in runs:
        start = 0 if low is None else bisect_right(run.samples, low) * step
        stop = run.count if high is None else min(run.count, (bisect_right(run.samples, high) + 1) * step - 1)
        before += start  # values before `start` are all <= low
        if stop > start:
            parts.append(run.window(start, stop))
    if sum(len(part) for part in parts) <= MERGE_AT_MOST:
        merged = sorted(chain.from_iterable(parts))
        return merged[k - before], merged[k2 - before]
    return _select(parts, k - before), _select(parts, k2 - before)


def _last(lo: int, hi: int, holds: Callable[[int], bool]) -> int:
    """The largest x in lo..hi for which the monotone (true, then false) `holds` is true; holds(lo) must be."""
    while lo < hi:
        middle = (lo + hi + 1) // 2
        if holds(middle):
            lo = middle
        else:
            hi = middle - 1
    return lo


def _select(parts: list[Sequence[int]], k: int) -> int:
    """The k-th smallest value of sorted in-memory sequences, by binary search on the value."""
    low = min(part[0] for part in parts if len(part))
    high = max(part[-1] for part in parts if len(part))
    while low < high:
        middle = (low + high) // 2
        if sum(bisect_right(part, middle) for part in parts) > k:
            high = middle
        else:
            low = middle + 1
    return low
