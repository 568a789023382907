"""Query parameters that more than one endpoint reads, each failure a 400 `HTTPError` naming the parameter."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from medama_core.http.errors import HTTPError

__all__ = ["parse_time"]

# RFC 3339 date-time: date, `T` (or `t`/space, RFC 3339 §5.6 note), time, optional fraction, offset.
# ASCII digits only; an offset's hours are 00-23 and its minutes 00-59 (RFC 3339 §5.6).
_RFC3339 = re.compile(
    r"([0-9]{4}-[0-9]{2}-[0-9]{2})[Tt ]([0-9]{2}:[0-9]{2}:[0-9]{2})(\.[0-9]+)?"
    r"([Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"
)
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)  # datetime.UTC is Python 3.11+


def parse_time(name: str, text: str) -> int:
    """An RFC 3339 date-time as Unix microseconds (digits past the microsecond are dropped)."""
    found = _RFC3339.fullmatch(text)
    if found is None:
        raise HTTPError(400, f"{name}: {text!r} is not an RFC 3339 date-time")
    date, clock, fraction, offset = found.groups()
    offset = "+00:00" if offset in ("Z", "z") else offset
    try:
        moment = datetime.fromisoformat(f"{date}T{clock}{offset}")
    except ValueError:
        raise HTTPError(400, f"{name}: {text!r} is not a valid date-time") from None
    micro = int((fraction or ".0")[1:7].ljust(6, "0"))
    return (moment - _EPOCH) // timedelta(microseconds=1) + micro
