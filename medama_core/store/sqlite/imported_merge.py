"""SQLite's reads for the merge of imported daily totals (store/imported_stats.py): its stats, sparklines and days."""

from __future__ import annotations

from typing import Any, Final

from medama_core.store.imported_stats import Engine
from medama_core.store.sqlite import imported, overview, stats

__all__ = ["ENGINE"]

ENGINE: Final[Engine[Any]] = Engine(
    stats.summary,
    stats.list_stats,
    overview.site_intervals,
    overview.visitors_since,
    imported.site_days,
    imported.totals,
    imported.visitors_since,
)
