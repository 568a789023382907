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
taken in row order, are sorted. store/scan.py evaluates filters over these
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
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import groupby
from typing import Any

from medama_core.store import rollups
from medama_core.store.aggregate import BOUNCE_MAX_MS, BOUNCE_MIN_MS
from medama_core.store.db import Transaction, read_blob

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
}
# The same over `views v`, for the events' copy (each event carries its view's dimensions).
_VIEW_SQL = {
    name: sql.replace("referrer_", "v.referrer_") if name == "referrer" else f"v.{sql}"
    for name, sql in COLUMN_SQL.items()
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
# of selected views can be cut out of a masked plane by deleting its zero bytes (store/scan.py).
UNIQUE_USER, UNIQUE_PAGE, TIMED, BOUNCE, ZERO, AT_MOST_ONE, FLAG_SET = 1, 2, 4, 8, 16, 32, 128
FLAG_BITS = {"unique_user": 0, "unique_page": 1, "timed": 2, "bounce": 3, "zero": 4, "at_most_one": 5}

# Codes are 1..PLANE_CODES in each plane (0 marks an unselected view), so one plane holds 255 values
# and two hold 255 * 255. A day with more distinct values of a column than that is not copied (read raw).
PLANE_CODES = 255
NOT_COPIED = -1  # `rows` in a day's meta row when some column had too many values
MAX_BIND_DAYS = 400  # days named in one `IN (...)` (literal integers); a 90-day range is one query
BACKFILL_DAYS_PER_CALL = 4  # days copied per writer call (backfill, today's copies): ~1 s at 111k views a day

_PROPS_SQL = """(SELECT json_group_array(json_array(name, value)) FROM (
    SELECT DISTINCT name, value FROM events e WHERE e.bid = views.bid ORDER BY 1, 2))"""
_DAY_ROWS_SQL = (
    "SELECT "
    + ", ".join(COLUMN_SQL.values())
    + f""", {_PROPS_SQL}, is_unique_user, is_unique_page, duration_ms, date_created FROM views
    WHERE hostname = :hostname AND date_created BETWEEN :lo AND :hi ORDER BY duration_ms"""
)
# Events of the day by their own time, each joined to its view on the site (as store/stats.py counts them).
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


def build_day(conn: sqlite3.Connection, hostname: str, day: int, last: int = HOURS_PER_DAY - 1) -> None:
    """Store the column copies of a site's UTC day, hours 0..last, from its raw rows (inside the caller's
    transaction).

    Rows stream from the cursor into per-column code arrays: a busy day (111k views) holds a
    few MB, not a list of row tuples (about 150 MB of Python objects).
    """
    drop_day(conn, hostname, day)
    bounds = {"hostname": hostname, "lo": day * DAY_MS, "hi": day * DAY_MS + (last + 1) * HOUR_MS - 1}
    records = encode_day(conn.execute(_DAY_ROWS_SQL, bounds), day, last)
    if not records:  # no views (only events, or rows gone since their hours were rolled up): read raw
        records = [(META, json.dumps({"rows": NOT_COPIED, "last": last}), b"")]
    records += encode_events(conn.execute(_DAY_EVENTS_SQL, bounds), day, last)
    conn.executemany(_INSERT_SQL, [(hostname, day, name, dictionary, data) for name, dictionary, data in records])


Record = tuple[str, str, bytes]  # (name, dictionary, data) of a column_days row


def encode_day(rows: Iterable[tuple[Any, ...]], day: int, last: int = HOURS_PER_DAY - 1) -> list[Record]:
    """The views' records for a day's rows, in duration order as _DAY_ROWS_SQL reads them; none without rows.

    Only the meta record when a dimension has more than PLANE_CODES ** 2 distinct values. With that
    many sets of event pairs (say a property valued by order number), the copy goes without PROPS
    (its meta says `"props": false`) and prop filters read the day raw.
    """
    flags, hours, timed = bytearray(), bytearray(), array("q")
    first_hour = day * HOURS_PER_DAY
    dimensions = len(COLUMN_SQL)

    def rest(row: tuple[Any, ...]) -> None:
        unique_user, unique_page, duration, at = row[dimensions + 1 :]
        flags.append(_flags(unique_user, unique_page, duration))
        hours.append(at // HOUR_MS - first_hour + 1)
        if duration is not None:
            timed.append(duration)

    coded = _code_columns(rows, dimensions + 1, rest)
    if not flags:
        return []
    records = _records(VIEWS, COLUMN_SQL, coded[:dimensions])
    if records is None:
        return [(META, json.dumps({"rows": NOT_COPIED}), b"")]
    props = _records(VIEWS, [PROPS], coded[dimensions:])
    records += props or []
    width, packed = rollups.pack(timed)
    meta = {
        "rows": len(flags),
        "untimed": len(flags) - len(timed),
        "width": width,
        "base": PLANE_CODES,
        "last": last,
        "props": props is not None,
    }
    records += [(FLAGS, "", bytes(flags)), (HOURS, "", bytes(hours)), (DURATIONS, "", packed)]
    return [*records, (META, json.dumps(meta), b"")]


def encode_events(rows: Iterable[tuple[Any, ...]], day: int, last: int = HOURS_PER_DAY - 1) -> list[Record]:
    """The events' records for a day's rows as _DAY_EVENTS_SQL reads them (names prefixed EVENTS)."""
    hours = bytearray()
    first_hour = day * HOURS_PER_DAY
    names = (*EVENT_COLUMNS, *COLUMN_SQL)
    coded = _code_columns(rows, len(names), lambda row: hours.append(row[-1] // HOUR_MS - first_hour + 1))
    if not hours:
        return []
    records = _records(EVENTS, names, coded)
    if records is None:
        return [(EVENTS, json.dumps({"rows": NOT_COPIED}), b"")]
    meta = {"rows": len(hours), "untimed": 0, "width": 4, "base": PLANE_CODES, "last": last}
    return [*records, (EVENTS + HOURS, "", bytes(hours)), (EVENTS, json.dumps(meta), b"")]


Coded = list[tuple[dict[Any, int], "array[int]"]]  # per column: value -> code (first seen 0), and each row's code


def _code_columns(rows: Iterable[tuple[Any, ...]], count: int, rest: Callable[[tuple[Any, ...]], None]) -> Coded:
    """Code the first `count` values of each row as they stream by; `rest` takes each row's other values."""
    coded: Coded = [({}, array("I")) for _ in range(count)]
    for row in rows:
        for value, (index, codes) in zip(row, coded, strict=False):
            code = index.get(value)
            if code is None:
                code = index[value] = len(index)
            codes.append(code)
        rest(row)
    return coded


def _records(prefix: str, names: Iterable[str], coded: Coded) -> list[Record] | None:
    records = []
    for name, (index, codes) in zip(names, coded, strict=True):
        planes = _planes(len(index), codes)
        if planes is None:
            return None
        records.append((prefix + name, json.dumps([str(value) for value in index]), planes))
    return records


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
        if duration <= 1:
            flags |= AT_MOST_ONE | (ZERO if duration <= 0 else 0)
    return flags


def encode_column(values: Sequence[object]) -> tuple[list[str], bytes] | None:
    """A dictionary (first-seen order) and the code planes of one column; None with too many values."""
    ((index, codes),) = _code_columns(((value,) for value in values), 1, lambda row: None)
    planes = _planes(len(index), codes)
    return None if planes is None else ([str(value) for value in index], planes)


_OPEN_DAY_SITES_SQL = """
    SELECT DISTINCT hostname FROM rollup WHERE span = 1 AND kind = 0 AND period BETWEEN :lo AND :hi"""
_OPEN_DAY_COPY_SQL = "SELECT dictionary FROM column_days WHERE hostname = :hostname AND day = :day AND name = ''"


def refresh_open(conn: sqlite3.Connection, now_ms: int, limit: int = BACKFILL_DAYS_PER_CALL) -> int:
    """Copy the closed hours of today for up to `limit` sites with views in them whose copy is behind:
    the day's views so far come from planes too, only the current hour raw. Returns the days copied."""
    now_hour = now_ms // HOUR_MS
    day, of_day = divmod(now_hour, HOURS_PER_DAY)
    if of_day == 0:
        return 0
    copied = 0
    bounds = {"lo": day * HOURS_PER_DAY, "hi": now_hour - 1}
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


@dataclass
class Column:
    """One dimension of a day: its values (code c, 1-based, is values[c - 1] when one plane) and planes."""

    values: list[str]
    planes: tuple[bytes, ...]  # one (codes 1..base) or two: code = (high-1) * base + low-1
    base: int  # PLANE_CODES when the day was copied


@dataclass
class Day:
    """A day's column copy, with the planes a query asked for."""

    day: int
    rows: int
    untimed: int  # views without a duration: rows 0..untimed-1
    flags: bytes
    hours: bytes  # hour of the day + 1, per view (empty when not asked for)
    durations: array[int] | None  # the sorted durations of rows untimed..rows-1, when asked for
    columns: dict[str, Column]
    durations_rowid: int = 0  # where they are stored, for DurationsWindow
    width: int = 4


def load(
    conn: sqlite3.Connection,
    hostname: str,
    days: Sequence[int],
    names: Sequence[str],
    durations: bool,
    copy: str = VIEWS,
    partial: Collection[int] | None = None,
) -> Iterator[Day]:
    """The `copy` of `days` (ascending), with the dimension columns `names`, one day at a time.

    The hours plane comes only for the days in `partial` (all days when None): a day read whole
    needs none.
    """
    wanted = [META, FLAGS, *names] + ([DURATIONS] if durations else []) + ([HOURS] if partial is None else [])
    params: dict[str, object] = {"hostname": hostname, "hours": copy + HOURS}
    in_names = rollups.bind_values(params, dict.fromkeys(copy + name for name in wanted), "n")
    for first in range(0, len(days), MAX_BIND_DAYS):
        chunk = days[first : first + MAX_BIND_DAYS]
        in_days = ", ".join(str(int(day)) for day in chunk)
        hours = ", ".join(str(int(day)) for day in chunk if partial is not None and day in partial)
        sql = (
            f"SELECT day, name, dictionary, data, rowid FROM column_days WHERE hostname = :hostname"
            f" AND day IN ({in_days}) AND (name IN ({in_names}) OR name = :hours AND day IN ({hours}))"
            " ORDER BY day"
        )
        for day, records in groupby(conn.execute(sql, params), key=lambda row: row[0]):
            found = {name.removeprefix(copy): (dictionary, data, rowid) for _, name, dictionary, data, rowid in records}
            yield _day(day, found)


class DurationsWindow:
    """Reads day.durations[lo:hi] from the database, so a caller can let the array go. The blob stays
    open between reads (SQLite then remembers its overflow pages: a read costs ~0.3 µs, not ~15);
    `close` it when done."""

    def __init__(self, conn: sqlite3.Connection, day: Day) -> None:
        self._conn = conn
        self._rowid, self._width = day.durations_rowid, day.width  # not `day`: its planes must not stay alive
        self._blob: Any = None  # a sqlite3.Blob (Python 3.11+)

    def __call__(self, lo: int, hi: int) -> Sequence[int]:
        start, size = lo * self._width, (hi - lo) * self._width
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


def _day(day: int, records: dict[str, tuple[str, bytes, int]]) -> Day:
    meta = json.loads(records[META][0])
    rows = meta["rows"]
    columns = {}
    for name, (dictionary, data, _) in records.items():
        if name in COLUMN_SQL or name in EVENT_COLUMNS or name == PROPS:
            planes = tuple(data[i : i + rows] for i in range(0, len(data), rows))
            columns[name] = Column(json.loads(dictionary), planes, meta["base"])
    durations, rowid = None, 0
    if DURATIONS in records:
        _, packed, rowid = records[DURATIONS]
        durations = rollups.unpack(meta["width"], packed)
    flags = records[FLAGS][1] if FLAGS in records else b""
    hours = records[HOURS][1] if HOURS in records else b""
    return Day(day, rows, meta["untimed"], flags, hours, durations, columns, rowid, meta["width"])
