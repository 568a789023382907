"""Which recent view an id-less follow-up belongs to: Plausible's `engagement` events and foreign custom events.

Our tracker names its view in every beacon (`b`). Plausible's and Umami's
scripts send no id, so a view's later events are matched on what the view row
itself stores: the site, the page URL exactly as sent, browser, OS, device type
and language. Nothing else about the visitor is looked at, and an entry lives
OPEN_VIEW_TTL_MS in memory, never on disk.

Matching engaged time: each engagement adds its milliseconds to one open view
with the same key, and a view cannot have been engaged for longer than it has
been open: the oldest view for which `engaged + new <= open time + slack`
takes it (none consistent: the oldest view). The error: when two visitors with
the same key have the page open at once, time can go to the other's view. It
never leaves the key, so the total time on page per page, browser, OS, device
and language stays right; the split by referrer, UTM or country, and medians,
may shift. A view whose engagement comes later than the TTL keeps the time it had.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Final, NamedTuple

__all__ = ["MAX_OPEN_VIEWS", "OPEN_VIEW_TTL_MS", "OpenView", "OpenViews", "ViewKey"]

# Plausible's script reports engaged time when the page is hidden or left, and every time
# the visitor comes back to it; its own server joins engagement to a view only within 30 min.
OPEN_VIEW_TTL_MS: Final = 30 * 60 * 1000
# 30 minutes of 36 views a second (3 M views a day): ~200 bytes each, ~13 MB at most.
MAX_OPEN_VIEWS: Final = 65_536
# Network and clock slack between the view's arrival and the page's own clock.
SLACK_MS: Final = 2_000


class ViewKey(NamedTuple):
    site: str
    url: str
    browser: str
    os: str
    device: str
    language: str


@dataclass(slots=True, eq=False)  # compared by identity: two views may hold equal values
class OpenView:
    bid: str
    opened_ms: int
    engaged_ms: int = 0


class OpenViews:
    """Open views by key, oldest first, forgotten after OPEN_VIEW_TTL_MS or past MAX_OPEN_VIEWS."""

    def __init__(self, ttl_ms: int = OPEN_VIEW_TTL_MS, max_views: int = MAX_OPEN_VIEWS) -> None:
        self.ttl_ms = ttl_ms
        self.max_views = max_views
        self._by_key: dict[ViewKey, deque[OpenView]] = {}
        self._order: OrderedDict[int, tuple[ViewKey, OpenView]] = OrderedDict()  # by id(view), oldest first

    def __len__(self) -> int:
        return len(self._order)

    def open(self, key: ViewKey, bid: str, now_ms: int) -> None:
        """Remember a view just stored."""
        self._expire(now_ms)
        view = OpenView(bid, now_ms)
        self._by_key.setdefault(key, deque()).append(view)
        self._order[id(view)] = (key, view)
        while len(self._order) > self.max_views:
            _, (old_key, old) = self._order.popitem(last=False)
            self._remove(old_key, old)

    def engage(self, key: ViewKey, engaged_ms: int, now_ms: int) -> OpenView | None:
        """Add `engaged_ms` to the view it most plausibly belongs to; that view (its new total), or None."""
        self._expire(now_ms)
        views = self._by_key.get(key)
        if not views:
            return None
        chosen = next(
            (v for v in views if v.engaged_ms + engaged_ms <= now_ms - v.opened_ms + SLACK_MS),
            views[0],
        )
        chosen.engaged_ms += engaged_ms
        return chosen

    def latest(self, key: ViewKey, now_ms: int) -> OpenView | None:
        """The newest open view with this key (a custom event's view), or None."""
        self._expire(now_ms)
        views = self._by_key.get(key)
        return views[-1] if views else None

    def _expire(self, now_ms: int) -> None:
        order = self._order
        while order:
            key, view = next(iter(order.values()))
            if now_ms - view.opened_ms < self.ttl_ms:
                return
            order.popitem(last=False)
            self._remove(key, view)

    def _remove(self, key: ViewKey, view: OpenView) -> None:
        views = self._by_key[key]
        views.remove(view)  # the oldest of its key in every caller: the first element
        if not views:
            del self._by_key[key]
