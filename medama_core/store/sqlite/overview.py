"""Many sites at once, for the websites list: each site's unique visitors since a moment, and sparklines.

`visitors_since` answers for all of a user's sites in three queries, however
many there are. Each site is cut at its first dirty hour in the window: the
clean hours before the cut come from the whole site's hour rollups (kind 0),
and the raw rows from the cut on, with the part-hour the window starts in.
On a server whose refresher keeps up, the cut is the current hour, so a site
costs one rollup seek and a raw read of about an hour; right after an import
every hour is dirty, and every site is read raw, as the plain query would.
Counts are exact either way: they equal the site's /summary for the same
window (tests check both against the raw rows). Run it inside
`stats.snapshot`, so the rollups, the dirty marks and the rows are read at
the same moment.

`site_intervals` gives a few sites' /summary interval buckets in one read.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from medama_core.store.sqlite import stats
from medama_core.store.sqlite.rollups import HOUR, HOUR_MS, KINDS

_FIRST_DIRTY_SQL = """
    SELECT hostname, MIN(hour) FROM rollup_dirty
    WHERE hostname IN (SELECT value FROM json_each(:hostnames)) AND hour >= :first
    GROUP BY hostname"""
# [hostname, cut]: the clean hours first..cut-1, one index seek per site. CROSS JOIN keeps the sites outside.
_ROLLUP_SQL = f"""
    SELECT r.hostname, SUM(r.visitors) FROM json_each(:cuts) c
    CROSS JOIN rollup r
    WHERE r.hostname = json_extract(c.value, '$[0]') AND r.span = {HOUR} AND r.kind = {KINDS["total"]}
        AND r.period >= :first AND r.period < json_extract(c.value, '$[1]')
    GROUP BY r.hostname"""
# [hostname, first ms, last ms]: one seek in views(hostname, date_created) per range.
_RAW_SQL = """
    SELECT v.hostname, COUNT(*) FILTER (WHERE v.is_unique_user) FROM json_each(:ranges) r
    CROSS JOIN views v
    WHERE v.hostname = json_extract(r.value, '$[0]')
        AND v.date_created BETWEEN json_extract(r.value, '$[1]') AND json_extract(r.value, '$[2]')
    GROUP BY v.hostname"""
# The window has no end, as upstream's: a view can be dated in the future (an import, a clock set wrong).
# Its hour stays dirty until it has passed, so such rows are always read raw.
_NO_END = (1 << 63) - 1


def visitors_since(conn: sqlite3.Connection, hostnames: list[str], since_ms: int) -> dict[str, int]:
    """Unique visitors (views flagged `is_unique_user`) per site with `date_created > since_ms`; absent sites 0."""
    start = since_ms + 1
    first = -(-start // HOUR_MS)  # the window's first whole hour
    clean = _NO_END // HOUR_MS  # the cut of a site with no dirty hour in the window: none
    params = {"hostnames": json.dumps(hostnames), "first": first}
    cuts = dict.fromkeys(hostnames, clean)
    cuts.update(conn.execute(_FIRST_DIRTY_SQL, params).fetchall())
    counts = dict.fromkeys(hostnames, 0)
    params["cuts"] = json.dumps(list(cuts.items()))
    for hostname, visitors in conn.execute(_ROLLUP_SQL, params):
        counts[hostname] += visitors
    ranges = []  # [hostname, first ms, last ms], one or two a site
    part_hour = start < first * HOUR_MS  # the window starts inside an hour
    for hostname, cut in cuts.items():
        if part_hour and cut == first:  # the part-hour and the raw hours right after it: one range
            ranges.append([hostname, start, _NO_END])
            continue
        if part_hour:
            ranges.append([hostname, start, first * HOUR_MS - 1])
        if cut != clean:
            ranges.append([hostname, cut * HOUR_MS, _NO_END])
    for hostname, visitors in conn.execute(_RAW_SQL, {"ranges": json.dumps(ranges)}):
        counts[hostname] += visitors
    return counts


def site_intervals(
    conn: sqlite3.Connection, hostnames: list[str], start_us: int, end_us: int, interval: str
) -> list[list[dict[str, Any]]]:
    """Each site's /summary `interval` entries for [start_us, end_us], in the order of `hostnames`.

    One site after another through the /summary code itself, so a sparkline and the site's
    chart never disagree; a page of small sites takes about a millisecond each.
    """
    return [
        stats.interval_metrics(conn, stats.Query(hostname, start_us, end_us), interval, start_us, end_us)
        for hostname in hostnames
    ]
