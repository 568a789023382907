"""The ClickHouse tables of the analytics (views, events, their keys and pre-aggregates) and their migrations.

One design, one reason each (docs/scale.md has the long form):

* `views` holds one row per page view, ordered by (site_key, hostname,
  date_created, bid) so that every stats query reads one contiguous range of
  one site (site_key: a hash of the hostname, a number to compare), and
  partitioned by month, so that old months can be dropped (or, on servers with
  TTL, expire) whole. An unload never updates a row: it adds two, a copy of the
  view's current row with sign -1 and the new state with sign +1 and the next
  `version` (a CollapsingMergeTree). Queries sum `sign`, so they are exact
  before, during and after the background merges that cancel the pairs. The
  version is part of the sort key, so the rows a merge sees under one key are
  identical but for their sign: whatever it keeps of them (a collapse depends on
  the rows' order, which an INSERT of several rows of one key does not keep),
  the sums are unchanged.
* `views_by_path`, `views_by_country` (migrations 5 and 11) and
  `views_by_referrer` (12) are copies of `views` sorted by the site, then the
  lower-cased page, browser and country, or referrer group and host: a filter
  on one of them by equality reads that value's ranges of the site, not the
  whole period (COPIES).
* `view_keys` finds a view by its beacon id, which an unload or a custom
  event carries alone: a narrow table ordered by bid with small granules.
* `events` carries, besides the event, the site of its view and that view's
  dimensions, copied when it is written: /properties and its filters read one
  range of one site, with no join. An event stored before its view (an import
  of events first, or two nodes racing) has `site` '' and is matched at read time.
* `drops` counts dropped hits, summed per (day, site, reason) by merges and by
  the queries (SummingMergeTree).
* `hourly` holds the counts of a `Group` (visitors, page visitors, views,
  bounces, the durations' sum and counts) per (site, dimension kind, span
  level, hour, value), kind 0 being the whole site; `duration_hours` counts
  durations per bucket and `durations` each bucket's exact values (the
  medians, medians.py); `event_hours` counts events. Materialized views write
  them on every INSERT and merges and the queries sum them (SummingMergeTree).
  The counts sum `sign`, so an unload pair adds nothing and they stay exact.
  Unfiltered queries read them for the whole hours of a period and `views`
  for the rest (windows.py).
* `sites` lists the hostnames stored under each site key.
* `prop_views` (migration 7, replacing migration 6's `event_views`) holds, per
  event stored under a view, the view's site, time, unique flags and
  dimensions, sorted by the site, the property and the view's time, in
  partitions of the view's month: a property filter collects the beacon ids of
  the period's views only, and a property-filtered compact list counts the
  matching views from it alone, never reading `views`.
* `prop_durations` (migration 9) holds, per property of a view in
  `prop_views`, the view's duration at each unload with the version of its
  `views` row, sorted as `prop_views`: a property-filtered summary or /time
  reads the matching views there and their current durations here (the
  highest version), never `views`. `prop_keys` (migration 10, written from
  `prop_views` by a materialized view) finds a view's properties by beacon
  id, for the writer of an unload.
* `views_by_prop` (migration 15) holds the rows of `views` (every sign and
  version) of each view with properties again under each of its properties
  and each property name alone, lower-cased, sorted by the site, that key and
  the view's time: a filter pinning one property or one name reads its range
  and sums `sign` as over `views`, with no GROUP BY by beacon id (the writer
  writes a view's row under each key new to it and an unload's pair under
  each key it has). Since migration 18 it also holds, per view with
  properties, its rows once more under `named` 2 with the view's whole key
  set in two arrays (its lower-cased property names and values): a filter that
  can match several keys of one view tests the arrays of one row per view
  and version, with no GROUP BY by beacon id.
* `prop_name_hours` (migration 17) holds the counts
  of a compact list per site, property name, kind, span level and hour, as
  `filter_hours` does per browser or referrer key, written from the rows of
  `views_by_prop` under each name alone by a materialized view: a list under
  one name filter alone reads it and the edges' rows (stats._hourly_groups).
* `imported_days` (migration 4) holds other tools' daily totals (Plausible's
  export), as SQLite's table of that name: one row per (site, dimension, day,
  value), replaced when written again.

The SQL is the subset that runs unchanged on ClickHouse 18.16 (Debian's
package) and on current releases: no TTL, codecs, LowCardinality or DateTime64;
times are Int64 Unix milliseconds, as in SQLite.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Final

from medama_core.store.clickhouse.client import Client
from medama_core.store.rows import VIEW_COLUMNS

__all__ = [
    "COPIES",
    "EVENT_VIEW_COLUMNS",
    "HOUR_MS",
    "DAY_HOURS",
    "DAY_LEVEL",
    "FILTER_COUNTS",
    "FILTER_FIELDS",
    "KIND_CODES",
    "LABELS",
    "MIGRATIONS",
    "PROP_COPY_COLUMNS",
    "PROP_COPY_KEYS",
    "PROP_DURATION_COLUMNS",
    "PROP_KEY_COLUMNS",
    "PROP_ROW_COLUMNS",
    "PROP_SET_LEVEL",
    "PROP_VIEW_COLUMNS",
    "TABLES",
    "backfill_prop_durations",
    "backfill_prop_sets",
    "backfill_views_by_prop",
    "database_bytes",
    "migrate",
    "schema_version",
]

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
# view_keys is read by bid alone, a few hundred ids at a time, each in a different granule: 1024
# rows per granule instead of 8192 reads 8 times less per id for an index 8 times larger (a few MB at 10 M views).
KEY_GRANULE_ROWS: Final = 1024

# prop_keys is read by bid alone, the ids of a batch's unloads at a time, most of them absent (only the views
# with events have rows, ~13% at 10 M views): each id still reads the granule its value would lie in, so
# 128-row granules read 8 times less per id than view_keys' 1,024, for an index of ~12,500 marks per 1.6 M rows.
PROP_KEY_GRANULE_ROWS: Final = 128

# The key of a site in every table: a 64-bit hash of its hostname, first in every sort key. Comparing
# it is a number compare where the hostname would be a String compare of every row read; the hostname
# follows it in the sort keys and is compared too only when two stored hostnames share a hash
# (stats._resolve), so answers stay exact either way.
SITE_KEY: Final = "sipHash64({column})"
# A duration's bucket in `duration_hours` and `durations`: the top 16 bits of its Float64 (sign,
# exponent and 4 bits of mantissa), so 16 buckets per doubling, each ~4% wide, in the order of the
# durations (the conversion and the shift are monotonic). Values below 32 have a bucket each.
BUCKET: Final = "toUInt16(bitShiftRight(reinterpretAsUInt64(reinterpretAsString(toFloat64({column}))), 48))"
# Hours per span level of `hourly` and `duration_hours`: every view is counted in its hour (level 0) and in
# the aligned spans of 16 and 256 hours holding it (windows.spans), so a period reads at most ~30 spans per
# 256 hours at its ends and one per 256 hours between (the benchmark's 90 days: 23 instead of 2,160). Each
# level is one more row per view and kind written by the materialized views: 6 levels (factors of 4) cost
# ~50 µs of server CPU per hit, 3 levels about half.
LEVEL_HOURS: Final = (1, 16, 256)
# (level, hours) of every span level, joined to each row in a GROUP BY (18.16 takes one ARRAY JOIN clause,
# used by the kinds): `tupleElement(ls, 1)` is the level, the hour is rounded down to `tupleElement(ls, 2)`.
_LEVELS: Final = (
    "arrayJoin(["
    + ", ".join(f"(toUInt8({level}), toInt64({hours}))" for level, hours in enumerate(LEVEL_HOURS))
    + "]) AS ls"
)
_SPAN_HOUR: Final = f"intDiv(intDiv(date_created, {HOUR_MS}), tupleElement(ls, 2)) * tupleElement(ls, 2)"
# The kind code of the whole site in `hourly` and the duration tables (value '').
SITE_KIND: Final = 0
# `duration_hours`' levels of 24-hour spans starting at every hour (migration 13), for the whole site (kind 0) only:
# a day bucket of the dashboard starts at its time zone's midnight, any hour of UTC, where the spans of 16 and 256
# hours fall on none, so its durations' bucket counts were 24 hours' rows (90 days: ~430,000 rows read); from these
# they are one span's (~200). The span starting at hour h has level DAY_LEVEL + h % 24, so that the spans of one
# time zone's days lie together in the sort order (one range for a period, not a granule per day). A view lies in
# 24 such spans: 24 more rows for each (hour, bucket) of the site that a views INSERT touches, in the part it
# writes anyway (no more parts per INSERT).
DAY_LEVEL: Final = 3
DAY_HOURS: Final = 24
# `durations` is read a bucket and a few hours at a time (a day's share of one bucket is a few
# hundred rows): 1,024-row granules read 8 times less around each such range than the default 8,192.
DURATION_GRANULE_ROWS: Final = 1024

# Per-row counts of a view row, each weighted by its sign: `hourly` sums them, and the queries sum
# them over the raw rows at a period's edges, so both always agree.
ROW_COUNTS: Final = {
    "visitors": "sign * is_unique_user",
    "page_visitors": "sign * is_unique_page",
    "pageviews": "sign",
    "bounces": "if(is_unique_user = 1 AND ifNull(duration_ms, -1) BETWEEN 100 AND 5000, sign, 0)",
    "timed": "if(is_unique_user = 1 AND isNotNull(duration_ms), sign, 0)",
    "duration_sum": "sign * ifNull(duration_ms, 0)",
    "measured": "if(isNotNull(duration_ms), sign, 0)",
    "zeros": "if(ifNull(duration_ms, -1) = 0, sign, 0)",
    "ones": "if(ifNull(duration_ms, -1) BETWEEN 0 AND 1, sign, 0)",
}
_SUMS: Final = ",\n                ".join(f"sum({sql}) AS {name}" for name, sql in ROW_COUNTS.items())
_COUNT_COLUMNS: Final = "".join(f"\n                {name} Int64," for name in ROW_COUNTS).rstrip(",")


def _month_partitions(column: str) -> str:
    """Month partitions of a Unix-milliseconds column: `ALTER TABLE ... DROP PARTITION 202401` removes a month."""
    return f"PARTITION BY toYYYYMM(toDateTime(intDiv({column}, 1000), 'UTC'))"


# Sorted copies of `views` (table -> the filter fields its sort key leads with after the site, and that
# key's expressions, the ones filters.py compares): a filter `eq` or `in` on one of the fields reads only
# its values' ranges of the site instead of the whole period. Written by materialized views from every
# INSERT into `views` (unload pairs included, so they sum `sign` like it); each costs its rows again in
# storage and at ingestion. Path: the dashboard's most common filter (a page clicked in the pages panel)
# and the most selective. Browser then country (migration 11): a browser's rows are one range, a country's
# one range per browser (a field of a few values), both together one range; the referrer's group then its
# host (migration 12): the filter matches either column, so a group is one range and a host one per group.
COPIES: Final = {
    "views_by_path": (("path",), "lower(pathname)"),
    "views_by_country": (("browser", "country"), "lower(ua_browser), lower(country)"),
    "views_by_referrer": (("referrer",), "lower(referrer_group), lower(referrer_host)"),
}
# Migration 5's copies (table -> its sort expression), as it wrote them: it runs before 11 and 12 re-sort them.
_FIRST_COPIES: Final = {"views_by_path": "lower(pathname)", "views_by_country": "lower(country)"}
# Rows per granule of the copies from migration 11 on: a filter reads one range per value (a country one
# per browser) in each part, and each range's ends read up to a granule of other values' rows; 2,048
# instead of 8,192 reads a quarter of that (the path filter of the benchmark read 784,000 rows for 583,000
# in its range at 90 days), for a primary index four times larger (~5,000 entries per 10 M views).
COPY_GRANULE_ROWS: Final = 2048

# The columns of a view row as the copies take them (18.16 wants a materialized view's every column
# named: the copies store `views`' site_key as it is).
_VIEW_COLUMNS: Final = (
    "bid, hostname, is_unique_user, is_unique_page, pathname, referrer_host, referrer_group, country,"
    " language_base, language_dialect, ua_browser, ua_os, ua_device_type, utm_source, utm_medium, utm_campaign,"
    " duration_ms, date_created, sign, version, site_key, referrer_path"
)


def _copy(table: str, order: str, granule_rows: int | None = None) -> tuple[str, ...]:
    """A sorted copy of `views`: dropped first (a migration cut short runs again whole, and a second backfill
    would count rows twice), its table, the materialized view that fills it, and the rows already stored.

    Rows written by another node between the view's creation and the backfill could be copied twice: upgrade
    with the writers stopped (docs/scale.md).
    """
    settings = "" if granule_rows is None else f"\n            SETTINGS index_granularity = {granule_rows}"
    return (
        f"DROP TABLE IF EXISTS {table}_rows",
        f"DROP TABLE IF EXISTS {table}",
        f"""CREATE TABLE {table} (
                bid String,
                hostname String,
                is_unique_user UInt8,
                is_unique_page UInt8,{_DIMENSIONS},
                duration_ms Nullable(Int64),
                date_created Int64,
                sign Int8,
                version UInt32,
                site_key UInt64,
                referrer_path String DEFAULT ''
            ) ENGINE = CollapsingMergeTree(sign)
            {_month_partitions("date_created")}
            ORDER BY (site_key, hostname, {order}, date_created, bid, version){settings}""",
        f"CREATE MATERIALIZED VIEW {table}_rows TO {table} AS SELECT {_VIEW_COLUMNS} FROM views",
    )


# Days of `views` copied per INSERT ... SELECT of a backfill: at 10 M views in 90 days a statement copies
# ~110,000 rows, far inside the client's query timeout (QUERY_TIMEOUT_S) on a busy server.
BACKFILL_DAYS: Final = 1
_DAY_MS: Final = 86_400_000


def _backfill_copies(client: Client, tables: tuple[str, ...]) -> None:
    """The rows stored before a migration into the sorted copies it made, a few days per statement."""
    first, last, n = client.rows("SELECT min(date_created), max(date_created), count() FROM views")[0]
    if not int(n):
        return
    step = BACKFILL_DAYS * _DAY_MS
    for table in tables:
        for lo in range(int(first), int(last) + 1, step):
            client.command(
                f"INSERT INTO {table} ({_VIEW_COLUMNS}) SELECT {_VIEW_COLUMNS} FROM views"
                " WHERE date_created >= {lo:Int64} AND date_created < {hi:Int64}",
                {"lo": lo, "hi": lo + step},
            )


# The columns of `event_views` as written (site_key is MATERIALIZED): each event's view's site and time
# (view_created), the event's own group name and time (rename, delete and retention select by them, as
# for `events`), its beacon id and property.
EVENT_VIEW_COLUMNS: Final = ("site", "group_name", "view_created", "date_created", "bid", "name", "value")
# Days of `events` per INSERT ... SELECT of migration 6's backfill: ~18,000 events and their views' keys
# per statement at 10 M views in 90 days.
EVENT_BACKFILL_DAYS: Final = 1


def _backfill_event_views(client: Client) -> None:
    """Every stored event with a site into `event_views`, its view's time found in `view_keys` by (bid, site)."""
    first, last, n = client.rows("SELECT min(date_created), max(date_created), count() FROM events")[0]
    if not int(n):
        return
    columns = ", ".join(EVENT_VIEW_COLUMNS)
    step = EVENT_BACKFILL_DAYS * _DAY_MS
    chunk = "date_created >= {lo:Int64} AND date_created < {hi:Int64} AND site != ''"
    for lo in range(int(first), int(last) + 1, step):
        client.command(
            f"INSERT INTO event_views ({columns}) SELECT {columns} FROM events ALL INNER JOIN ("
            " SELECT bid, hostname AS site, date_created AS view_created FROM view_keys"
            f" WHERE bid IN (SELECT bid FROM events WHERE {chunk}) LIMIT 1 BY bid, hostname) AS stored"
            f" USING (bid, site) WHERE {chunk}",
            {"lo": lo, "hi": lo + step},
        )


# The columns of `prop_views` as written (site_key is MATERIALIZED): `event_views`' (EVENT_VIEW_COLUMNS), then
# the view's unique flags and dimensions as stored in `views` (none of them changes after the view is written:
# an unload changes its duration only), so a list of the views matching a property is read here alone.
VIEW_DIMENSION_COLUMNS: Final = tuple(line.split()[0] for line in _DIMENSIONS.strip().splitlines())
PROP_VIEW_COLUMNS: Final = (*EVENT_VIEW_COLUMNS, "is_unique_user", "is_unique_page", *VIEW_DIMENSION_COLUMNS)
# Days of view times per INSERT ... SELECT of migration 7's backfill: ~18,000 event rows joined with their
# ~110,000 views' rows (only those with events are hashed) per statement at 10 M views in 90 days.
PROP_BACKFILL_DAYS: Final = 1
# The backfills' ranges of view times, as statement parameters: `{column} >= lo AND {column} < hi`.
_CHUNK: Final = "{column} >= {{lo:Int64}} AND {column} < {{hi:Int64}}"


def _view_days(
    client: Client, table: str, column: str = "view_created", days: int = PROP_BACKFILL_DAYS
) -> Iterator[dict[str, int]]:
    """The parameters {lo, hi} of each `days` of `table`'s view times (`column`), first to last (none if empty)."""
    first, last, n = client.rows(f"SELECT min({column}), max({column}), count() FROM {table}")[0]
    if not int(n):
        return
    step = days * _DAY_MS
    for lo in range(int(first), int(last) + 1, step):
        yield {"lo": lo, "hi": lo + step}


def _backfill_prop_views(client: Client) -> None:
    """Every `event_views` row into `prop_views` with its view's flags and dimensions, a day of view times per
    statement; a view no longer stored (deleted) gives no row, as it matches no view in a read either."""
    kept = ", ".join(EVENT_VIEW_COLUMNS)
    added = ", ".join(PROP_VIEW_COLUMNS[len(EVENT_VIEW_COLUMNS) :])
    events, views = _CHUNK.format(column="view_created"), _CHUNK.format(column="date_created")
    for days in _view_days(client, "event_views"):
        client.command(
            f"INSERT INTO prop_views ({kept}, {added}) SELECT {kept}, {added} FROM event_views ALL INNER JOIN ("
            f" SELECT hostname AS site, bid, date_created AS view_created, {added} FROM views"
            f" WHERE {views} AND sign = 1 AND bid IN (SELECT bid FROM event_views WHERE {events})"
            f" LIMIT 1 BY hostname, bid, date_created) AS stored USING (site, bid, view_created) WHERE {events}",
            days,
        )


# The columns of `prop_durations` as written (site_key is MATERIALIZED): per property (name, value) of a view
# stored in `prop_views`, the view's site, time and beacon id, and one state of its duration: the version of its
# `views` row that holds it, and the duration. The highest version is the current duration (stats._prop_source).
PROP_DURATION_COLUMNS: Final = ("site", "view_created", "bid", "name", "value", "version", "duration_ms")
# The columns of `prop_keys`: the properties of a view, found by its beacon id (written from `prop_views`).
PROP_KEY_COLUMNS: Final = ("bid", "site", "view_created", "name", "value")


def backfill_prop_durations(client: Client) -> None:
    """The current duration of every stored view with `prop_views` rows, once per property, into `prop_durations`
    (a day of view times per statement); views without a duration give no row. Run twice, it writes the same rows
    again, which the table's merges and the reads take once."""
    columns = ", ".join(PROP_DURATION_COLUMNS)
    events, views = _CHUNK.format(column="view_created"), _CHUNK.format(column="date_created")
    for days in _view_days(client, "prop_views"):
        # A view's current row is its +1 row of the highest version (an unload's -1 row copies an older one).
        client.command(
            f"INSERT INTO prop_durations ({columns}) SELECT site, view_created, bid, name, value,"
            " current_version, current_duration FROM ("
            f" SELECT DISTINCT site, view_created, bid, name, value FROM prop_views WHERE {events}"
            ") AS found ALL INNER JOIN ("
            " SELECT hostname AS site, bid, date_created AS view_created, max(version) AS current_version,"
            " argMax(ifNull(duration_ms, -1), version) AS current_duration FROM views"
            f" WHERE {views} AND sign = 1 AND bid IN (SELECT bid FROM prop_views WHERE {events})"
            " GROUP BY site, bid, view_created"
            ") AS stored USING (site, bid, view_created) WHERE current_duration >= 0",
            days,
        )


def _backfill_prop_keys(client: Client) -> None:
    """The properties of every `prop_views` row into `prop_keys`, a day of view times per statement."""
    columns = ", ".join(PROP_KEY_COLUMNS)
    events = _CHUNK.format(column="view_created")
    for days in _view_days(client, "prop_views"):
        client.command(f"INSERT INTO prop_keys ({columns}) SELECT {columns} FROM prop_views WHERE {events}", days)


# `views_by_prop` (migration 15): the rows of `views` (every sign and version) again under each property of the
# view, lower-cased (the filters compare them so, filters.py), and under each property name alone (`named` 1, value
# ''), then sign and version.
PROP_COPY_COLUMNS: Final = (*VIEW_COLUMNS, "sign", "version", "named", "name", "value")
# Rows per granule of `views_by_prop`: a filter reads its property's range of the site for the period, whose ends
# read up to a granule of other properties' rows each; as the copies of `views` (COPY_GRANULE_ROWS).
PROP_COPY_GRANULE_ROWS: Final = 2048
# The keys of a `prop_views` row in `views_by_prop`, as (named, name, value): its property and its name alone.
PROP_COPY_KEYS: Final = "[(toUInt8(0), lower(name), lower(value)), (toUInt8(1), lower(name), '')]"


def backfill_views_by_prop(client: Client) -> None:
    """Every stored row of each view with `prop_views` rows into `views_by_prop`, once per property of the view and
    once per property name (lower-cased, distinct), a day of view times per statement. A view no longer stored
    gives no row."""
    columns = ", ".join(PROP_COPY_COLUMNS)
    selected = columns.replace(", named, name, value", ", pl, pn, pv")  # 18.16 takes `lower(name) AS name` as cyclic
    carried = ", ".join(column for column in VIEW_COLUMNS if column not in ("bid", "hostname", "date_created"))
    events, views = _CHUNK.format(column="view_created"), _CHUNK.format(column="date_created")
    for days in _view_days(client, "prop_views"):
        client.command(
            f"INSERT INTO views_by_prop ({columns}) SELECT {selected} FROM ("
            " SELECT DISTINCT site AS hostname, bid, view_created AS date_created, tupleElement(k, 1) AS pl,"
            f" tupleElement(k, 2) AS pn, tupleElement(k, 3) AS pv FROM prop_views ARRAY JOIN {PROP_COPY_KEYS} AS k"
            f" WHERE {events}"
            f") AS found ALL INNER JOIN (SELECT hostname, bid, date_created, {carried},"
            f" sign, version FROM views WHERE {views} AND bid IN (SELECT bid FROM prop_views WHERE {events})"
            ") AS stored USING (hostname, bid, date_created)",
            days,
        )


# A view's key set in `views_by_prop` (migration 18): under `named` PROP_SET_LEVEL, name '' and value the number of
# its keys, its rows of `views` (every sign and version) once more, with its properties' distinct lower-cased
# (name, value) pairs, sorted, in two aligned arrays; the rows under `named` 0 and 1 hold empty arrays. A filter
# that can match several keys of one view (`in`, `contains`, negations, a value alone) tests the arrays of one row
# per view and version (stats._rows), where it grouped the rows under every matching key by beacon id. When a
# stored view gets a new property, the writer cancels its row under the old set and writes it under the new one,
# at the same version; the value (the set's size, which only grows) keeps the two rows apart in the sort key, so
# merges collapse the cancelled pair and never depend on the order of rows with one key.
PROP_SET_LEVEL: Final = 2
PROP_ROW_COLUMNS: Final = (*PROP_COPY_COLUMNS, "key_names", "key_values")


def backfill_prop_sets(client: Client) -> None:
    """Every stored row of each view with `prop_views` rows into `views_by_prop` under its key set (PROP_SET_LEVEL),
    a day of view times per statement; a view with a key set row already (a run cut short) is skipped, and a
    view no longer stored gives no row."""
    columns = ", ".join(PROP_ROW_COLUMNS)
    selected = columns.replace(", named, name, value, key_names, key_values", ", pl, pn, pv, kn, kv")
    carried = ", ".join(column for column in VIEW_COLUMNS if column not in ("bid", "hostname", "date_created"))
    events, views = _CHUNK.format(column="view_created"), _CHUNK.format(column="date_created")
    for days in _view_days(client, "prop_views"):
        client.command(
            f"INSERT INTO views_by_prop ({columns}) SELECT {selected} FROM ("
            f" SELECT hostname, bid, date_created, toUInt8({PROP_SET_LEVEL}) AS pl, '' AS pn,"
            " toString(length(ks)) AS pv, arrayMap(k -> tupleElement(k, 1), ks) AS kn,"
            " arrayMap(k -> tupleElement(k, 2), ks) AS kv FROM ("
            " SELECT site AS hostname, bid, view_created AS date_created,"
            " arraySort(groupUniqArray((lower(name), lower(value)))) AS ks FROM prop_views"
            f" WHERE {events} GROUP BY site, bid, view_created)"
            " WHERE (hostname, bid, date_created) NOT IN (SELECT hostname, bid, date_created FROM views_by_prop"
            f" WHERE named = {PROP_SET_LEVEL} AND {views})"
            f") AS found ALL INNER JOIN (SELECT hostname, bid, date_created, {carried},"
            f" sign, version FROM views WHERE {views} AND bid IN (SELECT bid FROM prop_views WHERE {events})"
            ") AS stored USING (hostname, bid, date_created)",
            days,
        )


def _hourly_table(name: str, settings: str = "") -> str:
    """`hourly` (migration 1), or its copy `name` with `settings` (migration 14)."""
    return f"""CREATE TABLE IF NOT EXISTS {name} (
                site_key UInt64,
                hostname String,
                kind UInt8,
                level UInt8,
                hour Int64,
                value String,{_COUNT_COLUMNS}
            ) ENGINE = SummingMergeTree
            {_month_partitions(f"hour * {HOUR_MS}")}
            ORDER BY (site_key, hostname, kind, level, hour, value){settings}"""


_HOURLY_COUNTS: Final = f"""CREATE MATERIALIZED VIEW IF NOT EXISTS hourly_counts TO hourly AS
            SELECT {SITE_KEY.format(column="hostname")} AS site_key, hostname, kind, tupleElement(ls, 1) AS level,
                {_SPAN_HOUR} AS hour, value,
                {_SUMS}
            FROM views
            ARRAY JOIN [{", ".join(str(code) for code in (SITE_KIND, *KIND_CODES.values()))}] AS kind,
                ['', {", ".join(LABELS.values())}] AS value
            GROUP BY site_key, hostname, kind, {_LEVELS}, level, hour, value"""


def _duration_hours_table(name: str, settings: str = "") -> str:
    """`duration_hours` (migration 1), or its copy `name` with `settings` (migration 14)."""
    return f"""CREATE TABLE IF NOT EXISTS {name} (
                site_key UInt64,
                hostname String,
                kind UInt8,
                value String,
                level UInt8,
                hour Int64,
                bucket UInt16,
                n Int64
            ) ENGINE = SummingMergeTree
            {_month_partitions(f"hour * {HOUR_MS}")}
            ORDER BY (site_key, hostname, kind, value, level, hour, bucket){settings}"""


# Migration 13's view of `duration_hours`: every level of LEVEL_HOURS, and for the site (kind 0) DAY_LEVEL's 24 spans
# holding the row's hour. Each element: (level, hours rounded to, hours back from there).
_DURATION_LEVELS: Final = (
    "arrayJoin(arrayConcat(["
    + ", ".join(f"(toUInt8({level}), toInt64({hours}), toInt64(0))" for level, hours in enumerate(LEVEL_HOURS))
    + f"], arraySlice(arrayMap(back -> (toUInt8({DAY_LEVEL} + (intDiv(date_created, {HOUR_MS}) - back) % {DAY_HOURS}),"
    + f" toInt64(1), toInt64(back)), range({DAY_HOURS})), 1,"
    + f" if(kind = {SITE_KIND}, {DAY_HOURS}, 0)))) AS ls"
)
_DURATION_HOUR_COUNTS: Final = f"""CREATE MATERIALIZED VIEW duration_hour_counts TO duration_hours AS
            SELECT {SITE_KEY.format(column="hostname")} AS site_key, hostname, kind, value,
                tupleElement(ls, 1) AS level, {_SPAN_HOUR} - tupleElement(ls, 3) AS hour,
                {BUCKET.format(column="assumeNotNull(duration_ms)")} AS bucket, sum(sign) AS n
            FROM views
            ARRAY JOIN [{SITE_KIND}, {KIND_CODES["path"]}] AS kind, ['', pathname] AS value
            WHERE isNotNull(duration_ms)
            GROUP BY site_key, hostname, kind, value, {_DURATION_LEVELS}, level, hour, bucket"""


def _backfill_day_spans(client: Client) -> None:
    """DAY_LEVEL's rows of the hours stored before migration 13, summed from the site's level-0 rows: the spans
    starting on one UTC day per statement (one partition: one part, written whole or not at all). A day whose spans
    are stored was done by a run cut short; the writers are stopped during an upgrade (docs/scale.md)."""
    day_of = f"SELECT DISTINCT intDiv(hour, {DAY_HOURS}) FROM duration_hours WHERE kind = {SITE_KIND} AND level = "
    stored = {int(row[0]) for row in client.rows(f"{day_of}0")}
    done = {int(row[0]) for row in client.rows(f"{day_of.replace('level = ', 'level >= ')}{DAY_LEVEL}")}
    days = sorted(
        {day + back for day in stored for back in (-1, 0)} - done
    )  # a day's last hours start spans the day before
    for day in days:
        client.command(
            "INSERT INTO duration_hours (site_key, hostname, kind, value, level, hour, bucket, n)"
            f" SELECT site_key, hostname, kind, value, toUInt8({DAY_LEVEL} + start % {DAY_HOURS}), start, bucket,"
            " sum(n) FROM duration_hours"
            f" ARRAY JOIN arrayMap(back -> hour - back, range({DAY_HOURS})) AS start"
            f" WHERE kind = {SITE_KIND} AND level = 0 AND hour >= {{lo:Int64}} AND hour < {{until:Int64}}"
            " AND start >= {lo:Int64} AND start < {hi:Int64}"
            " GROUP BY site_key, hostname, kind, value, start, bucket HAVING sum(n) != 0",
            {"lo": day * DAY_HOURS, "hi": day * DAY_HOURS + DAY_HOURS, "until": day * DAY_HOURS + 2 * DAY_HOURS - 1},
        )


# Migration 14: `hourly` and `duration_hours` rebuilt with 1,024-row granules, as `durations` has. A summary or a
# list reads a few hundred rows per span or hour from them, in as many ranges, and each range of each part read at
# least one granule: 8,192 rows each gave the 90-day summary's duration bucket counts 298,000 rows read for the
# 18,000 it needs (37 ms of its CPU), 1,024 gave 62,000 (24 ms), with 16 parts either way (load 17). The index
# grows eightfold, to ~0.5 MB at 10 M views for `duration_hours`.
PRE_AGGREGATE_GRANULE_ROWS: Final = 1024
_GRANULES: Final = f"\n            SETTINGS index_granularity = {PRE_AGGREGATE_GRANULE_ROWS}"
# Table -> (its copy's CREATE, the materialized view that writes it: dropped before the swap, created after).
_REBUILT: Final = {
    "hourly": (_hourly_table("hourly_next", _GRANULES), "hourly_counts", _HOURLY_COUNTS),
    "duration_hours": (
        _duration_hours_table("duration_hours_next", _GRANULES),
        "duration_hour_counts",
        _DURATION_HOUR_COUNTS,
    ),
}
# Hours of rows copied per INSERT ... SELECT of migration 10: 30 days, ~3 M rows of `duration_hours` at 10 M views
# in 90 days, inside the client's query timeout on a busy server.
REBUILD_HOURS: Final = 720


def _rebuild(client: Client) -> None:
    """Each table of _REBUILT copied into its `_next` (created by migration 14's statements), swapped in by RENAME,
    its view created again, the old table dropped. Cut short anywhere, a second run copies the table under the
    name in use (the old one, or the new one already swapped in) and ends the same; writers stopped (docs/scale.md)."""
    for table, (_, view, create_view) in _REBUILT.items():
        client.command(f"DROP TABLE IF EXISTS {table}_prev")
        first, last, n = client.rows(f"SELECT min(hour), max(hour), count() FROM {table}")[0]
        if int(n):
            for lo in range(int(first), int(last) + 1, REBUILD_HOURS):
                client.command(
                    f"INSERT INTO {table}_next SELECT * FROM {table}"
                    " WHERE hour >= {lo:Int64} AND hour < {hi:Int64}",
                    {"lo": lo, "hi": lo + REBUILD_HOURS},
                )
        client.command(f"DROP TABLE IF EXISTS {view}")
        client.command(f"RENAME TABLE {table} TO {table}_prev, {table}_next TO {table}")
        client.command(create_view)
        client.command(f"DROP TABLE {table}_prev")


# Filter fields whose compact lists `filter_hours` (migration 16) counts per value the filter matches: the field's code
# in the table, and the keys a view matches under it (its lower-cased values, as filters.py compares them), in SQL
# over `views`. A browser filter by equality matches lower(ua_browser); a referrer filter lower(referrer_host), or
# lower(referrer_group) when the value is not '' (an empty referrer is direct traffic: the host alone). So a view
# has one browser key and one or two referrer keys (the group when it is not '' and differs from the host), each
# key once: the views a filter `eq` matches are exactly those under its key (filters.py).
FILTER_FIELDS: Final = {"browser": 1, "referrer": 2}
_FILTER_KEYS: Final = (
    ("browser", "lower(ua_browser)"),
    ("referrer", "lower(referrer_host)"),
    ("referrer", "lower(referrer_group)"),
)
# Each view's (field, key) pairs: the index into _FILTER_KEYS of each, the group's only when it is a key of its own.
_FILTER_KEY_INDEX: Final = (
    "arrayJoin(if(referrer_group != '' AND lower(referrer_group) != lower(referrer_host), [1, 2, 3], [1, 2])) AS fk"
)
_FILTER_FIELD_SQL: Final = f"arrayElement([{', '.join(str(FILTER_FIELDS[field]) for field, _ in _FILTER_KEYS)}], fk)"
_FILTER_KEY_SQL: Final = f"arrayElement([{', '.join(sql for _, sql in _FILTER_KEYS)}], fk)"
# The counts `filter_hours` keeps: those of a compact list (its visitors, and its views to tell a label that exists).
FILTER_COUNTS: Final = ("visitors", "page_visitors", "pageviews")
_FILTER_SUMS: Final = ",\n                ".join(f"sum({ROW_COUNTS[name]}) AS {name}" for name in FILTER_COUNTS)
# The SELECT of `filter_hour_counts`, `{where}` a condition on the rows of `views` (the backfill's days).
_FILTER_HOURS_SELECT: Final = f"""SELECT {SITE_KEY.format(column="hostname")} AS site_key, hostname,
                {_FILTER_FIELD_SQL} AS field, {_FILTER_KEY_SQL} AS fkey, kind, tupleElement(ls, 1) AS level,
                {_SPAN_HOUR} AS hour, value,
                {_FILTER_SUMS}
            FROM views
            ARRAY JOIN [{", ".join(str(code) for code in KIND_CODES.values())}] AS kind,
                [{", ".join(LABELS.values())}] AS value
            WHERE {{where}}
            GROUP BY site_key, hostname, {_FILTER_KEY_INDEX}, field, fkey, kind, {_LEVELS}, level, hour, value"""
# Migration 19: `hourly_counts` and `filter_hour_counts` again, grouping by hour and joining the span levels after the
# GROUP BY (an arrayJoin in the SELECT list runs on the grouped rows): a batch's rows are grouped once per hour, not
# once per span level, a third of the keys, then each grouped row gives a row per level. The INSERT into `views`
# of a batch of 500 new views and 500 unloads cost the server ~41 ms of CPU with the views before, ~26 with these
# (docs/scale.md, bench/ch_batches.py). A batch spanning several hours of one span writes a row per hour under it where
# it wrote one; SummingMergeTree sums them in merges and every read sums, as it sums the rows of different parts,
# so no answer changes. (18.16 runs a view's outermost query on the inserted block, so a subquery grouping first
# cannot do this.)
_HOUR_KEY: Final = f"intDiv(date_created, {HOUR_MS})"
_HOURLY_COUNTS_BY_HOUR: Final = f"""CREATE MATERIALIZED VIEW IF NOT EXISTS hourly_counts TO hourly AS
            SELECT {SITE_KEY.format(column="hostname")} AS site_key, hostname, kind,
                tupleElement({_LEVELS}, 1) AS level, {_SPAN_HOUR} AS hour, value,
                {_SUMS}
            FROM views
            ARRAY JOIN [{", ".join(str(code) for code in (SITE_KIND, *KIND_CODES.values()))}] AS kind,
                ['', {", ".join(LABELS.values())}] AS value
            GROUP BY site_key, hostname, kind, {_HOUR_KEY}, value"""
_FILTER_HOUR_COUNTS_BY_HOUR: Final = f"""CREATE MATERIALIZED VIEW IF NOT EXISTS filter_hour_counts TO filter_hours AS
            SELECT {SITE_KEY.format(column="hostname")} AS site_key, hostname,
                {_FILTER_FIELD_SQL} AS field, {_FILTER_KEY_SQL} AS fkey, kind, tupleElement({_LEVELS}, 1) AS level,
                {_SPAN_HOUR} AS hour, value,
                {_FILTER_SUMS}
            FROM views
            ARRAY JOIN [{", ".join(str(code) for code in KIND_CODES.values())}] AS kind,
                [{", ".join(LABELS.values())}] AS value
            GROUP BY site_key, hostname, {_FILTER_KEY_INDEX}, field, fkey, kind, {_HOUR_KEY}, value"""
# Hours per INSERT ... SELECT of migration 16's backfill: a day of views (~110,000 at 10 M views in 90 days), each
# giving a row per kind, span level and key before the GROUP BY.
FILTER_BACKFILL_DAYS: Final = 1


# `prop_name_hours` (migration 17): the counts of a compact list (FILTER_COUNTS) per site, property name (lower-cased),
# kind, span level and hour, written from the rows of `views_by_prop` under each name alone (`named` 1: a view's rows,
# every sign and version, once per name it has), as `filter_hours` is from `views` per browser or referrer key. A
# compact list under one name filter alone (prop_name by equality) read every matching view's row of the period.
# `{where}`: a condition on the rows of `views_by_prop` (the backfill's days); the labels are named `label` inside, as
# `value` is a column of the table (a property's value).
_PROP_NAME_HOURS_SELECT: Final = f"""SELECT {SITE_KEY.format(column="hostname")} AS site_key, hostname, name,
                kind, tupleElement(ls, 1) AS level, {_SPAN_HOUR} AS hour, label AS value,
                {_FILTER_SUMS}
            FROM views_by_prop
            ARRAY JOIN [{", ".join(str(code) for code in KIND_CODES.values())}] AS kind,
                [{", ".join(LABELS.values())}] AS label
            WHERE named = 1 AND {{where}}
            GROUP BY site_key, hostname, name, kind, {_LEVELS}, level, hour, label"""

# Migration 20: `prop_name_hour_counts` grouping by hour and joining the span levels after, as migration 19 did for
# `hourly_counts` and `filter_hour_counts`: the same sums, a third of the keys grouped per INSERT into `views_by_prop`.
_PROP_NAME_HOUR_COUNTS_BY_HOUR: Final = f"""CREATE MATERIALIZED VIEW IF NOT EXISTS prop_name_hour_counts
            TO prop_name_hours AS
            SELECT {SITE_KEY.format(column="hostname")} AS site_key, hostname, name,
                kind, tupleElement({_LEVELS}, 1) AS level, {_SPAN_HOUR} AS hour, label AS value,
                {_FILTER_SUMS}
            FROM views_by_prop
            ARRAY JOIN [{", ".join(str(code) for code in KIND_CODES.values())}] AS kind,
                [{", ".join(LABELS.values())}] AS label
            WHERE named = 1
            GROUP BY site_key, hostname, name, kind, {_HOUR_KEY}, label"""


def _backfill_prop_name_hours(client: Client) -> None:
    """`prop_name_hours` of the rows of `views_by_prop` stored before migration 17, a day of views per statement
    (its table was made anew by the migration's statements, so a run cut short starts again whole; writers
    stopped, docs/scale.md)."""
    chunk = _CHUNK.format(column="date_created")
    for days in _view_days(client, "views_by_prop", "date_created", FILTER_BACKFILL_DAYS):
        client.command(f"INSERT INTO prop_name_hours {_PROP_NAME_HOURS_SELECT.format(where=chunk)}", days)


def _backfill_filter_hours(client: Client) -> None:
    """`filter_hours` of the views stored before migration 16, a day of views per statement (its table was made
    anew by the migration's statements, so a run cut short starts again whole; writers stopped, docs/scale.md)."""
    chunk = _CHUNK.format(column="date_created")
    for days in _view_days(client, "views", "date_created", FILTER_BACKFILL_DAYS):
        client.command(f"INSERT INTO filter_hours {_FILTER_HOURS_SELECT.format(where=chunk)}", days)


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
                version UInt32,
                site_key UInt64 MATERIALIZED {SITE_KEY.format(column="hostname")}
            ) ENGINE = CollapsingMergeTree(sign)
            {_month_partitions("date_created")}
            ORDER BY (site_key, hostname, date_created, bid, version)""",
            f"""CREATE TABLE IF NOT EXISTS view_keys (
                bid String,
                hostname String,
                date_created Int64
            ) ENGINE = MergeTree
            {_month_partitions("date_created")}
            ORDER BY (bid, hostname)
            SETTINGS index_granularity = {KEY_GRANULE_ROWS}""",
            f"""CREATE TABLE IF NOT EXISTS events (
                bid String,
                batch_id String,
                group_name String,
                name String,
                value String,
                date_created Int64,
                site String,{_DIMENSIONS},
                site_key UInt64 MATERIALIZED {SITE_KEY.format(column="site")}
            ) ENGINE = MergeTree
            {_month_partitions("date_created")}
            ORDER BY (site_key, site, date_created)""",
            _hourly_table("hourly"),
            _HOURLY_COUNTS,
            _duration_hours_table("duration_hours"),
            f"""CREATE MATERIALIZED VIEW IF NOT EXISTS duration_hour_counts TO duration_hours AS
            SELECT {SITE_KEY.format(column="hostname")} AS site_key, hostname, kind, value,
                tupleElement(ls, 1) AS level, {_SPAN_HOUR} AS hour,
                {BUCKET.format(column="assumeNotNull(duration_ms)")} AS bucket, sum(sign) AS n
            FROM views
            ARRAY JOIN [{SITE_KIND}, {KIND_CODES["path"]}] AS kind, ['', pathname] AS value
            WHERE isNotNull(duration_ms)
            GROUP BY site_key, hostname, kind, value, {_LEVELS}, level, hour, bucket""",
            f"""CREATE TABLE IF NOT EXISTS durations (
                site_key UInt64,
                hostname String,
                kind UInt8,
                value String,
                bucket UInt16,
                hour Int64,
                duration Int64,
                n Int64
            ) ENGINE = SummingMergeTree
            {_month_partitions(f"hour * {HOUR_MS}")}
            ORDER BY (site_key, hostname, kind, value, bucket, hour, duration)
            SETTINGS index_granularity = {DURATION_GRANULE_ROWS}""",
            f"""CREATE MATERIALIZED VIEW IF NOT EXISTS duration_values TO durations AS
            SELECT {SITE_KEY.format(column="hostname")} AS site_key, hostname, kind, value,
                {BUCKET.format(column="assumeNotNull(duration_ms)")} AS bucket, intDiv(date_created, {HOUR_MS}) AS hour,
                assumeNotNull(duration_ms) AS duration, sum(sign) AS n
            FROM views
            ARRAY JOIN [{SITE_KIND}, {KIND_CODES["path"]}] AS kind, ['', pathname] AS value
            WHERE isNotNull(duration_ms)
            GROUP BY site_key, hostname, kind, value, bucket, hour, duration""",
            f"""CREATE TABLE IF NOT EXISTS event_hours (
                site_key UInt64,
                site String,
                hour Int64,
                name String,
                value String,
                events Int64
            ) ENGINE = SummingMergeTree
            {_month_partitions(f"hour * {HOUR_MS}")}
            ORDER BY (site_key, site, hour, name, value)""",
            f"""CREATE MATERIALIZED VIEW IF NOT EXISTS event_hour_counts TO event_hours AS
            SELECT {SITE_KEY.format(column="site")} AS site_key, site, intDiv(date_created, {HOUR_MS}) AS hour,
                name, value, toInt64(count()) AS events
            FROM events
            WHERE site != ''
            GROUP BY site_key, site, hour, name, value""",
            """CREATE TABLE IF NOT EXISTS sites (
                site_key UInt64,
                hostname String
            ) ENGINE = ReplacingMergeTree
            ORDER BY (site_key, hostname)""",
            f"""CREATE MATERIALIZED VIEW IF NOT EXISTS site_names TO sites AS
            SELECT DISTINCT {SITE_KEY.format(column="hostname")} AS site_key, hostname FROM views""",
            f"""CREATE TABLE IF NOT EXISTS drops (
                day Int64,
                hostname String,
                reason String,
                count UInt64
            ) ENGINE = SummingMergeTree(count)
            {_month_partitions("day")}
            ORDER BY (day, hostname, reason)""",
        ),
    ),
    (
        2,
        (
            # Entry and exit pages (SQLite analytics migration 13): the path of a view's internal referrer,
            # '' for none (an entry). Views stored before have '': each counts as an entry. /entries and
            # /exits read `views` (stats.py); no pre-aggregate holds it.
            "ALTER TABLE views ADD COLUMN referrer_path String DEFAULT ''",
        ),
    ),
    (
        3,
        (
            # Retention (store/clickhouse/retention.py): per site, the Unix ms before which its raw views and
            # events were deleted, the pre-aggregates kept. A site's floor is the largest row's.
            """CREATE TABLE IF NOT EXISTS raw_floor (
                hostname String,
                floor Int64
            ) ENGINE = MergeTree ORDER BY hostname""",
        ),
    ),
    (
        4,
        (
            # Imported daily totals (store/clickhouse/imported.py): writing a key again replaces its values,
            # the highest `version` winning (at merges, and in reads with FINAL). A small table, never
            # partitioned, so that every version of a key meets in the same merges.
            """CREATE TABLE IF NOT EXISTS imported_days (
                hostname String,
                dimension String,
                day Int64,
                value String,
                tool String,
                visitors Int64,
                pageviews Int64,
                visits Int64,
                bounces Int64,
                duration_s Int64,
                version UInt64
            ) ENGINE = ReplacingMergeTree(version)
            ORDER BY (hostname, dimension, day, value)""",
        ),
    ),
    (5, tuple(statement for table, order in _FIRST_COPIES.items() for statement in _copy(table, order))),
    (
        6,
        (
            # A property filter keeps the views with an event matching it; their beacon ids are collected
            # from this table by the view's site and time, one range for the period (stats._where), where
            # `events` (sorted by the event's own time, which may lie anywhere after or before its view's)
            # gave every matching event of the site's history. Written by the writer beside `events`
            # (hits.py); dropped first, so a migration cut short runs again whole (the backfill below).
            "DROP TABLE IF EXISTS event_views",
            f"""CREATE TABLE event_views (
                site String,
                group_name String,
                view_created Int64,
                date_created Int64,
                bid String,
                name String,
                value String,
                site_key UInt64 MATERIALIZED {SITE_KEY.format(column="site")}
            ) ENGINE = MergeTree
            {_month_partitions("view_created")}
            ORDER BY (site_key, site, view_created)""",
        ),
    ),
    (
        7,
        (
            # `event_views` with its view's flags and dimensions (PROP_VIEW_COLUMNS): a property-filtered
            # compact list is a GROUP BY over the period's matching event rows, one per view (stats._prop_groups),
            # where it tested each of the period's views against the set of matching beacon ids. Sorted by the
            # property as the filters compare it (filters.py: lower()), then the view's time: a filter on a name
            # or a name and value by equality reads that range of the months of the period (the partitions),
            # not every event of the period (6x fewer rows read for plan=pro at 10 M views). Written by
            # the writer beside `events` (hits.py); dropped first, so a migration cut short runs again whole
            # (its backfill reads `event_views`, dropped by migration 8 only).
            "DROP TABLE IF EXISTS prop_views",
            f"""CREATE TABLE prop_views (
                site String,
                group_name String,
                view_created Int64,
                date_created Int64,
                bid String,
                name String,
                value String,
                is_unique_user UInt8,
                is_unique_page UInt8,{_DIMENSIONS},
                site_key UInt64 MATERIALIZED {SITE_KEY.format(column="site")}
            ) ENGINE = MergeTree
            {_month_partitions("view_created")}
            ORDER BY (site_key, site, lower(name), lower(value), view_created)""",
        ),
    ),
    # `prop_views` holds all of `event_views` (migration 7): nothing reads or writes it any more.
    (8, ("DROP TABLE IF EXISTS event_views",)),
    (
        9,
        (
            # The durations of the views that carry properties, beside `prop_views` and sorted as it is: a
            # property-filtered /summary or /time reads the views matching the filter from `prop_views` and
            # their current durations from here, one range each (stats._prop_source), never `views`. The
            # writer adds a row per property of the view at each unload, and one per new property of a view
            # that already has a duration (hits.py); merges keep the highest version of each (view,
            # property), and the reads take it too, so they are exact before the merges. Dropped first, so
            # a migration cut short runs again whole (its backfill reads `prop_views` and `views`).
            "DROP TABLE IF EXISTS prop_durations",
            f"""CREATE TABLE prop_durations (
                site String,
                view_created Int64,
                bid String,
                name String,
                value String,
                version UInt32,
                duration_ms Int64,
                site_key UInt64 MATERIALIZED {SITE_KEY.format(column="site")}
            ) ENGINE = ReplacingMergeTree(version)
            {_month_partitions("view_created")}
            ORDER BY (site_key, site, lower(name), lower(value), view_created, bid, name, value)""",
        ),
    ),
    (
        10,
        (
            # A view's properties by its beacon id, which an unload carries alone: the writer looks them up
            # to write the unload's `prop_durations` rows. Filled by a materialized view from every INSERT
            # into `prop_views` (the writer's, a rename's copy); equal rows are merged into one and read
            # with DISTINCT. Narrow, ordered by bid, small granules, as `view_keys`.
            "DROP TABLE IF EXISTS prop_key_rows",
            "DROP TABLE IF EXISTS prop_keys",
            f"""CREATE TABLE prop_keys (
                bid String,
                site String,
                view_created Int64,
                name String,
                value String
            ) ENGINE = ReplacingMergeTree
            {_month_partitions("view_created")}
            ORDER BY (bid, site, name, value)
            SETTINGS index_granularity = {PROP_KEY_GRANULE_ROWS}""",
            f"CREATE MATERIALIZED VIEW prop_key_rows TO prop_keys AS SELECT {', '.join(PROP_KEY_COLUMNS)}"
            " FROM prop_views",
        ),
    ),
    # The copies re-made in granules of COPY_GRANULE_ROWS, the country's sorted by browser first (COPIES):
    # a browser filter read every row of the period; dropped and filled again from `views`.
    (
        11,
        tuple(statement for table in _FIRST_COPIES for statement in _copy(table, COPIES[table][1], COPY_GRANULE_ROWS)),
    ),
    # A copy sorted by the referrer (COPIES), filled from `views`: a referrer filter read every row of the period.
    (12, _copy("views_by_referrer", COPIES["views_by_referrer"][1], COPY_GRANULE_ROWS)),
    (
        13,
        (
            # DAY_LEVEL's spans in `duration_hours`: its view written again (18.16 cannot alter a view's query),
            # then the hours stored before (_backfill_day_spans).
            "DROP TABLE IF EXISTS duration_hour_counts",
            _DURATION_HOUR_COUNTS,
        ),
    ),
    (
        14,
        # The copies with 1,024-row granules, filled and swapped in by _rebuild.
        tuple(
            statement
            for table, (create, _, _) in _REBUILT.items()
            for statement in (f"DROP TABLE IF EXISTS {table}_next", create)
        ),
    ),
    (
        15,
        (
            # `views` again under each property of the view and under each property name alone (`named` 1, value
            # ''), lower-cased, once per view and key, sorted by the site, the key, then the view's time: a filter
            # pinning one property (prop_name and prop_value by equality) or one name (prop_name by equality, no
            # prop_value filter) reads that key's range of the period and sums `sign` as over `views`, one view
            # per row and version, with no GROUP BY by beacon id (stats._rows). Written by the writer (hits.py):
            # a view's rows under each new key, and an unload's pair under each key of the view. Dropped first,
            # so a migration cut short runs again whole (its backfill reads `prop_views` and `views`).
            "DROP TABLE IF EXISTS views_by_prop",
            f"""CREATE TABLE views_by_prop (
                bid String,
                hostname String,
                is_unique_user UInt8,
                is_unique_page UInt8,{_DIMENSIONS},
                duration_ms Nullable(Int64),
                date_created Int64,
                sign Int8,
                version UInt32,
                named UInt8,
                name String,
                value String,
                site_key UInt64 MATERIALIZED {SITE_KEY.format(column="hostname")}
            ) ENGINE = CollapsingMergeTree(sign)
            {_month_partitions("date_created")}
            ORDER BY (site_key, hostname, named, lower(name), lower(value), date_created, bid, version)
            SETTINGS index_granularity = {PROP_COPY_GRANULE_ROWS}""",
        ),
    ),
    (
        16,
        (
            # The compact lists under one browser or referrer filter (stats._hourly_groups): their counts per site,
            # filter field and key, kind, span level and hour, as `hourly` holds the unfiltered ones, where a
            # filtered list grouped every raw row of the value's range by a string label. Dropped first, so a
            # migration cut short runs again whole (its backfill reads `views`).
            "DROP TABLE IF EXISTS filter_hour_counts",
            "DROP TABLE IF EXISTS filter_hours",
            f"""CREATE TABLE filter_hours (
                site_key UInt64,
                hostname String,
                field UInt8,
                fkey String,
                kind UInt8,
                level UInt8,
                hour Int64,
                value String,{"".join(f"{chr(10)}                {name} Int64," for name in FILTER_COUNTS).rstrip(",")}
            ) ENGINE = SummingMergeTree
            {_month_partitions(f"hour * {HOUR_MS}")}
            ORDER BY (site_key, hostname, field, fkey, kind, level, hour, value){_GRANULES}""",
            "CREATE MATERIALIZED VIEW filter_hour_counts TO filter_hours AS " + _FILTER_HOURS_SELECT.format(where="1"),
        ),
    ),
    (
        17,
        (
            # The compact lists under one property name filter alone (stats._hourly_groups): their counts per site,
            # name, kind, span level and hour, from the rows of `views_by_prop` under each name alone, where such a
            # list grouped every matching view's row of the period by a string label. Dropped first, so a
            # migration cut short runs again whole (its backfill reads `views_by_prop`).
            "DROP TABLE IF EXISTS prop_name_hour_counts",
            "DROP TABLE IF EXISTS prop_name_hours",
            f"""CREATE TABLE prop_name_hours (
                site_key UInt64,
                hostname String,
                name String,
                kind UInt8,
                level UInt8,
                hour Int64,
                value String,{"".join(f"{chr(10)}                {name} Int64," for name in FILTER_COUNTS).rstrip(",")}
            ) ENGINE = SummingMergeTree
            {_month_partitions(f"hour * {HOUR_MS}")}
            ORDER BY (site_key, hostname, name, kind, level, hour, value){_GRANULES}""",
            "CREATE MATERIALIZED VIEW prop_name_hour_counts TO prop_name_hours AS "
            + _PROP_NAME_HOURS_SELECT.format(where="1"),
        ),
    ),
    (
        18,
        (
            # Each view's key set on rows of its own in `views_by_prop` (PROP_SET_LEVEL), filled from `prop_views`
            # and `views` by backfill_prop_sets: a filter that can match several keys of one view reads one row per
            # view and version. Arrays default to empty, so the rows under `named` 0 and 1 need no rewrite.
            "ALTER TABLE views_by_prop ADD COLUMN key_names Array(String) ",
            "ALTER TABLE views_by_prop ADD COLUMN key_values Array(String) ",
        ),
    ),
    (
        19,
        (
            # The two views grouping by hour, then joining the span levels (_HOURLY_COUNTS_BY_HOUR): the same sums,
            # a third of the grouping's work per INSERT into `views`. The tables keep their rows.
            "DROP TABLE IF EXISTS hourly_counts",
            _HOURLY_COUNTS_BY_HOUR,
            "DROP TABLE IF EXISTS filter_hour_counts",
            _FILTER_HOUR_COUNTS_BY_HOUR,
        ),
    ),
    (
        20,
        (
            # `prop_name_hour_counts` grouping by hour, then joining the span levels: the same sums, as in 19.
            "DROP TABLE IF EXISTS prop_name_hour_counts",
            _PROP_NAME_HOUR_COUNTS_BY_HOUR,
        ),
    ),
)
# Migration -> the sorted copies it makes, filled from the rows of `views` after its statements ran.
_COPIES_MADE: Final = {5: tuple(_FIRST_COPIES), 11: tuple(_FIRST_COPIES), 12: ("views_by_referrer",)}
TABLES: Final = (
    "views",
    "view_keys",
    "events",
    "drops",
    "hourly",
    "duration_hours",
    "durations",
    "event_hours",
    "sites",
    "raw_floor",
    "imported_days",
    *COPIES,
    "prop_views",
    "prop_durations",
    "prop_keys",
    "views_by_prop",
    "filter_hours",
    "prop_name_hours",
)

_VERSIONS: Final = """CREATE TABLE IF NOT EXISTS medama_schema (
    version UInt32,
    applied_ms Int64
) ENGINE = MergeTree ORDER BY version"""


def schema_version(client: Client) -> int:
    """The last migration applied (0 on an empty database)."""
    client.command(_VERSIONS)
    rows = client.rows("SELECT max(version) FROM medama_schema")
    return int(rows[0][0]) if rows else 0


# 18.16 knows no `ADD COLUMN IF NOT EXISTS`: a migration adding a column checks for it first.
_ADD_COLUMN: Final = re.compile(r"ALTER TABLE (\w+) ADD COLUMN (\w+) ")


def _added_already(client: Client, statement: str) -> bool:
    """Whether `statement` adds a column the table has (a migration cut short ran it already)."""
    found = _ADD_COLUMN.match(statement)
    if found is None:
        return False
    rows = client.rows(
        "SELECT count() FROM system.columns WHERE database = currentDatabase() AND table = {t:String}"
        " AND name = {c:String}",
        {"t": found.group(1), "c": found.group(2)},
    )
    return bool(int(rows[0][0]))


def database_bytes(client: Client) -> int:
    """Bytes on disk of the database's tables: their active parts, compressed, as the server counts them."""
    rows = client.rows("SELECT sum(bytes_on_disk) FROM system.parts WHERE database = currentDatabase() AND active")
    return int(rows[0][0]) if rows and rows[0][0] is not None else 0


def migrate(client: Client, now_ms: int) -> int:
    """Apply the migrations not applied yet, each recorded after its statements ran; return the version.

    ClickHouse has no transactional DDL: every statement is idempotent (IF NOT EXISTS, a column added
    only when missing, or a DROP of what a later one creates), so a migration cut short runs again whole
    on the next start.
    """
    version = schema_version(client)
    for number, statements in MIGRATIONS:
        if number <= version:
            continue
        for statement in statements:
            if not _added_already(client, statement):
                client.command(statement)
        if number in _COPIES_MADE:
            _backfill_copies(client, _COPIES_MADE[number])
        if number == 6:
            _backfill_event_views(client)
        if number == 7:
            _backfill_prop_views(client)
        if number == 9:
            backfill_prop_durations(client)
        if number == 10:
            _backfill_prop_keys(client)
        if number == 13:
            _backfill_day_spans(client)
        if number == 14:
            _rebuild(client)
        if number == 15:
            backfill_views_by_prop(client)
        if number == 16:
            _backfill_filter_hours(client)
        if number == 17:
            _backfill_prop_name_hours(client)
        if number == 18:
            backfill_prop_sets(client)
        client.insert("medama_schema", ("version", "applied_ms"), [(number, now_ms)])
        version = number
    return version
