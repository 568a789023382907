"""Live visitors: the pages of a site open now, read from its last half hour of views only.

The rule (docs/live.md): a view is *open* when it was loaded within the last
OPEN_MS and its page has not reported being left (no duration yet: the tracker
sends one when the tab is closed, hidden or navigated away from). Each open view
is one visitor: without identifiers two tabs of one person are two, and a person
moving to the next page is one, since the page left stops counting at once.
"""

from __future__ import annotations

import sqlite3
from typing import Any, Final

from medama_core.store.answers import LIVE_ROWS, OPEN_MS, answer

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
