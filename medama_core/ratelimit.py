"""Fixed-window request counting per key (a client network), in a table of bounded size.

Each key gets a window that opens at its first request and lasts `window_s`;
within it at most `limit` requests are allowed. The table is an OrderedDict
kept in window-start order, so expired windows are always at its front and
are dropped there in O(1) as new keys arrive. When it is full of live windows
the oldest is evicted: an attacker rotating through more networks than the
table holds can reset some counters, but can never make it grow. That is
upstream's design (an LRU of 65,536 prefixes with a one-minute expiry from
first insertion), applied to the paths it was meant for (spec §1.3, §10.2).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Final

__all__ = ["MAX_KEYS", "WINDOW_S", "RateLimiter"]

WINDOW_S: Final = 60.0  # the limit is "requests per minute", as upstream's
# Upstream's LRU size. An entry is ~200 bytes (key string, list, dict slot),
# so a full table is ~13 MB: the ceiling an attacker can push us to.
MAX_KEYS: Final = 65_536


class RateLimiter:
    """Allow at most `limit` requests per key in each `window_s`-second window."""

    def __init__(self, limit: int, *, window_s: float = WINDOW_S, max_keys: int = MAX_KEYS) -> None:
        if limit < 1 or max_keys < 1 or window_s <= 0:
            raise ValueError("limit, max_keys and window_s must be positive")
        self.limit = limit
        self.window_s = window_s
        self.max_keys = max_keys
        # key -> [window start, requests counted]; ordered by window start.
        self._windows: OrderedDict[str, list[float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._windows)

    def allow(self, key: str, now: float) -> bool:
        """Count one request for `key` at monotonic time `now`; False when it is over the limit."""
        window = self._windows.get(key)
        if window is not None and now - window[0] < self.window_s:
            window[1] += 1
            return window[1] <= self.limit
        if window is not None:
            del self._windows[key]  # re-inserted at the back, where new windows belong
        self._expire(now)
        self._windows[key] = [now, 1]
        return True

    def retry_after(self, key: str, now: float) -> int:
        """Whole seconds until `key`'s window closes (at least 1), for a `Retry-After` header."""
        window = self._windows.get(key)
        if window is None:
            return 1
        return max(1, int(window[0] + self.window_s - now + 0.999))

    def _expire(self, now: float) -> None:
        windows = self._windows
        while windows:
            key, (start, _) = next(iter(windows.items()))
            if now - start < self.window_s:
                break
            del windows[key]
        while len(windows) >= self.max_keys:
            windows.popitem(last=False)
