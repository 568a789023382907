"""`medama migrate`: copy an install between SQLite and PostgreSQL + ClickHouse, either way, then check the copy.

Up (SQLite paths to URLs): app data goes with store/postgres/meta_copy.py (one transaction,
sessions too, so nobody is logged out); page views, events, drop counts and imported daily totals
stream into ClickHouse through its bulk path (duplicates of a (beacon id, site) are skipped, as on
import), with a progress line per chunk. Down (URLs to SQLite paths): the same rows come back in one
SQLite transaction per file, views and events with their indexes set aside (store/sqlite/bulk.py). Either
way the check follows: the row counts of both sides, and each site's all-time /summary and top pages,
must be equal. Going down the check runs inside the SQLite transaction, so a copy that fails it is
rolled back and the file stays empty. The sources are opened as they are (migrated to this version
first), and are never written otherwise.
"""

from __future__ import annotations

import sqlite3
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Final, TextIO

from medama_core.config import ConfigError, Option, help_text, option, parse_flags
from medama_core.store.sqlite import analytics, db, entries, meta, stats
from medama_core.store.sqlite.hits import EVENT_COLUMNS, INSERT_TRACKED_VIEW, TRACKED_VIEW_COLUMNS

SYNOPSIS: Final = "medama migrate -to-appdb postgres://… -to-analyticsdb clickhouse://… [flags]"
DESCRIPTION: Final = """Copy this install's SQLite databases (-appdb, -analyticsdb) into PostgreSQL (-to-appdb) and/or
ClickHouse (-to-analyticsdb), then check that the row counts and each site's summary and top pages match.
Moving down is the same command the other way: -appdb postgres://… -analyticsdb clickhouse://… with
SQLite files as -to-appdb and -to-analyticsdb. Stop the servers first, so no hit arrives during the copy.
The targets must be empty. See docs/scale.md, "Moving up" and "Moving down"."""


def _url(text: str) -> str:
    return text.strip()


OPTIONS: Final = (
    option("appdb"),
    option("analyticsdb"),
    option("env"),
    Option(
        "to-appdb",
        None,
        "",
        _url,
        "postgres:// URL (or, moving down, SQLite file) to copy the app data into (none: not copied)",
    ),
    Option(
        "to-analyticsdb",
        None,
        "",
        _url,
        "clickhouse:// URL (or, moving down, SQLite file) to copy the analytics into (none: not copied)",
    ),
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
    return _copy_meta(target_url, source_path, True, out)


def _copy_meta(url: str, path: str, up: bool, out: TextIO) -> dict[str, int]:
    """Every app-data table between PostgreSQL at `url` and the SQLite file at `path`, either way (`up`: into
    PostgreSQL), in one transaction; rows per table, each printed."""
    from medama_core import meta_copy
    from medama_core.store import postgres
    from medama_core.store.postgres.errors import StartupError

    url_flag, path_flag = ("-to-appdb", "-appdb") if up else ("-appdb", "-to-appdb")
    try:
        server = postgres.open_meta(url)
    except StartupError as exc:
        raise ConfigError(f"{url_flag}: {exc}") from None
    file = _open_sqlite(path, meta.MIGRATIONS, meta.MARKER_TABLE, path_flag)

    def copy(conn: Any) -> dict[str, int]:
        return meta_copy.sqlite_to_postgres(file, conn) if up else meta_copy.postgres_to_sqlite(conn, file)

    try:
        counts: dict[str, int] = server.call(copy)
    except meta_copy.CopyError as exc:
        raise MigrateError(f"app data: {exc}") from None
    finally:
        file.close()
        server.close()
    for table, count in counts.items():
        print(f"app data: {table}: {count} rows", file=out)
    return counts


def copy_analytics(source_path: str, target_url: str, out: TextIO) -> None:
    """me_analytics.db into ClickHouse, then the check; MigrateError if anything differs."""
    from medama_core.store.clickhouse import bulk, schema
    from medama_core.store.clickhouse import imported as ch_imported
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
        check(source, client, out)
        source.execute("COMMIT")
    except ClickHouseError as exc:
        raise MigrateError(f"analytics: {exc}") from None
    finally:
        source.close()
        client.close()


# The counts compared by the check: (what, SQLite's SQL, ClickHouse's SQL), each one number. A view is one per
# (beacon id, site) in SQLite (hash-mode pages may share an id) and its rows' signs add up to one in ClickHouse.
COUNTS: Final = (
    (
        "views",
        "SELECT count(*) FROM (SELECT DISTINCT bid, hostname FROM views)",
        "SELECT sum(sign) FROM views",
    ),
    ("events", "SELECT count(*) FROM events", "SELECT count() FROM events"),
    ("dropped hits", "SELECT sum(count) FROM drops", "SELECT sum(count) FROM drops"),
    ("imported daily totals", "SELECT count(*) FROM imported_days", "SELECT count() FROM imported_days FINAL"),
)


def check(sqlite_conn: sqlite3.Connection, client: Any, out: TextIO) -> None:
    """Counts, then each site's all-time summary, top pages and exit pages, on both sides; MigrateError naming
    the first differences."""
    from medama_core.store.clickhouse import entries as ch_entries
    from medama_core.store.clickhouse import stats as ch_stats

    problems = []
    counted = {}
    for name, sqlite_sql, clickhouse_sql in COUNTS:
        in_sqlite = int(sqlite_conn.execute(sqlite_sql).fetchone()[0] or 0)
        in_clickhouse = int(client.rows(clickhouse_sql)[0][0] or 0)
        counted[name] = in_clickhouse
        if in_sqlite != in_clickhouse:
            problems.append(f"{name}: {in_sqlite} in SQLite, {in_clickhouse} in ClickHouse")
    sites = [str(row[0]) for row in sqlite_conn.execute("SELECT DISTINCT hostname FROM views ORDER BY 1")]
    page = stats.Page(CHECKED_PAGES)
    for site in sites:
        query = stats.Query(site)
        for name, ours, theirs in (
            (
                "summary",
                stats.summary(sqlite_conn, query, False, None),
                ch_stats.summary(client, query, False, None),
            ),
            (
                "pages",
                stats.list_stats(sqlite_conn, query, "pages", False, page),
                ch_stats.list_stats(client, query, "pages", False, page),
            ),
            # The internal referrers' paths came along (entry and exit pages).
            ("exits", entries.exits(sqlite_conn, query, False, page), ch_entries.exits(client, query, False, page)),
        ):
            if ours != theirs:
                problems.append(
                    f"{site} {name}: SQLite {str(ours)[:PROBLEM_CHARS]} != ClickHouse {str(theirs)[:PROBLEM_CHARS]}"
                )
    if problems:
        raise MigrateError("the copy does not match: " + "; ".join(problems[:3]))
    print(
        f"check: {counted['views']} views, {counted['events']} events; "
        f"the summary, top pages and exit pages of {len(sites)} sites match",
        file=out,
    )


def copy_meta_down(source_url: str, target_path: str, out: TextIO) -> dict[str, int]:
    """PostgreSQL's app data into an empty me_meta.db; rows per table."""
    return _copy_meta(source_url, target_path, False, out)


def copy_analytics_down(source_url: str, target_path: str, out: TextIO) -> None:
    """ClickHouse's analytics into an empty me_analytics.db, then the check; MigrateError (and the file left
    empty) if anything differs."""
    from medama_core.store.clickhouse import bulk, schema, site_data
    from medama_core.store.clickhouse.client import ClickHouseError, Client
    from medama_core.store.clickhouse.url import URLError, parse_url
    from medama_core.store.sqlite import bulk as sqlite_bulk
    from medama_core.store.sqlite import hits
    from medama_core.store.sqlite import marking as sqlite_marking

    try:
        client = Client.connect(parse_url(source_url))
        schema.migrate(client, int(time.time() * 1000))  # a source of an older version is read at this one
    except (URLError, ClickHouseError) as exc:
        raise ConfigError(f"-analyticsdb: {exc}") from None
    try:
        target = _open_sqlite(target_path, analytics.MIGRATIONS, analytics.MARKER_TABLE, "-to-analyticsdb")
    except MigrateError:
        client.close()
        raise
    try:
        held = [
            t for t in ("views", "events", "drops", "imported_days") if target.execute(f"SELECT 1 FROM {t}").fetchone()
        ]
        if held:
            raise MigrateError(f"{target_path} already holds {', '.join(held)}; give a new or empty file")
        target.execute("BEGIN IMMEDIATE")
        since = sqlite_marking.starts(target)
        for table, total_sql in (("views", "SELECT sum(sign) FROM views"), ("events", "SELECT count() FROM events")):
            total = int(client.rows(total_sql)[0][0] or 0)
            suspended = sqlite_bulk.suspend(target, table)
            insert, done = (INSERT_TRACKED_VIEW if table == "views" else hits.insert_sql(table)), 0
            batch: list[tuple[object, ...]] = []
            for row in _current_views(client) if table == "views" else bulk.export_rows(client, table):
                batch.append(row)
                if len(batch) == CHUNK_ROWS:
                    target.executemany(insert, batch)
                    done += len(batch)
                    batch.clear()
                    print(f"analytics: {table}: {done} of {total}", file=out, flush=True)
            target.executemany(insert, batch)
            done += len(batch)
            print(f"analytics: {table}: {done} of {total}", file=out, flush=True)
            if suspended is not None:
                sqlite_bulk.resume(target, suspended)
        sqlite_marking.mark_since(target, since)
        drops = client.rows("SELECT day, hostname, reason, sum(count) FROM drops GROUP BY day, hostname, reason")
        target.executemany("INSERT INTO drops (day, hostname, reason, count) VALUES (?, ?, ?, ?)", drops)
        print(f"analytics: drops: {len(drops)} rows", file=out)
        names: tuple[str, ...] = ("hostname", "day", "dimension", "value", "tool", "visitors", "pageviews")
        names += ("visits", "bounces", "duration_s")
        totals = client.rows(f"SELECT {', '.join(names)} FROM imported_days FINAL")
        target.executemany(
            f"INSERT INTO imported_days ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})", totals
        )
        print(f"analytics: imported daily totals: {len(totals)} rows", file=out)
        # Today's hits per site, which the quota counts on from (SQLite keeps them in site_hits).
        today = int(time.time() * 1000) // hits.DAY_MS * hits.DAY_MS
        target.executemany(
            hits.ADD_SITE_HITS,
            [{"day": today, "hostname": site, "hits": n} for site, n in site_data.hits_on(client, today).items()],
        )
        check(target, client, out)
        target.execute("COMMIT")
    except ClickHouseError as exc:
        raise MigrateError(f"analytics: {exc}") from None
    finally:
        if target.in_transaction:
            target.execute("ROLLBACK")
        target.close()
        client.close()


_INTEGER_COLUMNS: Final = frozenset({"is_unique_user", "is_unique_page", "duration_ms", "date_created"})


def _current_views(client: Any) -> Iterator[tuple[object, ...]]:
    """Each view's current row in ClickHouse (an unloaded view once, with its last duration), with its internal
    referrer's path, in the SQLite export's order (bulk.export_rows reads the columns export files carry)."""
    integer = [column in _INTEGER_COLUMNS for column in TRACKED_VIEW_COLUMNS]
    sql = f"SELECT {', '.join(TRACKED_VIEW_COLUMNS)} FROM views FINAL ORDER BY date_created, hostname, bid"
    for fields in client.stream(sql, {}):
        yield tuple(int(f) if is_int and f is not None else f for f, is_int in zip(fields, integer, strict=True))


def _kind(location: str) -> str:
    """ "sqlite", "postgres" or "clickhouse" by the URL's scheme ("sqlite": a path), "" for another scheme."""
    if "://" not in location:
        return "sqlite"
    scheme = location.split("://", 1)[0].lower()
    return {
        "postgres": "postgres",
        "postgresql": "postgres",
        "clickhouse": "clickhouse",
        "clickhouses": "clickhouse",
    }.get(scheme, "")


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
    # Each file moves up (SQLite path to URL) or down (URL to SQLite path), by the kinds of its two ends.
    app_down = _kind(values["appdb"]) == "postgres"
    analytics_down = _kind(values["analyticsdb"]) == "clickhouse"
    if to_app and _kind(to_app) != ("sqlite" if app_down else "postgres"):
        raise ConfigError(
            "-to-appdb: give a SQLite file to copy postgres:// app data into"
            if app_down
            else "-to-appdb: give a postgres:// or postgresql:// URL"
        )
    if to_analytics and _kind(to_analytics) != ("sqlite" if analytics_down else "clickhouse"):
        raise ConfigError(
            "-to-analyticsdb: give a SQLite file to copy clickhouse:// analytics into"
            if analytics_down
            else "-to-analyticsdb: give a clickhouse:// or clickhouses:// URL"
        )
    try:
        if to_app:
            (copy_meta_down if app_down else copy_meta)(values["appdb"], to_app, out)
        if to_analytics:
            (copy_analytics_down if analytics_down else copy_analytics)(values["analyticsdb"], to_analytics, out)
    except MigrateError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1
    return 0
