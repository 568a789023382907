"""Analytics rows as every engine takes them: the columns of views and events, the write ops, imported totals.

The tracker pipeline, import and export build rows in VIEW_COLUMNS and
EVENT_COLUMNS order; the SQLite store (store/sqlite/hits.py) and the
ClickHouse store (store/clickhouse/hits.py) each write a batch of `Op`s in
their own way. The ops themselves are defined in medama_core/ops.py (layer 0,
which the ingest pipeline may import too) and re-exported here.
"""

from __future__ import annotations

from typing import Final, NamedTuple

# The write ops live in a layer-0 module, so that ingest/ makes them without importing store/.
from medama_core.ops import DropCount as DropCount
from medama_core.ops import Duration as Duration
from medama_core.ops import NewEvents as NewEvents
from medama_core.ops import NewView as NewView
from medama_core.ops import Op as Op
from medama_core.ops import Row as Row

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


# One site's imported totals of a day (or summed over days), per dimension value: table `imported_days`.
class Totals(NamedTuple):
    visitors: int = 0
    pageviews: int = 0
    visits: int = 0
    bounces: int = 0
    duration_s: int = 0
