"""Live visitors on SQLite: the open views of a site's last half hour (store/live.py's rule), read from `views`."""

from __future__ import annotations

import sqlite3
from typing import Any, Final

from medama_core.store.live import LIVE_ROWS, OPEN_MS, answer

__all__ = ["LIVE_ROWS", "OPEN_MS", "answer", "live"]

# One row per (page, grouped referrer, country) of the open views, with their count; the grouped referrer
# is the list endpoints' `grouped=true` label (store/filters.py, "referrer").
_OPEN_GROUPS: Final = """
    SELECT pathname,
           CASE WHEN referrer_group = '' THEN referrer_host ELSE referrer_group END,
           country,
           count(*)
    FROM views
    WHERE hostname = :hostname AND date_created >= :since AND duration_ms IS NULL
    GROUP BY 1, 2, 3
"""


def live(conn: sqlite3.Connection, hostname: str, now_ms: int) -> dict[str, Any]:
    """The pages of `hostname` open at `now_ms` (Unix ms), from the views of the last OPEN_MS only."""
    groups = conn.execute(_OPEN_GROUPS, {"hostname": hostname, "since": now_ms - OPEN_MS}).fetchall()
    return answer(groups)
