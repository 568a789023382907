"""Plausible's CSV export: a zip of daily aggregates per table (`imported_visitors_20230101_20231231.csv`, …).

No raw rows exist in it, so it becomes imported daily totals (store/sqlite/imported.py)
that the stats add for those days (api/imported.py), not views. Read, by table:

- `imported_visitors`: the site's visitors, pageviews, visits, bounces and visit
  duration per day;
- `imported_pages`: visitors and pageviews per page (`page`);
- `imported_sources`: per source (as our referrer group; "Direct / None" is
  none), per referrer host (`referrer`, newer exports), and per utm_source,
  utm_medium and utm_campaign;
- `imported_browsers`, `imported_operating_systems`, `imported_devices`: per
  browser, system and device class, their versions summed;
- `imported_locations`: per country, regions and cities summed.

Not read: entry and exit pages, custom events (counts without the events), time
on page and scroll depth. Dates are days (`date`, YYYY-MM-DD) in the site's
time zone as Plausible kept it; they are stored as the UTC day of that date.
"""

from __future__ import annotations

import datetime as dt
import re
import zipfile
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Final

from medama_core.importers import names
from medama_core.importers.rows import BadRecord, csv_records, header_index, text_lines
from medama_core.ingest.hit import MAX_PATHNAME_BYTES, cut

__all__ = ["DayTotal", "MAX_FILES", "MAX_UNZIPPED_BYTES", "totals"]

# The export has nine tables; a zip with far more members is not Plausible's.
MAX_FILES: Final = 64
# Years of a big site's daily rows are a few MB per table; the cap keeps a zip bomb out.
MAX_UNZIPPED_BYTES: Final = 512 * 1024 * 1024
MAX_VALUE_CHARS: Final = 1024
_NAME_RE: Final = re.compile(r"(?:.*/)?(imported_[a-z_]+?)(?:_\d{8}_\d{8})?\.csv")
_DIRECT: Final = "Direct / None"
_METRICS: Final = ("visitors", "pageviews", "visits", "bounces", "visit_duration")


@dataclass(frozen=True, slots=True)
class DayTotal:
    """One day's totals of one value of a dimension ("" and "" for the whole site)."""

    day_ms: int
    dimension: str  # "", or a stats kind: path, referrer, referrer_host, utm_*, browser, os, device, country
    value: str
    visitors: int
    pageviews: int
    visits: int
    bounces: int
    duration_s: int


# table -> (dimension, column, how a value becomes ours) for each dimension the table gives.
_TABLES: Final = {
    "imported_visitors": (("", None),),
    "imported_pages": (("path", "page"),),
    "imported_sources": (
        ("referrer", "source"),
        ("referrer_host", "referrer"),
        ("utm_source", "utm_source"),
        ("utm_medium", "utm_medium"),
        ("utm_campaign", "utm_campaign"),
    ),
    "imported_browsers": (("browser", "browser"),),
    "imported_operating_systems": (("os", "operating_system"),),
    "imported_devices": (("device", "device"),),
    "imported_locations": (("country", "country"),),
}


def _ours(dimension: str, value: str) -> str:
    if dimension == "browser":
        return names.browser(value)
    if dimension == "os":
        return names.os_name(value)
    if dimension == "device":
        return names.device(value)
    if dimension == "country":
        return names.country(value)
    if dimension == "referrer":
        return "" if value == _DIRECT else value
    if dimension == "referrer_host":
        host = value.split("://", 1)[-1].split("/", 1)[0].lower()
        return host[4:] if host.startswith("www.") else host
    if dimension == "path":
        value = value or "/"
        return cut(value[:-1] if len(value) > 1 and value.endswith("/") else value, MAX_PATHNAME_BYTES)
    return value[:MAX_VALUE_CHARS]


def _day(text: str, line: int) -> int:
    try:
        day = dt.date.fromisoformat(text.strip())
    except ValueError:
        raise BadRecord(line, f"date {text[:40]!r} is not YYYY-MM-DD") from None
    return (day - dt.date(1970, 1, 1)).days * 86_400_000


def _count(text: str, line: int, name: str) -> int:
    value = text.strip()
    if not value:
        return 0
    if not (value.isascii() and value.isdigit()) or len(value) > 15:
        raise BadRecord(line, f"{name} {value[:20]!r} is not a whole number")
    return int(value)


def table_totals(table: str, lines: Iterator[str]) -> Iterator[DayTotal]:
    """The totals one table's CSV gives, summed per day and value (a BadRecord names `table` and the line)."""
    dimensions = _TABLES[table]
    rows = csv_records(lines)
    first = next(rows, None)
    if first is None:
        return
    number, header = first
    needed = ["date", "visitors", *(column for _, column in dimensions if column and column != "referrer")]
    column = header_index(header, needed, number)
    sums: dict[tuple[int, str, str], list[int]] = defaultdict(lambda: [0] * len(_METRICS))
    for number, record in rows:
        if len(record) != len(header):
            raise BadRecord(number, f"{len(record)} fields, the header has {len(header)}")
        day = _day(record[column["date"]], number)
        counts = [_count(record[column[m]], number, m) if m in column else 0 for m in _METRICS]
        for dimension, name in dimensions:
            if name is not None and name not in column:
                continue
            value = "" if name is None else _ours(dimension, record[column[name]])
            total = sums[(day, dimension, value)]
            for i, count in enumerate(counts):
                total[i] += count
    for (day, dimension, value), (visitors, pageviews, visits, bounces, duration) in sums.items():
        yield DayTotal(day, dimension, value, visitors, pageviews, visits, bounces, duration)


def totals(stream: IO[bytes], name: str = "") -> Iterator[DayTotal]:
    """Every day total of a Plausible export: a zip of its CSV files, or one of them alone (named `name`).

    Raises BadRecord (naming the file and line) for anything that is not such an export.
    """
    head = stream.read(4)
    stream.seek(0)
    if head[:2] != b"PK":  # a zip (an empty one starts PK\x05\x06)
        match = _NAME_RE.fullmatch(name.rsplit("/", 1)[-1])
        if match is None or match.group(1) not in _TABLES:
            raise BadRecord(0, f"{name or 'the file'} is neither a zip nor a CSV named like imported_pages_….csv")
        yield from table_totals(match.group(1), text_lines(iter(stream)))
        return
    try:
        archive = zipfile.ZipFile(stream)
        members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise BadRecord(0, f"not a zip file: {exc}") from None
    if len(members) > MAX_FILES:
        raise BadRecord(0, f"more than {MAX_FILES} files: not a Plausible export")
    if sum(m.file_size for m in members) > MAX_UNZIPPED_BYTES:
        raise BadRecord(0, f"more than {MAX_UNZIPPED_BYTES // 2**20} MiB unzipped")
    found = False
    for member in members:
        match = _NAME_RE.fullmatch(member.filename)
        if match is None or match.group(1) not in _TABLES:
            continue
        found = True
        try:
            with archive.open(member) as raw:
                yield from table_totals(match.group(1), text_lines(iter(raw)))
        except BadRecord as exc:
            raise BadRecord(exc.line, f"{member.filename}: {exc.detail}") from None
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
            raise BadRecord(0, f"{member.filename}: cannot be unzipped: {exc}") from None
    if not found:
        raise BadRecord(0, "no imported_*.csv file of Plausible's export in the zip")
