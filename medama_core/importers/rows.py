"""What an importer gives: view and event rows (column mappings of store/rows.py), each with its line number.

Every id is derived from the source record, so importing the same file again
gives the same rows: views are then ignored by their (bid, hostname) key, and
events whose batch id is already stored are skipped (transfer.py). A record
repeated exactly in the file is kept once per repetition (its occurrence is
part of its id).
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Final

__all__ = ["BadRecord", "Ids", "Record", "parse_moment"]

VIEW: Final = "views"
EVENT: Final = "events"
_UTC: Final = dt.timezone.utc  # dt.UTC is Python 3.11+
_EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=_UTC)
_MS: Final = dt.timedelta(milliseconds=1)
# Years a stored date may have: SQLite and the stats handle any integer, but a date outside these
# is a broken export (or a unit mix-up), better refused with its line than shown as 1970 or 9999.
MIN_YEAR: Final = 1995
MAX_YEAR: Final = 2200
# A fraction of a second after the clock: Python 3.10's fromisoformat reads exactly 3 or 6 digits
# only, PostgreSQL writes 1 to 6 (trailing zeros dropped). Padded or cut to 6, as 3.11+ reads them.
_FRACTION: Final = re.compile(r"(:[0-9]{2})\.([0-9]{1,9})(?=[+-]|$)")


class BadRecord(ValueError):
    """A record that cannot be imported; the message starts with its line number."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}" if line > 0 else message)  # 0: the file as a whole
        self.line = line
        self.detail = message


@dataclass(frozen=True, slots=True)
class Record:
    kind: str  # VIEW or EVENT
    line: int
    values: dict[str, object]  # the table's columns (store/rows.py VIEW_COLUMNS or EVENT_COLUMNS)


Records = Iterator[Record]


class Ids:
    """Stable ids for the records of one file: a digest of the tool, site, record and its occurrence."""

    def __init__(self, tool: str, site: str) -> None:
        self.prefix = f"{tool}\0{site}\0"
        self.seen: Counter[str] = Counter()

    def of(self, fields: Sequence[str]) -> str:
        key = "\x1f".join(fields)
        self.seen[key] += 1
        text = f"{self.prefix}{key}\0{self.seen[key]}"
        return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=10).hexdigest()


def parse_moment(text: str, line: int, what: str = "date") -> int:
    """Unix ms of an ISO 8601 / RFC 3339 date (`Z`, an offset, or none: UTC) or of `YYYY-MM-DD HH:MM:SS[.f][+TZ]`."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    if len(value) > 10 and value[10] == " ":
        value = value[:10] + "T" + value[11:]
    # PostgreSQL writes a short offset ("+02"), which fromisoformat before 3.11 refuses.
    if len(value) >= 3 and value[-3] in "+-" and value[-2:].isdigit() and "T" in value:
        value += ":00"
    value = _FRACTION.sub(lambda found: f"{found[1]}.{found[2][:6].ljust(6, '0')}", value, count=1)
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise BadRecord(line, f"{what} {text[:40]!r} is not an ISO 8601 date") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_UTC)
    if not MIN_YEAR <= moment.astimezone(_UTC).year <= MAX_YEAR:
        raise BadRecord(line, f"{what} {text[:40]!r} is outside {MIN_YEAR}-{MAX_YEAR}")
    return (moment - _EPOCH) // _MS


def text_lines(stream: Iterator[bytes]) -> Iterator[str]:
    """The lines of a UTF-8 byte stream (a leading byte-order mark dropped), a line that is not UTF-8 a BadRecord."""
    for number, raw in enumerate(stream, start=1):
        if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BadRecord(number, f"not UTF-8 (byte {exc.start + 1} of the line); export the file as UTF-8") from None


def csv_records(lines: Iterator[str], first_line: int = 1) -> Iterator[tuple[int, list[str]]]:
    """CSV records (RFC 4180, as Go's encoding/csv and PostgreSQL's COPY write them) with the line each starts on.

    Blank lines are skipped. A malformed record is a BadRecord naming its line.
    """
    reader = csv.reader(lines, strict=True)
    start = first_line
    while True:
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise BadRecord(reader.line_num, f"not valid CSV: {exc}") from None
        if record:
            yield start, record
        start = reader.line_num + 1


def header_index(header: list[str], required: Sequence[str], line: int = 1) -> dict[str, int]:
    """Column positions by name; a BadRecord naming the missing columns."""
    index = {name.strip(): i for i, name in enumerate(header)}
    missing = [name for name in required if name not in index]
    if missing:
        raise BadRecord(line, f"missing column(s): {', '.join(missing)}")
    return index
