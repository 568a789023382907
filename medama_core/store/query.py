"""What a stats question is, whatever engine answers it: the site, period and filters, the slice, the bucket widths."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from medama_core.store.filters import PROP_FIELDS, Filter

UTC = timezone.utc  # datetime.UTC is Python 3.11+

STEPS_US = {  # interval -> bucket width in microseconds (week = 7 days, as upstream)
    "minute": 60 * 10**6,
    "hour": 3600 * 10**6,
    "day": 86400 * 10**6,
    "week": 7 * 86400 * 10**6,
}

QUARTILES = (0.25, 0.5, 0.75)  # the duration quantiles /time reports per page

# List endpoint -> (dimension kind, JSON label key). `referrers` and `languages` switch kind by a flag.
LISTS: dict[str, tuple[str, str]] = {
    "pages": ("path", "path"),
    "referrers": ("referrer", "referrer"),
    "sources": ("utm_source", "source"),
    "mediums": ("utm_medium", "medium"),
    "campaigns": ("utm_campaign", "campaign"),
    "browsers": ("browser", "browser"),
    "os": ("os", "os"),
    "devices": ("device", "device"),
    "countries": ("country", "country"),
    "languages": ("language", "language"),
}


@dataclass(frozen=True)
class Query:
    """What every stats endpoint filters on: a site, an optional period and the field filters."""

    hostname: str
    start_us: int | None = None  # inclusive, Unix microseconds (RFC 3339 carries up to µs)
    end_us: int | None = None
    filters: tuple[Filter, ...] = ()

    @property
    def start(self) -> int | None:
        """The first whole millisecond inside the period."""
        return None if self.start_us is None else -(-self.start_us // 1000)

    @property
    def end(self) -> int | None:
        return None if self.end_us is None else self.end_us // 1000

    @property
    def view_filters(self) -> tuple[Filter, ...]:
        return tuple(f for f in self.filters if f.field not in PROP_FIELDS)

    @property
    def prop_filters(self) -> tuple[Filter, ...]:
        return tuple(f for f in self.filters if f.field in PROP_FIELDS)


@dataclass(frozen=True)
class Page:
    """Which slice of a sorted list to return: `limit` None means all rows."""

    limit: int | None = None
    offset: int = 0

    def cut(self, rows: list[Any]) -> list[Any]:
        end = None if self.limit is None else self.offset + self.limit
        return rows[self.offset : end]


def month_index(ms: int) -> int:
    """Months since year 0 of the UTC month holding `ms` (a Unix millisecond)."""
    moment = datetime.fromtimestamp(ms // 1000, UTC)
    return moment.year * 12 + moment.month - 1


def bucket_count(interval: str, start_us: int, end_us: int) -> int:
    """How many buckets `interval` makes from start to end (both inclusive)."""
    if end_us < start_us:
        return 0
    if interval == "month":
        return month_index(end_us // 1000) - month_index(start_us // 1000) + 1
    return (end_us - start_us) // STEPS_US[interval] + 1


def previous_period(start_us: int, end_us: int) -> tuple[int, int]:
    """[start - (end - start), start]: the window of equal length just before, sharing the instant `start`."""
    return start_us - (end_us - start_us), start_us


def bucket_date(interval: str, start_us: int, index: int) -> str:
    """DuckDB's text for a TIMESTAMPTZ bucket start in UTC: `YYYY-MM-DD HH:MM:SS[.ffffff]+00`."""
    if interval == "month":
        month = month_index(start_us // 1000) + index
        return f"{month // 12:04d}-{month % 12 + 1:02d}-01 00:00:00+00"
    us = start_us + index * STEPS_US[interval]
    seconds, micro = divmod(us, 10**6)
    text = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S")
    if micro:
        text += f".{micro:06d}".rstrip("0")
    return text + "+00"
