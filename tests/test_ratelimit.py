"""The fixed-window limiter: counting, window reset, and a table that never outgrows its cap."""

from __future__ import annotations

import pytest

from medama_core.ratelimit import RateLimiter


def test_allows_up_to_the_limit_per_window() -> None:
    limiter = RateLimiter(3, window_s=60)
    assert [limiter.allow("a", 0.0) for _ in range(5)] == [True, True, True, False, False]
    assert limiter.allow("b", 1.0), "another key has its own window"


def test_window_opens_at_first_request_and_resets_after_it() -> None:
    limiter = RateLimiter(2, window_s=60)
    assert limiter.allow("a", 10.0) and limiter.allow("a", 20.0)
    assert not limiter.allow("a", 69.9)
    assert limiter.retry_after("a", 69.9) == 1
    assert limiter.allow("a", 70.0), "a fixed window: 60 s after the first request, counting restarts"
    assert limiter.allow("a", 71.0)
    assert not limiter.allow("a", 72.0)


def test_expired_windows_are_dropped_as_new_keys_arrive() -> None:
    limiter = RateLimiter(1, window_s=60, max_keys=1000)
    for i in range(100):
        limiter.allow(f"k{i}", float(i))
    limiter.allow("late", 200.0)
    assert len(limiter) == 1


def test_table_is_bounded_and_evicts_the_oldest_window() -> None:
    limiter = RateLimiter(1, window_s=60, max_keys=10)
    for i in range(1000):
        limiter.allow(f"k{i}", 0.0)
        assert len(limiter) <= 10
    assert limiter.allow("k0", 0.0), "the evicted key starts a fresh window"
    assert not limiter.allow("k999", 0.0), "the newest keys are kept"


def test_retry_after_counts_whole_seconds_to_the_window_end() -> None:
    limiter = RateLimiter(1, window_s=60)
    limiter.allow("a", 100.0)
    assert limiter.retry_after("a", 130.5) == 30
    assert limiter.retry_after("unknown", 0.0) == 1


@pytest.mark.parametrize(
    ("limit", "window_s", "max_keys"),
    [(0, 60.0, 10), (1, 0.0, 10), (1, 60.0, 0)],
    ids=["limit", "window", "keys"],
)
def test_rejects_non_positive_settings(limit: int, window_s: float, max_keys: int) -> None:
    with pytest.raises(ValueError):
        RateLimiter(limit, window_s=window_s, max_keys=max_keys)
