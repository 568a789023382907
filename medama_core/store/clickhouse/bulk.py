"""Bulk import and export of views and events in ClickHouse: streamed in large chunks, read back in a total order.

`insert_views` and `insert_events` take rows in the column order of the
SQLite store (store/rows.py VIEW_COLUMNS, EVENT_COLUMNS), as transfer.py
reads them from a file, and store them CHUNK_ROWS at a time with the rules of
ingestion: a view whose (bid, hostname) is stored already, or came earlier,
is ignored; an event takes the site and dimensions of its view. Unlike a
SQLite import, an import is not one transaction: the chunks before a failure
stay stored (importing the same views again adds nothing; events would be
added twice).

`export_rows` streams the current rows (an unloaded view once, with its last
duration) in the SQLite export's order, so both engines export equal data to
equal files. `export_window` reads one site's rows a page at a time, for the
download of api/export.py: ties on the date in the order of the remaining
columns, where SQLite has the order they were stored in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import islice
from typing import Final

from medama_core.store.clickhouse.client import Client
from medama_core.store.clickhouse.hits import BULK_LOOKUP_IDS, store_events, store_views
from medama_core.store.rows import EVENT_COLUMNS, VIEW_COLUMNS, Row

__all__ = ["CHUNK_ROWS", "export_rows", "export_window", "insert_events", "insert_views", "stored_batch_ids"]

# Rows per chunk: one key lookup and one INSERT each. Every chunk of views reads the keys of the
# ids it brings, whichever granules of view_keys they fall in: larger chunks read each granule
# once for many ids. 100,000 rows of views are ~30 MB in Python while they wait.
CHUNK_ROWS: Final = 100_000

_INTEGER: Final = frozenset({"is_unique_user", "is_unique_page", "duration_ms", "date_created"})
_ORDER: Final = {
    "views": ("date_created", "hostname", "bid"),
    "events": ("date_created", "group_name", *EVENT_COLUMNS),
}
_SITE: Final = {"views": "hostname", "events": "group_name"}


def _chunks(rows: Iterable[Row]) -> Iterator[list[Row]]:
    iterator = iter(rows)
    while chunk := list(islice(iterator, CHUNK_ROWS)):
        yield chunk


def insert_views(client: Client, rows: Iterable[Row], progress: Callable[[int], None] | None = None) -> int:
    """Store views (VIEW_COLUMNS order, or TRACKED_VIEW_COLUMNS), CHUNK_ROWS at a time; return how many were new."""
    stored = 0
    for chunk in _chunks(rows):
        stored += store_views(client, chunk, BULK_LOOKUP_IDS)
        if progress is not None:
            progress(len(chunk))
    return stored


def insert_events(client: Client, rows: Iterable[Row], progress: Callable[[int], None] | None = None) -> int:
    """Store events (EVENT_COLUMNS order) under their views, CHUNK_ROWS at a time; return how many."""
    stored = 0
    for chunk in _chunks(rows):
        stored += store_events(client, chunk, BULK_LOOKUP_IDS)
        if progress is not None:
            progress(len(chunk))
    return stored


def export_rows(
    client: Client,
    kind: str,
    hostname: str | None = None,
    start_ms: int | None = None,
    end_ms: int | None = None,
) -> Iterator[Row]:
    """Rows with `start_ms <= date_created < end_ms` (of one site), in the order the SQLite export writes them.

    A view's current row is the one whose copies' signs add up to +1 (its unload pairs cancel).
    """
    columns: Sequence[str] = VIEW_COLUMNS if kind == "views" else EVENT_COLUMNS
    if kind not in _ORDER:
        raise ValueError(f"no export of {kind!r}")
    where = ["1"]
    params: dict[str, object] = {}
    for clause, name, value in (
        (f"{_SITE[kind]} = {{hostname:String}}", "hostname", hostname),
        ("date_created >= {start:Int64}", "start", start_ms),
        ("date_created < {end:Int64}", "end", end_ms),
    ):
        if value is not None:
            where.append(clause)
            params[name] = value
    source = "views FINAL" if kind == "views" else "events"
    sql = f"SELECT {', '.join(columns)} FROM {source} WHERE {' AND '.join(where)} ORDER BY {', '.join(_ORDER[kind])}"
    integer = [column in _INTEGER for column in columns]
    for fields in client.stream(sql, params):
        yield tuple(int(f) if is_int and f is not None else f for f, is_int in zip(fields, integer, strict=True))


# Each kind's rows of one site, and the order of a page (ties on the date by the other columns).
_PAGE_SITE: Final = {
    "views": "site_key = sipHash64({hostname:String}) AND hostname = {hostname:String}",
    "events": "group_name = {hostname:String}",
}
_PAGE_ORDER: Final = {"views": ("date_created", "bid"), "events": ("date_created", *EVENT_COLUMNS)}


def export_window(
    client: Client, hostname: str, kind: str, after: tuple[int, int] | None, limit: int
) -> tuple[list[Row], tuple[int, int] | None]:
    """Up to `limit` of one site's current rows in (date, other columns) order from `after`, and the next `after`
    (None: none are left).

    `after` is (date, skip): the rows from that date on, less the first `skip` of them. A page first finds
    the date of the `skip + limit`-th stored row from there (reading the date column alone), then reads the
    rows up to that date only, so a page costs about its own rows however many follow. Stored rows can
    outnumber current ones (an unload's pair until it merges): a page may then hold fewer than `limit`
    rows and the next one start past its last date.
    """
    if kind not in _PAGE_SITE or limit < 1:
        raise ValueError(f"no export of {kind!r} by {limit}")
    columns: Sequence[str] = VIEW_COLUMNS if kind == "views" else EVENT_COLUMNS
    start, skip = after if after is not None else (-(2**63), 0)
    params: dict[str, object] = {"hostname": hostname, "start": start}
    where = f"{_PAGE_SITE[kind]} AND date_created >= {{start:Int64}}"
    # Integers in LIMIT are written out (a server parameter there is not taken by every version).
    # (Only rows with sign 1 are counted there; the page itself reads through FINAL, which a condition on
    # `sign` must not precede: moved to PREWHERE it would keep a replaced row with its successor.)
    stored = f"{where} AND sign = 1" if kind == "views" else where
    found = client.rows(
        f"SELECT date_created FROM {kind} WHERE {stored} ORDER BY date_created LIMIT {int(skip + limit - 1)}, 1",
        params,
    )
    bound = int(found[0][0]) if found else None
    if bound is not None:
        where += " AND date_created <= {bound:Int64}"
        params["bound"] = bound
    source = "views FINAL" if kind == "views" else "events"
    rows = [
        tuple(values)
        for values in client.rows(
            f"SELECT {', '.join(columns)} FROM {source} WHERE {where}"
            f" ORDER BY {', '.join(_PAGE_ORDER[kind])} LIMIT {int(skip)}, {int(limit)}",
            params,
        )
    ]
    at = columns.index("date_created")
    if len(rows) == limit:
        last = int(str(rows[-1][at]))
        tied = sum(1 for row in rows if row[at] == last)
        return rows, (last, tied + (skip if last == start else 0))
    return rows, None if bound is None else (bound + 1, 0)


def stored_batch_ids(client: Client, group: str, start_ms: int, end_ms: int) -> set[str]:
    """The batch ids of the events of `group` (their group_name) stored with dates in [start_ms, end_ms]."""
    rows = client.rows(
        "SELECT DISTINCT batch_id FROM events WHERE group_name = {g:String}"
        " AND date_created BETWEEN {lo:Int64} AND {hi:Int64}",
        {"g": group, "lo": start_ms, "hi": end_ms},
    )
    return {str(row[0]) for row in rows}
