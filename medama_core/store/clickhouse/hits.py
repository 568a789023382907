"""Write tracker hits to ClickHouse in batches: new views and their events, unloads, custom events, drop counts.

The same `Op`s as the SQLite store (store/sqlite/hits.py) and the same contract:
`apply_batch` returns, per op, None or the error that kept it out. ClickHouse
has no transaction across statements, so a batch is first its lookups (up to
three SELECTs: the new views' keys, the stored views of its unloads and
events, the stored properties of the stored views it unloads or gives
properties), then one INSERT per
table in a fixed order (BATCH_TABLES: views, their keys, the unloads'
`prop_durations` rows, the views' rows under their properties
(`views_by_prop`), events, their `prop_views` rows, drop counts), each
body encoded before the first is sent; an op is acknowledged once every INSERT holding a row of it
has returned, which means ClickHouse has written the rows to a part on its
disk. One INSERT per table, because each makes parts (and `views` runs the
materialized views of seven tables) that merges later rewrite.
An op whose rows cannot be written at all (a wrong type) fails alone, before
anything is sent.

A view whose (bid, hostname) is already stored, or came earlier in the
batch, is ignored, as ON CONFLICT DO NOTHING does in SQLite. An unload of a
stored view adds the pair that replaces its current row (schema.py); an
unload of a view new in the batch (before or after it) is folded into the
view's one row, which sums the same; the last unload of a batch wins, as it
would row by row. An unload for a beacon id with no view is ignored, as
SQLite's UPDATE is. A custom event takes the site and dimensions of the view
of its beacon id (stored, or new in the batch), and every event with a site
gets a row in `prop_views` with its view's time, flags and dimensions (schema migration 7).
An unload of a view with properties writes, per property, its new version
and duration to `prop_durations` (schema migration 9), and so does a new
property of a view that already has a duration. A view's rows in `views`
are written again under each of its properties and property names,
lower-cased, to `views_by_prop` (schema migration 15): its row under a key new
to it, and an unload's pair under each key it has; and once more with its
whole key set (migration 18), written again when the set grows.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Final

from medama_core.store.clickhouse.client import Client
from medama_core.store.clickhouse.schema import (
    PROP_DURATION_COLUMNS,
    PROP_ROW_COLUMNS,
    PROP_SET_LEVEL,
    PROP_VIEW_COLUMNS,
)
from medama_core.store.clickhouse.sql import id_chunks, id_set, tsv_line, tsv_rows
from medama_core.store.filters import ascii_lower
from medama_core.store.rows import EVENT_COLUMNS, VIEW_COLUMNS, DropCount, Duration, NewEvents, NewView, Op, Row

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
    "op_rows",
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
# Beacon ids looked up in one statement (sql.id_set): a batch of SQLite's size in one lookup, a full
# ClickHouse batch of hits (backends/clickhouse.py, WRITE_BATCH_ROWS) in up to nine (1,000 ids of 64 characters
# are 128 KB hex-encoded), a bulk import's chunk in a few: 10,000 ids of ~10 bytes are ~210 KB hex-encoded, under
# the max_query_size (256 KiB) of a server that takes the value inside the statement (18.16).
LOOKUP_IDS: Final = 1000
BULK_LOOKUP_IDS: Final = 10_000


def apply_batch(client: Client, ops: Sequence[Op]) -> list[Exception | None]:
    """Write `ops`; return, per op, None or the error that kept it (or, after a failed INSERT, part of it) out."""
    errors: list[Exception | None] = [None] * len(ops)
    for i, op in enumerate(ops):  # the shape of every op, cheaply; its values are checked by encoding them
        try:
            _check_shape(op)
        except (TypeError, ValueError) as exc:
            errors[i] = exc
    bodies: list[bytes] | None = None
    try:
        bodies = _bodies(client, [op for op, error in zip(ops, errors, strict=True) if error is None])
    except (TypeError, ValueError):  # a value that cannot be written: find its op, which fails alone
        for i, op in enumerate(ops):
            if errors[i] is None:
                try:
                    _check(op)
                except (TypeError, ValueError) as exc:
                    errors[i] = exc
    except Exception as exc:  # a lookup failed: nothing was written
        return [error or exc for error in errors]
    done = 0  # INSERTs that returned, in BATCH_TABLES order
    try:
        if bodies is None:
            bodies = _bodies(client, [op for op, error in zip(ops, errors, strict=True) if error is None])
        for (table, columns), body in zip(BATCH_TABLES, bodies, strict=True):
            if body:
                client.insert_tsv(table, columns, body)
            done += 1
    except Exception as exc:
        # Nothing from the failed INSERT on was written: ops whose rows all came before it are stored.
        for i, op in enumerate(ops):
            if errors[i] is None and _LAST_STEP[type(op)] >= done:
                errors[i] = exc
    return errors


def op_rows(op: Op) -> int:
    """The rows `op` writes that copy a view's text (its view, its events): what its batch's memory grows by
    (backends/clickhouse.py, WRITE_BATCH_ROWS)."""
    if type(op) is NewView:
        return 1 + len(op.events)
    if type(op) is NewEvents:
        return max(1, len(op.events))
    return 1


# The INSERTs of a batch, in this order, one statement each (those with no rows are not sent): every row
# of `views` (new views, and the pairs of unloads) in one, so the materialized views on it (schema.py)
# run and make parts once per batch; a view's key after its view (a key without its view would keep a
# retry of the hit out); the events after their views, their `prop_views` rows after them; the rows under
# properties (`prop_durations`, `views_by_prop`) with the views' own, before the events.
BATCH_TABLES: Final = (
    ("views", VIEW_TABLE_COLUMNS),
    ("view_keys", ("bid", "hostname", "date_created")),
    ("prop_durations", PROP_DURATION_COLUMNS),
    ("views_by_prop", PROP_ROW_COLUMNS),
    ("events", EVENT_TABLE_COLUMNS),
    ("prop_views", PROP_VIEW_COLUMNS),
    ("drops", ("day", "hostname", "reason", "count")),
)
# The last INSERT (index into BATCH_TABLES) that writes rows of each kind of op.
_LAST_STEP: Final[dict[type, int]] = {NewView: 5, NewEvents: 5, Duration: 3, DropCount: 6}


def _bodies(client: Client, ops: Sequence[Op]) -> list[bytes]:
    """The INSERT bodies of a batch (BATCH_TABLES order, b"" for none), after its lookups; nothing is written.

    Raises TypeError or ValueError when a value cannot be written (sql.tsv_rows)."""
    sent = [(*op.view, op.referrer_path) for op in ops if type(op) is NewView]
    fresh = new_views(client, sent)
    current: dict[tuple[str, str], tuple[Row, int]] = {(str(v[_BID]), str(v[_HOST])): (v, -1) for v in fresh}
    last = {op.bid: op.duration_ms for op in ops if type(op) is Duration}  # the last unload of a beacon id wins
    wanted = set(last)  # beacon ids whose stored views are looked up: unloads, custom events, views sent again
    for op in ops:
        if type(op) is NewEvents:
            wanted.update(str(event[0]) for event in op.events if event[0])
        elif type(op) is NewView and op.events and (str(op.view[_BID]), str(op.view[_HOST])) not in current:
            wanted.add(str(op.view[_BID]))
    for bid, views in fetch_views(client, wanted).items() if wanted else ():
        for view, version in views:
            current[(bid, str(view[_HOST]))] = (view, version)

    view_rows: list[Row] = []
    for view in fresh:  # a new view with an unload in the batch is stored with its duration at once
        bid = str(view[_BID])
        view_rows.append(_with_duration(view, last[bid]) + (1, 0) if bid in last else (*view, 1, 0))
    for (bid, _), (view, version) in current.items():
        if version >= 0 and bid in last:  # a stored view: its current row cancelled, the new one added
            view_rows += [(*view, -1, version), (*_with_duration(view, last[bid]), 1, version + 1)]

    rows: list[Row] = []
    view_event_rows: list[Row] = []
    custom: list[Row] = []
    # Only events make rows here: a batch without any (most) skips the walk.
    with_events = any(type(op) is NewEvents or (type(op) is NewView and op.events) for op in ops)
    first = set(current) if with_events else set()  # keys whose fresh view has not had its events yet
    for op in ops if with_events else ():
        if type(op) is NewView:
            if op.events:  # most views have none
                rows += event_rows(op.events, op.view)
            key = (str(op.view[_BID]), str(op.view[_HOST]))
            found = current.get(key)  # None: a view sent again whose stored row is gone (retention)
            if found is not None and found[1] < 0 and key in first:  # its view is this op's
                first.discard(key)
                if op.events:
                    view_event_rows += event_view_rows(op.events, op.view)
            elif found is not None and op.events:  # sent again: the stored view's time (or an earlier op's)
                view_event_rows += event_view_rows(op.events, found[0])
        elif type(op) is NewEvents:
            custom += op.events
    by_bid: dict[str, list[Row]] = {}  # each beacon id's views, current rows, by hostname
    for (bid, _), (view, _) in sorted(current.items()) if custom else ():
        by_bid.setdefault(bid, []).append(view)
    for event in custom:  # a custom event takes the first view (by hostname) of its beacon id
        of_bid = by_bid.get(str(event[0])) if event[0] else None
        under = of_bid[0] if of_bid else None
        rows += event_rows((event,), under)
        view_event_rows += event_view_rows((event,), under)

    durations, copies = _prop_rows(client, current, last, view_event_rows)

    counts: Counter[tuple[int, str, str]] = Counter()
    for op in ops:
        if type(op) is DropCount:
            counts[(op.day, op.hostname, op.reason)] += op.count
    drops = [(*key, n) for key, n in counts.items()]
    keys = [(v[_BID], v[_HOST], v[_DATE]) for v in fresh]
    tables = (view_rows, keys, durations, copies, rows, view_event_rows, drops)
    return [tsv_rows(r) if r else b"" for r in tables]


_PROP_AT: Final = {column: PROP_VIEW_COLUMNS.index(column) for column in ("site", "bid", "name", "value")}


def _prop_rows(
    client: Client, current: dict[tuple[str, str], tuple[Row, int]], last: dict[str, int], view_event_rows: list[Row]
) -> tuple[list[Row], list[Row]]:
    """The `prop_durations` and `views_by_prop` rows of a batch (schema migrations 9 and 15). `current`: every view
    of the batch, new (version -1) or stored; `last`: the batch's last unload of each beacon id.

    `prop_durations`: for each view unloaded in the batch, one row per property of the view (stored, looked up in
    `prop_keys`, or new in the batch) with the view's new version and duration; for a view not unloaded that
    already has a duration, one per property new in the batch with its current version and duration.

    `views_by_prop`, per key (_copy_keys: each property and each name alone, lower-cased): a view unloaded in the
    batch gets, under each key it had, the pair that replaces its current row, as in `views`; under each key new
    to the view (none of its properties in `prop_keys` has it), its row after the batch, once. Under its key set
    (_key_set, schema.PROP_SET_LEVEL): when it is unloaded or its set grows, its stored row under the set it had
    cancelled and its row after the batch under the set it has."""
    new: dict[tuple[str, str], set[tuple[str, str]]] = {}
    for row in view_event_rows:
        key = (str(row[_PROP_AT["bid"]]), str(row[_PROP_AT["site"]]))
        new.setdefault(key, set()).add((str(row[_PROP_AT["name"]]), str(row[_PROP_AT["value"]])))
    # Stored views unloaded (their pairs under every stored property) or with properties in the batch (which are
    # not written again under a property the view has).
    looked = {key[0] for key, (_, version) in current.items() if version >= 0 and (key[0] in last or key in new)}
    if not new and not looked:  # no view of the batch has a property (most batches): no rows
        return [], []
    stored = fetch_props(client, looked) if looked else {}
    durations: list[Row] = []
    copies: list[Row] = []
    for key, (view, version) in current.items():
        bid, site = key
        added = new.get(key, set())
        had = stored.get(key, set()) if version >= 0 else set()
        if not added and not had:  # no property: no row (most views)
            continue
        before = tuple(view[: len(VIEW_COLUMNS)])
        if bid in last:
            after, after_version = _with_duration(before, last[bid]), version + 1  # a new view's row is version 0
            props = added | had
        else:
            after, after_version = before, max(version, 0)
            props = added
        duration = after[_DURATION]
        if duration is not None:
            durations += [
                (site, view[_DATE], bid, name, value, after_version, duration) for name, value in sorted(props)
            ]
        keys = _copy_keys(had)
        if bid in last and version >= 0:
            for prop in sorted(keys):
                copies += [(*before, -1, version, *prop, [], []), (*after, 1, after_version, *prop, [], [])]
        copies += [(*after, 1, after_version, *prop, [], []) for prop in sorted(_copy_keys(added) - keys)]
        old_set, new_set = _key_set(had), _key_set(had | added)
        if (bid in last and version >= 0) or new_set != old_set:
            if old_set and version >= 0:  # its stored row under the set it had, cancelled
                copies.append((*before, -1, version, *old_set))
            copies.append((*after, 1, after_version, *new_set))
    return durations, copies


def _key_set(props: Iterable[tuple[str, str]]) -> tuple[int, str, str, list[str], list[str]] | tuple[()]:
    """A view's key set row's key and arrays in `views_by_prop` (schema.PROP_SET_LEVEL): named, name '', value the
    number of its distinct ASCII lower-cased properties, then their names and values, sorted; () for none."""
    pairs = sorted({(ascii_lower(name), ascii_lower(value)) for name, value in props})
    if not pairs:
        return ()
    return (PROP_SET_LEVEL, "", str(len(pairs)), [name for name, _ in pairs], [value for _, value in pairs])


def _copy_keys(props: Iterable[tuple[str, str]]) -> set[tuple[int, str, str]]:
    """The keys (named, name, value) in `views_by_prop` of a view's properties: each property and each name alone
    (named 1, value ''), ASCII lower-cased as the filters compare them (schema.PROP_COPY_KEYS)."""
    keys: set[tuple[int, str, str]] = set()
    for name, value in props:
        keys |= {(0, ascii_lower(name), ascii_lower(value)), (1, ascii_lower(name), "")}
    return keys


def fetch_props(
    client: Client, bids: Iterable[str], per_lookup: int = LOOKUP_IDS
) -> dict[tuple[str, str], set[tuple[str, str]]]:
    """The (name, value) of every property stored under the views of each beacon id, by (bid, site): `prop_keys`."""
    found: dict[tuple[str, str], set[tuple[str, str]]] = {}
    for chunk in id_chunks(sorted(set(bids)), per_lookup):
        params: dict[str, object] = {}
        ids = id_set("ids", chunk, params)
        sql = f"SELECT DISTINCT bid, site, name, value FROM prop_keys WHERE bid IN ({ids})"
        for bid, site, name, value in client.rows(sql, params):
            found.setdefault((str(bid), str(site)), set()).add((str(name), str(value)))
    return found


def _with_duration(view: Row, duration_ms: int) -> Row:
    updated = list(view)
    updated[_DURATION] = duration_ms
    return tuple(updated)


def _check_shape(op: Op) -> None:
    """The kind of `op` and the number of values of its rows (their values are checked by `_check`)."""
    if type(op) is NewView:
        if len(op.view) != len(VIEW_COLUMNS):
            raise ValueError(f"a view has {len(VIEW_COLUMNS)} values, got {len(op.view)}")
        for event in op.events:
            _check_event_shape(event)
    elif type(op) is NewEvents:
        for event in op.events:
            _check_event_shape(event)
    elif type(op) is Duration:
        if not isinstance(op.bid, str) or type(op.duration_ms) is not int or not 0 <= op.duration_ms < 2**63:
            raise ValueError("an unload needs a beacon id and a whole number of milliseconds")
    elif type(op) is not DropCount:
        raise TypeError(f"not a hit op: {type(op).__name__}")


def _check_event_shape(event: Row) -> None:
    if len(event) != len(EVENT_COLUMNS):
        raise ValueError(f"an event has {len(EVENT_COLUMNS)} values, got {len(event)}")


def _check(op: Op) -> None:
    """Whether every row of `op` can be written: its shape and each of its values."""
    _check_shape(op)
    if type(op) is NewView:
        tsv_line((*op.view, op.referrer_path)).encode()  # a lone surrogate cannot be stored: UnicodeEncodeError
        for event in op.events:
            tsv_line(event).encode()
    elif type(op) is NewEvents:
        for event in op.events:
            tsv_line(event).encode()
    elif type(op) is DropCount:
        tsv_line((op.day, op.hostname, op.reason, op.count)).encode()


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


def store_events(client: Client, events: Sequence[Row], per_lookup: int = LOOKUP_IDS) -> int:
    """Insert events (EVENT_COLUMNS order) under the view of their beacon id, looked up; return how many.

    The `prop_durations` rows of a view with a duration (an import's views have theirs) first, then the
    events and their `prop_views` rows, in the order of BATCH_TABLES."""
    views = fetch_views(client, {str(event[0]) for event in events if event[0]}, per_lookup)
    rows: list[Row] = []
    view_rows: list[Row] = []
    current: dict[tuple[str, str], tuple[Row, int]] = {}
    for event in events:
        of_bid = views.get(str(event[0]))
        view = of_bid[0][0] if of_bid else None
        if of_bid:
            current[(str(event[0]), str(of_bid[0][0][_HOST]))] = of_bid[0]
        rows += event_rows((event,), view)
        view_rows += event_view_rows((event,), view)
    durations, copies = _prop_rows(client, current, {}, view_rows)
    if durations:
        client.insert("prop_durations", PROP_DURATION_COLUMNS, durations)
    if copies:
        client.insert("views_by_prop", PROP_ROW_COLUMNS, copies)
    stored = client.insert("events", EVENT_TABLE_COLUMNS, rows) if rows else 0
    if view_rows:
        client.insert("prop_views", PROP_VIEW_COLUMNS, view_rows)
    return stored


def drop_counts(client: Client, start_day: int, end_day: int) -> list[tuple[int, str, str, int]]:
    """(day, hostname, reason, count) rows with `start_day <= day <= end_day` (Unix ms), oldest first."""
    rows = client.rows(
        "SELECT day, hostname, reason, sum(count) FROM drops WHERE day >= {start:Int64} AND day <= {end:Int64}"
        " GROUP BY day, hostname, reason ORDER BY day, hostname, reason",
        {"start": start_day, "end": end_day},
    )
    return [(int(day), str(host), str(reason), int(n)) for day, host, reason, n in rows]
