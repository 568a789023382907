"""The PostgreSQL adapter: MetaStore over store/postgres/ (app data shared by any number of nodes).

psycopg is imported only here and in store/postgres/, and only for a
`postgres://` or `postgresql://` -appdb: a server on SQLite never loads it.
"""

from __future__ import annotations

from medama_core.backends.meta import MetaAdapter
from medama_core.config import ConfigError
from medama_core.store import postgres
from medama_core.store.postgres.errors import StartupError as PostgresStartupError


def _probe(conn: object) -> None:
    conn.execute("SELECT 1").fetchone()  # type: ignore[attr-defined]


class PostgresMeta(MetaAdapter):
    """MetaStore on a PostgreSQL database (store/postgres/meta.py through store/postgres/db.py)."""

    def __init__(self, url: str, flag: str = "-appdb") -> None:
        try:
            db = postgres.open_meta(url)
        except PostgresStartupError as exc:  # a bad URL, no driver, an unreachable server, wrong credentials
            raise ConfigError(f"{flag}: {exc}") from None
        from medama_core.store.postgres import meta as pg_meta

        super().__init__("postgres", db, pg_meta, db.call)
        self.db = db
        self.location = db.url.describe()

    async def health(self) -> None:
        await self.db.read(_probe)

    async def size(self) -> int | None:
        from medama_core.store.postgres import db as postgres_db  # psycopg: loaded once open_meta found it

        try:
            return await self.db.read(postgres_db.database_size)
        except Exception:  # the server refused or failed the read: say unknown, not 0
            return None

    def tune(self, *, cache_kib: int, heap_limit: int | None = None) -> None:
        """The server manages its own memory; a SQLite analytics store in this process takes the heap limit."""

    def close(self) -> None:
        self.db.close()
