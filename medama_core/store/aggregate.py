"""Per-group aggregates and upstream's arithmetic: exact quantiles, DuckDB rounding, the bounce rule.

Upstream computes stats in DuckDB; these functions reproduce its numbers bit
for bit (checked against DuckDB in tests/store/test_stats_math.py):

* `quantile_cont` interpolates linearly between the two nearest order
  statistics in double precision, and `CAST(double AS INTEGER)` then rounds
  half to even, which is Python's `round()`.
* `ROUND(double, 4)` rounds the exact binary value half away from zero.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from heapq import merge

BOUNCE_MIN_MS = 100  # a landing view shorter than this is a glitch, not a bounce (upstream)
BOUNCE_MAX_MS = 5000  # the "5-second rule": a landing view up to 5 s is a bounce (upstream)
BOUNCE_MIN_VIEWS = 6  # with 5 or fewer timed landing views the bounce rate is 0 (upstream's `> 5`)
SMALL_SELECTION = 4096  # below this many durations a plain merge beats the value-space binary search
_FOUR_PLACES = Decimal("0.0001")

Runs = list[Sequence[int]]  # sorted runs of durations whose union is a group's multiset


@dataclass(slots=True)
class Group:
    """What every stat of one group (a page, a referrer, a time bucket...) is computed from."""

    visitors: int = 0  # views with is_unique_user
    page_visitors: int = 0  # views with is_unique_page
    pageviews: int = 0
    bounces: int = 0  # unique-user views lasting BOUNCE_MIN_MS..BOUNCE_MAX_MS
    timed: int = 0  # unique-user views with a recorded duration
    duration_sum: int = 0  # over every view with a recorded duration
    runs: Runs | None = field(default_factory=list)  # None until `loader` fills it
    fixed: dict[float, float | None] | None = None  # quantiles computed elsewhere (SQL windows)
    loader: Callable[[], Runs] | None = None

    def add(self, other: Group) -> None:
        self.visitors += other.visitors
        self.page_visitors += other.page_visitors
        self.pageviews += other.pageviews
        self.bounces += other.bounces
        self.timed += other.timed
        self.duration_sum += other.duration_sum

    def durations(self) -> Runs:
        if self.runs is None:
            assert self.loader is not None
            self.runs = self.loader()
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
        """Whether `duration() > 0`, without selecting the median when sorted runs can tell."""
        if self.fixed is not None or self.runs is None:
            return self.duration() > 0
        runs = self.runs
        n = sum(len(run) for run in runs)
        if n == 0:
            return False
        # Durations are non-negative integers, so the median rounds to 0 exactly when it is 0 or 0.5:
        # the lower middle value is 0 and the upper one is at most 1.
        zeros = sum(bisect_right(run, 0) for run in runs)
        at_most_one = sum(bisect_right(run, 1) for run in runs)
        return not (zeros > (n - 1) // 2 and at_most_one > n // 2)

    def bounce_rate(self) -> float:
        if self.timed < BOUNCE_MIN_VIEWS:
            return 0
        return round4(self.bounces / self.timed)


def round4(value: float) -> float:
    """DuckDB's `ROUND(value, 4)` on a DOUBLE: half away from zero on the exact binary value."""
    return float(Decimal(value).quantize(_FOUR_PLACES, rounding=ROUND_HALF_UP))


def fraction(part: int, whole: int) -> float:
    """`ifnull(ROUND(part / whole, 4), 0)`: a share with 4 decimals, 0 when the whole is 0."""
    return round4(part / whole) if whole else 0


def quantile_cont(runs: Runs, q: float) -> float | None:
    """The `q` quantile with linear interpolation, as DuckDB's `quantile_cont`."""
    n = sum(len(run) for run in runs)
    if n == 0:
        return None
    position = (n - 1) * q
    lower = math.floor(position)
    upper = math.ceil(position)
    if len(runs) == 1 or n <= SMALL_SELECTION:
        values: Sequence[int] = runs[0] if len(runs) == 1 else list(merge(*runs))
        low, high = values[lower], values[upper]
    else:
        low = kth(runs, lower)
        high = low if upper == lower else kth(runs, upper)
    if upper == lower:
        return float(low)
    return float(low) + float(high - low) * (position - lower)


def kth(runs: Runs, k: int) -> int:
    """The k-th smallest value (0-based) of the union of sorted runs, by binary search on the value."""
    low = min(run[0] for run in runs if len(run))
    high = max(run[-1] for run in runs if len(run))
    while low < high:
        middle = (low + high) // 2
        if sum(bisect_right(run, middle) for run in runs) > k:
            high = middle
        else:
            low = middle + 1
    return low
