"""Live visitors: the pages of a site open now, read from its last half hour of views only.

The rule (docs/live.md): a view is *open* when it was loaded within the last
OPEN_MS and its page has not reported being left (no duration yet: the tracker
sends one when the tab is closed, hidden or navigated away from). Each open view
is one visitor: without identifiers two tabs of one person are two, and a person
moving to the next page is one, since the page left stops counting at once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any, Final

__all__ = ["LIVE_ROWS", "OPEN_MS", "answer"]

# A page loaded this long ago and never reported left is taken as abandoned (a crash, a phone that
# killed the tab, a tracker that never reports leaving, as Umami's): Plausible and Umami use 5 and 30 minutes.
OPEN_MS: Final = 30 * 60_000
# Rows per list: the dashboard's live panel shows the top ones of pages, referrers and countries.
LIVE_ROWS: Final = 10


def answer(groups: Iterable[tuple[str, str, str, int]], rows: int = LIVE_ROWS) -> dict[str, Any]:
    """The /live answer from (page, referrer, country, open views) groups: totals and each list's top `rows`."""
    pages: Counter[str] = Counter()
    referrers: Counter[str] = Counter()
    countries: Counter[str] = Counter()
    total = 0
    for page, referrer, country, count in groups:
        total += count
        pages[page] += count
        referrers[referrer] += count
        countries[country] += count

    def top(counter: Counter[str], key: str) -> list[dict[str, Any]]:
        ranked = sorted(counter.items(), key=lambda item: (-item[1], item[0]))[:rows]
        return [{key: label, "visitors": count} for label, count in ranked]

    return {
        "visitors": total,
        "pages": top(pages, "path"),
        "referrers": top(referrers, "referrer"),
        "countries": top(countries, "country"),
    }
