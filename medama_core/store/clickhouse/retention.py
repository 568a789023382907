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
from medama_core.store.clickhouse.schema import COPIES, SITE_KEY
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
    **dict.fromkeys(COPIES, "hostname"),
}
# The time a row is older than the cutoff by, when not its own date_created: a `prop_views` row goes with
# its event (its date) or with its view (the view's), whichever is deleted first, so a property-filtered
# list read there counts no view that `views` no longer holds, nor one whose event is gone. A view's
# durations and property keys go with the view: a read takes a view only through a `prop_views` row, so
# those of a property whose event alone is gone are never read.
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
    for table, column in _RAW.items():
        client.command(
            f"ALTER TABLE {table} DELETE WHERE {column} = {{hostname:String}}"
            f" AND {_OLDEST.get(table, 'date_created')} < {{before:Int64}}",
            params,
        )
    wait_for_mutations(client, tuple(_RAW))
    client.insert("raw_floor", ("hostname", "floor"), [(hostname, before_ms)])
    return Step(found)


def raw_floor(client: Client, hostname: str) -> int | None:
    """Unix ms before which retention deleted the site's raw rows; None when it deleted none."""
    rows = client.rows(
        "SELECT max(floor), count() FROM raw_floor WHERE hostname = {hostname:String}", {"hostname": hostname}
    )
    return int(rows[0][0]) if rows and int(rows[0][1]) else None
