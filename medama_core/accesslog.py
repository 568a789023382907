"""The request log: which requests get a line of their own, and what the once-a-minute summary says.

At `info`, a line of its own goes to each change (any method but GET, HEAD
and OPTIONS) and each request answered with an error (status 400 or more),
except on the event routes. Reads that succeed (the dashboard's dozens of
GETs a page) and everything on `/api/event/*` (thousands a second on a busy
site) are logged at `debug` only; at `info` they show up in one summary line
a minute: requests, event requests, hits stored, hits dropped by reason and
the 99th percentile of the answer time. A minute without requests writes nothing.
"""

from __future__ import annotations

import bisect
import math
import time
from collections import Counter
from collections.abc import Mapping
from typing import Final

from medama_core.log import Logger

SUMMARY_INTERVAL_S: Final = 60.0
EVENT_PREFIX: Final = "/api/event/"
READ_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})

# Answer times are counted in buckets growing by LATENCY_GROWTH, from LATENCY_MIN_S (a ping answered
# from memory takes ~30 µs) to LATENCY_MAX_S (past any timeout of ours); the p99 is reported as its
# bucket's upper bound, so it reads at most 10% high. ~150 counters instead of a minute of samples
# (600,000 at 10,000 requests a second).
LATENCY_MIN_S: Final = 50e-6
LATENCY_MAX_S: Final = 60.0
LATENCY_GROWTH: Final = 1.1
_BOUNDS: Final = tuple(
    LATENCY_MIN_S * LATENCY_GROWTH**i
    for i in range(math.ceil(math.log(LATENCY_MAX_S / LATENCY_MIN_S, LATENCY_GROWTH)) + 1)
)
PERCENTILE: Final = 0.99


def line_level(method: str, path: str, status: int) -> str:
    """The level of a request's own line (see the module docstring)."""
    if path.startswith(EVENT_PREFIX):
        return "debug"
    if method in READ_METHODS and status < 400:
        return "debug"
    return "info"


class AccessLog:
    """Logs each request at its level and keeps the counts of the current summary interval."""

    def __init__(self, log: Logger) -> None:
        self.log = log
        self.requests = 0
        self.event_requests = 0
        self.latency = [0] * (len(_BOUNDS) + 1)  # the last bucket: slower than LATENCY_MAX_S
        self._drops: Counter[str] = Counter()  # the totals at the last summary, to report differences
        self._stored = 0
        self._since = time.monotonic()

    def record(self, method: str, path: str, status: int, seconds: float) -> None:
        self.requests += 1
        if path.startswith(EVENT_PREFIX):
            self.event_requests += 1
        self.latency[bisect.bisect_left(_BOUNDS, seconds)] += 1
        level = line_level(method, path, status)
        if self.log.enabled(level):
            duration_ms = round(seconds * 1000, 3)
            self.log.log(level, "request", method=method, path=path, status=status, duration_ms=duration_ms)

    def record_event(self, method: str, path: str, status: int, seconds: float) -> None:
        """`record` for a request to an event route (`App.answer_now`'s): its line is at debug level."""
        self.requests += 1
        self.event_requests += 1
        self.latency[bisect.bisect_left(_BOUNDS, seconds)] += 1
        if self.log.enabled("debug"):
            self.log.log(
                "debug", "request", method=method, path=path, status=status, duration_ms=round(seconds * 1000, 3)
            )

    def p99_ms(self) -> float | None:
        """The interval's 99th percentile answer time in ms (a bucket's upper bound), or None without requests."""
        total = sum(self.latency)
        if not total:
            return None
        rank = math.ceil(total * PERCENTILE)
        seen = 0
        for index, count in enumerate(self.latency):
            seen += count
            if seen >= rank:
                bound = _BOUNDS[index] if index < len(_BOUNDS) else math.inf
                return round(bound * 1000, 3)
        raise AssertionError("unreachable: the counts add up to total")

    def summarise(self, drops: Mapping[str, int], stored: int) -> None:
        """Write the summary of the interval that ends now (if it had requests) and start the next one.

        `drops` and `stored` are running totals since start-up; the line reports what they grew by.
        """
        dropped = {reason: count - self._drops[reason] for reason, count in drops.items()}
        dropped = {reason: count for reason, count in sorted(dropped.items()) if count}
        if self.requests:
            self.log.info(
                "traffic",
                seconds=round(time.monotonic() - self._since),
                requests=self.requests,
                event_requests=self.event_requests,
                hits_stored=stored - self._stored,
                dropped=dropped,
                p99_ms=self.p99_ms(),
            )
        self._drops = Counter(drops)
        self._stored = stored
        self._since = time.monotonic()
        self.requests = self.event_requests = 0
        self.latency = [0] * len(self.latency)
