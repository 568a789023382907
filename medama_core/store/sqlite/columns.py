"""Column copies of closed UTC days: built beside the day rollups, read by filtered stats (docs/storage.md).

A filtered query cannot use the rollups (they hold no combination of two
dimensions), and SQLite reads a row at a time: a 90-day scan costs about
0.3 µs a view. For every clean, closed day of a site the refresher also
stores the day's views column by column: each dimension as a dictionary of
its values and a plane of one byte per view (two planes, high and low byte,
when a day has more than PLANE_CODES values), a plane of flags and one of
hours, the durations sorted, and each view's event pairs coded like a
dimension (PROPS, for prop filters). Views are stored in duration order (views
without a duration first), so the durations of any subset of a day's views,
taken in row order, are sorted. store/sqlite/scan.py evaluates filters over these
planes with `bytes.translate` and big-integer masks, a few nanoseconds a view.

A day's copy is used only while none of its hours is dirty: the refresher
drops it in the transaction that rebuilds any of its hours and builds it again
with the day block, so a copy never disagrees with the raw rows it is read
instead of.
"""

from __future__ import annotations

import json
import sqlite3
import sys
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import accumulate, groupby
from operator import add, itemgetter
from typing import Any, Final

from medama_core.store.aggregate import BOUNCE_MAX_MS, BOUNCE_MIN_MS
from medama_core.store.filters import ascii_lower
from medama_core.store.sqlite import rollups
from medama_core.store.sqlite.db import Transaction, read_blob

# rollups.HOUR_MS and DAY: rollups imports this module, so its names are read only inside functions here.
HOUR_MS = 3_600_000
HOURS_PER_DAY = 24
DAY_MS = HOURS_PER_DAY * HOUR_MS
# Column name -> its SQL over `views`. `referrer` is the `referrers` list's grouped label (rollups.KIND_SQL 3).
COLUMN_SQL: dict[str, str] = {
    "pathname": "pathname",
    "referrer_host": "referrer_host",
    "referrer_group": "referrer_group",
    "referrer": "CASE WHEN referrer_group = '' THEN referrer_host ELSE referrer_group END",
    "utm_source": "utm_source",
    "utm_medium": "utm_medium",
    "utm_campaign": "utm_campaign",
    "ua_browser": "ua_browser",
    "ua_os": "ua_os",
    "ua_device_type": "ua_device_type",
    "country": "country",
    "language_base": "language_base",
    "language_dialect": "language_dialect",
    # Entry and exit pages (rollups.KIND_SQL 13 and 14).
    "entry": "CASE WHEN referrer_path = '' THEN '+' || pathname ELSE '' END",
    "referrer_path": "referrer_path",
}
# Columns of the views' copy only: entry and exit pages are no filter, so events need not carry them,
# and they keep no duration runs (rollups.NO_RUN_KINDS).
ENTRY_COLUMNS: Final = ("entry", "referrer_path")
# The same over `views v`, for the events' copy (each event carries its view's dimensions).
_VIEW_SQL = {
    name: sql.replace("referrer_", "v.referrer_") if name == "referrer" else f"v.{sql}"
    for name, sql in COLUMN_SQL.items()
    if name not in ENTRY_COLUMNS
}
# Rollup kind -> the column holding its label (kind 0, the whole site, needs none).
KIND_COLUMNS: dict[int, str] = {
    1: "pathname",
    2: "referrer_host",
    3: "referrer",
    4: "utm_source",
    5: "utm_medium",
    6: "utm_campaign",
    7: "ua_browser",
    8: "ua_os",
    9: "ua_device_type",
    10: "country",
    11: "language_base",
    12: "language_dialect",
    13: "entry",
    14: "referrer_path",
}
META, FLAGS, HOURS, DURATIONS = "", "~flags", "~hours", "~durations"  # the planes that are no dimension
# A view's events, for prop filters on views: the distinct (name, value) pairs of the events with its bid,
# at any time, as a JSON list (`[]`: none). stats' raw SQL asks the same: EXISTS an event with its bid.
PROPS = "~props"
# A day has two copies: its views (names as they are) and its events (names prefixed), each event with
# its name, value and hour, and the dimensions of its view, so /properties filters events directly.
VIEWS, EVENTS = "", "e:"
EVENT_COLUMNS = ("name", "value")

# Flag bits of a view (its byte in the flags plane). FLAG_SET keeps every byte non-zero, so a plane
# of selected views can be cut out of a masked plane by deleting its zero bytes (store/sqlite/scan.py).
UNIQUE_USER, UNIQUE_PAGE, TIMED, BOUNCE, ZERO, AT_MOST_ONE, AT_MOST_TWO, FLAG_SET = 1, 2, 4, 8, 16, 32, 64, 128
FLAG_BITS = {
    "unique_user": 0,
    "unique_page": 1,
    "timed": 2,
    "bounce": 3,
    "zero": 4,
    "at_most_one": 5,
    "at_most_two": 6,
}

# Codes are 1..PLANE_CODES in each plane (0 marks an unselected view), so one plane holds 255 values
# and two hold 255 * 255. A day with more distinct values of a column than that is not copied (read raw).
PLANE_CODES = 255
NOT_COPIED = -1  # `rows` in a day's meta row when some column had too many values
MAX_BIND_DAYS = 400  # days named in one `IN (...)` (literal integers); a 90-day range is one query
# Days copied per writer call (backfill, today's copies): one, as a read waits for the whole call
# (Database.unit) and a 333k-view day takes ~4 s of CPU (4 before: ~1 s at 111k views a day each).
BACKFILL_DAYS_PER_CALL = 1

_PROPS_SQL = """(SELECT json_group_array(json_array(name, value)) FROM (
    SELECT DISTINCT name, value FROM events e WHERE e.bid = views.bid ORDER BY 1, 2))"""
_DAY_ROWS_SQL = (
    "SELECT "
    + ", ".join(COLUMN_SQL.values())
    + f""", {_PROPS_SQL}, is_unique_user, is_unique_page, duration_ms, date_created FROM views
    WHERE hostname = :hostname AND date_created BETWEEN :lo AND :hi ORDER BY duration_ms, rowid"""
)
# Values of a column coded in the pass that codes every column of a day's views at once; a column with
# more (a long tail of paths, entry pages, referrers, event pairs) is given up there and coded by
# SQLite afterwards (_store_tails), all in one more pass: a 333k-view day of 1 M paths held its ~45k paths
# twice (pages and entry pages, ~11 MB of strings and dictionaries) beside everything else, 27 MB in
# all. In this pass the values of all the columns together cost at most ~17 * PASS_VALUES * ~150
# bytes (~5 MB).
PASS_VALUES: Final = 2048
# Events of the day by their own time, each joined to its view on the site (as store/sqlite/stats.py counts them).
_DAY_EVENTS_SQL = (
    "SELECT e.name, e.value, "
    + ", ".join(_VIEW_SQL.values())
    + """, e.date_created FROM events e CROSS JOIN views v ON v.bid = e.bid AND v.hostname = :hostname
    WHERE e.date_created BETWEEN :lo AND :hi"""
)
_INSERT_SQL = "INSERT OR REPLACE INTO column_days VALUES (?, ?, ?, ?, ?)"
_MISSING_SQL = """
    SELECT b.hostname, b.period FROM rollup_built b
    WHERE b.span = :day AND NOT EXISTS (
        SELECT 1 FROM column_days c WHERE c.hostname = b.hostname AND c.day = b.period AND c.name IN ('', 'e:')
    ) LIMIT :limit"""


# ---- building -----------------------------------------------------------------------------------------


DayRuns = Callable[[str, dict[str, "array[int]"]], None]  # (column name, value -> its sorted durations)


def build_day(
    conn: sqlite3.Connection, hostname: str, day: int, last: int = HOURS_PER_DAY - 1, runs: DayRuns | None = None
) -> None:
    """Store the column copies of a site's UTC day, hours 0..last, from its raw rows (inside the caller's
    transaction). With `runs`, hand it each dimension's durations per value, sorted (the views come in
    duration order), whether or not the day can be copied: the day rollups' runs.

    Rows stream from the cursor and are written in place into the day's records a chunk of views at a
    time (_store_views), the long tails coded by SQLite (_store_tails): what a day holds does not follow
    its views or its values (a 333k-view day of 50k paths held ~20 MB of RSS, its long tails' values
    and codes among them; a list of its row tuples would be about 450 MB of Python objects).
    """
    drop_day(conn, hostname, day)
    bounds = {"hostname": hostname, "lo": day * DAY_MS, "hi": day * DAY_MS + (last + 1) * HOUR_MS - 1}
    if not _store_views(conn, hostname, day, last, runs):
        # No views (only events, or rows gone since their hours were rolled up), or too many values: read raw.
        drop_day(conn, hostname, day)
        conn.execute(_INSERT_SQL, (hostname, day, META, json.dumps({"rows": NOT_COPIED, "last": last}), b""))
    records = encode_events(conn.execute(_DAY_EVENTS_SQL, bounds), day, last)
    conn.executemany(_INSERT_SQL, [(hostname, day, name, dictionary, data) for name, dictionary, data in records])


Record = tuple[str, str, bytes]  # (name, dictionary, data) of a column_days row


# Views whose codes (and flags, hours and durations) the first pass over a day's views holds before writing
# them in place into the day's records (_store_views): at most 2 bytes a view and column, ~0.6 MB for
# the 17 columns. Each write into a blob costs ~0.1-0.2 ms whatever its size (4,096 views: 0.5 s of the
# 333k-view day's ~7 s), so the chunk is not made smaller.
COPY_CHUNK_VIEWS: Final = 16_384
_DAY_COUNTS_SQL = """
    SELECT count(*), count(duration_ms), max(duration_ms) FROM views
    WHERE hostname = :hostname AND date_created BETWEEN :lo AND :hi"""


def _store_views(conn: sqlite3.Connection, hostname: str, day: int, last: int, runs: DayRuns | None = None) -> bool:
    """Code the day's views (in duration order, as _DAY_ROWS_SQL reads them) and store their records;
    False when there are none or a dimension has more than PLANE_CODES ** 2 values.

    The records are made at their full sizes first (the day's views counted) and written in place,
    COPY_CHUNK_VIEWS views at a time, as the rows stream by: a column's codes go into two planes,
    the high one dropped at the end if the column has at most PLANE_CODES values. The columns with
    more than PASS_VALUES values are given up in that pass and coded by SQLite afterwards, together
    (_store_tails). With too many sets of event pairs (say a property valued by order number), the copy goes
    without PROPS (its meta says `"props": false`) and prop filters read the day raw."""
    bounds = {"hostname": hostname, "lo": day * DAY_MS, "hi": day * DAY_MS + (last + 1) * HOUR_MS - 1}
    count, timed_count, longest = conn.execute(_DAY_COUNTS_SQL, bounds).fetchone()
    if not count:
        return False
    untimed, width = count - timed_count, 4 if longest is None or longest < 1 << 32 else 8
    names = [*COLUMN_SQL, PROPS]
    dimensions = len(COLUMN_SQL)
    base, most = PLANE_CODES, min(PASS_VALUES, PLANE_CODES * PLANE_CODES)
    high, low = [code // base + 1 for code in range(most)], [code % base + 1 for code in range(most)]
    records = [_RecordWriter(conn, (hostname, day, name), 0, 2 * count) for name in names]
    own = {
        name: _RecordWriter(conn, (hostname, day, name), 0, size)
        for name, size in ((FLAGS, count), (HOURS, count), (DURATIONS, timed_count * width))
    }
    flags, hours, timed = bytearray(), bytearray(), array("q")
    first_hour = day * HOURS_PER_DAY
    at, timed_at = 0, 0  # views and timed views written

    def rest(row: tuple[Any, ...]) -> None:
        unique_user, unique_page, duration, created = row[dimensions + 1 :]
        flags.append(_flags(unique_user, unique_page, duration))
        hours.append(created // HOUR_MS - first_hour + 1)
        if duration is not None:
            timed.append(duration)

    def flush(codes: list[array[int]], over: set[int]) -> None:
        nonlocal at, timed_at
        for column, chunk in enumerate(codes):
            if column not in over:
                records[column].write("data", at, bytes(map(high.__getitem__, chunk)))
                records[column].write("data", count + at, bytes(map(low.__getitem__, chunk)))
        own[FLAGS].write("data", at, bytes(flags))
        own[HOURS].write("data", at, bytes(hours))
        own[DURATIONS].write("data", timed_at * width, rollups.pack(timed, width)[1])
        at, timed_at = at + len(flags), timed_at + len(timed)
        del flags[:], hours[:], timed[:]

    rows = conn.execute(_DAY_ROWS_SQL, bounds)
    coded, deferred = _code_columns(rows, dimensions + 1, rest, most, (COPY_CHUNK_VIEWS, flush))
    del rows
    if at != count:  # the caller's transaction rules out views changing between the count and the pass
        raise RuntimeError(f"{at} views copied of {count}")
    # The columns coded by the first pass are finished first, then the long tails, coded by SQLite.
    for column in range(dimensions + 1):
        index = coded[column][0]
        coded[column] = ({}, array("B"))
        if column in deferred:
            records[column].abandon()  # _store_tails makes its own
            continue
        name = names[column]
        if runs is not None and name not in ENTRY_COLUMNS and column < dimensions:
            runs(name, _read_runs(records[column], own[DURATIONS], index, (count, untimed, width), 2))
        records[column].finish(_dictionary_text(index), count if len(index) <= base else 0)
        del index
    tails = {names[column]: COLUMN_SQL.get(names[column], _PROPS_SQL) for column in sorted(deferred)}
    stored = _store_tails(conn, hostname, day, last, tails, (count, untimed, width), own[DURATIONS], runs)
    for writer in own.values():
        writer.close()
    if not all(stored[name] for name in tails if name != PROPS):
        return False
    has_props = stored.get(PROPS, True)
    meta = {"rows": count, "untimed": untimed, "width": width, "base": base, "last": last, "props": has_props}
    conn.execute(_INSERT_SQL, (hostname, day, META, json.dumps(meta), b""))
    return True


def _read_runs(
    record: _RecordWriter, durations: _RecordWriter, index: dict[Any, int], shape: tuple[int, int, int], planes: int
) -> dict[str, array[int]]:
    """Each value's durations (`index`: value -> code, 0-based), in the views' (duration) order, sorted:
    the timed views' codes read back from the `planes` written, with their durations, COPY_CHUNK_VIEWS
    views at a time. `shape`: the day's views, untimed views and durations' width."""
    count, untimed, width = shape
    by_code: dict[int, array[int]] = {}  # high * 256 + low (high 1 with one plane) -> durations
    for lo in range(untimed, count, COPY_CHUNK_VIEWS):
        size = min(COPY_CHUNK_VIEWS, count - lo)
        lows = record.read("data", (planes - 1) * count + lo, size)
        highs = record.read("data", lo, size) if planes == 2 else b"\1" * size
        chunk = rollups.unpack(width, durations.read("data", (lo - untimed) * width, size * width))
        for code, duration in zip(map(add, map((256).__mul__, highs), lows), chunk, strict=True):
            found = by_code.get(code)
            if found is None:
                found = by_code[code] = array("q")
            found.append(duration)
    base = PLANE_CODES
    values = {(code // base + 1) * 256 + code % base + 1: value for value, code in index.items()}
    return {str(values[key]): durations for key, durations in by_code.items()}


# The columns with more than PASS_VALUES values (a long tail of paths, entry pages, referrers, event
# pairs) are coded by SQLite: each one's distinct values go into a temporary table, where a value's code
# is its row (in ASCII-lowered, then plain order: see INDEX_STEP), the day's views are joined to all of
# them at once in duration order, and the codes come back TAIL_CHUNK_VIEWS views at a time, written in place into
# the columns' planes; a dictionary is encoded DICTIONARY_BATCH values at a time, written in place into
# its text. Python holds a chunk's codes and a batch's values whatever the day's views and values: coded
# in Python, a 333k-view day of 50k paths held its values (as strings and a dict), its codes and, while
# encoding its 1.6 MB text, ~5 MB more: ~17 MB in all, left fragmented in the heap afterwards. For
# 333k views SQLite takes ~0.2 s a column to gather its values and ~0.1 s to look its views' values up,
# and sorts the views once (~0.3 s) for all of them; its sorter spills to a file past its cache.
TAIL_CHUNK_VIEWS: Final = 4096  # a chunk's rows as Python tuples (2 small integers a column): ~0.5 MB
_TAIL_TABLE_SQL = "CREATE TEMP TABLE IF NOT EXISTS {table} (tail_code INTEGER PRIMARY KEY, tail_value UNIQUE)"
_TAIL_VALUES_SQL = """
    INSERT INTO temp.{table} (tail_value) SELECT tail_value FROM (SELECT DISTINCT {expr} AS tail_value FROM views
    WHERE hostname = :hostname AND date_created BETWEEN :lo AND :hi) ORDER BY lower(tail_value), tail_value"""
# Each view's code (tail_code, 1-based) as its planes' bytes: one plane holds the code, two hold
# (code - 1) // PLANE_CODES + 1 and (code - 1) % PLANE_CODES + 1 (_planes). `IS`: a NULL is a value too.
_TAIL_PLANES_SQL = "(c{k}.tail_code - 1) / :base + 1, (c{k}.tail_code - 1) % :base + 1"
_TAIL_JOIN_SQL = "CROSS JOIN temp.copy_tail{k} c{k} ON c{k}.tail_value IS ({expr})"
_TAIL_CODES_SQL = """
    SELECT {planes} FROM views {joins} WHERE views.hostname = :hostname AND views.date_created BETWEEN :lo AND :hi
    ORDER BY views.duration_ms, views.rowid"""
_RECORD_SQL = "INSERT OR REPLACE INTO column_days VALUES (?, ?, ?, CAST(zeroblob(?) AS TEXT), zeroblob(?))"


def _store_tails(
    conn: sqlite3.Connection,
    hostname: str,
    day: int,
    last: int,
    tails: dict[str, str],
    shape: tuple[int, int, int],
    durations: _RecordWriter,
    runs: DayRuns | None,
) -> dict[str, bool]:
    """Store the records of a day's columns `tails` (name -> SQL over `views`), coded by SQLite in one
    pass (TAIL_CHUNK_VIEWS), and with `runs` hand over their day runs (read back from the planes and
    the day's `durations` up to RUNS_HELD_VALUES values, else sorted by SQLite). `shape` is the day's
    views, untimed views and durations' width. Returns whether each was stored: none is if a dimension
    has more than PLANE_CODES ** 2 values (the day is not copied), PROPS is not if it has."""
    bounds = {"hostname": hostname, "lo": day * DAY_MS, "hi": day * DAY_MS + (last + 1) * HOUR_MS - 1}
    count, untimed, width = shape
    base = PLANE_CODES
    sizes: dict[str, int] = {}
    records: dict[str, tuple[_RecordWriter, int]] = {}  # name -> its record and planes
    try:
        for k, (name, expr) in enumerate(tails.items()):
            conn.execute(_TAIL_TABLE_SQL.format(table=f"copy_tail{k}"))
            conn.execute(f"DELETE FROM temp.copy_tail{k}")
            conn.execute(_TAIL_VALUES_SQL.format(table=f"copy_tail{k}", expr=expr), bounds)
            sizes[name] = conn.execute(f"SELECT count(*) FROM temp.copy_tail{k}").fetchone()[0]
        copied = all(sizes[name] <= base * base for name in tails if name != PROPS)
        coded = [(k, name) for k, name in enumerate(tails) if copied and sizes[name] <= base * base]
        for k, name in coded:
            planes = 1 if sizes[name] <= base else 2
            tail = _TailText(conn, k)
            record = _RecordWriter(conn, (hostname, day, name), tail.size, planes * count)
            records[name] = (record, planes)
            at = 0
            for piece in tail.pieces():
                record.write("dictionary", at, piece.encode("ascii"))
                at += len(piece)
            if tail.indexed and name != PROPS:  # PROPS is tested value by value, never searched
                conn.execute(_INSERT_SQL, (hostname, day, INDEX + name, tail.index_json(), b""))
        if coded:
            sql = _TAIL_CODES_SQL.format(
                planes=", ".join(_TAIL_PLANES_SQL.format(k=k) for k, _ in coded),
                joins=" ".join(_TAIL_JOIN_SQL.format(k=k, expr=tails[name]) for k, name in coded),
            )
            cursor = conn.execute(sql, {**bounds, "base": base})
            at = 0
            while chunk := cursor.fetchmany(TAIL_CHUNK_VIEWS):
                for j, (_, name) in enumerate(coded):
                    record, planes = records[name]
                    if planes == 2:
                        record.write("data", at, bytes(map(itemgetter(2 * j), chunk)))
                    record.write("data", (planes - 1) * count + at, bytes(map(itemgetter(2 * j + 1), chunk)))
                at += len(chunk)
            del chunk
            if at != count:  # the views changed between the passes: the caller's transaction rules that out
                raise RuntimeError(f"{at} views coded of {count}")
        for k, name in enumerate(tails):
            if runs is None or name in ENTRY_COLUMNS or name == PROPS:
                continue
            if name in records and sizes[name] <= RUNS_HELD_VALUES:
                record, planes = records[name]
                cursor = conn.execute(f"SELECT tail_value, tail_code - 1 FROM temp.copy_tail{k}")
                runs(name, _read_runs(record, durations, dict(cursor), shape, planes))
            else:  # given up, or too many values to hold their runs: sorted by SQLite
                _sql_runs(conn, hostname, day, last, name, runs)
        for record, _ in records.values():
            record.close()
        return {name: name in records for name in tails}
    finally:
        for k in range(len(sizes)):
            conn.execute(f"DELETE FROM temp.copy_tail{k}")


# A long tail's dictionary (more than PASS_VALUES values) is written in (ASCII-lowered value, value) order,
# so the case variants a filter's `eq` matches are neighbours, and beside it goes a sparse index (a record
# INDEX + name): the offset in the text of every INDEX_STEP-th value's opening quote. A filter then finds a
# value by bisecting the sampled values (~log2(count / INDEX_STEP) reads of a few bytes each) and reading
# one block of INDEX_STEP values (~8 KB of paths), not the whole text (a 200k-path day: ~300 KB read and
# lowered, ~0.8 ms a day of a page-filtered panel's ~1.5). A smaller step makes the index bigger (a
# number of ~7 characters a sample) for blocks already far cheaper than the reads that find them.
INDEX_STEP: Final = 256
INDEX: Final = "~index:"  # prefix of the name of a dictionary's sparse index record


class _TailText:
    """The JSON dictionary of the values in temp.copy_tail{k}, in code order, made DICTIONARY_BATCH values a
    piece; its size, and its sparse index (INDEX_STEP) when it is `indexed`: plain (Dictionary) and in
    (ASCII-lowered, value) order as Python compares them (SQLite's `lower()` and BINARY order agree with
    filters.ascii_lower and str order, but a value's str() need not sort like the value)."""

    def __init__(self, conn: sqlite3.Connection, k: int) -> None:
        self._conn, self._k = conn, k
        self.size, self.count, self.indexed = 0, 0, True
        self.starts = array("q")
        for piece in self.pieces(first=True):
            self.size += len(piece)

    def pieces(self, first: bool = False) -> Iterator[str]:
        """The text's pieces (the first pass also measures and checks them and takes the samples' offsets)."""
        cursor = self._conn.execute(f"SELECT tail_value FROM temp.copy_tail{self._k} ORDER BY tail_code")
        step, at, position = INDEX_STEP, 1, 0
        previous: tuple[str, str] | None = None
        yield "["
        while rows := cursor.fetchmany(DICTIONARY_BATCH):
            batch = [str(value) for (value,) in rows]
            if first:
                for value in batch:
                    key = (ascii_lower(value), value)
                    if (previous is not None and key <= previous) or value == ", " or value.endswith('", '):
                        self.indexed = False  # out of order, or not plain: `find` reads the whole text
                    previous = key
            parts = []
            lo = 0
            while lo < len(batch):  # cut at the samples: each part's first value's offset is known
                hi = min(len(batch), lo + step - (position + lo) % step)
                separator = ", " if position + lo else ""
                if first and (position + lo) % step == 0:
                    self.starts.append(at + len(separator))
                part = separator + json.dumps(batch[lo:hi])[1:-1]
                parts.append(part)
                at += len(part)
                lo = hi
            position += len(batch)
            yield "".join(parts)
        yield "]"
        self.count = position

    def index_json(self) -> str:
        """The INDEX record's dictionary: the step, the values' count, the text's size and the samples' offsets."""
        return json.dumps({"step": INDEX_STEP, "count": self.count, "size": self.size, "starts": list(self.starts)})


class _RecordWriter:
    """A column_days row written in place: made with its dictionary and data at their full sizes
    (zeros), then written a piece at a time by incremental blob I/O. Python 3.10 has no blob writes:
    there the pieces are gathered and the row written whole when closed or finished."""

    def __init__(self, conn: sqlite3.Connection, key: tuple[str, int, str], text_size: int, data_size: int) -> None:
        self._conn, self._key = conn, key
        self._gathered = {"dictionary": bytearray(text_size), "data": bytearray(data_size)}
        self._rowid = 0
        self._blobs: dict[str, Any] = {}  # a sqlite3.Blob per column (Python 3.11+)
        if sys.version_info >= (3, 11):
            self._gathered.clear()
            self._rowid = conn.execute(_RECORD_SQL, (*key, text_size, data_size)).lastrowid or 0

    def _blob(self, column: str) -> Any:
        if sys.version_info < (3, 11):
            raise RuntimeError("no incremental blob I/O before Python 3.11")
        blob = self._blobs.get(column)
        if blob is None:
            blob = self._blobs[column] = self._conn.blobopen("column_days", column, self._rowid)
        return blob

    def write(self, column: str, offset: int, piece: bytes) -> None:
        if sys.version_info < (3, 11):
            self._gathered[column][offset : offset + len(piece)] = piece
            return
        blob = self._blob(column)
        blob.seek(offset)
        blob.write(piece)

    def read(self, column: str, offset: int, size: int) -> bytes:
        if sys.version_info < (3, 11):
            return bytes(self._gathered[column][offset : offset + size])
        blob = self._blob(column)
        blob.seek(offset)
        return bytes(blob.read(size))

    def close(self) -> None:
        """Done writing: the row is complete."""
        self._close_blobs()
        if self._gathered:
            text, data = self._gathered["dictionary"].decode("ascii"), bytes(self._gathered["data"])
            self._conn.execute(_INSERT_SQL, (*self._key, text, data))
            self._gathered.clear()

    def finish(self, text: str, skip: int) -> None:
        """Done writing: the row gets its dictionary `text`, and its data loses its first `skip` bytes."""
        self._close_blobs()
        if sys.version_info < (3, 11):
            self._conn.execute(_INSERT_SQL, (*self._key, text, bytes(self._gathered["data"][skip:])))
            self._gathered.clear()
        elif skip:
            self._conn.execute(_FINISH_SQL, {"text": text, "skip": skip, "rowid": self._rowid})
        else:
            self._conn.execute(_SET_DICTIONARY_SQL, {"text": text, "rowid": self._rowid})

    def abandon(self) -> None:
        """Not written after all: the row is deleted."""
        self._close_blobs()
        self._gathered.clear()
        if self._rowid:
            self._conn.execute("DELETE FROM column_days WHERE rowid = ?", (self._rowid,))

    def _close_blobs(self) -> None:
        for blob in self._blobs.values():
            blob.close()
        self._blobs.clear()


_FINISH_SQL = "UPDATE column_days SET dictionary = :text, data = substr(data, :skip + 1) WHERE rowid = :rowid"
_SET_DICTIONARY_SQL = "UPDATE column_days SET dictionary = :text WHERE rowid = :rowid"


_COLUMN_RUNS_SQL = """
    SELECT {expr}, duration_ms FROM views WHERE hostname = :hostname AND date_created BETWEEN :lo AND :hi
    AND duration_ms IS NOT NULL ORDER BY 1, 2"""
RUNS_CHUNK: Final = 4096  # values whose runs are handed over at once when SQLite sorts them
# A column's day runs are gathered in memory (an array per value, ~150 bytes each beside its durations)
# only up to this many values (~2.5 MB); a long tail's day (up to PLANE_CODES ** 2 paths at 10 M views)
# has SQLite sort them instead, RUNS_CHUNK values at a time: one more pass over the day's views.
RUNS_HELD_VALUES: Final = 16_384


def _sql_runs(conn: sqlite3.Connection, hostname: str, day: int, last: int, name: str, runs: DayRuns) -> None:
    """A column's durations per value over the day's hours 0..last, sorted by SQLite (its sorter spills to
    disk), handed to `runs` RUNS_CHUNK values at a time."""
    bounds = {"hostname": hostname, "lo": day * DAY_MS, "hi": day * DAY_MS + (last + 1) * HOUR_MS - 1}
    chunk: dict[str, array[int]] = {}
    for value, rows in groupby(conn.execute(_COLUMN_RUNS_SQL.format(expr=COLUMN_SQL[name]), bounds), key=itemgetter(0)):
        chunk[str(value)] = array("q", (duration for _, duration in rows))
        if len(chunk) >= RUNS_CHUNK:
            runs(name, chunk)
            chunk = {}
    runs(name, chunk)


def encode_events(rows: Iterable[tuple[Any, ...]], day: int, last: int = HOURS_PER_DAY - 1) -> list[Record]:
    """The events' records for a day's rows as _DAY_EVENTS_SQL reads them (names prefixed EVENTS)."""
    hours = bytearray()
    first_hour = day * HOURS_PER_DAY
    names = (*EVENT_COLUMNS, *_VIEW_SQL)
    coded, over = _code_columns(
        rows, len(names), lambda row: hours.append(row[-1] // HOUR_MS - first_hour + 1), PLANE_CODES * PLANE_CODES
    )
    if not hours:
        return []
    records = None if over else _records(EVENTS, names, coded)
    if records is None:
        return [(EVENTS, json.dumps({"rows": NOT_COPIED}), b"")]
    meta = {"rows": len(hours), "untimed": 0, "width": 4, "base": PLANE_CODES, "last": last}
    return [*records, (EVENTS + HOURS, "", bytes(hours)), (EVENTS, json.dumps(meta), b"")]


Coded = list[tuple[dict[Any, int], "array[int]"]]  # per column: value -> code (first seen 0), and each row's code
TWO_BYTE_CODES: Final = 1 << 16  # codes fit array("H") up to this many values; then "I"
_WIDER = {1 << 8: "H", TWO_BYTE_CODES: "I"}  # the code at which a column's codes need a wider array


Flush = Callable[[list["array[int]"], set[int]], None]  # each column's codes of a chunk of rows, the columns over


def _code_columns(
    rows: Iterable[tuple[Any, ...]],
    count: int,
    rest: Callable[[tuple[Any, ...]], None],
    most: int | None = None,
    chunks: tuple[int, Flush] | None = None,
) -> tuple[Coded, set[int]]:
    """Code the first `count` values of each row as they stream by; `rest` takes each row's other values.
    A column with more than `most` values is given up (its values are let go as soon as it has too
    many: a day of random paths must not hold them all) and returned among the columns over. With
    `chunks` (n, flush), every n rows' codes (and the last rows') go to `flush` and are let go."""
    coded: Coded = [({}, array("B")) for _ in range(count)]
    over: set[int] = set()
    size, flush = chunks if chunks is not None else (0, None)
    held = 0
    for row in rows:
        for column, value in enumerate(row[:count]):
            index, codes = coded[column]
            code = index.get(value)
            if code is None:
                if column in over:
                    continue
                code = index[value] = len(index)
                if most is not None and code >= most:
                    over.add(column)
                    coded[column] = ({}, array("B"))
                    continue
                if code in _WIDER:  # 1 byte a view up to 256 values, 2 up to 65,536, then 4
                    codes = array(_WIDER[code], codes)
                    coded[column] = (index, codes)
            codes.append(code)
        rest(row)
        if flush is not None:
            held += 1
            if held == size:
                flush([codes for _, codes in coded], over)
                coded = [(index, array(codes.typecode)) for index, codes in coded]
                held = 0
    if flush is not None and held:
        flush([codes for _, codes in coded], over)
        coded = [(index, array(codes.typecode)) for index, codes in coded]
    return coded, over


def _records(prefix: str, names: Iterable[str], coded: Coded) -> list[Record] | None:
    records = []
    for name, (index, codes) in zip(names, coded, strict=True):
        planes = _planes(len(index), codes)
        if planes is None:
            return None
        records.append((prefix + name, _dictionary_text(index), planes))
    return records


DICTIONARY_BATCH: Final = 1024  # values encoded to JSON at once (_dictionary_text)


def _dictionary_text(values: Iterable[Any]) -> str:
    """`json.dumps([str(value) for value in values])`, encoded DICTIONARY_BATCH values at a time."""
    return "".join(_dictionary_pieces(values))


def _dictionary_pieces(values: Iterable[Any]) -> Iterator[str]:
    """The pieces of `_dictionary_text(values)`, each of at most DICTIONARY_BATCH values: json.dumps of a
    long tail's whole list held a string per value twice over (~7 MB for 45k paths) beside the text."""
    yield "["
    batch: list[str] = []
    separator = ""
    for value in values:
        batch.append(str(value))
        if len(batch) == DICTIONARY_BATCH:
            yield separator + json.dumps(batch)[1:-1]
            batch, separator = [], ", "
    if batch:
        yield separator + json.dumps(batch)[1:-1]
    yield "]"


_PLUS_ONE = bytes((value + 1) % 256 for value in range(256))


def _planes(values: int, codes: array[int]) -> bytes | None:
    """The code planes of a column of `values` distinct values: codes + 1, in one or two planes."""
    base = PLANE_CODES
    if values > base * base:
        return None
    if values <= base:
        return bytes(array("B", codes)).translate(_PLUS_ONE)
    high = [code // base + 1 for code in range(values)]
    low = [code % base + 1 for code in range(values)]
    return bytes(map(high.__getitem__, codes)) + bytes(map(low.__getitem__, codes))


def _flags(unique_user: int, unique_page: int, duration: int | None) -> int:
    flags = FLAG_SET | (UNIQUE_USER if unique_user else 0) | (UNIQUE_PAGE if unique_page else 0)
    if duration is not None:
        flags |= TIMED
        if BOUNCE_MIN_MS <= duration <= BOUNCE_MAX_MS:
            flags |= BOUNCE
        if duration <= 2:
            flags |= AT_MOST_TWO | (AT_MOST_ONE if duration <= 1 else 0) | (ZERO if duration <= 0 else 0)
    return flags


def encode_column(values: Sequence[object]) -> tuple[list[str], bytes] | None:
    """A dictionary (first-seen order) and the code planes of one column; None with too many values."""
    ((index, codes),), _ = _code_columns(((value,) for value in values), 1, lambda row: None)
    planes = _planes(len(index), codes)
    return None if planes is None else ([str(value) for value in index], planes)


# Sites whose closed hours of today hold enough views for a copy (rollups.MIN_BLOCK_VIEWS, as a day block).
_OPEN_DAY_SITES_SQL = """
    SELECT hostname FROM rollup WHERE span = 1 AND kind = 0 AND period BETWEEN :lo AND :hi
    GROUP BY hostname HAVING SUM(pageviews) >= :least"""
_OPEN_DAY_COPY_SQL = "SELECT dictionary FROM column_days WHERE hostname = :hostname AND day = :day AND name = ''"


def refresh_open(conn: sqlite3.Connection, now_ms: int, limit: int = BACKFILL_DAYS_PER_CALL) -> int:
    """Copy the closed hours of today for up to `limit` sites with views in them whose copy is behind:
    the day's views so far come from planes too, only the current hour raw. Returns the days copied."""
    now_hour = now_ms // HOUR_MS
    day, of_day = divmod(now_hour, HOURS_PER_DAY)
    if of_day == 0:
        return 0
    copied = 0
    bounds = {"lo": day * HOURS_PER_DAY, "hi": now_hour - 1, "least": rollups.MIN_BLOCK_VIEWS}
    for (hostname,) in conn.execute(_OPEN_DAY_SITES_SQL, bounds).fetchall():
        row = conn.execute(_OPEN_DAY_COPY_SQL, {"hostname": hostname, "day": day}).fetchone()
        if row is None or json.loads(row[0]).get("last", HOURS_PER_DAY - 1) < of_day - 1:
            with Transaction(conn):
                build_day(conn, hostname, day, of_day - 1)
            copied += 1
            if copied >= limit:
                break
    return copied


def drop_day(conn: sqlite3.Connection, hostname: str, day: int) -> None:
    conn.execute("DELETE FROM column_days WHERE hostname = ? AND day = ?", (hostname, day))


def mark_uncopied(conn: sqlite3.Connection, hostname: str, day: int) -> None:
    """Drop a day's copies for good: its raw rows are gone (store/sqlite/retention.py). The day keeps a meta row
    saying it is not copied, so `backfill` does not copy it again from nothing."""
    drop_day(conn, hostname, day)
    conn.execute(_INSERT_SQL, (hostname, day, META, json.dumps({"rows": NOT_COPIED}), b""))


def backfill(conn: sqlite3.Connection, limit: int = BACKFILL_DAYS_PER_CALL) -> int:
    """Copy up to `limit` built days that have no copy yet (days built before migration 7); return how many."""
    missing = conn.execute(_MISSING_SQL, {"day": rollups.DAY, "limit": limit}).fetchall()
    for hostname, day in missing:
        with Transaction(conn):
            still_built = conn.execute(
                "SELECT 1 FROM rollup_built WHERE hostname = ? AND span = ? AND period = ?",
                (hostname, rollups.DAY, day),
            ).fetchone()
            if still_built:
                build_day(conn, hostname, day)
    return len(missing)


def has_missing(conn: sqlite3.Connection) -> bool:
    """Whether some built day still lacks its column copy."""
    return bool(conn.execute(_MISSING_SQL, {"day": rollups.DAY, "limit": 1}).fetchall())


# ---- planning -----------------------------------------------------------------------------------------


@dataclass
class ColumnPlan:
    """A range cut into day pieces read from column copies, (day, first hour, last hour) with hours of
    the day numbered 0..23 (a day may have several pieces, around dirty hours), and raw inclusive
    Unix-ms ranges."""

    days: list[tuple[int, int, int]] = field(default_factory=list)
    raw: list[tuple[int, int]] = field(default_factory=list)

    def hours_by_day(self) -> dict[int, list[tuple[int, int]]]:
        """Day -> its (first hour, last hour) pieces, days ascending."""
        hours: dict[int, list[tuple[int, int]]] = {}
        for day, first, last in self.days:
            hours.setdefault(day, []).append((first, last))
        return hours

    def partial_days(self) -> set[int]:
        """The days not read whole: they need their hours plane."""
        counts: dict[int, int] = {}
        for day, first, last in self.days:
            counts[day] = counts.get(day, 0) + last - first + 1
        return {day for day, count in counts.items() if count < HOURS_PER_DAY}


_COPIED_SQL = """
    SELECT day, dictionary FROM column_days WHERE hostname = :hostname AND day BETWEEN :lo AND :hi AND name = :meta"""


def plan(
    conn: sqlite3.Connection,
    hostname: str,
    start: int | None,
    end: int | None,
    copy: str = VIEWS,
    props: bool = False,
) -> ColumnPlan:
    """Cut [start, end] (inclusive Unix ms; None: unbounded) into whole hours of clean days with a `copy`
    (with `props`: a views copy that has PROPS) and raw ranges. Only the hours between the site's first
    and last row are looked at: a period of ten thousand years costs what the site's own days cost."""
    result = ColumnPlan()
    result.raw, hours = rollups.whole_hours(conn, hostname, start, end)
    if hours is None:
        return result
    first, last = hours
    first_day, last_day = first // HOURS_PER_DAY, last // HOURS_PER_DAY
    params = {"hostname": hostname, "lo": first_day, "hi": last_day, "meta": copy}
    covered = {}  # day -> the last hour of the day its copy holds
    for day, meta in conn.execute(_COPIED_SQL, params):
        fields = json.loads(meta)
        if fields["rows"] != NOT_COPIED and (fields.get("props") or not props):
            covered[day] = fields.get("last", HOURS_PER_DAY - 1)
    dirty: dict[int, set[int]] = {}
    for hour in rollups.dirty_hours(conn, hostname, first, last):
        dirty.setdefault(hour // HOURS_PER_DAY, set()).add(hour % HOURS_PER_DAY)
    # An hour comes from a copy when the copy holds it and it is clean: its rows are the ones copied
    # (any change since marks it dirty, and rebuilding a dirty hour drops the copy).
    for day in range(first_day, last_day + 1):
        lo = max(first, day * HOURS_PER_DAY) - day * HOURS_PER_DAY
        hi = min(last, day * HOURS_PER_DAY + HOURS_PER_DAY - 1) - day * HOURS_PER_DAY
        held = covered.get(day, -1)
        if held < lo:
            result.raw.append(((day * HOURS_PER_DAY + lo) * HOUR_MS, (day * HOURS_PER_DAY + hi + 1) * HOUR_MS - 1))
            continue
        usable = [hour for hour in range(lo, hi + 1) if hour <= held and hour not in dirty.get(day, ())]
        for hour in range(lo, hi + 1):
            if hour not in usable:
                absolute = day * HOURS_PER_DAY + hour
                result.raw.append((absolute * HOUR_MS, (absolute + 1) * HOUR_MS - 1))
        for hour in usable:
            if result.days and result.days[-1][0] == day and result.days[-1][2] == hour - 1:
                result.days[-1] = (day, result.days[-1][1], hour)
            else:
                result.days.append((day, hour, hour))
    result.raw = rollups.merge(result.raw)
    return result


# ---- reading ------------------------------------------------------------------------------------------


# A read holds this many views of a day at once: planes, flags, hours and durations come from the
# database in pieces of this many rows (one byte a view a plane: 64 KiB), and each piece is scanned as
# a day of its own (store/sqlite/scan.py sums them). A whole 333k-view day's planes, masks and their
# integers held 6-8 MB, and a request could hold two days while loading the next; a piece costs the
# same at any day size. A piece costs a few Python operations and some blob reads (~50 µs) beside the
# passes over its bytes, so fewer, bigger pieces buy nothing measurable.
DAY_CHUNK_VIEWS: Final = 65_536
# Characters of a dictionary's JSON text lowered, or parsed, at once (a long tail's day has 1-2 MB of
# text; lowering or parsing it whole held it twice and every value as a string object, ~5 MB).
DICTIONARY_WINDOW: Final = 1 << 16
_SEPARATOR = '", "'  # between two values of a dictionary's JSON text (Dictionary)


class Dictionary:
    """A column's values for a day, as the JSON list the copy stores, read without parsing it whole.

    json.dumps writes the list as `["a", "b"]`, every quote inside a string escaped, and ASCII only:
    so, unless some string holds an escaped quote followed by `, ` and a quote (`\\", "`, which only a
    value containing `", ` makes) or a value is `, ` itself (written `", "`, it overlaps the
    separators around it), every `", "` in the text separates two values, value i's JSON string
    runs from the quote after the i-th separator (or the opening `[`) to the quote of the next
    separator (or the closing `]`), and lowering the text lowers the strings (A-Z, as
    filters.ascii_lower) and nothing else. The separators' offsets (4 bytes a value) then give any
    value and batches of values; any other text is parsed whole (`plain` is False).
    A day's pieces share one Dictionary: what it found is found once a day. A copy's text is read only
    when something needs it (`text`): an indexed long tail (INDEX_STEP) finds values without it.
    """

    __slots__ = (
        "_text",
        "_stored",
        "_plain",
        "_searchable",
        "_ends",
        "_met",
        "_finds",
        "_positions",
        "_count",
        "_values",
        "__weakref__",
    )

    def __init__(self, text: str | None, stored: StoredText | None = None) -> None:
        self._text = text  # the JSON list, ASCII only (json.dumps escapes the rest); None: read on first use
        self._stored = stored  # where the text (and its sparse index, if any) is stored
        self._plain: bool | None = None  # looked at on first use: a filter that selects by codes needs none
        self._searchable: bool | None = None
        self._ends: array[int] | None = None  # value i's closing quote at i + 1 (plain texts), on first use
        self._met: dict[int, str] = {}  # position -> its value, for the values `find` met
        self._finds: dict[tuple[str, ...], list[int] | None] = {}
        self._positions: tuple[frozenset[str], list[int]] | None = None
        self._count: int | None = None
        self._values: list[str] | None = None  # a text of at most DICTIONARY_WINDOW characters, parsed

    @property
    def text(self) -> str:
        """The JSON text, read from the database on first use (a page filter on an indexed long tail needs
        none of it: `find` reads samples and a block, the labels are the values it met)."""
        if self._text is None:
            if self._stored is None:
                raise AttributeError("the dictionary was released")
            self._text = self._stored.text()
        return self._text

    @property
    def plain(self) -> bool:
        """Whether every `", "` of the text separates two values (class docstring). Looked at only when a
        value or a batch is read by the separators' offsets: a scan of the text costs ~0.2 ms at 300 KB."""
        if self._plain is None:
            text = self.text  # `, ` itself is written `", "`, overlapping the separators around it (`", ", "`)
            self._plain = self.searchable and '", ", "' not in text and text != '[", "]'
        return self._plain

    @property
    def searchable(self) -> bool:
        """Whether `find` can search the text: no escaped quote before `, "` (a value `, ` is no matter
        there: counting the separators left to right, without overlaps, skips its overlapping one)."""
        if self._searchable is None:
            # A backslash is found by memchr; the four characters, scanned for, cost ~0.4 ms at 300 KB.
            self._searchable = "\\" not in self.text or '\\", "' not in self.text
        return self._searchable

    def _closing(self) -> array[int]:
        """Each value's closing quote in the text (a plain one), found by splitting a window of the text
        at a time at the separators: part i of a window that starts at `start` ends at start + the
        lengths of parts 0..i + 4 * i, where the separator after it (or, for the last value, the
        closing `"]`) begins."""
        if self._ends is None:
            text, ends = self.text, array("i", [-2])  # the opening quote of value 0 is at ends[0] + 3
            start, stop = 1, len(text) - 1  # the strings between the brackets
            while start < stop:
                cut = text.find(_SEPARATOR, start + DICTIONARY_WINDOW, stop)  # a window ends at a separator
                end = stop if cut == -1 else cut
                parts = text[start:end].split(_SEPARATOR)
                ends.extend(map(add, accumulate(map(len, parts)), range(start, start + 4 * len(parts), 4)))
                start = stop if cut == -1 else cut + len(_SEPARATOR)
            if len(ends) > 1:
                ends[-1] -= 1  # the last value's part holds its closing quote
            self._ends = ends
        return self._ends

    def release(self) -> None:
        """Lets the text and what was found in it go; any later use of this Dictionary raises
        AttributeError (columns.load releases a day's dictionaries before reading the next day's)."""
        self._text, self._stored = None, None
        self._ends, self._met, self._finds, self._positions, self._values = None, {}, {}, None, None

    def value(self, position: int) -> str:
        """values[position], parsing that value only."""
        return self.values_at([position])[0]

    def values_at(self, positions: Sequence[int]) -> list[str]:
        """The values at `positions`, each parsed alone (a JSON string without a backslash is its text)."""
        met = self._met
        if all(position in met for position in positions):
            # Only values `find` met (a page filter's labels): they need no text (an indexed one is not
            # read at all), nor the separators' offsets, nor the scan that tells whether the text is plain.
            return [met[position] for position in positions]
        text = self.text
        if len(text) <= DICTIONARY_WINDOW:
            # A window's text is parsed whole, in C, once (a list filter's labels, day after day): cheaper
            # than telling whether it is plain and finding each value's closing quote (a 47 KB text of
            # referrers: ~0.1 ms against ~0.4).
            if self._values is None:
                self._values = json.loads(text)
            return [self._values[position] for position in positions]
        if not self.plain:
            values = json.loads(text)
            return [values[position] for position in positions]
        ends = self._ends if self._ends is not None else self._closing()
        found = []
        for position in positions:
            start, end = ends[position] + 3, ends[position + 1]  # the value's opening and closing quotes
            value = text[start + 1 : end]
            found.append(value if "\\" not in value else json.loads(text[start : end + 1]))
        return found

    def batches(self, lowered: bool = False) -> Iterator[list[str]]:
        """The values in order (ASCII-lowered with `lowered`), a window of the text at a time."""
        text = self.text
        if not self.plain or len(text) <= DICTIONARY_WINDOW:
            yield json.loads(text.lower() if lowered else text)
            return
        ends = self._closing()
        first = 0
        while first < len(ends) - 1:
            start = ends[first] + 3
            last = bisect_right(ends, start + DICTIONARY_WINDOW, first + 2) - 1  # at least one value
            part = "[" + text[start : ends[last] + 1] + "]"
            yield json.loads(part.lower() if lowered else part)
            first = last

    def positions(self, wanted: Collection[str]) -> list[int]:
        """The positions of the values (as written) in `wanted`; the last answer is kept, as a day's
        pieces ask the same."""
        key = frozenset(wanted)
        if self._positions is None or self._positions[0] != key:
            found, base = [], 0
            if self._stored is not None and self._stored.indexed():
                with self._stored as stored:  # each value looked up by its lowered form, then as written
                    for value in key:
                        first, block = self._block(stored, ascii_lower(value))
                        needle = json.dumps(value)[1:-1]
                        for i, body in enumerate(block.split(_SEPARATOR) if block is not None else ()):
                            if body == needle:
                                self._met[first + i] = value
                                found.append(first + i)
                found.sort()
            else:
                for batch in self.batches():
                    found += [base + i for i, value in enumerate(batch) if value in key]
                    base += len(batch)
            self._positions = (key, found)
        return self._positions[1]

    def find(self, lowered: Sequence[str]) -> list[int] | None:
        """The positions of the values whose ASCII-lowered form is one of `lowered` (lowered already),
        found in the JSON text without parsing it, or None when the text does not allow it (class
        docstring): the text is lowered a window at a time."""
        key = tuple(lowered)
        if key not in self._finds:
            if self._stored is not None and self._stored.indexed():
                self._finds[key] = self._find_indexed(key, self._stored)
            else:
                self._finds[key] = self._find(key) if self.searchable else None
        return self._finds[key]

    def _find_indexed(self, lowered: Sequence[str], stored: StoredText) -> list[int]:
        """`find` in a text written in (ASCII-lowered, value) order, plain, with a sparse index (INDEX_STEP):
        the first and last samples around a value found by bisection, then only the blocks between them
        split at the separators (every `", "` is one; lowering moves none) and compared lowered."""
        found = []
        with stored:
            for value in dict.fromkeys(lowered):
                first, block = self._block(stored, value)
                if block is None:
                    continue
                needle = json.dumps(value)[1:-1]
                matched = [i for i, body in enumerate(block.lower().split(_SEPARATOR)) if body == needle]
                bodies = block.split(_SEPARATOR) if matched else []  # as written
                for i in matched:
                    body = bodies[i]
                    self._met[first + i] = body if "\\" not in body else str(json.loads(f'"{body}"'))
                    found.append(first + i)
        return sorted(found)

    def _block(self, stored: StoredText, lowered: str) -> tuple[int, str | None]:
        """The first position and the JSON strings (without their outer quotes, separated by `", "`) of
        the blocks of an indexed text that may hold values whose ASCII-lowered form is `lowered`: from
        the last sample below it (its first variant comes after) to the first sample above it (found by
        bisection; None if that is the first value)."""
        lo = bisect_left(stored, lowered)  # the first sample not below the value
        hi = bisect_right(stored, lowered, lo)  # the first sample above it
        if hi == 0:
            return 0, None
        first = max(lo - 1, 0)
        return first * stored.step, stored.block(first, hi, self._text)

    def _find(self, lowered: Sequence[str]) -> list[int] | None:
        text = self.text
        found = []
        for value in dict.fromkeys(lowered):
            needle = json.dumps(value)
            if _SEPARATOR in needle:
                return None  # the value `, ` itself: its needle is the separator, found between any two values
            for window in range(0, len(text), DICTIONARY_WINDOW):
                part = text[window : window + DICTIONARY_WINDOW + len(needle) - 1].lower()
                at = part.find(needle)
                while at != -1 and at < DICTIONARY_WINDOW:
                    start = window + at
                    end = start + len(needle)
                    opens = start == 1 or text.startswith('", ', start - 3)
                    if opens and (end == len(text) - 1 or text.startswith(', "', end)):
                        position = text.count(_SEPARATOR, 0, start + 1)  # the separator ends with the opening quote
                        body = text[start + 1 : end - 1]
                        self._met[position] = body if "\\" not in body else str(json.loads(text[start:end]))
                        found.append(position)
                    at = part.find(needle, at + 1)
        return sorted(found)

    def __len__(self) -> int:
        """How many values, counted in the JSON text without parsing it: each is a string between two
        unescaped quotes, and once the escaped backslashes (`\\\\`) are taken out every other quote preceded
        by a backslash is an escaped one. A filter asks whether it selects every value of a day; parsing
        a long tail's dictionary for that was about a sixth of a filtered /time's CPU (1 M views, 200k
        paths: 60-73 ms instead of 68-79)."""
        if self._count is None and self._text is None and self._stored is not None and self._stored.indexed():
            self._count = self._stored.count
        if self._count is None:
            text = self.text.replace("\\\\", "") if "\\" in self.text else self.text
            self._count = (text.count('"') - text.count('\\"')) // 2
        return self._count


class Column:
    """One dimension of a day, or of a piece of it: its values' Dictionary (code c, 1-based, is value
    c - 1 when one plane) and its planes."""

    __slots__ = ("dictionary", "planes", "base")

    def __init__(self, dictionary: Dictionary | str, planes: tuple[bytes, ...], base: int) -> None:
        self.dictionary = Dictionary(dictionary) if isinstance(dictionary, str) else dictionary
        self.planes = planes  # one (codes 1..base) or two: code = (high-1) * base + low-1
        self.base = base  # PLANE_CODES when the day was copied

    def value(self, position: int) -> str:
        return self.dictionary.value(position)

    def find(self, lowered: Sequence[str]) -> list[int] | None:
        return self.dictionary.find(lowered)

    def __len__(self) -> int:
        return len(self.dictionary)


@dataclass
class Day:
    """A day's column copy, or a piece of it (rows offset..offset+rows-1 of the day), with the planes a
    query asked for."""

    day: int
    rows: int
    untimed: int  # views without a duration: rows 0..untimed-1
    flags: bytes
    hours: bytes  # hour of the day + 1, per view (empty when not asked for)
    durations: array[int] | None  # the sorted durations of rows untimed..rows-1, when asked for
    columns: dict[str, Column]
    durations_rowid: int = 0  # where they are stored, for DurationsWindow
    width: int = 4
    durations_offset: int = 0  # the position of this piece's first duration among the day's


def load(
    conn: sqlite3.Connection,
    hostname: str,
    days: Sequence[int],
    names: Sequence[str],
    durations: bool,
    copy: str = VIEWS,
    partial: Collection[int] | None = None,
) -> Iterator[Day]:
    """The `copy` of `days` (ascending), with the dimension columns `names`, in pieces of at most
    DAY_CHUNK_VIEWS views, one at a time (a day's pieces in row order, sharing its dictionaries). A
    day's dictionaries are let go when the piece after its last is asked for (Dictionary.release): use
    each piece before asking for the next day's, never collect them (`list(load(...))`).

    The hours plane comes only for the days in `partial` (all days when None): a day read whole
    needs none.
    """
    wanted = (
        [META, FLAGS, *names, *(INDEX + name for name in names)]
        + ([DURATIONS] if durations else [])
        + ([HOURS] if partial is None else [])
    )
    params: dict[str, object] = {"hostname": hostname, "hours": copy + HOURS, "meta": copy + META}
    in_names = rollups.bind_values(params, dict.fromkeys(copy + name for name in wanted), "n")
    for first in range(0, len(days), MAX_BIND_DAYS):
        chunk = days[first : first + MAX_BIND_DAYS]
        in_days = ", ".join(str(int(day)) for day in chunk)
        hours = ", ".join(str(int(day)) for day in chunk if partial is not None and day in partial)
        sql = (
            # The dictionaries are read a day at a time (_pieces), not with the day's rows: groupby would
            # hold the next day's first text while the caller works on this day's pieces.
            f"SELECT day, name, iif(name = :meta, dictionary, NULL), rowid, length(data) FROM column_days"
            " WHERE hostname = :hostname"
            f" AND day IN ({in_days}) AND (name IN ({in_names}) OR name = :hours AND day IN ({hours}))"
            " ORDER BY day"
        )
        for day, records in groupby(conn.execute(sql, params), key=lambda row: row[0]):
            found = {name.removeprefix(copy): (dictionary, rowid, size) for _, name, dictionary, rowid, size in records}
            yield from _pieces(conn, day, found)


class DurationsWindow:
    """Reads day.durations[lo:hi] (positions within the piece `day`) from the database, so a caller can
    let the array go. The blob stays open between reads (SQLite then remembers its overflow pages: a
    read costs ~0.3 µs, not ~15); `close` it when done."""

    def __init__(self, conn: sqlite3.Connection, day: Day) -> None:
        self._conn = conn
        self._rowid, self._width = day.durations_rowid, day.width  # not `day`: its planes must not stay alive
        self._offset = day.durations_offset
        self._blob: Any = None  # a sqlite3.Blob (Python 3.11+)

    def __call__(self, lo: int, hi: int) -> Sequence[int]:
        start, size = (lo + self._offset) * self._width, (hi - lo) * self._width
        if sys.version_info < (3, 11):  # no Connection.blobopen: one substr() per window
            return rollups.unpack(self._width, read_blob(self._conn, "column_days", "data", self._rowid, start, size))
        if self._blob is None:
            self._blob = self._conn.blobopen("column_days", "data", self._rowid, readonly=True)
        self._blob.seek(start)
        return rollups.unpack(self._width, self._blob.read(size))

    def close(self) -> None:
        if self._blob is not None:
            self._blob.close()
            self._blob = None


_DICTIONARY_SQL = "SELECT dictionary FROM column_days WHERE rowid = :rowid"
SAMPLE_READ: Final = 64  # characters read at a sample's offset, enough for most paths (then 4 times more)


class StoredText:
    """A record's dictionary text where the copy stores it, read whole only when asked (`text`), and its
    sparse index (INDEX_STEP) when it has one. As a sequence: the index's sampled values, ASCII-lowered,
    each read (a few bytes at its offset) on first use, for bisection; read between `with` and its end
    (an open blob remembers the text's overflow pages)."""

    def __init__(self, conn: sqlite3.Connection, rowid: int, index_rowid: int = 0) -> None:
        self._conn, self._rowid, self._index_rowid = conn, rowid, index_rowid
        self._loaded = False
        self.step, self.count, self.size = 0, 0, 0
        self.starts = array("q")  # the text offset of the opening quote of every step-th value
        self._samples: dict[int, str] = {}
        self._blob: Any = None  # a sqlite3.Blob (Python 3.11+) while in `with`

    def text(self) -> str:
        """The whole text, as SQLite gives it: read from an open blob, its bytes and their decoded text
        were both held (+0.6 MB traced for a 0.6 MB text) for no measurable gain."""
        return str(self._conn.execute(_DICTIONARY_SQL, {"rowid": self._rowid}).fetchone()[0])

    def indexed(self) -> bool:
        """Whether the text has a sparse index (then it is plain and in (ASCII-lowered, value) order). Not
        before Python 3.11: without Connection.blobopen a few bytes of a TEXT value (substr) cost all of it."""
        if sys.version_info < (3, 11):
            return False
        if self._index_rowid and not self._loaded:
            (fields,) = self._conn.execute(_DICTIONARY_SQL, {"rowid": self._index_rowid}).fetchone()
            index = json.loads(fields)
            self.step, self.count, self.size = index["step"], index["count"], index["size"]
            self.starts = array("q", index["starts"])
            self._loaded = True
        return bool(self._index_rowid)

    def __enter__(self) -> StoredText:
        if sys.version_info >= (3, 11):  # `indexed` is False before
            self._blob = self._conn.blobopen("column_days", "dictionary", self._rowid, readonly=True)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._blob is not None:
            self._blob.close()
            self._blob = None

    def _read(self, offset: int, size: int) -> str:
        if self._blob is None:
            raise RuntimeError("read outside `with`")
        self._blob.seek(offset)
        return bytes(self._blob.read(size)).decode("ascii")

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, sample: int) -> str:
        """The sampled value `sample` (value sample * step), ASCII-lowered: the JSON string at its offset
        ends at the first separator after its opening quote (the text is plain), or at the closing `"]`."""
        found = self._samples.get(sample)
        if found is None:
            offset, size = self.starts[sample], SAMPLE_READ
            while True:
                chunk = self._read(offset, size)
                end = chunk.find(_SEPARATOR, 1)
                if end != -1:
                    break
                if offset + len(chunk) >= self.size:
                    end = self.size - 2 - offset  # the closing quote before `]`
                    break
                size *= 4
            body = chunk[1:end]
            found = self._samples[sample] = ascii_lower(body if "\\" not in body else str(json.loads(f'"{body}"')))
        return found

    def block(self, first: int, stop: int, text: str | None) -> str:
        """The JSON strings of values first * step up to stop * step (samples), without their outer quotes,
        separated by `", "`: from `text` if it is read already, else from the database."""
        start = self.starts[first] + 1
        end = self.starts[stop] - 3 if stop < len(self.starts) else self.size - 2  # the last one's closing quote
        return text[start:end] if text is not None else self._read(start, end - start)


def _pieces(conn: sqlite3.Connection, day: int, records: dict[str, tuple[str, int, int]]) -> Iterator[Day]:
    """A day's pieces of at most DAY_CHUNK_VIEWS views, their planes read from the blobs (plane p of a
    column is data[p * rows : (p + 1) * rows]). The day's dictionaries are read first and released
    (Dictionary.release) once the caller asks for what follows the last piece, before the next day's
    are read: a long tail's day holds 1-2 MB of them, and the caller's loop variable still holds the
    last piece then. A caller that stops before (`break`, one `next`) keeps its pieces usable."""
    meta = json.loads(records[META][0])
    rows, untimed, width, base = meta["rows"], meta["untimed"], meta["width"], meta["base"]
    dictionaries = {
        name: (
            Dictionary(None, StoredText(conn, rowid, records.get(INDEX + name, ("", 0, 0))[1])),
            size // rows if rows else 0,
        )
        for name, (_, rowid, size) in records.items()
        if name in COLUMN_SQL or name in EVENT_COLUMNS or name == PROPS
    }
    blobs: dict[str, Any] = {}  # a sqlite3.Blob per record (Python 3.11+), open for the day's pieces

    def read(name: str, start: int, size: int) -> bytes:
        rowid = records[name][1]
        if sys.version_info < (3, 11):
            return read_blob(conn, "column_days", "data", rowid, start, size)
        # An open blob remembers its overflow pages: reading piece k does not walk the k before it.
        blob = blobs.get(name)
        if blob is None:
            blob = blobs[name] = conn.blobopen("column_days", "data", rowid, readonly=True)
        blob.seek(start)
        return blob.read(size)

    try:
        for lo in range(0, rows, DAY_CHUNK_VIEWS):
            hi = min(rows, lo + DAY_CHUNK_VIEWS)
            pieces = {
                name: Column(dictionary, tuple(read(name, p * rows + lo, hi - lo) for p in range(planes)), base)
                for name, (dictionary, planes) in dictionaries.items()
            }
            durations, rowid, first = None, 0, max(lo, untimed) - untimed
            if DURATIONS in records:
                rowid = records[DURATIONS][1]
                timed = hi - untimed - first
                durations = rollups.unpack(width, read(DURATIONS, first * width, timed * width) if timed > 0 else b"")
            flags = read(FLAGS, lo, hi - lo) if FLAGS in records else b""
            hours = read(HOURS, lo, hi - lo) if HOURS in records else b""
            yield Day(day, hi - lo, max(0, min(untimed, hi) - lo), flags, hours, durations, pieces, rowid, width, first)
        # The caller asked past the day's last piece (one that stops early keeps what it holds usable).
        for dictionary, _ in dictionaries.values():
            dictionary.release()
    finally:
        for blob in blobs.values():
            blob.close()
