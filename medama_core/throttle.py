"""Login throttling: exponential back-off per (client network, username) and per client network.

A sign-in attempt is charged to two keys: the pair of its client network (the
/24 or /48 that ingestion's rate limit uses) and username, which a guesser of
one account hits, and the network alone, which a guesser trying many usernames
hits. Failures from one network therefore never delay anyone on a network that
has not failed: a stranger cannot lock the owner out from elsewhere.

Every attempt is counted when it starts, before the slow password check, so a
burst of parallel guesses cannot all slip in under the limit; the wait runs
from the answer to the last failure, however slow its check was; a successful
sign-in clears its pair key (not the network's: an account of one's own must
not reset a network's count against the others). Time is passed in, so the
rules test without sleeping.

The table is bounded. Records below their key's limit sit in one ordered dict
and locks (records at or past it) in another, each in order of last failure,
so room for a new key is made in O(1) and in this order: records forgotten
after FORGET_AFTER_S, then the least recently failed record that is not a
lock. A lock is never evicted. When every record is a lock, a new key is not
recorded and its attempt goes ahead: a person on a network that has not failed
can still sign in, and the guesser gains only unthrottled tries from fresh
keys, which the password-hashing gate (auth.MAX_CONCURRENT_HASHES) still holds
to a few dozen a second. Filling the table with locks takes MAX_TRACKED_KEYS x
FREE_ATTEMPTS failed checks within about FORGET_AFTER_S, from some 15,000
networks: each network's own key lets it fail only ~33 times an hour
(NETWORK_FREE_ATTEMPTS, then waits of 1 s, 2 s, ... 15 min). docs/auth.md.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass
from typing import Final

FREE_ATTEMPTS: Final = 5  # a person mistyping a password gets this many tries before any wait
# Failures from one network over all usernames before it waits: an office or campus behind one
# address fails more often than one person, while a guesser spraying usernames still stops soon.
NETWORK_FREE_ATTEMPTS: Final = 20
BASE_DELAY_S: Final = 1.0  # the first wait; it doubles with each further failure
MAX_DELAY_S: Final = 15 * 60.0  # caps how long a guesser can make their own network wait
FORGET_AFTER_S: Final = 60 * 60.0  # an hour without failures wipes a key's record
# Bounds memory: ~290 bytes a record (measured with tracemalloc), so ~29 MB when full. Filling it
# with locks needs 500,000 failed password checks (~50 ms each, two at a time: ~3.5 hours here),
# each within FORGET_AFTER_S of the last.
MAX_TRACKED_KEYS: Final = 100_000
FULL_WARNING_INTERVAL_S: Final = 60.0  # how often `full_warning` says the table is full of locks

# A key: (client network, username) for one account from one network, (client network, None) for the network.
Key = tuple[str, str | None]


def login_keys(network: str, username: str) -> list[Key]:
    """The keys an attempt to sign in as `username` from `network` is charged to."""
    return [(network, username), (network, None)]


def free_attempts(key: Key) -> int:
    return FREE_ATTEMPTS if key[1] is not None else NETWORK_FREE_ATTEMPTS


@dataclass(slots=True)
class _Record:
    failures: int
    last: float


class LoginThrottle:
    """Counts failed sign-ins per key and says how long each key must wait."""

    def __init__(self, max_keys: int = MAX_TRACKED_KEYS) -> None:
        self.max_keys = max_keys
        self._counting: OrderedDict[Key, _Record] = OrderedDict()  # below their limit
        self._locked: OrderedDict[Key, _Record] = OrderedDict()  # at or past it: never evicted
        self.untracked = 0  # attempts whose new key found the table full of locks
        self._warned = -FULL_WARNING_INTERVAL_S

    def retry_after(self, keys: list[Key], now: float) -> int:
        """Whole seconds until every key may try again; 0 when all may try now."""
        wait = 0.0
        for key in keys:
            record = self._live(key, now)
            free = free_attempts(key)
            if record is not None and record.failures >= free:
                delay = min(MAX_DELAY_S, BASE_DELAY_S * 2 ** (record.failures - free))
                wait = max(wait, record.last + delay - now)
        return math.ceil(wait) if wait > 0 else 0

    def attempt(self, keys: list[Key], now: float) -> None:
        """Count an attempt against each key (it stays counted unless `succeeded` clears it)."""
        for key in keys:
            record = self._live(key, now)
            if record is None:
                if not self._make_room(now):
                    self.untracked += 1
                    continue
                record = self._counting[key] = _Record(0, now)
            record.failures += 1
            record.last = now
            if record.failures >= free_attempts(key):
                self._counting.pop(key, None)
                self._locked[key] = record
                self._locked.move_to_end(key)
            else:
                self._counting.move_to_end(key)

    def failed(self, keys: list[Key], now: float) -> None:
        """The password check that `attempt` counted has failed: the wait runs from now, however long it took."""
        for key in keys:
            table = self._locked if key in self._locked else self._counting
            record = table.get(key)
            if record is not None:
                record.last = max(record.last, now)
                table.move_to_end(key)

    def succeeded(self, keys: list[Key]) -> None:
        """A correct password: forget the account's failures from this network (the network's own stay)."""
        for key in keys:
            if key[1] is not None:
                self._counting.pop(key, None)
                self._locked.pop(key, None)

    def full_warning(self, now: float) -> bool:
        """True at most once per FULL_WARNING_INTERVAL_S while new keys go unrecorded, for one log line."""
        if self.untracked and now - self._warned >= FULL_WARNING_INTERVAL_S:
            self._warned = now
            return True
        return False

    def __len__(self) -> int:
        return len(self._counting) + len(self._locked)

    def locks(self) -> int:
        return len(self._locked)

    def _live(self, key: Key, now: float) -> _Record | None:
        table = self._locked if key in self._locked else self._counting
        record = table.get(key)
        if record is not None and now - record.last > FORGET_AFTER_S:
            del table[key]
            return None
        return record

    def _make_room(self, now: float) -> bool:
        """Make room for one more record; False when every record is a live lock."""
        for table in (self._counting, self._locked):
            while table:
                key, record = next(iter(table.items()))
                if now - record.last <= FORGET_AFTER_S:
                    break
                del table[key]
        if len(self) < self.max_keys:
            return True
        if self._counting:
            self._counting.popitem(last=False)
            return True
        return False
