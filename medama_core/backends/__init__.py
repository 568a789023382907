"""Which engine runs: -appdb and -analyticsdb's URL scheme picks the store adapter (a plain path is SQLite).

This package is the only place above store/ that knows the engines; the API
layer sees the protocols of store/protocol.py. Engines with a driver or a
server are imported only when their scheme is used.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final, TypeVar

from medama_core.config import ConfigError
from medama_core.store.protocol import AnalyticsStore, MetaStore

T = TypeVar("T")

_SCHEME: Final = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")


def _sqlite_meta(location: str, flag: str) -> MetaStore:
    from medama_core.backends.sqlite import SQLiteMeta

    return SQLiteMeta(location, flag)


def _postgres_meta(location: str, flag: str) -> MetaStore:
    from medama_core.backends.postgres import PostgresMeta

    return PostgresMeta(location, flag)


def _sqlite_analytics(location: str, flag: str) -> AnalyticsStore:
    from medama_core.backends.sqlite import SQLiteAnalytics

    return SQLiteAnalytics(location, flag)


def _clickhouse_analytics(location: str, flag: str) -> AnalyticsStore:
    from medama_core.backends.clickhouse import ClickHouseAnalytics

    return ClickHouseAnalytics(location, flag)


# URL scheme -> the store it opens; "" is a plain path.
META_ENGINES: Final[dict[str, Callable[[str, str], MetaStore]]] = {
    "": _sqlite_meta,
    "postgres": _postgres_meta,
    "postgresql": _postgres_meta,
}
ANALYTICS_ENGINES: Final[dict[str, Callable[[str, str], AnalyticsStore]]] = {
    "": _sqlite_analytics,
    "clickhouse": _clickhouse_analytics,
    "clickhouses": _clickhouse_analytics,
}


def scheme(location: str) -> str:
    """The URL scheme of a -appdb or -analyticsdb value, lower-cased; "" for a path."""
    match = _SCHEME.match(location)
    return match.group(1).lower() if match else ""


def is_url(location: str) -> bool:
    return scheme(location) != ""


def _pick(table: dict[str, T], location: str, flag: str) -> T:
    found = table.get(scheme(location))
    if found is None:
        known = ", ".join(f"{name}://" for name in table if name)
        raise ConfigError(f"{flag}: unknown database URL scheme {scheme(location)}://; use a file path, or {known}")
    return found


def open_meta(location: str, flag: str = "-appdb") -> MetaStore:
    """The app store at `location`: ConfigError (a bad URL, a missing driver, a server that is unreachable or
    refuses us) or StartupError (an unusable SQLite file), each with a one-line message."""
    return _pick(META_ENGINES, location, flag)(location, flag)


def open_analytics(location: str, flag: str = "-analyticsdb") -> AnalyticsStore:
    """The analytics store at `location`, with the same errors as `open_meta`."""
    return _pick(ANALYTICS_ENGINES, location, flag)(location, flag)
