"""Import and export of page views and custom events as JSON Lines or CSV, and import from upstream's DuckDB file.

Rows travel with the columns of the `views` and `events` tables and are stored
exactly as given: nothing is re-enriched. A file is imported in one
transaction, so it lands whole or not at all; the first bad row stops it with
its line number. A view whose (bid, hostname) is already stored, or came
earlier in the file, is ignored, as ingestion ignores it. A large import sets
the table's secondary indexes aside and rebuilds them (store/sqlite/bulk.py),
which is several times faster than updating them row by row; the rollup hours
its rows touched are marked once at the end (store/sqlite/marking.py). Dates
are written as ISO 8601 UTC with milliseconds and read as ISO 8601 (a missing
offset means UTC) or Unix seconds, so an export imported into an empty
database exports again byte for byte.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import datetime as dt
import functools
import gzip
import io
import json
import operator
import os
import re
import sqlite3
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import IO, TYPE_CHECKING, Any, Final, cast

from medama_core import accounts, csvtable
from medama_core.config import (
    ConfigError,
    Option,
    StartupError,
    option,
    parse_bool,
    parse_flags,
    parse_text,
)
from medama_core.importers import goatcounter, plausible, umami
from medama_core.importers.rows import BadRecord, Record, text_lines
from medama_core.store.files import open_private
from medama_core.store.meta_rows import DEFAULT_ADMIN_PASSWORD, DEFAULT_ADMIN_USERNAME
from medama_core.store.sqlite import bulk, imported, marking, meta
from medama_core.store.sqlite.db import Transaction
from medama_core.store.sqlite.hits import EVENT_COLUMNS, VIEW_COLUMNS, event_row, insert_sql, view_row

if TYPE_CHECKING:  # ClickHouse's modules are imported by the functions that use them: SQLite never loads them
    from medama_core.store.clickhouse import client as ch_client

__all__ = [
    "EVENTS",
    "FORMATS",
    "VIEWS",
    "ImportResult",
    "TransferError",
    "ExportPage",
    "export_page",
    "export_rows",
    "import_medama",
    "import_rows",
    "open_input",
    "parse_time",
]

VIEWS: Final = "views"
EVENTS: Final = "events"
FORMATS: Final = ("jsonl", "csv")
COLUMNS: Final = {VIEWS: VIEW_COLUMNS, EVENTS: EVENT_COLUMNS}

# Rows per chunk (a few INSERT statements under one savepoint): large enough that the per-chunk
# overhead vanishes, small enough that a failing chunk is cheap to replay row by row to find the
# bad line. A multiple of ROWS_PER_STATEMENT, so whole chunks use the many-row statement.
CHUNK_ROWS: Final = 4096
PROGRESS_EVERY_S: Final = 1.0  # seconds between progress lines on stderr
PROGRESS_BAR_WIDTH: Final = 30  # characters of the progress bar; a line stays under 80
# The table's secondary indexes are set aside (store/sqlite/bulk.py) and rebuilt when it
# holds at most this many times the rows the file is expected to bring. Rebuilding costs about
# 4 µs per row of the whole table here, updating the indexes row by row 10-15 µs per new row.
REBUILD_RATIO: Final = 2
# Page cache of the import connection: a large import keeps the views indexes in memory.
IMPORT_CACHE_KIB: Final = 64 * 1024
# Page cache once the indexes are set aside: inserts then touch only the table's end and the unique
# index, and CREATE INDEX sorts in up to this much memory besides the cache. 500,000 views: peak
# RSS 145 MB with 64 MiB, 80 MB with 32 MiB, and the same CPU time for the sort (16 MiB: +10%).
BULK_CACHE_KIB: Final = 32 * 1024
# A JSON line longer than this is not an analytics row (the tracker caps URLs at 8 KiB); CSV
# fields are bounded by the csv module's own field_size_limit (128 KiB).
MAX_LINE_CHARS: Final = 1024 * 1024
GZIP_MAGIC: Final = b"\x1f\x8b"

_BOOL_COLUMNS: Final = frozenset({"is_unique_user", "is_unique_page"})
_TRUE: Final = frozenset({"true", "t", "1"})
_FALSE: Final = frozenset({"false", "f", "0"})
_UTC: Final = dt.timezone.utc  # dt.UTC is Python 3.11+
_EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=_UTC)
_MS: Final = dt.timedelta(milliseconds=1)


class TransferError(Exception):
    """A row or file that cannot be imported, or an export that cannot run; the message says where."""


@dataclass
class ImportResult:
    kind: str
    rows: int = 0  # read from the file
    stored: int = 0  # of those, stored: a view whose (bid, hostname) is already stored is not
    created_websites: list[str] = field(default_factory=list)
    created_admin: bool = False  # the default admin was created to own them (there was no user)


Row = tuple[object, ...]  # values in table column order
Progress = Callable[[int, "float | None"], None]  # rows read, share of the input read (0-1) if known


# --- values ---


def parse_time(value: object) -> int:
    """Unix milliseconds of an ISO 8601 date (UTC when it has no offset) or of Unix seconds."""
    if isinstance(value, bool):
        raise ValueError("a date, not a boolean")
    if isinstance(value, int):
        return value * 1000
    if isinstance(value, float):
        return round(value * 1000)
    if not isinstance(value, str):
        raise ValueError("a date must be ISO 8601 text or Unix seconds")
    text = value.strip()
    if text[:1].isdigit() and ("-" not in text[1:] and ":" not in text):
        return round(float(text) * 1000) if "." in text else int(text) * 1000
    moment = _fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_UTC)
    return (moment - _EPOCH) // _MS


def format_time(ms: int) -> str:
    """`2024-03-05T14:30:00.123Z` for Unix milliseconds."""
    moment = _EPOCH + dt.timedelta(milliseconds=ms)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _text(value: object, column: str) -> str:
    if type(value) is not str:
        raise ValueError(f"{column} must be a string")
    return value


def _bool(value: object, column: str) -> bool:
    if type(value) is bool:
        return value
    if type(value) is int and value in (0, 1):
        return bool(value)
    if type(value) is str:
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
    raise ValueError(f"{column} must be true or false")


def _duration(value: object) -> int | None:
    if value is None or value == "":
        return None
    if type(value) is str and value.strip().isdigit():
        value = int(value)
    if type(value) is not int or value < 0:
        raise ValueError("duration_ms must be a whole number of milliseconds, or empty")
    return value


def _date(value: object) -> int:
    try:
        return parse_time(value)
    except (ValueError, OverflowError) as exc:
        raise ValueError(f"date_created {value!r} is neither ISO 8601 nor Unix seconds: {exc}") from None


def _converter(column: str) -> Callable[[object], object]:
    if column in _BOOL_COLUMNS:
        return lambda value: _bool(value, column)
    if column == "duration_ms":
        return _duration
    if column == "date_created":
        return _date
    return lambda value: _text(value, column)


class _Shape:
    """How records become rows of one table: a fast path for well-formed records, a careful one for the rest.

    The careful path converts column by column and says what is wrong. The
    fast paths (`_jsonl_chunks`, `_csv_fast_view`, `_csv_fast_event`) check a
    whole record at once and leave everything unusual to the careful path, so
    both give the same row for the same record.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.columns = COLUMNS[kind]
        self.known = frozenset(self.columns)
        self.converters = [(column, _converter(column)) for column in self.columns]
        # Every column but the trailing duration_ms / date_created is stored exactly as parsed.
        self.plain = self.columns.index("duration_ms" if "duration_ms" in self.columns else "date_created")
        self.plain_types = tuple(bool if c in _BOOL_COLUMNS else str for c in self.columns[: self.plain])
        self.has_duration = "duration_ms" in self.columns
        self.pick = operator.itemgetter(*self.columns)
        self.csv_fast = _csv_fast_view if kind == VIEWS else _csv_fast_event

    def from_json(self, obj: dict[str, Any], number: int) -> Row:
        try:
            row = tuple([convert(obj[c]) if c in obj else _missing(c) for c, convert in self.converters])
        except ValueError as exc:
            raise TransferError(f"line {number}: {exc}") from None
        if not self.known.issuperset(obj):
            extra = sorted(set(obj) - self.known)
            raise TransferError(f"line {number}: unknown column(s): {', '.join(extra)}")
        return row

    def csv_picker(self, header: Sequence[str]) -> Callable[[list[str]], Sequence[str]]:
        """Take a record's fields in table order; a missing duration_ms column reads as ""."""
        positions = [header.index(c) if c in header else len(header) for c in self.columns]
        pick = operator.itemgetter(*positions)
        if len(header) in positions:
            return lambda record: pick([*record, ""])
        return pick

    def from_csv(self, fields: Sequence[str], number: int) -> Row:
        try:
            return tuple([convert(value) for (_, convert), value in zip(self.converters, fields, strict=True)])
        except ValueError as exc:
            raise TransferError(f"line {number}: {exc}") from None


_CSV_BOOLS: Final = {"true": True, "false": False}
_NAIVE_EPOCH: Final = dt.datetime(1970, 1, 1)
# Python 3.10's fromisoformat reads only what isoformat writes: no `Z`, and fractions of exactly
# 3 or 6 digits. This gives it the `Z` and any fraction of 1-9 digits (cut to microseconds, as 3.11+
# does); ISO 8601's other forms (basic `20240305T1430`, week dates) still need Python 3.11.
_FRACTION_ZONE: Final = re.compile(r"([Tt ]\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?([Zz]|[+-]\d\d:\d\d)?$")


def _fromisoformat_310(text: str) -> dt.datetime:
    found = _FRACTION_ZONE.search(text)
    if found is not None:
        clock, fraction, zone = found.groups()
        fraction = f".{fraction[:6].ljust(6, '0')}" if fraction else ""
        zone = "+00:00" if zone in ("Z", "z") else zone or ""
        text = text[: found.start()] + clock + fraction + zone
    return dt.datetime.fromisoformat(text)


_fromisoformat: Final = dt.datetime.fromisoformat if sys.version_info >= (3, 11) else _fromisoformat_310


def _iso_ms(text: str) -> int:
    """`parse_time` for ISO 8601 text with a dashed date (`2024-03-05…`), without its checks.

    Raises on anything else, which then takes the careful path: text of digits
    only is Unix seconds there, and fromisoformat would read `20240305` as a date.
    """
    if text[4:5] != "-":
        raise ValueError(text)
    moment = _fromisoformat(text)
    return (moment - (_EPOCH if moment.tzinfo is not None else _NAIVE_EPOCH)) // _MS


_VIEW_BOOLS: Final = (VIEW_COLUMNS.index("is_unique_user"), VIEW_COLUMNS.index("is_unique_page"))
_VIEW_DURATION: Final = VIEW_COLUMNS.index("duration_ms")
# The CSV fast paths below spell the column positions out; these keep them honest.
assert _VIEW_BOOLS == (3, 4) and _VIEW_DURATION == 16 and len(VIEW_COLUMNS) == 18
assert EVENT_COLUMNS.index("date_created") == 5 and len(EVENT_COLUMNS) == 6


def _csv_fast_view(fields: Sequence[str]) -> Row:
    """A views row from well-formed CSV fields in table order; raises (KeyError, ValueError) on anything else."""
    duration = fields[16]
    if duration and not (duration.isdigit() and duration.isascii()):
        raise ValueError(duration)
    return (
        *fields[:3],
        _CSV_BOOLS[fields[3]],
        _CSV_BOOLS[fields[4]],
        *fields[5:16],
        int(duration) if duration else None,
        _iso_ms(fields[17]),
    )


def _csv_fast_event(fields: Sequence[str]) -> Row:
    """An events row from well-formed CSV fields in table order; raises ValueError on anything else."""
    return (*fields[:5], _iso_ms(fields[5]))


def _missing(column: str) -> object:
    """The value of a column left out of a row: only duration_ms may be (it is NULL)."""
    if column != "duration_ms":
        raise ValueError(f"missing column {column}")
    return None


_SHAPES: Final = {kind: _Shape(kind) for kind in COLUMNS}


# --- reading ---


def open_input(path: str) -> IO[bytes]:
    """Open a file for import, gunzipping it when it starts with the gzip magic bytes."""
    with open(path, "rb") as probe:
        gzipped = probe.read(len(GZIP_MAGIC)) == GZIP_MAGIC
    if gzipped:
        return cast(IO[bytes], gzip.open(path, "rb"))
    return open(path, "rb")  # noqa: SIM115 - the caller closes it


# Rows and their line numbers, up to CHUNK_ROWS at a time: one executemany each, and no
# per-row generator step between the parser and the database.
Chunks = Iterator[tuple[list[Row], list[int]]]


def _rows(text: IO[str], kind: str | None) -> tuple[str, Chunks]:
    """The kind of rows in `text` and an iterator of their chunks."""
    first = text.read(1)
    while first.isspace():
        first = text.read(1)
    rest = _prepend(first, text)
    if first == "{":
        return _jsonl_rows(rest, kind)
    return _csv_rows(rest, kind)


def _prepend(first: str, text: IO[str]) -> Iterator[str]:
    """Lines of `text` with `first`, already read, put back in front."""
    line = first + text.readline()
    if line:
        yield line
    yield from text


def _kind_of(columns: Iterable[str], kind: str | None) -> str:
    names = set(columns)
    if kind is None:
        kind = EVENTS if "batch_id" in names else VIEWS
    unknown = names - set(COLUMNS[kind])
    if unknown:
        raise TransferError(f"line 1: unknown {kind} column(s): {', '.join(sorted(unknown))}")
    return kind


def _jsonl_rows(lines: Iterator[str], kind: str | None) -> tuple[str, Chunks]:
    first = _json_object(next(lines, ""), 1)
    shape = _SHAPES[_kind_of(first, kind)]
    return shape.kind, _jsonl_chunks(shape, first, lines)


def _jsonl_chunks(shape: _Shape, first: dict[str, Any], lines: Iterator[str]) -> Chunks:
    """The fast path is inline: a JSON object with exactly the table's columns, text and booleans
    of the right types, a whole non-negative duration or null, and an ISO 8601 date."""
    if not first:
        return
    chunk: list[Row] = [shape.from_json(first, 1)]
    numbers = [1]
    loads, pick, fast_types, iso_ms = json.loads, shape.pick, shape.plain_types, _iso_ms
    width, plain, has_duration, size = len(shape.columns), shape.plain, shape.has_duration, CHUNK_ROWS
    for number, line in enumerate(lines, start=2):
        row: Row | None = None
        if len(line) <= MAX_LINE_CHARS:
            try:
                obj = loads(line)
                values = pick(obj)
                if (
                    len(obj) == width
                    and tuple(map(type, values[:plain])) == fast_types
                    and (not has_duration or (d := values[plain]) is None or (type(d) is int and d >= 0))
                ):
                    row = (*values[:-1], iso_ms(values[-1]))
            except (ValueError, KeyError, TypeError, OverflowError):
                pass
        if row is None:
            if not line.strip():
                continue
            row = shape.from_json(_json_object(line, number), number)
        chunk.append(row)
        numbers.append(number)
        if len(chunk) >= size:
            yield chunk, numbers
            chunk, numbers = [], []
    if chunk:
        yield chunk, numbers


def _json_object(line: str, number: int) -> dict[str, Any]:
    if not line.strip():
        return {}
    if len(line) > MAX_LINE_CHARS:
        raise TransferError(f"line {number}: longer than {MAX_LINE_CHARS} characters")
    try:
        obj = json.loads(line)
    except ValueError as exc:
        raise TransferError(f"line {number}: invalid JSON: {exc}") from None
    if type(obj) is not dict:
        raise TransferError(f"line {number}: expected a JSON object")
    return obj


def _csv_rows(lines: Iterator[str], kind: str | None) -> tuple[str, Chunks]:
    reader = csv.reader(lines, strict=True)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise TransferError(f"line 1: {exc}") from None
    if not header:  # an empty file: nothing to import
        return kind or VIEWS, iter(())
    shape = _SHAPES[_kind_of(header, kind)]
    missing = [c for c in shape.columns if c not in header and c != "duration_ms"]
    if missing:
        raise TransferError(f"line 1: missing column(s): {', '.join(missing)}")
    if len(set(header)) != len(header):
        raise TransferError("line 1: a column is named twice")
    in_order = list(header) == list(shape.columns)  # as `medama export` writes them: no reordering needed
    return shape.kind, _csv_chunks(shape, reader, None if in_order else shape.csv_picker(header), len(header))


def _csv_chunks(shape: _Shape, reader: Any, pick: Callable[[list[str]], Sequence[str]] | None, width: int) -> Chunks:
    """Fields are taken in table order by `pick` (None when the header has them in that order already)."""
    chunk: list[Row] = []
    numbers: list[int] = []
    fast, size = shape.csv_fast, CHUNK_ROWS
    try:
        for record in reader:
            if len(record) != width:
                if not record:
                    continue
                raise TransferError(f"line {reader.line_num}: {len(record)} fields, the header has {width}")
            fields = record if pick is None else pick(record)
            try:
                chunk.append(fast(fields))
            except (KeyError, ValueError, TypeError, OverflowError):
                chunk.append(shape.from_csv(fields, reader.line_num))
            numbers.append(reader.line_num)
            if len(chunk) >= size:
                yield chunk, numbers
                chunk, numbers = [], []
    except csv.Error as exc:
        raise TransferError(f"line {reader.line_num}: {exc}") from None
    if chunk:
        yield chunk, numbers


# --- importing ---

# Rows per INSERT statement: one statement of many VALUES rows cost 25% less CPU than executemany
# of a one-row statement (fewer statement steps and resets); 256 views bind 4,608 values, far
# below SQLite's limit of 32,766. The rest of a chunk goes in with the one-row statement.
ROWS_PER_STATEMENT: Final = 256


# The statements ingestion uses: a repeated (bid, hostname) is ignored here as it is there.
_INSERT: Final = {kind: (insert_sql(kind, 1), insert_sql(kind, ROWS_PER_STATEMENT)) for kind in COLUMNS}
_HOSTNAME_INDEX: Final = {VIEWS: VIEW_COLUMNS.index("hostname"), EVENTS: EVENT_COLUMNS.index("group_name")}


def _meta_module(meta_conn: Any) -> ModuleType:
    """The meta functions of the app store `meta_conn` belongs to: store/sqlite/meta.py, else PostgreSQL's."""
    if isinstance(meta_conn, sqlite3.Connection):
        return meta
    from medama_core.store.postgres import meta as pg_meta

    return pg_meta


class _Websites:
    """The registered hostnames, and those to register when `create` is on (in me_meta.db or PostgreSQL)."""

    def __init__(self, meta_conn: Any, create: bool) -> None:
        self.meta_conn = meta_conn
        self.m = _meta_module(meta_conn)
        self.known = set(self.m.list_hostnames(meta_conn))
        self.create = create
        self.new: list[str] = []
        self.created_admin = False

    def check(self, chunk: list[Row], numbers: list[int], host_at: int) -> None:
        """Raise for the first row of an unknown site, unless sites are created: then note it, in file order."""
        if {row[host_at] for row in chunk} <= self.known:
            return
        for row, number in zip(chunk, numbers, strict=True):
            hostname = row[host_at]
            if hostname in self.known:
                continue
            assert isinstance(hostname, str)
            if not self.create:
                raise TransferError(
                    f"line {number}: website {hostname!r} is not registered (add it first, or pass --create-websites)"
                )
            if not hostname:
                raise TransferError(f"line {number}: empty hostname")
            self.known.add(hostname)
            self.new.append(hostname)

    def register(self) -> None:
        """Create the new websites, owned by the first user (by creation time)."""
        if not self.new:
            return
        now = int(time.time())
        if self.m is not meta:  # PostgreSQL: the same through its meta functions, in one transaction
            with self.meta_conn.transaction():
                self.created_admin = accounts.ensure_default_admin(self.meta_conn, self.m)
                owner = min(self.m.list_users(self.meta_conn), key=lambda user: (user.date_created, user.id))
                for hostname in self.new:
                    self.m.insert_website(self.meta_conn, hostname, owner.id, now)
            return
        with Transaction(self.meta_conn):
            self.created_admin = accounts.ensure_default_admin(self.meta_conn, meta)  # as `start` would
            owner = self.meta_conn.execute("SELECT id FROM users ORDER BY date_created, rowid LIMIT 1").fetchone()
            self.meta_conn.executemany(
                "INSERT INTO websites (hostname, user_id, date_created, date_updated) VALUES (:h, :u, :now, :now)",
                [{"h": hostname, "u": owner[0], "now": now} for hostname in self.new],
            )


Share = Callable[[], "float | None"]  # the part of the input read so far (0-1), when it can be known


def _share_read(stream: IO[bytes]) -> Share:
    """How far into its file `stream` has read (the compressed position for gzip), else None."""
    raw: Any = stream.fileobj if isinstance(stream, gzip.GzipFile) else stream
    try:
        start = raw.tell()
        size = raw.seek(0, io.SEEK_END)
        raw.seek(start)
    except (AttributeError, OSError, ValueError):
        return lambda: None
    if not size:
        return lambda: None
    return lambda: min(raw.tell() / size, 1.0)


def import_rows(
    analytics_conn: sqlite3.Connection,
    meta_conn: Any,
    stream: IO[bytes],
    *,
    kind: str | None = None,
    create_websites: bool = False,
    progress: Progress | None = None,
) -> ImportResult:
    """Import a JSON Lines or CSV stream of views or events (`kind`, else guessed from the columns).

    Raises `TransferError` naming the line of the first bad row; then nothing is stored.
    `stream` is read to the end and closed.
    """
    share = _share_read(stream)
    text = io.TextIOWrapper(stream, encoding="utf-8", newline="")
    try:
        kind, rows = _rows(text, kind)
        return _store(analytics_conn, meta_conn, kind, rows, create_websites, progress, share)
    except UnicodeDecodeError as exc:
        raise TransferError(f"the file is not UTF-8: {exc}") from None
    finally:
        text.close()


def _store(
    analytics_conn: sqlite3.Connection,
    meta_conn: Any,
    kind: str,
    chunks: Chunks,
    create_websites: bool,
    progress: Progress | None,
    share: Share,
) -> ImportResult:
    result = ImportResult(kind)
    websites = _Websites(meta_conn, create_websites)
    host_at = _HOSTNAME_INDEX[kind]
    analytics_conn.execute(f"PRAGMA cache_size = -{IMPORT_CACHE_KIB}")
    next_report = time.monotonic() + PROGRESS_EVERY_S
    # One thread: a worker inserting while this one parses measured no faster, because every
    # statement step needs the GIL back from the parser (sqlite3 releases it around each step).
    with Transaction(analytics_conn):
        stored_rows = bulk.largest_rowid(analytics_conn, kind)
        since = marking.starts(analytics_conn)
        suspended: bulk.Suspended | None = None
        decided = False
        for chunk, numbers in chunks:
            websites.check(chunk, numbers, host_at)
            read = result.rows + len(chunk)
            if not decided:
                # Rebuilding the indexes costs in proportion to all the rows, keeping them up to date in
                # proportion to the new ones: set them aside once this file looks big enough.
                part = share()
                expected = read / part if part else read
                if stored_rows <= REBUILD_RATIO * expected:
                    suspended = bulk.suspend(analytics_conn, kind)
                    decided = True
                    if suspended is not None:
                        analytics_conn.execute(f"PRAGMA cache_size = -{BULK_CACHE_KIB}")
            result.stored += _insert_chunk(analytics_conn, kind, chunk, numbers)
            result.rows = read
            if progress is not None and time.monotonic() >= next_report:
                progress(result.rows, share())
                next_report = time.monotonic() + PROGRESS_EVERY_S
        if suspended is not None:
            bulk.resume(analytics_conn, suspended)
        marking.mark_since(analytics_conn, since, views=kind == VIEWS, events=kind == EVENTS)
        websites.register()
    result.created_websites = websites.new
    result.created_admin = websites.created_admin
    return result


def _insert_chunk(conn: sqlite3.Connection, kind: str, chunk: list[Row], numbers: list[int]) -> int:
    """Insert the rows in order; return how many were stored (a view already stored is not)."""
    insert, insert_many = _INSERT[kind]
    step = ROWS_PER_STATEMENT
    whole = len(chunk) - len(chunk) % step
    conn.execute("SAVEPOINT chunk")
    try:
        stored = 0
        for start in range(0, whole, step):
            stored += conn.execute(
                insert_many, [value for row in chunk[start : start + step] for value in row]
            ).rowcount
        return stored + conn.executemany(insert, chunk[whole:]).rowcount
    except sqlite3.Error:
        conn.execute("ROLLBACK TO chunk")
        for number, row in zip(numbers, chunk, strict=True):  # find the row the database refused
            try:
                conn.execute(insert, row)
            except sqlite3.Error as exc:
                raise TransferError(f"line {number}: {exc}") from None
        raise
    finally:
        conn.execute("RELEASE chunk")


# --- upstream's DuckDB ---

_DUCKDB_VIEWS: Final = (
    "SELECT bid, hostname, pathname, is_unique_user, is_unique_page, referrer_host, referrer_group, country,"
    " language_base, language_dialect, ua_browser, ua_os, ua_device_type, utm_source, utm_medium, utm_campaign,"
    " duration_ms, epoch_ms(date_created) FROM views ORDER BY date_created"
)
_DUCKDB_EVENTS: Final = (
    "SELECT bid, batch_id, group_name, name, value, epoch_ms(date_created) FROM events ORDER BY date_created"
)
# Upstream leaves some text columns NULL (old rows, `events.bid` before its migration 5);
# ours are NOT NULL with '' for "none", as upstream's own stats read them.
_TEXT_DEFAULTS: Final = {"country": "Unknown", "language_base": "Unknown", "language_dialect": "Unknown"}


def import_medama(
    analytics_conn: sqlite3.Connection,
    meta_conn: Any,
    duckdb_path: str,
    *,
    create_websites: bool = False,
    progress: Progress | None = None,
) -> list[ImportResult]:
    """Import `views` and `events` from upstream's DuckDB analytics file (needs the `duckdb` package)."""
    try:
        import duckdb
    except ImportError:
        raise TransferError(
            "reading upstream's DuckDB file needs the duckdb package: pip install duckdb (then run this again)"
        ) from None
    try:
        source = duckdb.connect(duckdb_path, read_only=True)
    except Exception as exc:  # duckdb.IOException and friends: not a DuckDB file, or missing
        raise TransferError(f"cannot open {duckdb_path} as a DuckDB database: {exc}") from None
    results = []
    try:
        for kind, query in ((VIEWS, _DUCKDB_VIEWS), (EVENTS, _DUCKDB_EVENTS)):
            total = int(source.execute(f"SELECT count(*) FROM {kind}").fetchall()[0][0])
            read = [0]
            rows = _duckdb_rows(source, kind, query, read)
            share = _counted_share(read, total)
            results.append(_store(analytics_conn, meta_conn, kind, rows, create_websites, progress, share))
    finally:
        source.close()
    return results


def _counted_share(read: list[int], total: int) -> Share:
    return lambda: read[0] / total if total else None


def _duckdb_rows(source: Any, kind: str, query: str, read: list[int]) -> Chunks:
    """Chunks of the rows of `query` with upstream's NULLs replaced; `read[0]` counts the rows."""
    columns = COLUMNS[kind]
    defaults = [_TEXT_DEFAULTS.get(c, "") if c not in ("duration_ms", "date_created") else None for c in columns]
    cursor = source.execute(query)
    while batch := cursor.fetchmany(CHUNK_ROWS):
        rows: list[Row] = [
            tuple([default if value is None else value for value, default in zip(raw, defaults, strict=True)])
            for raw in batch
        ]
        yield rows, list(range(read[0] + 1, read[0] + 1 + len(rows)))
        read[0] += len(rows)


# --- other tools' exports (importers/) ---

TOOLS: Final = ("goatcounter", "umami", "plausible")
IMPORTED: Final = "imported daily totals"  # ImportResult.kind of Plausible's aggregates


def import_foreign(
    analytics_conn: sqlite3.Connection,
    meta_conn: Any,
    tool: str,
    stream: IO[bytes],
    *,
    site: str | None = None,
    name: str = "",
    sessions: IO[bytes] | None = None,
    create_websites: bool = False,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> list[ImportResult]:
    """Import another tool's export (`tool` of TOOLS) for `site`; `name` is the file's name, `sessions`
    Umami's session table. Line-numbered TransferError on a bad record; nothing stored then, nor on `dry_run`.

    Re-running stores nothing new: views keep their (bid, hostname) key, events whose batch id is stored
    are skipped, imported day totals are replaced by equal ones.
    """
    try:
        if tool == "plausible":
            return [_import_totals(analytics_conn, meta_conn, stream, name, site, create_websites, dry_run)]
        records = _foreign_records(_umami_ids(meta_conn), tool, stream, site, sessions)
        if dry_run:
            return _count_records(records)
        events: list[Record] = []
        share = _share_read(stream)
        views = _view_chunks(records, events)
        results = [_store(analytics_conn, meta_conn, VIEWS, views, create_websites, progress, share)]
        fresh = _new_events(events, functools.partial(_stored_batch_ids, analytics_conn))
        chunk_iter: Chunks = iter([(fresh, list(range(1, len(fresh) + 1)))] if fresh else [])
        result = _store(analytics_conn, meta_conn, EVENTS, chunk_iter, create_websites, None, share)
        result.rows = len(events)
        results.append(result)
        return results
    except BadRecord as exc:
        raise TransferError(str(exc)) from None


def _foreign_records(
    umami_ids: list[tuple[str, str]], tool: str, stream: IO[bytes], site: str | None, sessions: IO[bytes] | None
) -> Iterator[Record]:
    """The records of another tool's export; `umami_ids` are the (hostname, Umami website id) pairs known."""
    lines = text_lines(iter(stream))
    if tool == "goatcounter":
        if not site:
            raise TransferError("GoatCounter's export names no site: give -site HOSTNAME")
        return goatcounter.records(lines, site)
    if tool != "umami":
        raise TransferError(f"unknown tool {tool!r}; one of {', '.join(TOOLS)}")
    sites = {"": site} if site else {}
    sites.update({wid: host for host, wid in umami_ids})
    by_session = umami.sessions(text_lines(iter(sessions))) if sessions else {}
    return umami.records(lines, sites, by_session)


def _umami_ids(meta_conn: Any) -> list[tuple[str, str]]:
    return [(host, wid) for wid, host in _meta_module(meta_conn).umami_ids(meta_conn).items()]


def _view_chunks(records: Iterator[Record], events: list[Record]) -> Chunks:
    """Views in chunks of rows in table order; the events are set aside (they are stored after their views)."""
    chunk: list[Row] = []
    numbers: list[int] = []
    for record in records:
        if record.kind == EVENTS:
            events.append(record)
            continue
        chunk.append(view_row(record.values))
        numbers.append(record.line)
        if len(chunk) >= CHUNK_ROWS:
            yield chunk, numbers
            chunk, numbers = [], []
    if chunk:
        yield chunk, numbers


def _stored_batch_ids(conn: sqlite3.Connection, group: str, start_ms: int, end_ms: int) -> set[str]:
    rows = conn.execute(
        "SELECT batch_id FROM events WHERE group_name = :g AND date_created BETWEEN :lo AND :hi",
        {"g": group, "lo": start_ms, "hi": end_ms},
    )
    return {str(row[0]) for row in rows}


def _new_events(records: list[Record], stored_ids: Callable[[str, int, int], set[str]]) -> list[Row]:
    """The events whose batch ids are not stored yet (`stored_ids` of a site between two dates: read per site
    over the file's time span)."""
    if not records:
        return []
    stored: set[str] = set()
    for group in {str(r.values["group_name"]) for r in records}:
        times = [int(str(r.values["date_created"])) for r in records if r.values["group_name"] == group]
        stored.update(stored_ids(group, min(times), max(times)))
    return [event_row(r.values) for r in records if r.values["batch_id"] not in stored]


def _count_records(records: Iterator[Record]) -> list[ImportResult]:
    counts = {VIEWS: ImportResult(VIEWS), EVENTS: ImportResult(EVENTS)}
    for record in records:
        counts[record.kind].rows += 1
    return list(counts.values())


def _import_totals(
    analytics_conn: sqlite3.Connection,
    meta_conn: Any,
    stream: IO[bytes],
    name: str,
    site: str | None,
    create_websites: bool,
    dry_run: bool,
) -> ImportResult:
    rows = _plausible_rows(stream, name, site)
    result = ImportResult(IMPORTED, rows=len(rows))
    if dry_run:
        return result
    websites = _Websites(meta_conn, create_websites)
    websites.check([(site,)], [0], 0)
    with Transaction(analytics_conn):
        result.stored = imported.store(analytics_conn, rows)
    websites.register()
    result.created_websites = websites.new
    return result


def _plausible_rows(stream: IO[bytes], name: str, site: str | None) -> list[dict[str, object]]:
    """The `imported_days` rows of Plausible's export for `site`."""
    if not site:
        raise TransferError("Plausible's export names no site: give -site HOSTNAME")
    return [
        {
            "hostname": site,
            "tool": "plausible",
            "day": total.day_ms,
            "dimension": total.dimension,
            "value": total.value,
            "visitors": total.visitors,
            "pageviews": total.pageviews,
            "visits": total.visits,
            "bounces": total.bounces,
            "duration_s": total.duration_s,
        }
        for total in plausible.totals(stream, name)
    ]


def import_upload(
    analytics_conn: sqlite3.Connection,
    tool: str,
    data: bytes,
    site: str,
    umami_ids: dict[str, str],
    *,
    name: str = "",
    dry_run: bool = False,
) -> list[ImportResult]:
    """`import_foreign` for a file uploaded to the server (POST /websites/{hostname}/import), on the analytics
    writer thread: the one site it is for (and the Umami ids naming it) stand in for the app database."""
    from medama_core.store.sqlite import db  # the app database's schema, for the stand-in below

    meta_conn = db.connect(":memory:")
    try:
        db.migrate(meta_conn, meta.MIGRATIONS)
        meta.insert_user(meta_conn, "user_upload", "upload", "", 0)
        meta.insert_website(meta_conn, site, "user_upload", 0)
        for website_id, hostname in umami_ids.items():
            if hostname == site:
                meta.set_umami_id(meta_conn, site, website_id)
        return import_foreign(analytics_conn, meta_conn, tool, io.BytesIO(data), site=site, name=name, dry_run=dry_run)
    finally:
        meta_conn.close()


def import_upload_clickhouse(
    client: ch_client.Client,
    tool: str,
    data: bytes,
    site: str,
    umami_ids: dict[str, str],
    *,
    name: str = "",
    dry_run: bool = False,
) -> list[ImportResult]:
    """`import_upload` on ClickHouse analytics, with the same results and errors.

    ClickHouse has no transaction, so the whole file (at most the upload's size limit) is read and checked
    before anything is written: a bad record or a row of another site stores nothing, as on SQLite. The
    views then go in through the bulk path (those already stored are skipped), then the events whose batch
    ids are not stored yet; Plausible's totals replace the stored ones of their days. A failure of the
    server midway leaves what was written before it, and sending the file again completes it.
    """
    from medama_core.store.clickhouse import bulk as ch_bulk
    from medama_core.store.clickhouse import imported as ch_imported

    stream = io.BytesIO(data)
    try:
        if tool == "plausible":
            rows = _plausible_rows(stream, name, site)
            result = ImportResult(IMPORTED, rows=len(rows))
            if not dry_run:
                result.stored = ch_imported.store(client, rows)
            return [result]
        ids = [(site, website_id) for website_id, hostname in umami_ids.items() if hostname == site]
        records = list(_foreign_records(ids, tool, stream, site, None))
    except BadRecord as exc:
        raise TransferError(str(exc)) from None
    if dry_run:
        return _count_records(iter(records))
    views: list[Row] = []
    events: list[Record] = []
    for record in records:
        row_site = record.values["group_name" if record.kind == EVENTS else "hostname"]
        if row_site != site:
            raise TransferError(
                f"line {record.line}: website {row_site!r} is not registered (add it first, or pass --create-websites)"
            )
        if record.kind == EVENTS:
            events.append(record)
        else:
            views.append(view_row(record.values))
    stored_views = ch_bulk.insert_views(client, views)
    fresh = _new_events(events, functools.partial(ch_bulk.stored_batch_ids, client))
    stored_events = ch_bulk.insert_events(client, fresh) if fresh else 0
    return [ImportResult(VIEWS, len(views), stored_views), ImportResult(EVENTS, len(events), stored_events)]


# --- medama import into ClickHouse ---


class PartlyStored(TransferError):
    """ClickHouse failed while an import was being written: what was written before stays (no transaction)."""


def _partly(exc: Exception) -> PartlyStored:
    return PartlyStored(
        f"{exc}; what was written before it stays stored (run the import again: views and events already stored "
        "are skipped, except events of medama's own files, which would be stored twice)"
    )


def _checked_rows(open_stream: Callable[[], IO[bytes]], kind: str | None, websites: _Websites) -> ImportResult:
    """Read a JSON Lines or CSV file whole, checking every row and its site, storing nothing: how many rows."""
    with open_stream() as stream:
        text = io.TextIOWrapper(stream, encoding="utf-8", newline="")
        try:
            found, chunks = _rows(text, kind)
            result = ImportResult(found)
            for chunk, numbers in chunks:
                websites.check(chunk, numbers, _HOSTNAME_INDEX[found])
                result.rows += len(chunk)
        except UnicodeDecodeError as exc:
            raise TransferError(f"the file is not UTF-8: {exc}") from None
        finally:
            text.close()
    return result


def _bulk_store(client: ch_client.Client, kind: str, chunks: Chunks, progress: Progress | None, share: Share) -> int:
    """Rows of `chunks` into ClickHouse through its bulk path; how many were stored."""
    from medama_core.store.clickhouse import bulk as ch_bulk
    from medama_core.store.clickhouse import client as ch_client

    read = [0]

    def rows() -> Iterator[Row]:
        for chunk, _ in chunks:
            yield from chunk

    def step(count: int) -> None:
        read[0] += count
        if progress is not None:
            progress(read[0], share())

    insert = ch_bulk.insert_views if kind == VIEWS else ch_bulk.insert_events
    try:
        return insert(client, rows(), step)
    except ch_client.ClickHouseError as exc:
        raise _partly(exc) from None


def import_rows_clickhouse(
    client: ch_client.Client,
    meta_conn: Any,
    open_stream: Callable[[], IO[bytes]],
    *,
    kind: str | None = None,
    create_websites: bool = False,
    progress: Progress | None = None,
) -> ImportResult:
    """`import_rows` into ClickHouse analytics. ClickHouse has no transaction, so the file is read twice: first
    checked whole (a bad row or an unregistered site stores nothing, as on SQLite), then stored in bulk
    (store/clickhouse/bulk.py: views already stored are skipped). New websites are registered after."""
    websites = _Websites(meta_conn, create_websites)
    result = _checked_rows(open_stream, kind, websites)
    with open_stream() as stream:
        share = _share_read(stream)
        text = io.TextIOWrapper(stream, encoding="utf-8", newline="")
        try:
            _, chunks = _rows(text, result.kind)
            result.stored = _bulk_store(client, result.kind, chunks, progress, share)
        finally:
            text.close()
    websites.register()
    result.created_websites, result.created_admin = websites.new, websites.created_admin
    return result


@contextlib.contextmanager
def _opened(
    open_stream: Callable[[], IO[bytes]], open_sessions: Callable[[], IO[bytes]] | None
) -> Iterator[tuple[IO[bytes], IO[bytes] | None]]:
    with open_stream() as stream:
        if open_sessions is None:
            yield stream, None
        else:
            with open_sessions() as sessions:
                yield stream, sessions


def import_foreign_clickhouse(
    client: ch_client.Client,
    meta_conn: Any,
    tool: str,
    open_stream: Callable[[], IO[bytes]],
    *,
    site: str | None = None,
    name: str = "",
    open_sessions: Callable[[], IO[bytes]] | None = None,
    create_websites: bool = False,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> list[ImportResult]:
    """`import_foreign` into ClickHouse analytics: the export is read whole and checked first (nothing stored on
    a bad record), then read again and stored; events whose batch ids are stored already are skipped."""
    from medama_core.store.clickhouse import bulk as ch_bulk
    from medama_core.store.clickhouse import client as ch_client
    from medama_core.store.clickhouse import imported as ch_imported

    websites = _Websites(meta_conn, create_websites)
    try:
        if tool == "plausible":
            with open_stream() as stream:
                rows = _plausible_rows(stream, name, site)
            totals = ImportResult(IMPORTED, rows=len(rows))
            if dry_run:
                return [totals]
            websites.check([(site,)], [0], 0)
            try:
                totals.stored = ch_imported.store(client, rows)
            except ch_client.ClickHouseError as exc:
                raise _partly(exc) from None
            websites.register()
            totals.created_websites, totals.created_admin = websites.new, websites.created_admin
            return [totals]
        ids = _umami_ids(meta_conn)
        counts = {VIEWS: ImportResult(VIEWS), EVENTS: ImportResult(EVENTS)}
        with _opened(open_stream, open_sessions) as (stream, sessions):
            for record in _foreign_records(ids, tool, stream, site, sessions):
                counts[record.kind].rows += 1
                where = record.values["group_name" if record.kind == EVENTS else "hostname"]
                websites.check([(where,)], [record.line], 0)
        if dry_run:
            return list(counts.values())
        events: list[Record] = []
        with _opened(open_stream, open_sessions) as (stream, sessions):
            share = _share_read(stream)
            views = _view_chunks(_foreign_records(ids, tool, stream, site, sessions), events)
            counts[VIEWS].stored = _bulk_store(client, VIEWS, views, progress, share)
        fresh = _new_events(events, functools.partial(ch_bulk.stored_batch_ids, client))
        try:
            counts[EVENTS].stored = ch_bulk.insert_events(client, fresh) if fresh else 0
        except ch_client.ClickHouseError as exc:
            raise _partly(exc) from None
    except BadRecord as exc:
        raise TransferError(str(exc)) from None
    websites.register()
    counts[VIEWS].created_websites, counts[VIEWS].created_admin = websites.new, websites.created_admin
    return list(counts.values())


# --- exporting ---


def export_rows(
    conn: sqlite3.Connection,
    out: IO[str],
    *,
    kind: str = VIEWS,
    fmt: str = "jsonl",
    hostname: str | None = None,
    start_ms: int | None = None,
    end_ms: int | None = None,
) -> int:
    """Write rows with `start_ms <= date_created < end_ms` (of one site) to `out`; return how many.

    The order is total (date, site, then the remaining columns), so the same rows
    always export to the same bytes.
    """
    if kind not in COLUMNS or fmt not in FORMATS:
        raise TransferError(f"cannot export {kind} as {fmt}")
    columns = COLUMNS[kind]
    host_column = "hostname" if kind == VIEWS else "group_name"
    order = ("date_created", host_column, "bid") if kind == VIEWS else ("date_created", host_column, *columns)
    where = []
    params: dict[str, object] = {}
    for clause, name, value in (
        (f"{host_column} = :hostname", "hostname", hostname),
        ("date_created >= :start", "start", start_ms),
        ("date_created < :end", "end", end_ms),
    ):
        if value is not None:
            where.append(clause)
            params[name] = value
    sql = f"SELECT {', '.join(columns)} FROM {kind}"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += f" ORDER BY {', '.join(order)}"
    return _write_rows(conn.execute(sql, params), out, columns, fmt)


def _write_rows(rows: Iterable[Sequence[Any]], out: IO[str], columns: Sequence[str], fmt: str) -> int:
    write = _jsonl_writer(out, columns) if fmt == "jsonl" else _csv_writer(out, columns)
    count = 0
    try:
        for row in rows:
            write(tuple(row))
            count += 1
    except csv.Error as exc:  # Python 3.10's csv cannot write a NUL character (3.11 can)
        raise TransferError(f"row {count + 1} cannot be written as CSV ({exc}); export it as jsonl") from None
    return count


def export_rows_clickhouse(
    client: ch_client.Client,
    out: IO[str],
    *,
    kind: str = VIEWS,
    fmt: str = "jsonl",
    hostname: str | None = None,
    start_ms: int | None = None,
    end_ms: int | None = None,
) -> int:
    """`export_rows` from ClickHouse analytics: the same rows in the same order give the same bytes
    (store/clickhouse/bulk.export_rows streams them; an unloaded view is one row with its last duration)."""
    from medama_core.store.clickhouse import bulk as ch_bulk
    from medama_core.store.clickhouse import client as ch_client

    if kind not in COLUMNS or fmt not in FORMATS:
        raise TransferError(f"cannot export {kind} as {fmt}")
    try:
        rows = ch_bulk.export_rows(client, kind, hostname, start_ms, end_ms)
        return _write_rows(rows, out, COLUMNS[kind], fmt)
    except ch_client.ClickHouseError as exc:
        raise TransferError(str(exc)) from None


def open_clickhouse(url: str, flag: str = "-analyticsdb") -> ch_client.Client:
    """A client on the ClickHouse database at `url`, migrated (which also proves it answers and lets us in);
    ConfigError with one line if not."""
    from medama_core.store.clickhouse import client as ch_client
    from medama_core.store.clickhouse import schema
    from medama_core.store.clickhouse.url import URLError, parse_url

    try:
        client = ch_client.Client.connect(parse_url(url))
    except URLError as exc:
        raise ConfigError(f"{flag}: {exc}") from None
    try:
        schema.migrate(client, int(time.time() * 1000))
    except ch_client.ClickHouseError as exc:
        client.close()
        raise ConfigError(f"{flag}: {exc}") from None
    return client


def _analytics_kind(location: str, flag: str = "-analyticsdb") -> str:
    """ "sqlite" for a path, "clickhouse" for a clickhouse(s):// URL; ConfigError for any other URL."""
    if "://" not in location:
        return "sqlite"
    if location.lower().startswith(("clickhouse://", "clickhouses://")):
        return "clickhouse"
    raise ConfigError(
        f"{flag}: {location.split('://', 1)[0]}:// is not an analytics store; give a file or a clickhouse:// URL"
    )


@dataclass(frozen=True)
class ExportPage:
    """One page of a site's rows, as text, and where the next page starts (None: this was the last)."""

    text: str
    rows: int
    after: tuple[int, int] | None


def export_page(
    conn: sqlite3.Connection,
    hostname: str,
    *,
    kind: str = VIEWS,
    fmt: str = "jsonl",
    after: tuple[int, int] | None = None,
    limit: int = CHUNK_ROWS,
    spreadsheet: bool = False,
) -> ExportPage:
    """Up to `limit` of one site's rows, in date order, from just past `after` (None: from the first).

    For a download in pages (api/export.py), each page a short read of its own: rows come by
    (date_created, rowid), which the site's (hostname, date_created) index gives without sorting,
    and `after` is the last page's last pair. Rows stored meanwhile with a later date are included;
    the pages of one export need not be one snapshot. CSV starts with its header (when `after` is
    None); `spreadsheet` guards its text cells against formula injection (csvtable.guard), which
    `medama import` would not undo: JSON Lines is the format to import again.
    """
    if kind not in COLUMNS or fmt not in FORMATS:
        raise TransferError(f"cannot export {kind} as {fmt}")
    columns = COLUMNS[kind]
    host_column = "hostname" if kind == VIEWS else "group_name"
    params: dict[str, object] = {"hostname": hostname, "limit": limit}
    since = ""
    if after is not None:
        since = " AND date_created >= :date AND (date_created > :date OR rowid > :rowid)"
        params.update(date=after[0], rowid=after[1])
    sql = (
        f"SELECT {', '.join(columns)}, rowid FROM {kind} WHERE {host_column} = :hostname{since}"
        " ORDER BY date_created, rowid LIMIT :limit"
    )
    rows = conn.execute(sql, params).fetchall()
    text = page_text([row[:-1] for row in rows], columns, fmt, header=after is None, spreadsheet=spreadsheet)
    last = rows[-1] if len(rows) == limit else None
    date_index = columns.index("date_created")
    return ExportPage(text, len(rows), None if last is None else (int(last[date_index]), int(last[-1])))


def page_text(
    rows: Sequence[Sequence[Any]], columns: Sequence[str], fmt: str, *, header: bool, spreadsheet: bool
) -> str:
    """Rows (values in `columns` order) as export text: JSON Lines, CSV, or CSV for spreadsheets."""
    out = io.StringIO()
    if fmt == "jsonl":
        write = _jsonl_writer(out, columns)
    elif spreadsheet:
        write = _spreadsheet_writer(out, columns, header=header)
    else:
        write = _csv_writer(out, columns, header=header)
    for row in rows:
        write(tuple(row))
    return out.getvalue()


def export_page_clickhouse(
    client: ch_client.Client,
    hostname: str,
    *,
    kind: str = VIEWS,
    fmt: str = "jsonl",
    after: tuple[int, int] | None = None,
    limit: int = CHUNK_ROWS,
    spreadsheet: bool = False,
) -> ExportPage:
    """`export_page` on ClickHouse analytics (store/clickhouse/bulk.export_window): the same text for the same
    rows, ties on the date in the order of their columns; `after` is that module's, not a rowid."""
    from medama_core.store.clickhouse import bulk as ch_bulk

    if kind not in COLUMNS or fmt not in FORMATS:
        raise TransferError(f"cannot export {kind} as {fmt}")
    rows, following = ch_bulk.export_window(client, hostname, kind, after, limit)
    text = page_text(rows, COLUMNS[kind], fmt, header=after is None, spreadsheet=spreadsheet)
    return ExportPage(text, len(rows), following)


def _export_value(column: str, value: object) -> object:
    if column in _BOOL_COLUMNS:
        return bool(value)
    if column == "date_created":
        assert isinstance(value, int)
        return format_time(value)
    return value


def _jsonl_writer(out: IO[str], columns: Sequence[str]) -> Callable[[tuple[Any, ...]], None]:
    encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode

    def write(row: tuple[Any, ...]) -> None:
        out.write(encode({c: _export_value(c, v) for c, v in zip(columns, row, strict=True)}) + "\n")

    return write


def _spreadsheet_writer(out: IO[str], columns: Sequence[str], *, header: bool) -> Callable[[tuple[Any, ...]], None]:
    """CSV for spreadsheet apps (csvtable): RFC 4180, text cells guarded against formula injection."""
    if header:
        out.write(csvtable.line(columns))

    def write(row: tuple[Any, ...]) -> None:
        out.write(csvtable.line(_export_value(c, v) for c, v in zip(columns, row, strict=True)))

    return write


def _csv_writer(out: IO[str], columns: Sequence[str], *, header: bool = True) -> Callable[[tuple[Any, ...]], None]:
    writer = csv.writer(out, lineterminator="\r\n")  # RFC 4180; and "\r" in a field gets quoted
    if header:
        writer.writerow(columns)

    def write(row: tuple[Any, ...]) -> None:
        values = [_export_value(c, v) for c, v in zip(columns, row, strict=True)]
        writer.writerow(["true" if v is True else "false" if v is False else "" if v is None else v for v in values])

    return write


# --- command line ---


def _kind(text: str) -> str:
    if text not in COLUMNS:
        raise ConfigError(f"{text!r} is not one of {', '.join(COLUMNS)}")
    return text


def _kind_or_guess(text: str) -> str:
    return text and _kind(text)


def _format(text: str) -> str:
    if text and text not in FORMATS:
        raise ConfigError(f"{text!r} is not one of {', '.join(FORMATS)}")
    return text


def _time_flag(text: str) -> int:
    try:
        return parse_time(text)
    except (ValueError, OverflowError):
        raise ConfigError("neither ISO 8601 nor Unix seconds") from None


def _tool(text: str) -> str:
    if text and text not in TOOLS:
        raise ConfigError(f"{text!r} is not one of {', '.join(TOOLS)}")
    return text


IMPORT_SYNOPSIS = (
    "medama import FILE [flags]  |  medama import -from TOOL FILE [-site HOSTNAME] [flags]\n"
    "       medama import -from-medama DUCKDB [flags]"
)
IMPORT_DESCRIPTION = """Import page views or custom events from a JSON Lines or CSV file (gzipped or not), in one
transaction: the whole file or, at the first bad row, nothing. Or import everything from upstream's
DuckDB analytics file, or another tool's export (-from; docs/migrate.md says which file of each tool).
A running server sees websites created here within a few seconds. Into ClickHouse (-analyticsdb
clickhouse://...), which has no transactions, the file is checked whole first, then stored
(docs/scale.md)."""
IMPORT_OPTIONS: Final = (
    Option("type", None, "", _kind_or_guess, "views or events", shown_default="read from the file's columns"),
    Option("from-medama", None, "", parse_text, "upstream's me_analytics.db (DuckDB) to import instead of FILE"),
    Option(
        "from",
        None,
        "",
        _tool,
        f"FILE is this tool's export: {', '.join(TOOLS)}",
        shown_default="none: FILE holds medama's own columns",
    ),
    Option(
        "site",
        None,
        "",
        parse_text,
        "with -from: the website the export is for (needed for GoatCounter's and Plausible's; Umami's rows name a "
        "site by its Umami website id first)",
    ),
    Option("sessions", None, "", parse_text, "with -from umami: its session table (CSV), for browsers, OS, countries"),
    Option("dry-run", None, False, parse_bool, "with -from: read and check FILE, store nothing", is_flag=True),
    Option(
        "create-websites",
        None,
        False,
        parse_bool,
        "register unknown hostnames, owned by the first user (the default admin is created if there is none)",
        is_flag=True,
    ),
    option("appdb"),
    option("analyticsdb"),
    option("env"),
)

EXPORT_SYNOPSIS = "medama export [flags]"
EXPORT_DESCRIPTION = """Write page views or custom events as JSON Lines or CSV, in an order that makes equal data give
equal files; `medama import` reads the output back exactly. When the reader of standard output
stops early (`medama export | head`), export stops quietly with exit status 0."""
EXPORT_OPTIONS: Final = (
    Option("type", None, VIEWS, _kind, "views or events"),
    Option("format", None, "", _format, "jsonl or csv", shown_default="csv for -output *.csv[.gz], else jsonl"),
    Option("hostname", None, "", parse_text, "only this website", shown_default="every website"),
    Option("start", None, None, _time_flag, "from this time on (ISO 8601 or Unix seconds)", shown_default="the start"),
    Option("end", None, None, _time_flag, "before this time (ISO 8601 or Unix seconds)", shown_default="the end"),
    Option(
        "output",
        None,
        "",
        parse_text,
        "file to write, gzipped when it ends in .gz",
        aliases=("o",),
        shown_default="standard output",
    ),
    dataclasses.replace(option("appdb"), help="not read by export; accepted so one set of flags fits every command"),
    option("analyticsdb"),
    option("env"),
)


def _open_database(path: str, flag: str, kind: str) -> sqlite3.Connection:
    """Open and migrate one of the two databases; raises StartupError naming the file, the flag and the cause."""
    from medama_core.store.sqlite import analytics, db, meta

    migrations, marker = (
        (meta.MIGRATIONS, meta.MARKER_TABLE) if kind == "meta" else (analytics.MIGRATIONS, analytics.MARKER_TABLE)
    )
    try:
        return db.open_file(path, migrations, marker)
    except db.UnusableFile as exc:
        raise StartupError(f"cannot use {os.path.abspath(path)} ({flag}): {exc}") from None


def _open_meta(appdb: str) -> Any:
    """The app store of an import: me_meta.db (opened and migrated), or a PostgreSQL connection for a
    postgres:// URL (migrated, autocommit); ConfigError with one line for a URL that cannot be used."""
    if "://" not in appdb:
        return _open_database(appdb, "-appdb", "meta")
    if not appdb.lower().startswith(("postgres://", "postgresql://")):
        raise ConfigError(
            f"-appdb: {appdb.split('://', 1)[0]}:// is not an app store; give a file or a postgres:// URL"
        )
    from medama_core.store.postgres import driver
    from medama_core.store.postgres.errors import StartupError as PostgresStartupError
    from medama_core.store.postgres.url import parse_url

    try:
        url = parse_url(appdb)
        driver.load()
        from medama_core.store.postgres import db as pg_db
        from medama_core.store.postgres import meta as pg_meta

        return pg_db.open_connection(url, pg_meta.MIGRATIONS, pg_meta.COMPONENT)
    except PostgresStartupError as exc:  # a bad URL, no driver, a server that cannot be reached or refused us
        raise ConfigError(f"-appdb: {exc}") from None


def _remove_database(path: str) -> None:
    """Delete a database file this command created, with SQLite's files beside it."""
    for suffix in ("", "-wal", "-shm", "-journal"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path + suffix)


def import_main(argv: Sequence[str], stderr: IO[str], environ: Mapping[str, str]) -> int:
    """`medama import FILE` / `medama import -from TOOL FILE` / `medama import -from-medama me_analytics.db`."""
    values, files = parse_flags(IMPORT_OPTIONS, argv, environ)
    source, tool, dry_run = values["from-medama"], values["from"], values["dry-run"]
    if len(files) > 1 or bool(files) == bool(source):
        raise ConfigError(f"give either FILE or -from-medama DUCKDB (usage: {IMPORT_SYNOPSIS})")
    if tool and source:
        raise ConfigError("-from TOOL reads FILE, not -from-medama DUCKDB")
    if not tool and (values["site"] or values["sessions"] or dry_run):
        raise ConfigError("-site, -sessions and -dry-run go with -from TOOL")
    started = time.monotonic()

    def progress(rows: int, share: float | None) -> None:
        rate = rows / max(time.monotonic() - started, 1e-9)
        done = "" if share is None else f"{share:4.0%} "
        bar = (
            ""
            if share is None
            else "["
            + "#" * round(share * PROGRESS_BAR_WIDTH)
            + "." * (PROGRESS_BAR_WIDTH - round(share * PROGRESS_BAR_WIDTH))
            + "] "
        )
        print(f"{bar}{done}imported {rows:,} rows ({rate:,.0f} rows/s)", file=stderr, flush=True)

    appdb, analyticsdb = values["appdb"], values["analyticsdb"]
    engine = _analytics_kind(analyticsdb)
    if engine == "clickhouse" and source:
        raise ConfigError(
            "-from-medama reads into SQLite analytics only: import it into a me_analytics.db, then copy that "
            "with `medama migrate -to-analyticsdb clickhouse://…` (docs/scale.md)"
        )
    new_files = [path for path in (appdb, analyticsdb) if "://" not in path and not os.path.exists(path)]
    kind, create = values["type"] or None, values["create-websites"]
    connections: list[Any] = []
    try:
        with contextlib.ExitStack() as stack:
            # A missing FILE (or -sessions file) is reported before any database is created.
            stream = None if source else stack.enter_context(_open_import(files[0], tool))
            sessions = stack.enter_context(open_input(values["sessions"])) if values["sessions"] else None
            connections.append(_open_meta(appdb))
            if engine == "clickhouse":
                connections.append(open_clickhouse(analyticsdb))
            else:
                connections.append(_open_database(analyticsdb, "-analyticsdb", "analytics"))
            meta_conn, analytics_conn = connections
            if engine == "clickhouse":
                opener = functools.partial(_open_import, files[0], tool)
                if tool:
                    reopen = functools.partial(open_input, values["sessions"]) if values["sessions"] else None
                    site, name = values["site"].lower() or None, os.path.basename(files[0])
                    results = import_foreign_clickhouse(
                        analytics_conn, meta_conn, tool, opener, site=site, name=name, open_sessions=reopen,
                        create_websites=create, dry_run=dry_run, progress=progress,
                    )  # fmt: skip
                else:
                    one = import_rows_clickhouse(
                        analytics_conn, meta_conn, opener, kind=kind, create_websites=create, progress=progress
                    )
                    results = [one]
            elif stream is None:
                results = import_medama(analytics_conn, meta_conn, source, create_websites=create, progress=progress)
            elif tool:
                site, name = values["site"].lower() or None, os.path.basename(files[0])
                foreign: dict[str, Any] = {"site": site, "name": name, "sessions": sessions, "dry_run": dry_run}
                foreign.update(create_websites=create, progress=progress)
                results = import_foreign(analytics_conn, meta_conn, tool, stream, **foreign)
            else:
                options: dict[str, Any] = {"kind": kind, "create_websites": create, "progress": progress}
                results = [import_rows(analytics_conn, meta_conn, stream, **options)]
    except PartlyStored as exc:
        for conn in connections:
            conn.close()
        print(f"ERROR: import failed part way: {exc}", file=stderr)
        return 1
    except (TransferError, OSError, StartupError) as exc:
        for conn in connections:
            conn.close()
        for path in new_files:  # nothing was stored: leave no empty database behind
            _remove_database(path)
        print(f"ERROR: import failed, nothing was stored: {exc}", file=stderr)
        return 1
    for conn in connections:
        conn.close()
    elapsed = max(time.monotonic() - started, 1e-9)
    if dry_run:
        for path in new_files:  # a dry run stores nothing, so it leaves no database it had to create
            _remove_database(path)
        for result in results:
            print(f"would import {result.rows:,} {result.kind} (dry run: nothing stored)", file=stderr)
        return 0
    for result in results:
        print(f"imported {result.stored:,} {result.kind} ({result.rows / elapsed:,.0f} rows/s)", file=stderr)
        if result.stored != result.rows:
            ignored = result.rows - result.stored
            print(f"ignored {ignored:,} views already stored (same bid and hostname)", file=stderr)
        if result.created_admin:
            print(
                f"created the default user {DEFAULT_ADMIN_USERNAME} (password {DEFAULT_ADMIN_PASSWORD}: sign in and "
                "change it) to own the new websites",
                file=stderr,
            )
        if result.created_websites:
            print(f"created websites: {', '.join(result.created_websites)}", file=stderr)
    return 0


def _open_import(path: str, tool: str) -> IO[bytes]:
    """FILE of an import: Plausible's zip as it is; every other file gunzipped when gzipped (open_input)."""
    return open(path, "rb") if tool == "plausible" else open_input(path)  # noqa: SIM115 - the caller closes it


def export_main(argv: Sequence[str], stdout: IO[str], stderr: IO[str], environ: Mapping[str, str]) -> int:
    """`medama export`: views or events as JSON Lines or CSV, to a file or standard output."""
    values, extra = parse_flags(EXPORT_OPTIONS, argv, environ)
    if extra:
        raise ConfigError(f"unexpected argument {extra[0]!r} (usage: {EXPORT_SYNOPSIS})")
    output = values["output"]
    name = output.removesuffix(".gz")
    fmt = values["format"] or ("csv" if name.endswith(".csv") else "jsonl")
    analyticsdb = values["analyticsdb"]
    options: dict[str, Any] = {"kind": values["type"], "fmt": fmt, "hostname": values["hostname"] or None}
    options.update(start_ms=values["start"], end_ms=values["end"])
    if _analytics_kind(analyticsdb) == "clickhouse":
        client = open_clickhouse(analyticsdb)
        return _export_to(
            functools.partial(export_rows_clickhouse, client),
            output,
            options,
            values["type"],
            stdout,
            stderr,
            client.close,
        )
    if not os.path.isfile(analyticsdb):  # opening it would create an empty one, and export nothing
        raise StartupError(
            f"no analytics database at {os.path.abspath(analyticsdb)} (-analyticsdb): give the path of the "
            "me_analytics.db the server uses, or run export in its folder"
        )
    analytics_conn = _open_database(analyticsdb, "-analyticsdb", "analytics")
    return _export_to(
        functools.partial(export_rows, analytics_conn),
        output,
        options,
        values["type"],
        stdout,
        stderr,
        analytics_conn.close,
    )


def _export_to(
    write: Callable[..., int],
    output: str,
    options: dict[str, Any],
    kind: str,
    stdout: IO[str],
    stderr: IO[str],
    close: Callable[[], None],
) -> int:
    """Run `write(out, **options)` into the -output file or standard output; the exit status."""
    try:
        if not output:
            count = write(stdout, **options)
            stdout.flush()
        else:
            with _open_output(output) as out:
                count = write(out, **options)
    except BrokenPipeError:  # the reader went away (`| head`): it has what it wanted
        _discard_stdout(stdout)
        return 0
    except (TransferError, OSError) as exc:
        print(f"ERROR: export failed: {exc}", file=stderr)
        return 1
    finally:
        close()
    print(f"exported {count:,} {kind}", file=stderr)
    return 0


def _discard_stdout(stdout: IO[str]) -> None:
    """Point standard output at /dev/null, so the interpreter's last flush of what is buffered does not
    fail again on the closed pipe (Python's documented way out of a SIGPIPE, signal module docs)."""
    try:
        descriptor = stdout.fileno()
    except (OSError, ValueError):  # not a real file (tests pass a StringIO)
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, descriptor)
    os.close(devnull)


def _open_output(path: str) -> IO[str]:
    """The export file, created 0600 (it holds every visit of the sites exported)."""
    os.close(open_private(path))  # created (or truncated) 0600 before any row is written
    if path.endswith(".gz"):
        return io.TextIOWrapper(gzip.open(path, "wb"), encoding="utf-8", newline="")
    return open(path, "w", encoding="utf-8", newline="")
