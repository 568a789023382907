"""/drops: the hits ingestion dropped, per UTC day, site and reason, for the caller's sites (CONTRACT 5).

The rows come from the analytics table `drops` (written by api/events.py).
A caller sees the rows of the websites they see (permissions.sees_site) and,
if an admin, of host names no website has (hostname "" when the site could
not be told, such as a body that did not parse); a viewer sees only the rows
of the sites granted to them.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any, Final

from medama_core import access, permissions
from medama_core.api import Context
from medama_core.http.errors import HTTPError
from medama_core.http.params import parse_time
from medama_core.http.protocol import Request, Response, json_response

DAY_US: Final = 24 * 60 * 60 * 1_000_000
DAY_MS: Final = DAY_US // 1000
DEFAULT_DAYS: Final = 30  # without start: the last 30 days, as the dashboard's default period
# A period of at most this many days: a year and a month. Each day holds at most a few rows per
# site and reason plus ingestion's daily allowance of unknown names, so the answer stays bounded.
MAX_DAYS: Final = 400


def period_days(start_us: int | None, end_us: int | None, now_us: int) -> tuple[int, int]:
    """The first and last UTC day (Unix ms of 00:00) the period touches; 400 for a bad period."""
    end = now_us if end_us is None else end_us
    start = end - DEFAULT_DAYS * DAY_US if start_us is None else start_us
    if start > end:
        raise HTTPError(400, "start: must not be after end")
    first, last = start // DAY_US, end // DAY_US
    if last - first + 1 > MAX_DAYS:
        raise HTTPError(400, f"start, end: at most {MAX_DAYS} days")
    return first * DAY_MS, last * DAY_MS


async def get_drops(request: Request, ctx: Context) -> Response:
    """Rows newest day first, then by hostname and reason: `{date, hostname, reason, hits}`."""
    actor = access.caller(request).actor
    start, end = request.query_value("start"), request.query_value("end")
    first, last = period_days(
        None if start is None else parse_time("start", start),
        None if end is None else parse_time("end", end),
        time.time_ns() // 1000,
    )
    rows = await ctx.analytics.drop_counts(first, last)
    registered = ctx.hostnames
    unregistered = permissions.sees_unregistered(actor)
    visible = [
        row for row in rows if (row[1] in registered and permissions.sees_site(actor, row[1]))
        or (row[1] not in registered and unregistered)
    ]  # fmt: skip
    visible.sort(key=lambda row: (-row[0], row[1], row[2]))
    body: list[dict[str, Any]] = [
        {"date": _date(day), "hostname": hostname, "reason": reason, "hits": count}
        for day, hostname, reason, count in visible
    ]
    return json_response(body)


def _date(day_ms: int) -> str:
    return datetime.fromtimestamp(day_ms / 1000, timezone.utc).strftime("%Y-%m-%d")  # datetime.UTC is 3.11+
