"""Analytics rows as every engine takes them: the columns of views and events, the write ops, imported totals.

The tracker pipeline, import and export build rows in VIEW_COLUMNS and
EVENT_COLUMNS order; the SQLite store (store/sqlite/hits.py) and the
ClickHouse store (store/clickhouse/hits.py) each write a batch of `Op`s in
their own way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, NamedTuple

__all__ = [
    "EVENT_COLUMNS",
    "VIEW_COLUMNS",
    "DropCount",
    "Duration",
    "NewEvents",
    "NewView",
    "Op",
    "Row",
    "Totals",
]

# The columns of `views` and `events` as the tracker pipeline, import and export see them.
VIEW_COLUMNS: Final = (
    "bid",
    "hostname",
    "pathname",
    "is_unique_user",
    "is_unique_page",
    "referrer_host",
    "referrer_group",
    "country",
    "language_base",
    "language_dialect",
    "ua_browser",
    "ua_os",
    "ua_device_type",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "duration_ms",
    "date_created",
)
EVENT_COLUMNS: Final = ("bid", "batch_id", "group_name", "name", "value", "date_created")

Row = tuple[object, ...]  # values in VIEW_COLUMNS or EVENT_COLUMNS order


@dataclass(slots=True)
class NewView:
    """A page view: one `views` row and the `events` rows of its custom properties."""

    view: Row
    events: Sequence[Row] = ()
    # The path of the view's internal referrer ('' for none: an entry); see ingest/internal.py.
    referrer_path: str = ""


@dataclass(slots=True)
class Duration:
    """An unload: how long the page of beacon `bid` was visible."""

    bid: str
    duration_ms: int


@dataclass(slots=True)
class NewEvents:
    """A custom event: `events` rows sharing one batch id."""

    events: Sequence[Row]


@dataclass(slots=True)
class DropCount:
    """`count` hits dropped for `reason` on `day` (Unix ms of 00:00 UTC); hostname '' when unknown."""

    day: int
    hostname: str
    reason: str
    count: int = 1


Op = NewView | Duration | NewEvents | DropCount


# One site's imported totals of a day (or summed over days), per dimension value: table `imported_days`.
class Totals(NamedTuple):
    visitors: int = 0
    pageviews: int = 0
    visits: int = 0
    bounces: int = 0
    duration_s: int = 0
