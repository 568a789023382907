"""Retention on ClickHouse: a site's raw views and events older than its cutoff deleted, its pre-aggregates kept.

The tables are partitioned by month, but a month holds every site: dropping a
partition would take all of them, so one site's old rows go by mutation
(ALTER TABLE ... DELETE, on 18.16 and current releases alike), which the
server runs in the background over the parts that hold them. The
pre-aggregates (`hourly`, `duration_hours`, `durations`, `event_hours`) are
written by materialized views on INSERT only, so the deletes leave them
whole: unfiltered summaries, top lists and /properties of the deleted days
still come from them. `raw_floor` records the cutoff the site was purged to.
"""

from __future__ import annotations

from typing import Final

from medama_core.store.clickhouse.client import Client
from medama_core.store.clickhouse.schema import COPIES, PROP_COPY_KEYS, SITE_KEY
from medama_core.store.clickhouse.site_data import wait_for_mutations
from medama_core.store.protocol import Step

# The raw tables and the column naming a row's site in each.
_RAW: Final = {
    "views": "hostname",
    "view_keys": "hostname",
    "events": "site",
    "prop_views": "site",
    "prop_durations": "site",
    "prop_keys": "site",
    "views_by_prop": "hostname",
    **dict.fromkeys(COPIES, "hostname"),
}
# The time a row is older than the cutoff by, when not its own date_created: a `prop_views` row goes with
# its event (its date) or with its view (the view's), whichever is deleted first, so a property-filtered
# list read there counts no view that `views` no longer holds, nor one whose event is gone. A view's
# durations and property keys go with the view: a read takes a view only through a `prop_views` row, so
# those of a property whose event alone is gone are never read. Its rows in `views_by_prop` go with the
# view too, and those of a kept view under a property whose events all go are deleted by key
# (_props_losing_events).
_OLDEST: Final = {
    "prop_views": "least(date_created, view_created)",
    "prop_durations": "view_created",
    "prop_keys": "view_created",
}


def purge_step(client: Client, hostname: str, before_ms: int) -> Step:
    """Delete every raw row of the site older than `before_ms` (one mutation per table), and wait for it."""
    params: dict[str, object] = {"hostname": hostname, "before": before_ms}
    key = SITE_KEY.format(column="{hostname:String}")
    rows = client.rows(
        f"SELECT count() FROM views WHERE site_key = {key} AND hostname = {{hostname:String}}"
        " AND date_created < {before:Int64}",
        params,
    )
    found = int(rows[0][0])
    if not found:
        return Step(0)
    orphaned = _props_losing_events(client, params)
    for table, column in _RAW.items():
        client.command(
            f"ALTER TABLE {table} DELETE WHERE {column} = {{hostname:String}}"
            f" AND {_OLDEST.get(table, 'date_created')} < {{before:Int64}}",
            params,
        )
    for start in range(0, len(orphaned), PROP_DELETE_ROWS):
        chunk: dict[str, object] = {"hostname": hostname}
        tuples = []
        for i, (bid, at, named, name, value) in enumerate(orphaned[start : start + PROP_DELETE_ROWS]):
            chunk |= {f"b{i}": bid, f"t{i}": at, f"l{i}": named, f"n{i}": name, f"v{i}": value}
            tuples.append(f"({{b{i}:String}}, {{t{i}:Int64}}, {{l{i}:UInt8}}, {{n{i}:String}}, {{v{i}:String}})")
        client.command(
            "ALTER TABLE views_by_prop DELETE WHERE hostname = {hostname:String}"
            f" AND (bid, date_created, named, lower(name), lower(value)) IN ({', '.join(tuples)})",
            chunk,
        )
    wait_for_mutations(client, tuple(_RAW))
    client.insert("raw_floor", ("hostname", "floor"), [(hostname, before_ms)])
    return Step(found)


# (view, key) pairs deleted from `views_by_prop` per mutation (_props_losing_events), five values each: a
# statement of a few hundred KB at most.
PROP_DELETE_ROWS: Final = 1000


def _props_losing_events(client: Client, params: dict[str, object]) -> list[tuple[str, int, int, str, str]]:
    """The (bid, view time) and `views_by_prop` key (named, lower-cased name and value: schema.PROP_COPY_KEYS) of
    each kept view (not older than the cutoff) whose every event under that key is older: the purge deletes those
    events, so the view matches the key no more, and its rows under it (schema migration 15), which go with the
    view, must go too. Read before the deletes: only views with an event older than the cutoff are looked at."""
    rows = client.rows(
        "SELECT bid, view_created, tupleElement(k, 1) AS pl, tupleElement(k, 2) AS pn, tupleElement(k, 3) AS pv"
        f" FROM prop_views ARRAY JOIN {PROP_COPY_KEYS} AS k"
        " WHERE site = {hostname:String} AND view_created >= {before:Int64} AND bid IN ("
        " SELECT bid FROM prop_views WHERE site = {hostname:String} AND view_created >= {before:Int64}"
        " AND date_created < {before:Int64})"
        " GROUP BY bid, view_created, pl, pn, pv HAVING max(date_created) < {before:Int64}",
        params,
    )
    return [(str(bid), int(at), int(named), str(name), str(value)) for bid, at, named, name, value in rows]


def raw_floor(client: Client, hostname: str) -> int | None:
    """Unix ms before which retention deleted the site's raw rows; None when it deleted none."""
    rows = client.rows(
        "SELECT max(floor), count() FROM raw_floor WHERE hostname = {hostname:String}", {"hostname": hostname}
    )
    return int(rows[0][0]) if rows and int(rows[0][1]) else None
