"""A website's rows in ClickHouse as one unit: its visitor summary, its hits of a day, rename and removal.

ClickHouse changes stored rows only through mutations (ALTER TABLE ... DELETE),
which run in the background after the statement returns; these functions
wait until the mutations they started are done (MUTATION_WAIT_S at most), so
that the stats queries that follow see the change. A hostname is part of
every table's sort key and so cannot be updated in place: a rename copies the
site's rows under the new name, then deletes the old ones. Neither is atomic:
a hit written for the old name in between is deleted with it, as it would
have been refused a moment later.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Final

from medama_core.store.clickhouse.client import Client, QueryFailed
from medama_core.store.clickhouse.hits import DIMENSION_COLUMNS, VIEW_TABLE_COLUMNS
from medama_core.store.clickhouse.schema import (
    COPIES,
    PROP_DURATION_COLUMNS,
    PROP_ROW_COLUMNS,
    PROP_VIEW_COLUMNS,
    ROW_COUNTS,
    SITE_KEY,
)
from medama_core.store.clickhouse.sql import in_list

__all__ = ["delete_site_data", "hits_on", "rename_site_data", "unique_visitors_since", "wait_for_mutations"]

DAY_MS: Final = 86_400_000

# A mutation rewrites the parts holding the site's rows: seconds for millions of rows. Past this the
# server is stuck or overloaded, and the caller gets an error rather than a request hanging for ever.
MUTATION_WAIT_S: Final = 300.0
MUTATION_POLL_S: Final = (0.02, 0.5)  # first and longest pause between two looks at system.mutations

# Every table with the column(s) naming the site of a row.
_SITE_COLUMNS: Final = {
    "views": ("hostname",),
    "view_keys": ("hostname",),
    "events": ("site", "group_name"),
    "prop_views": ("site", "group_name"),
    "prop_durations": ("site",),
    "views_by_prop": ("hostname",),
    "drops": ("hostname",),
    "imported_days": ("hostname",),
}
# The tables written by materialized views (schema.py) follow the copied views and events: they are
# deleted, and copied only for what a purged site's deleted rows counted (_move_purged).
_DERIVED: Final = {
    "hourly": ("hostname",),
    "duration_hours": ("hostname",),
    "durations": ("hostname",),
    "event_hours": ("site",),
    "sites": ("hostname",),
    "raw_floor": ("hostname",),
    "prop_keys": ("site",),  # written from `prop_views` (schema migration 10)
    "filter_hours": ("hostname",),  # schema migration 16; not kept for purged days (stats._hourly_groups)
    "prop_name_hours": ("hostname",),  # schema migration 17; not read for a purged site (stats._hourly_groups)
    **{copy: ("hostname",) for copy in COPIES},
}
# The pre-aggregates of a purged site's deleted days exist nowhere else (store/clickhouse/retention.py): per
# table, its site column, the columns of its sort key and the columns its merges sum.
_KEPT: Final = {
    "hourly": ("hostname", ("kind", "level", "hour", "value"), tuple(ROW_COUNTS)),
    "duration_hours": ("hostname", ("kind", "value", "level", "hour", "bucket"), ("n",)),
    "durations": ("hostname", ("kind", "value", "bucket", "hour", "duration"), ("n",)),
    "event_hours": ("site", ("hour", "name", "value"), ("events",)),
}
_COLUMNS: Final = {
    "views": VIEW_TABLE_COLUMNS,
    "view_keys": ("bid", "hostname", "date_created"),
    "events": ("bid", "batch_id", "group_name", "name", "value", "date_created", "site", *DIMENSION_COLUMNS),
    "prop_views": PROP_VIEW_COLUMNS,
    "prop_durations": PROP_DURATION_COLUMNS,
    "views_by_prop": PROP_ROW_COLUMNS,
    "drops": ("day", "hostname", "reason", "count"),
    "imported_days": (
        "hostname",
        "dimension",
        "day",
        "value",
        "tool",
        "visitors",
        "pageviews",
        "visits",
        "bounces",
        "duration_s",
        "version",
    ),
}


def unique_visitors_since(client: Client, hostnames: list[str], since_ms: int) -> dict[str, int]:
    """Unique visitors (views flagged `is_unique_user`) per hostname since `since_ms`; absent sites count 0."""
    counts = {hostname: 0 for hostname in hostnames}
    if not hostnames:
        return counts
    params: dict[str, object] = {"since": since_ms}
    names = in_list("h", hostnames, params)
    keys = ", ".join(f"sipHash64({{h{i}:String}})" for i in range(len(hostnames)))
    rows = client.rows(
        f"SELECT hostname, sum(sign) FROM views WHERE site_key IN ({keys}) AND hostname IN ({names})"
        " AND is_unique_user = 1"
        " AND date_created > {since:Int64} GROUP BY hostname",
        params,
    )
    counts.update({str(hostname): int(count) for hostname, count in rows})
    return counts


def hits_on(client: Client, day_ms: int) -> dict[str, int]:
    """Hits stored per site on the UTC day starting at `day_ms`, as the quota counts them: each page view once
    (with the properties it carried), and each custom event once (a batch id of events that no view of the
    same beacon id and millisecond carried). Read from the rows themselves, so every node's hits count."""
    params: dict[str, object] = {"lo": day_ms, "hi": day_ms + DAY_MS}
    day = "date_created >= {lo:Int64} AND date_created < {hi:Int64}"
    counts: dict[str, int] = {}
    for hostname, views in client.rows(f"SELECT hostname, sum(sign) FROM views WHERE {day} GROUP BY hostname", params):
        if int(views):
            counts[str(hostname)] = int(views)
    # A view's properties are events with the view's beacon id and date (api/events.py writes them so);
    # only the views of beacon ids that have events today are looked at.
    custom = client.rows(
        f"SELECT group_name, uniqExact(batch_id) FROM events WHERE {day} AND (bid, date_created) NOT IN"
        f" (SELECT bid, date_created FROM views WHERE {day} AND sign = 1"
        f" AND bid IN (SELECT bid FROM events WHERE {day}))"
        " GROUP BY group_name",
        params,
    )
    for group, batches in custom:
        counts[str(group)] = counts.get(str(group), 0) + int(batches)
    return counts


def rename_site_data(client: Client, old: str, new: str) -> None:
    """Move every view, event, drop count and imported day of `old` to `new`.

    Rows already under `new` belong to no website (the caller checked the name is free): they are
    leftovers of an earlier site of that name, and are dropped first.
    """
    delete_site_data(client, [new])
    params: dict[str, object] = {"old": old, "new": new}
    for table, site_columns in _SITE_COLUMNS.items():
        columns = _COLUMNS[table]
        values = [f"if({c} = {{old:String}}, {{new:String}}, {c})" if c in site_columns else c for c in columns]
        where = " OR ".join(f"{c} = {{old:String}}" for c in site_columns)
        client.command(
            f"INSERT INTO {table} ({', '.join(columns)}) SELECT {', '.join(values)} FROM {table} WHERE {where}", params
        )
    if client.rows("SELECT count() FROM raw_floor WHERE hostname = {old:String}", params)[0][0]:
        _move_purged(client, params)
    _delete(client, [old])


def _move_purged(client: Client, params: dict[str, object]) -> None:
    """Give a purged site's new name the pre-aggregates of its deleted rows, and its floor.

    The copied raw rows wrote the new name's pre-aggregates through the materialized views; what the old
    name has beyond them (its sums less the new name's, per key) is what its deleted rows counted, in
    every span level, including the spans that straddle the floor. That difference goes in under the new
    name, and the merges add it up."""
    for table, (site, keys, sums) in _KEPT.items():
        key = SITE_KEY.format(column="{new:String}")
        differences = ", ".join(f"sum(if({site} = {{old:String}}, {c}, -{c})) AS {c}" for c in sums)
        nonzero = " OR ".join(f"{c} != 0" for c in sums)
        client.command(
            f"INSERT INTO {table} (site_key, {site}, {', '.join(keys)}, {', '.join(sums)})"
            f" SELECT {key}, {{new:String}}, {', '.join(keys)}, {', '.join(sums)} FROM ("
            f" SELECT {', '.join(keys)}, {differences} FROM {table}"
            f" WHERE {site} IN ({{old:String}}, {{new:String}}) GROUP BY {', '.join(keys)}"
            f") WHERE {nonzero}",
            params,
        )
    client.command(
        "INSERT INTO raw_floor (hostname, floor) SELECT {new:String}, floor FROM raw_floor"
        " WHERE hostname = {old:String}",
        params,
    )
    client.command(
        f"INSERT INTO sites (site_key, hostname) SELECT {SITE_KEY.format(column='{new:String}')}, {{new:String}}"
        " FROM sites WHERE hostname = {old:String} LIMIT 1",
        params,
    )


def delete_site_data(client: Client, hostnames: Sequence[str]) -> None:
    """Remove every view, event, drop count and imported day of the given sites (events by their site or their
    group name)."""
    if hostnames:
        _delete(client, hostnames)


def _delete(client: Client, hostnames: Sequence[str]) -> None:
    for table, site_columns in {**_SITE_COLUMNS, **_DERIVED}.items():
        params: dict[str, object] = {}
        names = in_list("h", hostnames, params)
        where = " OR ".join(f"{c} IN ({names})" for c in site_columns)
        client.command(f"ALTER TABLE {table} DELETE WHERE {where}", params)
    wait_for_mutations(client, (*_SITE_COLUMNS, *_DERIVED))


def wait_for_mutations(client: Client, tables: Sequence[str]) -> None:
    """Return once no mutation of `tables` is running; raise QueryFailed after MUTATION_WAIT_S."""
    params: dict[str, object] = {}
    names = in_list("t", tables, params)
    sql = (
        "SELECT count() FROM system.mutations WHERE database = currentDatabase()"
        f" AND table IN ({names}) AND is_done = 0"
    )
    deadline = time.monotonic() + MUTATION_WAIT_S
    pause, longest = MUTATION_POLL_S
    while int(client.rows(sql, params)[0][0]):
        if time.monotonic() > deadline:
            raise QueryFailed(f"ClickHouse mutations of {', '.join(tables)} still running after {MUTATION_WAIT_S} s")
        time.sleep(pause)
        pause = min(pause * 2, longest)
