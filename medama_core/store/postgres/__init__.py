"""The PostgreSQL engine for app data (users, sessions, websites, settings), shared by any number of nodes.

Only `url`, `errors` and `driver` import without psycopg; `open_meta` loads the driver
and the rest on demand, so a server on SQLite never needs it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from medama_core.store.postgres import driver
from medama_core.store.postgres.url import parse_url

if TYPE_CHECKING:
    from medama_core.store.postgres.db import Database

DEFAULT_READERS = 2  # as the SQLite door: one per core on the 2-core machines we target
DEFAULT_WRITERS = 2  # writes rarely queue (logins, settings); two keep one slow lock wait from blocking all


def open_meta(url: str, *, readers: int = DEFAULT_READERS, writers: int = DEFAULT_WRITERS) -> Database:
    """Connect to the app database at `url`, migrate it, and return its door.

    Raises a `StartupError` with a one-line message: BadURL, DriverMissing or ConnectFailed.
    """
    parsed = parse_url(url)
    driver.load()
    from medama_core.store.postgres import db, meta

    return db.Database(parsed, meta.MIGRATIONS, component=meta.COMPONENT, readers=readers, writers=writers)
