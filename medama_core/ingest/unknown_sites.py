"""The unregistered host names whose dropped hits are counted by name: at most a fixed number a UTC day.

A hit for a site nobody registered is dropped (404) and counted per day under
its host name, so the dashboard can say "23 hits from www.exmple.com were
dropped: add it?". Anyone can send such hits with made-up names, so only the
first MAX_NAMES_PER_DAY distinct names of a day get rows of their own; the
rest are counted under "" (unknown), and the `drops` table grows by a bounded
number of rows a day whatever is sent.
"""

from __future__ import annotations

from typing import Final

__all__ = ["MAX_NAMES_PER_DAY", "UnknownSites"]

# A typo'd or forgotten domain, a staging host, a preview deploy: a real install sees a handful a day.
# 1,000 leaves room for many and bounds the table to ~1,000 rows (~60 KB) a day.
MAX_NAMES_PER_DAY: Final = 1000


class UnknownSites:
    """Hands out the name to count an unknown site's drop under, for the current UTC day."""

    def __init__(self, max_names: int = MAX_NAMES_PER_DAY) -> None:
        self.max_names = max_names
        self._day = -1
        self._names: set[str] = set()

    def name(self, hostname: str, day: int) -> str:
        """`hostname` while today's allowance lasts (or it already has a row today), else ""."""
        if day != self._day:
            self._day = day
            self._names = set()
        if hostname in self._names:
            return hostname
        if len(self._names) >= self.max_names:
            return ""
        self._names.add(hostname)
        return hostname
