"""The per-site daily hit quota: how many hits each site may store per UTC day (`site_daily_hit_quota`).

Anyone can post hits for a registered site, and each stored hit takes disk
space; the rate limit bounds what one network sends, not what many send
together. The quota bounds one site's stored hits per UTC day whoever sends
them: past it, hits are dropped (204) and counted as `quota`. The day's counts
are kept here and in the analytics store (SQLite's table `site_hits`, written
with the hits; on ClickHouse the day's rows), read back at start-up, so a
restart does not reset them, and caught up with every few seconds, so nodes
sharing one store share the quota (app.QUOTA_SYNC_INTERVAL_S, docs/scale.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

__all__ = ["DEFAULT_SITE_DAILY_HIT_QUOTA", "MAX_SITE_DAILY_HIT_QUOTA", "DailyQuota"]

# Hits (page views and custom events) one site may store per UTC day; 0 means no limit. Generous: a
# site at the quota every day has 15 million page views a month, more than a small VM is meant for
# (upstream: "runs on 256 MB VMs"), and it is ~36 s of this server's whole ingest rate (~14,000 hits/s
# on 2 cores). It caps what a flood can store for one site in a day: ~110 MB of ordinary hits
# (~220 bytes each), ~11 GB of hits with every field at its limit, unique (~22 KB each once the stats
# rollups exist; bench/hit_size.py, docs/ingestion.md).
DEFAULT_SITE_DAILY_HIT_QUOTA: Final = 500_000
MAX_SITE_DAILY_HIT_QUOTA: Final = 2**53  # JSON numbers are exact up to here; larger is a typo


class DailyQuota:
    """Counts each site's hits for the current UTC day and refuses those past `limit` (0: none)."""

    def __init__(self, limit: int = DEFAULT_SITE_DAILY_HIT_QUOTA) -> None:
        self.limit = limit
        self._day = -1
        self._used: dict[str, int] = {}

    def take(self, site: str, day: int) -> bool:
        """Count one hit of `site` on `day` (days since 1970, UTC) if the quota allows it."""
        if day != self._day:
            self._day = day
            self._used = {}
        used = self._used.get(site, 0)
        if self.limit and used >= self.limit:
            return False
        self._used[site] = used + 1
        return True

    def seed(self, day: int, used: Mapping[str, int]) -> None:
        """Start `day` from counts stored before (start-up); counts already taken today are kept on top."""
        if day != self._day:
            self._day = day
            self._used = {}
        for site, count in used.items():
            self._used[site] = self._used.get(site, 0) + count

    def catch_up(self, day: int, stored: Mapping[str, int]) -> None:
        """Raise each site's count for `day` to what the store holds, if higher: the hits other nodes stored
        since this one started (its own stored hits are in both, so the larger count is the day's)."""
        if day != self._day:
            self._day = day
            self._used = {}
        for site, count in stored.items():
            if count > self._used.get(site, 0):
                self._used[site] = count

    def used(self, site: str, day: int) -> int:
        return self._used.get(site, 0) if day == self._day else 0
