"""Login throttling: exponential back-off per key (client address, username) in a bounded table.

Every attempt is counted when it starts, before the slow password check, so a
burst of parallel guesses cannot all slip in under the limit; a successful
login clears its keys. Time is passed in, so the rules test without sleeping.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass

FREE_ATTEMPTS = 5  # a person mistyping a password gets this many tries before any wait
BASE_DELAY_S = 1.0  # the first wait; it doubles with each further failure
MAX_DELAY_S = 15 * 60.0  # caps how long a guesser can lock the real user out of their own account
FORGET_AFTER_S = 60 * 60.0  # an hour without failures wipes a key's record
MAX_TRACKED_KEYS = 10_000  # bounds memory (~1 MB); beyond it the least recently failed key is forgotten


@dataclass(slots=True)
class _Record:
    failures: int
    last: float


class LoginThrottle:
    """Counts failed logins per key and says how long each key must wait."""

    def __init__(self, max_keys: int = MAX_TRACKED_KEYS) -> None:
        self.max_keys = max_keys
        self._records: OrderedDict[str, _Record] = OrderedDict()

    def retry_after(self, keys: list[str], now: float) -> int:
        """Whole seconds until every key may try again; 0 when all may try now."""
        wait = 0.0
        for key in keys:
            record = self._live(key, now)
            if record is not None and record.failures >= FREE_ATTEMPTS:
                delay = min(MAX_DELAY_S, BASE_DELAY_S * 2 ** (record.failures - FREE_ATTEMPTS))
                wait = max(wait, record.last + delay - now)
        return math.ceil(wait) if wait > 0 else 0

    def attempt(self, keys: list[str], now: float) -> None:
        """Count an attempt against each key (it stays counted unless `succeeded` clears it)."""
        for key in keys:
            record = self._live(key, now)
            if record is None:
                record = self._records[key] = _Record(0, now)
            record.failures += 1
            record.last = now
            self._records.move_to_end(key)
        while len(self._records) > self.max_keys:
            self._records.popitem(last=False)

    def succeeded(self, keys: list[str]) -> None:
        for key in keys:
            self._records.pop(key, None)

    def __len__(self) -> int:
        return len(self._records)

    def _live(self, key: str, now: float) -> _Record | None:
        record = self._records.get(key)
        if record is not None and now - record.last > FORGET_AFTER_S:
            del self._records[key]
            return None
        return record
