"""`medama migrate`: copy a SQLite install (both files) into PostgreSQL and ClickHouse, then check the copy.

App data goes with store/postgres/meta_copy.py (one transaction, sessions too, so nobody is logged
out); page views, events, drop counts and imported daily totals stream into ClickHouse through its
bulk path (duplicates of a (beacon id, site) are skipped, as on import), with a progress line per
chunk. Then the check: the row counts of both sides, and each site's all-time /summary and top pages,
must be equal. The sources are opened as they are (migrated to this version first), and are never written otherwise.
"""

from __future__ import annotations

import sqlite3
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Final, TextIO

from medama_core.config import ConfigError, Option, help_text, option, parse_flags
from medama_core.store import analytics, db, entries, meta, stats
from medama_core.store.hits import EVENT_COLUMNS, TRACKED_VIEW_COLUMNS

SYNOPSIS: Final = "medama migrate -to-appdb postgres://… -to-analyticsdb clickhouse://… [flags]"
DESCRIPTION: Final = """Copy this install's SQLite databases (-appdb, -analyticsdb) into PostgreSQL (-to-appdb) and/or
ClickHouse (-to-analyticsdb), then check that the row counts and each site's summary and top pages match.
Stop the server first, so no hit arrives during the copy. The targets must be empty.
See docs/scale.md, "Moving up"."""


def _url(text: str) -> str:
    return text.strip()


OPTIONS: Final = (
    option("appdb"),
    option("analyticsdb"),
    option("env"),
    Option("to-appdb", None, "", _url, "postgres:// URL to copy the app data into (none: not copied)"),
    Option("to-analyticsdb", None, "", _url, "clickhouse:// URL to copy the analytics into (none: not copied)"),
)
CHUNK_ROWS: Final = 100_000  # rows per progress line and per ClickHouse bulk chunk (its INSERT_ROWS)
CHECKED_PAGES: Final = 10  # top pages compared per site: the dashboard's panel and more
PROBLEM_CHARS: Final = 120  # of each differing answer in the error line: enough to see where they part


class MigrateError(Exception):
    """The copy cannot be made or did not check out; printed on one line, exit 1."""


def _rows(
    conn: sqlite3.Connection, table: str, columns: Sequence[str], order: str = "rowid"
) -> Iterator[tuple[Any, ...]]:
    cursor = conn.execute(f"SELECT {', '.join(columns)} FROM {table} ORDER BY {order}")
    while batch := cursor.fetchmany(CHUNK_ROWS):
        yield from batch


def _open_sqlite(path: str, migrations: Any, marker: str, flag: str) -> sqlite3.Connection:
    try:
        return db.open_file(path, migrations, marker)
    except db.UnusableFile as exc:
        raise MigrateError(f"cannot use {path} ({flag}): {exc}") from None


def copy_meta(source_path: str, target_url: str, out: TextIO) -> dict[str, int]:
    """me_meta.db into PostgreSQL; rows per table."""
    from medama_core.store import postgres
    from medama_core.store.postgres import meta_copy
    from medama_core.store.postgres.errors import StartupError

    try:
        target = postgres.open_meta(target_url)
    except StartupError as exc:
        raise ConfigError(f"-to-appdb: {exc}") from None
    source = _open_sqlite(source_path, meta.MIGRATIONS, meta.MARKER_TABLE, "-appdb")
    try:
        counts: dict[str, int] = target.call(lambda conn: meta_copy.sqlite_to_postgres(source, conn))
    except meta_copy.CopyError as exc:
        raise MigrateError(f"app data: {exc}") from None
    finally:
        source.close()
        target.close()
    for table, count in counts.items():
        print(f"app data: {table}: {count} rows", file=out)
    return counts


def copy_analytics(source_path: str, target_url: str, out: TextIO) -> None:
    """me_analytics.db into ClickHouse, then the check; MigrateError if anything differs."""
    from medama_core.store.clickhouse import bulk, schema
    from medama_core.store.clickhouse import imported as ch_imported
    from medama_core.store.clickhouse import stats as ch_stats
    from medama_core.store.clickhouse.client import ClickHouseError, Client
    from medama_core.store.clickhouse.url import URLError, parse_url

    try:
        client = Client.connect(parse_url(target_url))
        schema.migrate(client, int(time.time() * 1000))
        stored = client.rows("SELECT count() FROM views")[0][0] + client.rows("SELECT count() FROM events")[0][0]
    except (URLError, ClickHouseError) as exc:
        raise ConfigError(f"-to-analyticsdb: {exc}") from None
    if stored:
        client.close()
        raise MigrateError("the ClickHouse database already holds views or events; give an empty one")
    source = _open_sqlite(source_path, analytics.MIGRATIONS, analytics.MARKER_TABLE, "-analyticsdb")
    try:
        source.execute("BEGIN")  # one snapshot for the copy and the check
        for table, columns, insert in (
            ("views", TRACKED_VIEW_COLUMNS, bulk.insert_views),  # with the internal referrers' paths
            ("events", EVENT_COLUMNS, bulk.insert_events),
        ):
            total = source.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            done = [0]

            def progress(rows: int, table: str = table, total: int = total, done: list[int] = done) -> None:
                done[0] += rows
                print(f"analytics: {table}: {done[0]} of {total}", file=out, flush=True)

            insert(client, _rows(source, table, columns), progress)
        drops = list(_rows(source, "drops", ("day", "hostname", "reason", "count"), "day, hostname, reason"))
        client.insert("drops", ("day", "hostname", "reason", "count"), drops)
        print(f"analytics: drops: {len(drops)} rows", file=out)
        names: tuple[str, ...] = ("hostname", "day", "dimension", "value", "tool", "visitors", "pageviews")
        names += ("visits", "bounces", "duration_s")
        order = "hostname, dimension, day, value"
        totals = [dict(zip(names, row, strict=True)) for row in _rows(source, "imported_days", names, order)]
        ch_imported.store(client, totals)
        print(f"analytics: imported daily totals: {len(totals)} rows", file=out)
        _check(source, client, ch_stats, out)
        source.execute("COMMIT")
    except ClickHouseError as exc:
        raise MigrateError(f"analytics: {exc}") from None
    finally:
        source.close()
        client.close()


def _check(source: sqlite3.Connection, client: Any, ch_stats: Any, out: TextIO) -> None:
    """Counts, then each site's all-time summary, top pages and exit pages, on both sides."""
    from medama_core.store.clickhouse import entries as ch_entries

    problems = []
    views = source.execute("SELECT count(*) FROM (SELECT DISTINCT bid, hostname FROM views)").fetchone()[0]
    copied = client.rows("SELECT sum(sign) FROM views")[0][0] or 0
    if views != copied:
        problems.append(f"views: {views} distinct in SQLite, {copied} in ClickHouse")
    sites = [str(row[0]) for row in source.execute("SELECT DISTINCT hostname FROM views ORDER BY 1")]
    page = stats.Page(CHECKED_PAGES)
    for site in sites:
        query = stats.Query(site)
        for name, ours, theirs in (
            ("summary", stats.summary(source, query, False, None), ch_stats.summary(client, query, False, None)),
            (
                "pages",
                stats.list_stats(source, query, "pages", False, page),
                ch_stats.list_stats(client, query, "pages", False, page),
            ),
            # The internal referrers' paths came along (entry and exit pages).
            ("exits", entries.exits(source, query, False, page), ch_entries.exits(client, query, False, page)),
        ):
            if ours != theirs:
                problems.append(
                    f"{site} {name}: SQLite {str(ours)[:PROBLEM_CHARS]} != ClickHouse {str(theirs)[:PROBLEM_CHARS]}"
                )
    if problems:
        raise MigrateError("the copy does not match: " + "; ".join(problems[:3]))
    print(f"check: {copied} views; the summary, top pages and exit pages of {len(sites)} sites match", file=out)


def main(args: Sequence[str], environ: Mapping[str, str], out: TextIO = sys.stderr) -> int:
    if any(arg in ("-h", "-help", "--help") for arg in args):
        print(help_text(SYNOPSIS, DESCRIPTION, OPTIONS))
        return 0
    values, extra = parse_flags(OPTIONS, args, environ)
    if extra:
        raise ConfigError(f"unexpected argument {extra[0]!r} (usage: {SYNOPSIS})")
    to_app, to_analytics = values["to-appdb"], values["to-analyticsdb"]
    if not to_app and not to_analytics:
        raise ConfigError(f"nothing to do: give -to-appdb and/or -to-analyticsdb (usage: {SYNOPSIS})")
    if to_app and not to_app.startswith(("postgres://", "postgresql://")):
        raise ConfigError("-to-appdb: give a postgres:// or postgresql:// URL")
    if to_analytics and not to_analytics.startswith(("clickhouse://", "clickhouses://")):
        raise ConfigError("-to-analyticsdb: give a clickhouse:// or clickhouses:// URL")
    try:
        if to_app:
            copy_meta(values["appdb"], to_app, out)
        if to_analytics:
            copy_analytics(values["analyticsdb"], to_analytics, out)
    except MigrateError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1
    return 0
