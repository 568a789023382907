"""The date logic of `GET /event/ping`: daily uniqueness kept by the browser's HTTP cache.

The server holds no state. The first ping of a day gets body "0" and
`Last-Modified: <today 00:00 UTC>` with `Cache-Control: no-cache`, so the
browser revalidates the next time with `If-Modified-Since`; a date from today
gets "1" and a `max-age` that runs out at the next 00:00 UTC, after which the
cycle starts again (spec §3.7).

Every date here is UTC seconds from `time.time()` and is formatted from
`time.gmtime`, so the day boundary is 00:00 UTC whatever the server's local
zone (upstream printed local time followed by "GMT", spec §10.11). Month and
day names come from tables, not the C locale.
"""

from __future__ import annotations

import calendar
import functools
import re
import time
from dataclasses import dataclass
from typing import Final

__all__ = ["DAY_S", "InvalidDate", "PingAnswer", "answer", "day_start", "format_http_date", "parse_http_date"]

DAY_S: Final = 86_400  # the uniqueness window: one UTC day

# RFC 9110 §5.6.7 IMF-fixdate, the one format upstream's Go `http.TimeFormat`
# parses ("Mon, 02 Jan 2006 15:04:05 GMT"). Like Go's time.Parse, names match
# case-insensitively, the weekday is not checked against the date, and a
# fractional second after the seconds is accepted.
_WEEKDAYS: Final = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS: Final = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MONTH_NUMBER: Final = {name.lower(): number for number, name in enumerate(_MONTHS, start=1)}
_HTTP_DATE_RE: Final = re.compile(
    r"(?i:mon|tue|wed|thu|fri|sat|sun), ([0-9]{2}) ([A-Za-z]{3}) ([0-9]{4}) "
    r"([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.[0-9]+)? GMT"
)
# A header value longer than this cannot be an IMF-fixdate (29 characters plus a fraction).
MAX_DATE_CHARS: Final = 64


class InvalidDate(ValueError):
    """`If-Modified-Since` is not an IMF-fixdate (the API answers 400)."""


@dataclass(frozen=True, slots=True)
class PingAnswer:
    body: str  # "0": first ping today; "1": seen today
    last_modified: str
    cache_control: str


def day_start(now: float) -> int:
    """Unix seconds of 00:00 UTC on the day containing `now`."""
    return int(now // DAY_S) * DAY_S


def format_http_date(seconds: int) -> str:
    """`Mon, 02 Jan 2006 15:04:05 GMT` for a Unix time, in UTC."""
    t = time.gmtime(seconds)
    return (
        f"{_WEEKDAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon - 1]} {t.tm_year:04d} "
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} GMT"
    )


def parse_http_date(text: str) -> int:
    """Unix seconds of an IMF-fixdate; raises `InvalidDate` for anything else (including Feb 30)."""
    match = _HTTP_DATE_RE.fullmatch(text) if len(text) <= MAX_DATE_CHARS else None
    if match is None:
        raise InvalidDate(f"invalid If-Modified-Since date: {text[:MAX_DATE_CHARS]!r}")
    day, month_name, year, hour, minute, second = match.groups()
    y, mo, d = int(year), _MONTH_NUMBER.get(month_name.lower(), 0), int(day)
    h, mi, s = int(hour), int(minute), int(second)
    if not mo or not 1 <= d <= _days_in_month(y, mo) or h > 23 or mi > 59 or s > 59:
        raise InvalidDate(f"invalid If-Modified-Since date: {text!r}")
    return _days_from_civil(y, mo, d) * DAY_S + h * 3600 + mi * 60 + s


def _days_in_month(year: int, month: int) -> int:
    if month == 2:
        return 29 if calendar.isleap(year) else 28
    return 30 if month in (4, 6, 9, 11) else 31


def _days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date, for any year (Go accepts 0000)."""
    # Howard Hinnant's days_from_civil: count from 1 March so leap days fall at the end of a year.
    year -= month <= 2
    era = year // 400
    year_of_era = year - era * 400
    day_of_year = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * 146_097 + day_of_era - 719_468


def answer(if_modified_since: str | None, now: float) -> PingAnswer:
    """The ping response for a request at `now` (Unix seconds) carrying `If-Modified-Since`.

    An empty header counts as absent. Raises `InvalidDate` when it does not parse.
    """
    today = day_start(now)
    if if_modified_since:
        seen = parse_http_date(if_modified_since)
        if seen >= today:
            # Seen today (or a date in the future): fresh until 24 h after the date it carries.
            return PingAnswer("1", if_modified_since, f"max-age={int(seen + DAY_S - now)}")
    return PingAnswer("0", _day_date(today), "no-cache")


@functools.lru_cache(maxsize=2)  # today, and yesterday for the pings in flight at midnight
def _day_date(day: int) -> str:
    """`format_http_date` of a day's 00:00, which every first ping of that day answers with."""
    return format_http_date(day)
