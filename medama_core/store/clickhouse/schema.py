"""The ClickHouse tables of the analytics (views, view_keys, events, drops) and the migrations that create them.

One design, one reason each (docs/scale.md has the long form):

* `views` holds one row per page view, ordered by (hostname, date_created, bid)
  so that every stats query reads one contiguous range of one site, and
  partitioned by month, so that old months can be dropped (or, on servers with
  TTL, expire) whole. An unload never updates a row: it adds two, a copy of the
  view's current row with sign -1 and the new state with sign +1 and the next
  `version` (a CollapsingMergeTree). Queries sum `sign`, so they are exact
  before, during and after the background merges that cancel the pairs. The
  version is part of the sort key, so the rows a merge sees under one key are
  identical but for their sign: whatever it keeps of them (a collapse depends on
  the rows' order, which an INSERT of several rows of one key does not keep),
  the sums are unchanged.
* `view_keys` finds a view by its beacon id, which an unload or a custom
  event carries alone: a narrow table ordered by bid with small granules.
* `events` carries, besides the event, the site of its view and that view's
  dimensions, copied when it is written: /properties and its filters read one
  range of one site, with no join. An event stored before its view (an import
  of events first, or two nodes racing) has `site` '' and is matched at read time.
* `drops` counts dropped hits, summed per (day, site, reason) by merges and by
  the queries (SummingMergeTree).
* `hourly` holds the counts of a `Group` but the bounces (visitors, page
  visitors, views, and the durations' sum and counts) per (site, dimension kind, hour, value),
  written by a materialized view on every INSERT into `views` and summed by
  merges and by the queries (SummingMergeTree). The counts sum `sign`, so an
  unload pair adds nothing and they stay exact. The compact list rows and
  /time's keep rule read it for the whole hours of a period and `views` for the rest.

The SQL is the subset that runs unchanged on ClickHouse 18.16 (Debian's
package) and on current releases: no TTL, codecs, LowCardinality or DateTime64;
times are Int64 Unix milliseconds, as in SQLite.
"""

from __future__ import annotations

from typing import Final

from medama_core.store.clickhouse.client import Client

__all__ = ["HOUR_MS", "KIND_CODES", "LABELS", "MIGRATIONS", "TABLES", "migrate", "schema_version"]

# Dimension kind (the SQLite store's rollups.KINDS names) -> its label in SQL over `views`.
LABELS: Final = {
    "path": "pathname",
    "referrer": "if(referrer_group = '', referrer_host, referrer_group)",
    "referrer_host": "referrer_host",
    "utm_source": "utm_source",
    "utm_medium": "utm_medium",
    "utm_campaign": "utm_campaign",
    "browser": "ua_browser",
    "os": "ua_os",
    "device": "ua_device_type",
    "country": "country",
    "language": "language_base",
    "language_dialect": "language_dialect",
}
# Each kind's code in `hourly`: stored, so new kinds are only ever appended.
KIND_CODES: Final = {kind: code for code, kind in enumerate(LABELS, start=1)}
HOUR_MS: Final = 3_600_000

# The dimensions of a view as columns, shared by `views` and the copies in `events`.
_DIMENSIONS: Final = """
    pathname String,
    referrer_host String,
    referrer_group String,
    country String,
    language_base String,
    language_dialect String,
    ua_browser String,
    ua_os String,
    ua_device_type String,
    utm_source String,
    utm_medium String,
    utm_campaign String"""
# Month partitions of a Unix-milliseconds column: `ALTER TABLE ... DROP PARTITION 202401` removes a month.
_MONTHS: Final = "PARTITION BY toYYYYMM(toDateTime(intDiv({column}, 1000), 'UTC'))"
# view_keys is read by bid alone, a few hundred ids at a time, each in a different granule: 1024
# rows per granule instead of 8192 reads 8 times less per id for an index 8 times larger (a few MB at 10 M views).
KEY_GRANULE_ROWS: Final = 1024

MIGRATIONS: Final[tuple[tuple[int, tuple[str, ...]], ...]] = (
    (
        1,
        (
            f"""CREATE TABLE IF NOT EXISTS views (
                bid String,
                hostname String,
                is_unique_user UInt8,
                is_unique_page UInt8,{_DIMENSIONS},
                duration_ms Nullable(Int64),
                date_created Int64,
                sign Int8,
                version UInt32
            ) ENGINE = CollapsingMergeTree(sign)
            {_MONTHS.format(column="date_created")}
            ORDER BY (hostname, date_created, bid, version)""",
            f"""CREATE TABLE IF NOT EXISTS view_keys (
                bid String,
                hostname String,
                date_created Int64
            ) ENGINE = MergeTree
            {_MONTHS.format(column="date_created")}
            ORDER BY (bid, hostname)
            SETTINGS index_granularity = {KEY_GRANULE_ROWS}""",
            f"""CREATE TABLE IF NOT EXISTS events (
                bid String,
                batch_id String,
                group_name String,
                name String,
                value String,
                date_created Int64,
                site String,{_DIMENSIONS}
            ) ENGINE = MergeTree
            {_MONTHS.format(column="date_created")}
            ORDER BY (site, date_created)""",
            f"""CREATE TABLE IF NOT EXISTS hourly (
                hostname String,
                kind UInt8,
                hour Int64,
                value String,
                visitors Int64,
                page_visitors Int64,
                pageviews Int64,
                duration_sum Int64,
                measured Int64,
                zeros Int64,
                ones Int64
            ) ENGINE = SummingMergeTree
            {_MONTHS.format(column=f"hour * {HOUR_MS}")}
            ORDER BY (hostname, kind, hour, value)""",
            f"""CREATE MATERIALIZED VIEW IF NOT EXISTS hourly_counts TO hourly AS
            SELECT hostname, kind, intDiv(date_created, {HOUR_MS}) AS hour, value,
                sum(sign * is_unique_user) AS visitors, sum(sign * is_unique_page) AS page_visitors,
                sum(sign) AS pageviews, sum(sign * ifNull(duration_ms, 0)) AS duration_sum,
                sum(if(isNotNull(duration_ms), sign, 0)) AS measured,
                sum(if(ifNull(duration_ms, -1) = 0, sign, 0)) AS zeros,
                sum(if(ifNull(duration_ms, -1) BETWEEN 0 AND 1, sign, 0)) AS ones
            FROM views
            ARRAY JOIN [{", ".join(str(code) for code in KIND_CODES.values())}] AS kind,
                [{", ".join(LABELS.values())}] AS value
            GROUP BY hostname, kind, hour, value""",
            f"""CREATE TABLE IF NOT EXISTS drops (
                day Int64,
                hostname String,
                reason String,
                count UInt64
            ) ENGINE = SummingMergeTree(count)
            {_MONTHS.format(column="day")}
            ORDER BY (day, hostname, reason)""",
        ),
    ),
)
TABLES: Final = ("views", "view_keys", "events", "drops", "hourly")

_VERSIONS: Final = """CREATE TABLE IF NOT EXISTS medama_schema (
    version UInt32,
    applied_ms Int64
) ENGINE = MergeTree ORDER BY version"""


def schema_version(client: Client) -> int:
    """The last migration applied (0 on an empty database)."""
    client.command(_VERSIONS)
    rows = client.rows("SELECT max(version) FROM medama_schema")
    return int(rows[0][0]) if rows else 0


def migrate(client: Client, now_ms: int) -> int:
    """Apply the migrations not applied yet, each recorded after its statements ran; return the version.

    ClickHouse has no transactional DDL: every statement is idempotent (IF NOT EXISTS), so a
    migration cut short runs again whole on the next start.
    """
    version = schema_version(client)
    for number, statements in MIGRATIONS:
        if number <= version:
            continue
        for statement in statements:
            client.command(statement)
        client.insert("medama_schema", ("version", "applied_ms"), [(number, now_ms)])
        version = number
    return version
