"""What every engine's door shares: numbered schema steps, a read's time limit and its error, a full disk.

The SQLite door (store/sqlite/db.py) and the PostgreSQL one
(store/postgres/db.py) list their migrations as `Migration`s and stop a read
after READ_TIME_LIMIT_S with QueryTimeout; the server tells a full disk by
`is_disk_full` whichever engine's write met it, and sizes page caches from
CACHE_SIZE_KIB (store/protocol.py re-exports what the API uses).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

# Page cache per connection. The analytics writer fills its cache while the refresher catches up after
# an import: 8 MiB put the server at 64 MB there (1 M views, 200k paths), 2 MiB at 54 MB with the catching
# up as fast (38-45 s, noisy) and ingestion no slower (bench/stats.py --ingest); larger measured no faster.
CACHE_SIZE_KIB = 2 * 1024
# How long one read may run before it is interrupted (QueryTimeout, a 503 for the client). A raw scan of
# 90 days at 10 M views takes 1-2 s (docs/storage.md); a read still running after 10x that is a
# pathological query, and it holds one of the DEFAULT_READERS threads every dashboard call queues for.
READ_TIME_LIMIT_S = 15.0


class QueryTimeout(Exception):
    """A read ran past READ_TIME_LIMIT_S and was interrupted; the database is unharmed."""


# SQLite's primary result codes (sqlite3.h), which the sqlite3 module names only from Python 3.11 on.
SQLITE_INTERRUPT = 9
SQLITE_FULL = 13
# Python 3.10's exceptions carry no code, only SQLite's message for it (sqlite3_errstr).
_CODE_MESSAGES = {"interrupted": SQLITE_INTERRUPT, "database or disk is full": SQLITE_FULL}


def error_code(exc: BaseException) -> int | None:
    """The primary SQLite result code of a sqlite3 error, or None."""
    if not isinstance(exc, sqlite3.Error):
        return None
    code = getattr(exc, "sqlite_errorcode", None)  # Python 3.11+
    if code is None:
        return _CODE_MESSAGES.get(str(exc))
    return int(code) & 0xFF


def is_disk_full(exc: BaseException) -> bool:
    """True for SQLite's "database or disk is full" (SQLITE_FULL), whatever statement hit it."""
    return error_code(exc) == SQLITE_FULL


@dataclass(frozen=True)
class Migration:
    """One schema step: its statements run in a single transaction with the version bump."""

    version: int
    statements: tuple[str, ...]
