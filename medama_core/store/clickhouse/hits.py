"""Write tracker hits to ClickHouse in batches: new views and their events, unloads, custom events, drop counts.

The same `Op`s as the SQLite store (store/hits.py) and the same contract:
`apply_batch` returns, per op, None or the error that kept it out. ClickHouse
has no transaction across statements, so a batch is a few INSERTs in a fixed
order (views with their keys, then events, then unload rows, then drop
counts); an op is acknowledged once every INSERT holding a row of it has
returned, which means ClickHouse has written the rows to a part on its disk.
An op whose rows cannot be written at all (a wrong type) fails alone, before
anything is sent.

A view whose (bid, hostname) is already stored, or came earlier in the
batch, is ignored, as ON CONFLICT DO NOTHING does in SQLite. An unload finds
the current row of each view of its beacon id (through `view_keys`) and adds
the pair that replaces it (schema.py); the last unload of a batch wins, as it
would row by row. An unload for a beacon id with no view is ignored, as
SQLite's UPDATE is. A custom event takes the site and dimensions of the view
of its beacon id, and every event with a site gets a row in `prop_views`
with its view's time, flags and dimensions (schema migration 7), written with the events.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Final

from medama_core.store.clickhouse.client import Client
from medama_core.store.clickhouse.schema import PROP_VIEW_COLUMNS
from medama_core.store.clickhouse.sql import id_chunks, id_set, tsv_line
from medama_core.store.hits import EVENT_COLUMNS, VIEW_COLUMNS, DropCount, Duration, NewEvents, NewView, Op, Row

__all__ = [
    "BULK_LOOKUP_IDS",
    "DIMENSION_COLUMNS",
    "EVENT_TABLE_COLUMNS",
    "VIEW_TABLE_COLUMNS",
    "apply_batch",
    "drop_counts",
    "event_rows",
    "event_view_rows",
    "fetch_views",
    "new_views",
    "store_events",
    "store_views",
]

# The columns of a stored view: the SQLite store's (VIEW_COLUMNS order), then the internal referrer's path
# (schema migration 2: entry and exit pages; '' for rows of the bulk copies, which do not carry it).
STORED_VIEW_COLUMNS: Final = (*VIEW_COLUMNS, "referrer_path")
# The columns of `views` as written: a stored view's, then sign and version.
VIEW_TABLE_COLUMNS: Final = (*STORED_VIEW_COLUMNS, "sign", "version")
DIMENSION_COLUMNS: Final = tuple(VIEW_COLUMNS[2:3] + VIEW_COLUMNS[5:16])  # pathname .. utm_campaign, no flags
EVENT_TABLE_COLUMNS: Final = (*EVENT_COLUMNS, "site", *DIMENSION_COLUMNS)
_DIMENSION_AT: Final = tuple(VIEW_COLUMNS.index(c) for c in DIMENSION_COLUMNS)
_BID, _HOST, _DURATION = VIEW_COLUMNS.index("bid"), VIEW_COLUMNS.index("hostname"), VIEW_COLUMNS.index("duration_ms")
_DATE: Final = VIEW_COLUMNS.index("date_created")
_UNIQUE_USER, _UNIQUE_PAGE = VIEW_COLUMNS.index("is_unique_user"), VIEW_COLUMNS.index("is_unique_page")
_NO_DIMENSIONS: Final = ("",) * len(DIMENSION_COLUMNS)
# Beacon ids looked up in one statement (sql.id_set): a batch of hits in one lookup, a bulk import's
# chunk in a few. 10,000 ids of ~10 bytes are ~210 KB hex-encoded, under the max_query_size (256 KiB)
# of a server that takes the value inside the statement (18.16).
LOOKUP_IDS: Final = 1000
BULK_LOOKUP_IDS: Final = 10_000


def apply_batch(client: Client, ops: Sequence[Op]) -> list[Exception | None]:
    """Write `ops`; return, per op, None or the error that kept it (or, after a failed INSERT, part of it) out."""
    errors: list[Exception | None] = [None] * len(ops)
    for i, op in enumerate(ops):  # every row must be writable; a bad one fails its op alone
        try:
            _check(op)
        except (TypeError, ValueError) as exc:
            errors[i] = exc
    good = [op for op, error in zip(ops, errors, strict=True) if error is None]
    done = 0  # steps that returned: views, events, unloads, drop counts
    try:
        fresh = _store_fresh_views(client, [(*op.view, op.referrer_path) for op in good if isinstance(op, NewView)])
        done = 1
        _store_batch_events(client, good, {(str(v[_BID]), str(v[_HOST])) for v in fresh})
        done = 2
        _store_durations(client, [op for op in good if isinstance(op, Duration)])
        done = 3
        _store_drops(client, [op for op in good if isinstance(op, DropCount)])
    except Exception as exc:
        # Nothing from the failed step on was written: ops whose rows all came before it are stored.
        for i, op in enumerate(ops):
            if errors[i] is None and _LAST_STEP[type(op)] >= done:
                errors[i] = exc
    return errors


# The last step (index into the steps of apply_batch) that writes rows of each kind of op.
_LAST_STEP: Final[dict[type, int]] = {NewView: 1, NewEvents: 1, Duration: 2, DropCount: 3}


def _check(op: Op) -> None:
    if type(op) is NewView:
        if len(op.view) != len(VIEW_COLUMNS):
            raise ValueError(f"a view has {len(VIEW_COLUMNS)} values, got {len(op.view)}")
        tsv_line((*op.view, op.referrer_path)).encode()  # a lone surrogate cannot be stored: UnicodeEncodeError
        for event in op.events:
            _check_event(event)
    elif type(op) is NewEvents:
        for event in op.events:
            _check_event(event)
    elif type(op) is Duration:
        if not isinstance(op.bid, str) or type(op.duration_ms) is not int or not 0 <= op.duration_ms < 2**63:
            raise ValueError("an unload needs a beacon id and a whole number of milliseconds")
    elif type(op) is DropCount:
        tsv_line((op.day, op.hostname, op.reason, op.count)).encode()
    else:
        raise TypeError(f"not a hit op: {type(op).__name__}")


def _check_event(event: Row) -> None:
    if len(event) != len(EVENT_COLUMNS):
        raise ValueError(f"an event has {len(EVENT_COLUMNS)} values, got {len(event)}")
    tsv_line(event).encode()


def _stored_keys(client: Client, bids: Sequence[str], per_lookup: int) -> set[tuple[str, str]]:
    """The (bid, hostname) pairs of stored views among `bids`."""
    found: set[tuple[str, str]] = set()
    unique = sorted(set(bids))
    for chunk in id_chunks(unique, per_lookup):
        params: dict[str, object] = {}
        ids = id_set("ids", chunk, params)
        for bid, hostname in client.rows(f"SELECT bid, hostname FROM view_keys WHERE bid IN ({ids})", params):
            found.add((bid, hostname))
    return found


def new_views(client: Client, views: Sequence[Row], per_lookup: int = LOOKUP_IDS) -> list[Row]:
    """The views to store: the first of each (bid, hostname) not stored yet, in order."""
    if not views:
        return []
    seen = _stored_keys(client, [str(view[_BID]) for view in views], per_lookup)
    fresh = []
    for view in views:
        key = (str(view[_BID]), str(view[_HOST]))
        if key not in seen:
            seen.add(key)
            fresh.append(view)
    return fresh


def store_views(client: Client, views: Sequence[Row], per_lookup: int = LOOKUP_IDS) -> int:
    """Insert the views not stored yet (and their keys); return how many were stored. A view is in
    VIEW_COLUMNS order, or STORED_VIEW_COLUMNS (with its internal referrer's path)."""
    return len(_store_fresh_views(client, views, per_lookup))


def _store_fresh_views(client: Client, views: Sequence[Row], per_lookup: int = LOOKUP_IDS) -> list[Row]:
    """Insert the views not stored yet (and their keys); return them."""
    fresh = new_views(client, views, per_lookup)
    if fresh:
        plain = len(VIEW_COLUMNS)
        rows = [(*view, "", 1, 0) if len(view) == plain else (*view, 1, 0) for view in fresh]
        client.insert("views", VIEW_TABLE_COLUMNS, rows)
        client.insert("view_keys", ("bid", "hostname", "date_created"), [(v[0], v[1], v[_DATE]) for v in fresh])
    return fresh


def fetch_views(client: Client, bids: Iterable[str], per_lookup: int = LOOKUP_IDS) -> dict[str, list[tuple[Row, int]]]:
    """The current row (STORED_VIEW_COLUMNS order) and version of every stored view of each beacon id, by hostname."""
    found: dict[tuple[str, str], tuple[Row, int]] = {}
    unique = sorted(set(bids))
    for chunk in id_chunks(unique, per_lookup):
        params: dict[str, object] = {}
        ids = id_set("ids", chunk, params)
        sql = (
            f"SELECT {', '.join(STORED_VIEW_COLUMNS)}, version FROM views"
            " WHERE (site_key, hostname, date_created, bid) IN"
            f" (SELECT sipHash64(hostname), hostname, date_created, bid FROM view_keys WHERE bid IN ({ids}))"
            " AND sign = 1"
        )
        for *values, version in client.rows(sql, params):
            key = (values[_BID], values[_HOST])
            if key not in found or found[key][1] < version:  # the highest version is the current row
                found[key] = (tuple(values), version)
    by_bid: dict[str, list[tuple[Row, int]]] = {}
    for (bid, _), row in sorted(found.items()):
        by_bid.setdefault(bid, []).append(row)
    return by_bid


def event_rows(events: Iterable[Row], view: Row | None) -> list[Row]:
    """`events` rows as stored: with the site and dimensions of their view (none: site '')."""
    if view is None:
        return [(*event, "", *_NO_DIMENSIONS) for event in events]
    copied = (view[_HOST], *(view[i] for i in _DIMENSION_AT))
    return [(*event, *copied) for event in events]


_EVENT_AT: Final = {column: EVENT_COLUMNS.index(column) for column in EVENT_COLUMNS}


def event_view_rows(events: Iterable[Row], view: Row | None) -> list[Row]:
    """`prop_views` rows (PROP_VIEW_COLUMNS) of events stored under `view`, the view as stored: its site, time,
    flags and dimensions. None (an event stored before its view, site ''): no rows, such events are matched at
    read time."""
    if view is None:
        return []
    site, at = view[_HOST], view[_DATE]
    copied = (view[_UNIQUE_USER], view[_UNIQUE_PAGE], *(view[i] for i in _DIMENSION_AT))
    return [
        (
            site,
            e[_EVENT_AT["group_name"]],
            at,
            e[_EVENT_AT["date_created"]],
            e[0],
            e[_EVENT_AT["name"]],
            e[_EVENT_AT["value"]],
            *copied,
        )
        for e in events
    ]


def _insert_events(client: Client, rows: list[Row], view_rows: list[Row]) -> int:
    """The events, then their `prop_views` rows."""
    stored = client.insert("events", EVENT_TABLE_COLUMNS, rows) if rows else 0
    if view_rows:
        client.insert("prop_views", PROP_VIEW_COLUMNS, view_rows)
    return stored


def store_events(client: Client, events: Sequence[Row], per_lookup: int = LOOKUP_IDS) -> int:
    """Insert events (EVENT_COLUMNS order) under the view of their beacon id, looked up; return how many."""
    views = fetch_views(client, {str(event[0]) for event in events if event[0]}, per_lookup)
    rows: list[Row] = []
    view_rows: list[Row] = []
    for event in events:
        of_bid = views.get(str(event[0]))
        view = of_bid[0][0] if of_bid else None
        rows += event_rows((event,), view)
        view_rows += event_view_rows((event,), view)
    return _insert_events(client, rows, view_rows)


def _store_batch_events(client: Client, ops: Sequence[Op], fresh: set[tuple[str, str]]) -> None:
    """The events of the batch's new views (under the view as sent), then its custom events (looked up).

    A view sent again (its (bid, hostname) stored already, `fresh` lacks it) may carry another time than
    the stored one: its events' `prop_views` rows take the stored view's, looked up like a custom event's."""
    rows: list[Row] = []
    view_rows: list[Row] = []
    custom: list[Row] = []
    for op in ops:
        if type(op) is NewView:
            rows += event_rows(op.events, op.view)
            key = (str(op.view[_BID]), str(op.view[_HOST]))
            if key in fresh:
                fresh.discard(key)  # a second op of the same view in the batch was not stored
                view_rows += event_view_rows(op.events, op.view)
            elif op.events:
                view_rows += _stored_view_rows(client, op.events, key)
        elif type(op) is NewEvents:
            custom += op.events
    _insert_events(client, rows, view_rows)
    if custom:
        store_events(client, custom)


def _stored_view_rows(client: Client, events: Sequence[Row], key: tuple[str, str]) -> list[Row]:
    """`prop_views` rows of events sent with a view that was stored before, under the stored view."""
    for view, _ in fetch_views(client, [key[0]]).get(key[0], []):
        if view[_HOST] == key[1]:
            return event_view_rows(events, view)
    return []


def _store_durations(client: Client, ops: Sequence[Duration]) -> None:
    if not ops:
        return
    last = {op.bid: op.duration_ms for op in ops}  # the last unload of a beacon id wins
    rows: list[Row] = []
    for bid, views in fetch_views(client, last).items():
        for view, version in views:
            updated = list(view)
            updated[_DURATION] = last[bid]
            rows += [(*view, -1, version), (*updated, 1, version + 1)]
    if rows:
        client.insert("views", VIEW_TABLE_COLUMNS, rows)


def _store_drops(client: Client, ops: Sequence[DropCount]) -> None:
    counts: Counter[tuple[int, str, str]] = Counter()
    for op in ops:
        counts[(op.day, op.hostname, op.reason)] += op.count
    if counts:
        client.insert("drops", ("day", "hostname", "reason", "count"), [(*k, n) for k, n in counts.items()])


def drop_counts(client: Client, start_day: int, end_day: int) -> list[tuple[int, str, str, int]]:
    """(day, hostname, reason, count) rows with `start_day <= day <= end_day` (Unix ms), oldest first."""
    rows = client.rows(
        "SELECT day, hostname, reason, sum(count) FROM drops WHERE day >= {start:Int64} AND day <= {end:Int64}"
        " GROUP BY day, hostname, reason ORDER BY day, hostname, reason",
        {"start": start_day, "end": end_day},
    )
    return [(int(day), str(host), str(reason), int(n)) for day, host, reason, n in rows]
