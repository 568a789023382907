"""The stats queries behind /api/website/{hostname}/* on ClickHouse: summary, lists, time, properties (spec §4).

Same entry points, arguments and answers as the SQLite store (store/sqlite/stats.py).
An unfiltered query reads the pre-aggregates (`hourly`, `duration_hours`,
`durations`, `event_hours`) for the whole hours of its period and the raw rows
of `views` for the rest (windows.py); a filtered one reads one site's range of
`views` or a sorted copy (and `events`), except a compact list under one browser
or referrer filter, from `filter_hours` (_filter_keys). Every count sums `sign`, so a view that was unloaded
three times (seven rows until merges collapse them) counts once, with its last
duration (schema.py).

ClickHouse returns the counts and the two order statistics each quantile
needs; the formulas (bounce rule, shares, rounding, DuckDB's interpolation)
are the SQLite store's own `Group` and `fraction` (store/aggregate.py), so
both engines give the same numbers. The order statistics:

* an unfiltered median, from the duration tables (medians.py);
* a filtered median, from `quantilesExactWeighted(0.5, 0.5 + 1e-12)` with
  the weights `sign`: a -1 row cancels its +1 copy exactly (the weights add
  up modulo 2**64), and the two levels give the values of rank
  ceil(n / 2) - 1 and floor(n / 2), the two middle values of the n durations;
* the quartiles of /time, from the live durations rebuilt in a subquery
  (each value repeated as often as its net sign), sorted, and indexed at
  floor and ceil of (n - 1) q.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from typing import Any, Final

from medama_core.store.aggregate import Group, fraction
from medama_core.store.clickhouse.client import Client
from medama_core.store.clickhouse.filters import where_sql
from medama_core.store.clickhouse.medians import Family, middles
from medama_core.store.clickhouse.retention import raw_floor
from medama_core.store.clickhouse.schema import (
    COPIES,
    FILTER_COUNTS,
    FILTER_FIELDS,
    HOUR_MS,
    KIND_CODES,
    LABELS,
    PROP_SET_LEVEL,
    ROW_COUNTS,
    SITE_KEY,
    SITE_KIND,
    VIEW_DIMENSION_COLUMNS,
)
from medama_core.store.clickhouse.sql import in_list
from medama_core.store.clickhouse.windows import Windows, plan
from medama_core.store.filters import MAX_IN_VALUES
from medama_core.store.query import (
    LISTS,
    QUARTILES,
    STEPS_US,
    Page,
    Query,
    bucket_count,
    previous_period,
)
from medama_core.store.query import bucket_date as _bucket_date
from medama_core.store.query import month_index as _month_index

__all__ = ["list_stats", "properties", "property_counts", "site_metrics", "summary", "time_stats"]

# The counts of a `Group`, in its field order, each summing `sign` (durations are NULL until an unload).
_DURATION: Final = "ifNull(duration_ms, -1)"
_COUNT_SQL: Final = (
    "sumIf(sign, is_unique_user = 1)",  # visitors
    "sumIf(sign, is_unique_page = 1)",  # page_visitors
    "sum(sign)",  # pageviews
    f"sumIf(sign, is_unique_user = 1 AND {_DURATION} BETWEEN 100 AND 5000)",  # bounces
    "sumIf(sign, is_unique_user = 1 AND isNotNull(duration_ms))",  # timed
    "sum(sign * ifNull(duration_ms, 0))",  # duration_sum
    "sumIf(sign, isNotNull(duration_ms))",  # measured
    f"sumIf(sign, {_DURATION} = 0)",  # zeros
    f"sumIf(sign, {_DURATION} BETWEEN 0 AND 1)",  # ones
)
COUNTS: Final = ", ".join(_COUNT_SQL)
_COUNT_FIELDS: Final = "visitors page_visitors pageviews bounces timed duration_sum measured zeros ones".split()
# Rank ceil(n/2) - 1 at level 0.5 and floor(n/2) just above it, for any n below 10**11: the two middle values.
_MIDDLE_LEVELS: Final = "quantilesExactWeighted{}(0.5, 0.500000000001)"
MIDDLES: Final = _MIDDLE_LEVELS.format("") + "(duration_ms, toUInt64(sign))"
# Only the visitor counts, for the compact rows of the lists.
_VISITORS: Final = "sumIf(sign, is_unique_user = 1), sumIf(sign, is_unique_page = 1)"


# The key of the site '' (events stored before their view).
_ORPHAN_KEY: Final = SITE_KEY.format(column="''")


@dataclass(frozen=True)
class _Resolved(Query):
    """A query that knows whether another stored hostname shares its site's key (then rows compare names too),
    and, under property filters, whether an event stored before its view (site '') matches them and whether
    retention purged the site (retention.raw_floor)."""

    shared: bool = True
    orphans: bool = True
    purged: bool = True


def _resolve(client: Client, query: Query) -> Query:
    """The query with its site key checked against `sites` (one lookup in a table of one row per site), and under
    property filters the events stored before their view looked up (a range of `events` that is empty but for
    an import of events before their views, or two nodes racing) and the site's retention floor (`raw_floor`)."""
    if isinstance(query, _Resolved):
        return query
    key = SITE_KEY.format(column="{h:String}")
    params: dict[str, object] = {"h": query.hostname}
    sql = f"SELECT toUInt8(0) AS what, count() FROM sites WHERE site_key = {key} AND hostname != {{h:String}}"
    if query.prop_filters:
        props = " AND ".join(where_sql(query.prop_filters, params, "p"))
        orphans = f"site_key = {_ORPHAN_KEY} AND site = '' AND {props}"
        sql += f" UNION ALL SELECT toUInt8(1), count() FROM events WHERE {orphans}"
        sql += " UNION ALL SELECT toUInt8(2), count() FROM raw_floor WHERE hostname = {h:String}"
    counts = {int(what): int(n) for what, n in client.rows(sql, params)}
    return _Resolved(
        query.hostname,
        query.start_us,
        query.end_us,
        query.filters,
        shared=bool(counts[0]),
        orphans=bool(counts.get(1)),
        purged=bool(counts.get(2)),
    )


def _pinned(query: Query) -> int | None:
    """The `named` key level of `views_by_prop` (schema migration 15) whose rows the property filters match at most
    one of per view and version, as ASCII lower-cased (filters.py): 0 when they hold an equality (`eq`) on the name
    and one on the value (one property), 1 when an equality on the name and no filter on the value (one name
    alone); else None. Then a view's rows there that match sum as its rows in `views`."""
    equal = {flt.field for flt in query.prop_filters if flt.op == "eq"}
    if "prop_name" not in equal:
        return None
    if "prop_value" in equal:
        return 0
    return None if any(flt.field == "prop_value" for flt in query.prop_filters) else 1


def _by_prop(query: Query) -> bool:
    """Whether a property-filtered query reads `views_by_prop`: its filters pin one property or name, and no event
    stored before its view (site '', in no view's rows there) matches them."""
    return bool(query.prop_filters) and _pinned(query) is not None and not getattr(query, "orphans", True)


def _by_keys(query: Query) -> bool:
    """Whether a property-filtered query reads the key sets of `views_by_prop` (schema.PROP_SET_LEVEL, migration
    18): its filters can match several keys of one view (they pin none), no event stored before its view (in no
    key set) matches them, and retention never purged the site (a purge that deletes a kept view's events under a
    key leaves that key in the view's set: retention._props_losing_events)."""
    return (
        bool(query.prop_filters)
        and _pinned(query) is None
        and not getattr(query, "orphans", True)
        and not getattr(query, "purged", True)
    )


def _site(query: Query, params: dict[str, object], column: str = "hostname") -> str:
    """The site's rows: its key (a number compare, and the start of every sort key), and its name only when
    another stored name has the same key (a 64-bit hash: in practice never, but answers stay exact)."""
    params["hostname"] = query.hostname
    key = f"site_key = {SITE_KEY.format(column='{hostname:String}')}"
    return f"{key} AND {column} = {{hostname:String}}" if getattr(query, "shared", True) else key


def _where(query: Query, params: dict[str, object], lo: int | None = None, hi: int | None = None, tag: str = "") -> str:
    """The site, the period (the query's unless given, its bounds bound as lo{tag} and hi{tag}) and the filters,
    over `views`."""
    lo = query.start if lo is None else lo
    hi = query.end if hi is None else hi
    clauses = [_site(query, params)]
    if lo is not None:
        clauses.append(f"date_created >= {{lo{tag}:Int64}}")
        params[f"lo{tag}"] = lo
    if hi is not None:
        clauses.append(f"date_created <= {{hi{tag}:Int64}}")
        params[f"hi{tag}"] = hi
    clauses += where_sql(query.view_filters, params)
    if query.prop_filters:
        # A view with an event of its beacon id, at any time, matching every prop filter. The site's events
        # are found by their view's time in `prop_views` (schema migration 7): an event stored with the
        # site is stored under its view, the one view of that beacon id on the site, so the views of the
        # period are matched by the events whose view_created lies in it, and by no others. An event stored
        # before its view (site '') has no view time: those few are all searched.
        props = " AND ".join(where_sql(query.prop_filters, params, "p"))
        period = "".join(
            f" AND view_created {op} {{{name}{tag}:Int64}}"
            for op, name, bound in ((">=", "lo", lo), ("<=", "hi", hi))
            if bound is not None
        )
        clauses.append(
            f"bid IN (SELECT bid FROM prop_views WHERE {_site(query, params, 'site')}{period} AND {props}"
            f" UNION ALL SELECT bid FROM events WHERE site_key = {_ORPHAN_KEY} AND site = '' AND {props})"
        )
    return " AND ".join(clauses)


# Over `prop_views`, `prop_durations` and `views`, per row of the matched views' source (_prop_source): the view's
# time, flags, whether the row is a view's (not only its duration's), the version of the duration it holds (-1:
# none) and the duration. Typed alike in every branch of the UNION ALL.
_SOURCE_COLUMNS: Final = ("t", "u", "p", "seen", "ver", "d")
_DIMENSION_NAME: Final = re.compile(r"\b(" + "|".join(VIEW_DIMENSION_COLUMNS) + r")\b")


def _prop_source(
    query: Query, params: dict[str, object], lo: int | None, hi: int | None, tag: str, dimensions: tuple[str, ...]
) -> str:
    """A subquery of the views of [lo, hi] matching a property-filtered query, one row each, with the columns
    of `views` the stats SQL reads: bid, sign (1), date_created, is_unique_user, is_unique_page, duration_ms
    (its current value, NULL for none) and `dimensions`. No read of the period's `views`.

    A view matches when one of its `prop_views` rows (schema migration 7) of the period matches every prop
    filter and the view filters (that row carries the view's flags and dimensions, which never change). Its
    current duration is the one of the highest version among its `prop_durations` rows (migration 9) under the
    properties matching the filters: every unload writes one under each property of the view, so those rows
    are as current as any. An event stored before its view (site '') has neither: when one matches, its views
    are read from `views` through `view_keys`, their duration being their row of the highest version."""
    lo = query.start if lo is None else lo
    hi = query.end if hi is None else hi
    props = " AND ".join(where_sql(query.prop_filters, params, "p"))
    period = ""
    for op, name, bound in ((">=", "lo", lo), ("<=", "hi", hi)):
        if bound is not None:
            period += f" AND {{column}} {op} {{{{{name}{tag}:Int64}}}}"
            params[f"{name}{tag}"] = bound
    views = " AND ".join(["1", *where_sql(query.view_filters, params)])
    carried = "".join(f", {column} AS x_{column}" for column in dimensions)
    blank = "".join(f", '' AS x_{column}" for column in dimensions)
    site = _site(query, params, "site")
    orphans = f"SELECT bid FROM events WHERE site_key = {_ORPHAN_KEY} AND site = '' AND {props}"
    branches = (
        f"SELECT bid, view_created AS t, is_unique_user AS u, is_unique_page AS p, toUInt8(1) AS seen,"
        f" toInt64(-1) AS ver, toInt64(0) AS d{carried} FROM prop_views"
        f" WHERE {site}{period.format(column='view_created')} AND {props} AND {views}",
        f"SELECT bid, view_created AS t, toUInt8(0) AS u, toUInt8(0) AS p, toUInt8(0) AS seen,"
        f" toInt64(version) AS ver, duration_ms AS d{blank} FROM prop_durations"
        f" WHERE {site}{period.format(column='view_created')} AND {props}",
        f"SELECT bid, date_created AS t, is_unique_user AS u, is_unique_page AS p, toUInt8(1) AS seen,"
        f" if(isNull(duration_ms), toInt64(-1), toInt64(version)) AS ver, ifNull(duration_ms, toInt64(0)) AS d"
        f"{carried} FROM views WHERE {_site(query, params)}{period.format(column='date_created')} AND {views}"
        " AND (site_key, hostname, date_created, bid) IN (SELECT sipHash64(hostname), hostname, date_created, bid"
        f" FROM view_keys WHERE bid IN ({orphans}))",
    )
    kept = "".join(f", anyIf(x_{column}, seen = 1) AS {column}" for column in dimensions)
    return (
        "(SELECT bid, toInt8(1) AS sign, any(t) AS date_created, max(u) AS is_unique_user, max(p) AS is_unique_page,"
        f" if(max(ver) >= 0, argMax(d, ver), NULL) AS duration_ms{kept}"
        f" FROM ({' UNION ALL '.join(branches)}) GROUP BY bid HAVING max(seen) = 1)"
    )


def _prop_copies(
    query: Query, params: dict[str, object], lo: int | None, hi: int | None, tag: str, dimensions: tuple[str, ...]
) -> str:
    """A subquery of the views of [lo, hi] matching property filters that may match several keys of one view
    (no event stored before its view matches them), one row each with sign 1 and the columns _prop_source gives,
    from `views_by_prop` (schema migration 15): the rows under every key the filters match, the names alone
    (`named` 1) when no filter reads the value, read by ranges of the key where an equality or `in` bounds it.

    Each key holds a view's rows as `views` does, so under each key the rows of one version of the view sum to 1
    for its current version and to 0 for every other (an unload's pair, or nothing once merged): summed over the
    matching keys, a version's rows are positive for the current one only, which is kept, once."""
    named = 0 if any(flt.field == "prop_value" for flt in query.prop_filters) else 1
    views = replace(query, filters=query.view_filters)  # _where's view filters; the properties' here
    props = " AND ".join(where_sql(query.prop_filters, params, "p"))
    carried = "".join(f", {column} AS k_{column}" for column in dimensions)
    kept = "".join(f", any(k_{column}) AS {column}" for column in dimensions)
    return (
        "(SELECT k_bid AS bid, toInt8(1) AS sign, any(k_t) AS date_created, any(k_u) AS is_unique_user,"
        f" any(k_p) AS is_unique_page, any(k_d) AS duration_ms{kept} FROM ("
        "SELECT bid AS k_bid, version AS k_ver, sign AS k_sign, date_created AS k_t, is_unique_user AS k_u,"
        f" is_unique_page AS k_p, duration_ms AS k_d{carried} FROM views_by_prop"
        f" WHERE {_where(views, params, lo, hi, tag)} AND named = {named} AND {props}"
        ") GROUP BY k_bid, k_ver HAVING sum(k_sign) > 0)"
    )


def _rows(
    query: Query,
    params: dict[str, object],
    lo: int | None = None,
    hi: int | None = None,
    tag: str = "",
    labels: tuple[str, ...] = (),
) -> str:
    """`table WHERE condition`: the rows of a filtered query's views over [lo, hi] (the query's period unless
    given), with the columns of `views` the `labels` (SQL over `views`) read. A property filter pinning one
    property or name: its rows of `views_by_prop` (_by_prop), as `views`' own; another property filter: one
    row per matching view from the events' side (_prop_source, each with sign 1); another property filter: its
    views' rows under their key sets in `views_by_prop` (_by_keys), those with a key matching every property
    filter, as `views`' own (the filters' columns `name` and `value` are the lambda's, over the set's arrays);
    else `views` or a sorted copy."""
    if _by_prop(query) or _by_keys(query):
        views = replace(query, filters=query.view_filters)  # _where's view filters; the property's here
        props = " AND ".join(where_sql(query.prop_filters, params, "p"))
        rows = f"views_by_prop WHERE {_where(views, params, lo, hi, tag)}"
        if _by_keys(query):
            sets = f"arrayExists((name, value) -> {props}, key_names, key_values)"
            return f"{rows} AND named = {PROP_SET_LEVEL} AND {sets}"
        return f"{rows} AND named = {_pinned(query)} AND {props}"
    if query.prop_filters:
        dimensions = tuple(sorted({name for label in labels for name in _DIMENSION_NAME.findall(label)}))
        if getattr(query, "orphans", True):
            return f"{_prop_source(query, params, lo, hi, tag, dimensions)} WHERE 1"
        return f"{_prop_copies(query, params, lo, hi, tag, dimensions)} WHERE 1"
    return f"{_table(query)} WHERE {_where(query, params, lo, hi, tag)}"


def _table(query: Query) -> str:
    """The table a filtered read of `views` rows takes: the sorted copy whose key leads with the most of the
    fields filtered by equality (or `in`), the first in COPIES' order on a tie, whose conditions then bound
    narrow ranges of the site (schema.COPIES); else `views`."""
    bounded = {flt.field for flt in query.view_filters if flt.op in ("eq", "in")}
    best, most = "views", 0
    for table, (fields, _) in COPIES.items():
        found = len(bounded.intersection(fields))
        if found > most:
            best, most = table, found
    return best


def _interpolate(n: int, q: float, low: int, high: int) -> float:
    """DuckDB's `quantile_cont` from the order statistics at floor and ceil of (n - 1) q (aggregate.quantile_cont)."""
    position = (n - 1) * q
    lower = math.floor(position)
    if math.ceil(position) == lower:
        return float(low)
    return float(low) + float(high - low) * (position - lower)


def _group(counts: list[Any], middles: list[int] | None = None) -> Group:
    """A Group from COUNTS (and MIDDLES: then its median is fixed)."""
    group = Group()
    for field, value in zip(_COUNT_FIELDS, counts, strict=False):
        setattr(group, field, int(value))
    if middles is not None:
        median = _interpolate(group.measured, 0.5, middles[0], middles[1]) if group.measured else None
        group.fixed = {0.5: median}
    return group


def _metrics(group: Group) -> dict[str, Any]:
    return {
        "visitors": group.visitors,
        "pageviews": group.pageviews,
        "bounce_percentage": group.bounce_rate(),
        "duration": group.duration(),
    }


_EMPTY: Final = Group(fixed={0.5: None})

# ---- /summary ---------------------------------------------------------------------------------------


def site_metrics(client: Client, query: Query) -> dict[str, Any]:
    """visitors, pageviews, bounce_percentage and duration over the whole query."""
    query = _resolve(client, query)
    if not query.filters:
        return _metrics(_window_groups(client, query, [Family(Windows(query.start, query.end))]).get((0, 0), _EMPTY))
    params: dict[str, object] = {}
    rows = client.rows(f"SELECT {COUNTS}, {MIDDLES} FROM {_rows(query, params)}", params)
    return _metrics(_group(rows[0][:-1], rows[0][-1]) if rows and int(rows[0][2]) else _EMPTY)


# The counts a summary's metrics read (_metrics: the visitors, the views, the bounce rule; the median's n comes
# with its middles): of `hourly`'s nine, only these are read, each column costing its compressed blocks in every
# part that holds the range (the other five were half the statement's CPU at 30 and 90 days, 10 M views).
_SUMMARY_COUNTS: Final = ("visitors", "pageviews", "bounces", "timed")


def _window_groups(client: Client, query: Query, families: list[Family]) -> dict[tuple[int, int], Group]:
    """The Group (median fixed) of every window of each family, and of each `whole` family's windows together
    (window -1), for an unfiltered query: `hourly` and the duration tables for the whole hours, views for the rest."""
    params: dict[str, object] = {}
    site = _site(query, params)
    fields = list(_SUMMARY_COUNTS)
    branches = []
    for f, family in enumerate(families):
        split = plan(family.windows)
        if split.hours:
            index = family.windows.index_sql(f"hour * {HOUR_MS}", params, f"c{f}")
            branches.append(
                f"SELECT toUInt8({f}) AS fam, toInt64({index}) AS w, {', '.join(fields)} FROM hourly"
                f" WHERE {site} AND kind = {SITE_KIND} AND {split.spans_sql(params, f'c{f}')}"
            )
        raw = split.raw_sql(params, f"c{f}")
        if raw is not None:
            raw_counts = ", ".join(f"toInt64({ROW_COUNTS[name]}) AS {name}" for name in fields)
            raw_index = family.windows.index_sql("date_created", params, f"c{f}")
            branches.append(
                f"SELECT toUInt8({f}) AS fam, toInt64({raw_index}) AS w, {raw_counts}"
                f" FROM views WHERE {site} AND ({raw})"
            )
    groups: dict[tuple[int, int], Group] = {}
    if not branches:
        return groups
    sums = ", ".join(f"sum({field})" for field in fields)
    sql = f"SELECT fam, w, {sums} FROM ({' UNION ALL '.join(branches)}) GROUP BY fam, w HAVING sum(pageviews) > 0"
    middle_params: dict[str, object] = {}
    middle_site = _site(query, middle_params)
    # The counts and the middle values' two statements side by side (they read different tables): the
    # 90-day summary's wall time is the longer of the two, not their sum (docs/scale.md, "Measured").
    rows, found_middles = client.both(
        lambda: client.rows(sql, params),
        lambda: middles(client, middle_site, middle_params, SITE_KIND, "''", [""], families),
    )
    for f, w, *counts in rows:
        found = [groups.setdefault((int(f), int(w)), Group())]
        if families[int(f)].whole:
            found.append(groups.setdefault((int(f), -1), Group()))
        for group in found:
            for field, count in zip(fields, counts, strict=True):
                setattr(group, field, getattr(group, field) + int(count))
    for key, group in groups.items():
        n, low, high = found_middles.get((*key, ""), (0, 0, 0))
        group.fixed = {0.5: _interpolate(n, 0.5, low, high) if n else None}
    return groups


def _bucket_windows(query: Query, interval: str, start_us: int, end_us: int) -> Windows:
    return Windows(-(-start_us // 1000), end_us // 1000, interval, start_us)


def _bucket_sql(interval: str, params: dict[str, object], start_us: int) -> str:
    if interval == "month":
        params["month0"] = _month_index(start_us // 1000)
        moment = "toDateTime(intDiv(date_created, 1000), 'UTC')"
        return f"toYear({moment}) * 12 + toMonth({moment}) - 1 - {{month0:Int64}}"
    params["origin_us"] = start_us
    params["step_us"] = STEPS_US[interval]
    return "intDiv(date_created * 1000 - {origin_us:Int64}, {step_us:Int64})"


def _per_bucket(bucket: str, source: str) -> str:
    """Each bucket's counts (c0, c1, ...) and median state (st) over `source` (a table and its WHERE, or a
    subquery), `bucket` naming each row's bucket."""
    counts = ", ".join(f"{sql} AS c{i}" for i, sql in enumerate(_COUNT_SQL))
    state = _MIDDLE_LEVELS.format("State")
    return (
        f"SELECT {bucket} AS bucket, {counts}, {state}(duration_ms, toUInt64(sign)) AS st FROM {source} GROUP BY bucket"
    )


# Over _per_bucket's rows: every bucket's counts and finished medians, then the counts summed and the
# median states merged for the buckets taken together.
_MERGED_BUCKETS: Final = (
    f"groupArray((bucket, {', '.join(f'c{i}' for i in range(len(_COUNT_SQL)))}, finalizeAggregation(st))),"
    f" {', '.join(f'sum(c{i})' for i in range(len(_COUNT_SQL)))}, {_MIDDLE_LEVELS.format('Merge')}(st)"
)


def _buckets(client: Client, query: Query, interval: str, start_us: int) -> tuple[dict[int, Group], Group]:
    """The groups of each bucket of `interval` from `start_us`, and of the whole query, in one pass.

    The buckets keep their median's state, which the outer level merges into the whole period's
    (no WITH TOTALS: chDB garbles it for an empty answer).
    """
    params: dict[str, object] = {}
    bucket = _bucket_sql(interval, params, start_us)
    inner = _per_bucket(bucket, _rows(query, params))
    sql = f"SELECT {_MERGED_BUCKETS} FROM ({inner})"
    found, *totals = client.rows(sql, params)[0]
    groups = {int(row[0]): _group(row[1:-1], row[-1]) for row in found if int(row[3])}
    whole = _group(totals[:-1], totals[-1]) if groups else _EMPTY
    return groups, whole


def _purged_start(client: Client, query: Query) -> int | None:
    """The start of an unfiltered period, moved back to its hour's start when retention purged that hour
    and the period reaches its end: the hour's raw rows are gone, its pre-aggregates count it whole.

    /summary's previous period starts a microsecond after a midnight, so its first hour is cut and was
    read raw, which after a purge counted none of its views. The answer equals the raw one unless a view
    lay on that midnight itself (as on SQLite: store/sqlite/rollups.py _purged_edges)."""
    start, end = query.start, query.end
    if start is None or start % HOUR_MS == 0:
        return start
    hour_end = start // HOUR_MS * HOUR_MS + HOUR_MS
    if end is not None and end < hour_end - 1:
        return start
    floor = raw_floor(client, query.hostname)
    return hour_end - HOUR_MS if floor is not None and hour_end <= floor else start


def summary(client: Client, query: Query, previous: bool, interval: str | None) -> dict[str, Any]:
    """/summary: the period's metrics, the previous window's (with `previous`), the buckets (spec §4.2)."""
    query = _resolve(client, query)
    result: dict[str, Any] = {}
    before = None
    if previous and query.start_us is not None and query.end_us is not None:
        before = Query(query.hostname, *previous_period(query.start_us, query.end_us), query.filters)
    if not query.filters:
        # One read of each table for the period (or its buckets) and the previous period together.
        if interval is not None:
            assert query.start_us is not None and query.end_us is not None
            families = [Family(_bucket_windows(query, interval, query.start_us, query.end_us), whole=True)]
        else:
            families = [Family(Windows(query.start, query.end))]
        if before is not None:
            families.append(Family(Windows(_purged_start(client, before), before.end)))
        groups = _window_groups(client, query, families)
        result["current"] = _metrics(groups.get((0, -1 if interval is not None else 0), _EMPTY))
        if before is not None:
            result["previous"] = _metrics(groups.get((1, 0), _EMPTY))
        if interval is not None:
            assert query.start_us is not None and query.end_us is not None
            result["interval"] = _bucket_rows(
                interval, query.start_us, query.end_us, {w: g for (f, w), g in groups.items() if f == 0 and w >= 0}
            )
        return result
    if before is None and interval is None:
        result["current"] = site_metrics(client, query)
        return result
    buckets, whole, previous_group = _filtered_periods(client, query, interval, before)
    result["current"] = _metrics(whole)
    if before is not None:
        result["previous"] = _metrics(previous_group)
    if interval is not None:
        assert query.start_us is not None and query.end_us is not None
        result["interval"] = _bucket_rows(interval, query.start_us, query.end_us, buckets)
    return result


def _filtered_periods(
    client: Client, query: Query, interval: str | None, before: Query | None
) -> tuple[dict[int, Group], Group, Group]:
    """A filtered summary in one read: the groups of each bucket of `interval` (none: one bucket, 0), of the whole
    period, and of the previous period `before`, from one range of rows (the previous period and the period).

    Each row goes to its bucket, or to bucket -1 before the period's start. The previous period ends at the
    instant the period starts (stats.previous_period): when that instant is a whole millisecond, the rows of it
    count in both, so they are read once more, as bucket -1 (a range of the sort key, a few rows).
    """
    params: dict[str, object] = {}
    assert query.start is not None
    params["cur_lo"] = query.start
    bucket = "toInt64(0)"
    if interval is not None:
        assert query.start_us is not None
        bucket = _bucket_sql(interval, params, query.start_us)
    lo = query.start if before is None else before.start
    columns = "sign, is_unique_user, is_unique_page, duration_ms"
    current = _rows(query, params, lo)
    reads = [f"SELECT if(date_created >= {{cur_lo:Int64}}, {bucket}, -1) AS b, {columns} FROM {current}"]
    if before is not None and before.end is not None and before.end >= query.start:
        shared = _rows(query, params, before.end, before.end, "_shared")  # an instant in both periods
        reads.append(f"SELECT toInt64(-1) AS b, {columns} FROM {shared}")
    inner = _per_bucket("b", f"({' UNION ALL '.join(reads)})")
    sql = f"SELECT bucket >= 0 AS current, {_MERGED_BUCKETS} FROM ({inner}) GROUP BY current"
    groups: dict[int, Group] = {}
    whole, previous_group = _EMPTY, _EMPTY
    for current, found, *totals in client.rows(sql, params):
        if not int(totals[2]):
            continue  # no live view (every row cancelled by its unload pair)
        if int(current):
            groups = {int(row[0]): _group(row[1:-1], row[-1]) for row in found if int(row[3])}
            whole = _group(totals[:-1], totals[-1])
        else:
            previous_group = _group(totals[:-1], totals[-1])
    return groups, whole, previous_group


def _bucket_rows(interval: str, start_us: int, end_us: int, groups: dict[int, Group]) -> list[dict[str, Any]]:
    return [
        {"date": _bucket_date(interval, start_us, i), **_metrics(groups.get(i, _EMPTY))}
        for i in range(bucket_count(interval, start_us, end_us))
    ]


def interval_metrics(client: Client, query: Query, interval: str, start_us: int, end_us: int) -> list[dict[str, Any]]:
    """One entry per bucket from start to end, empty buckets as zeros (spec §4.2)."""
    query = _resolve(client, query)
    if not query.filters:
        windows = _bucket_windows(query, interval, start_us, end_us)
        groups = _window_groups(client, query, [Family(windows)])
        return _bucket_rows(interval, start_us, end_us, {w: g for (_, w), g in groups.items()})
    groups_, _ = _buckets(client, query, interval, start_us)
    return _bucket_rows(interval, start_us, end_us, groups_)


# ---- list endpoints ---------------------------------------------------------------------------------


def _filter_keys(query: Query) -> tuple[int, list[str]] | None:
    """The field code and keys of `filter_hours` (schema migration 16) that answer a query filtered by one browser
    or referrer filter `eq` or `in`: the views it matches are those under its keys, each once. A referrer filter
    `in` takes one value only: a view may lie under two referrer keys (its host and its group). None otherwise."""
    if query.prop_filters or len(query.view_filters) != 1:
        return None
    flt = query.view_filters[0]
    if flt.field not in FILTER_FIELDS or flt.op not in ("eq", "in"):
        return None
    keys = sorted(set(flt.values()[:MAX_IN_VALUES]))
    if flt.field == "referrer" and len(keys) > 1:
        return None
    return FILTER_FIELDS[flt.field], keys


def _name_key(query: Query) -> str | None:
    """The key of `prop_name_hours` (schema migration 17) that answers a query filtered by one property name alone
    (prop_name `eq`, or `in` one value, and no other filter), as `views_by_prop` lower-cases it, when no event stored
    before its view (site '', in no view's rows there) matches it: the views with a property of that name are those
    under it, each once. None otherwise."""
    if query.view_filters or len(query.prop_filters) != 1 or getattr(query, "orphans", True):
        return None
    flt = query.prop_filters[0]
    keys = set(flt.values()[:MAX_IN_VALUES])
    if flt.field != "prop_name" or flt.op not in ("eq", "in") or len(keys) != 1:
        return None
    return keys.pop()


def _hourly_groups(client: Client, query: Query, kind: str, fields: tuple[str, ...]) -> dict[str, Group] | None:
    """Counts (Group fields `hourly` has) per label: `hourly` for the whole hours, `views` for the edges; under one
    browser or referrer filter (_filter_keys), the counts of a compact list (FILTER_COUNTS) from `filter_hours` and
    the edges' rows that the filter matches.

    None for a query with other filters or counts, or without a whole hour: then only the raw rows can answer;
    and for a filtered period reaching before the site's retention floor (retention.py): `filter_hours` still
    counts the views it deleted, where the raw rows, which a filtered query reads, no longer hold them.
    """
    split = plan(Windows(query.start, query.end))
    compact = query.filters and set(fields) <= set(FILTER_COUNTS)
    keyed = _filter_keys(query) if compact else None
    name = _name_key(query) if compact else None
    if (query.filters and keyed is None and name is None) or not split.hours:
        return None
    if keyed is not None or name is not None:
        floor = raw_floor(client, query.hostname)
        # A purge also deletes the rows of `views_by_prop` of a kept view under a name whose events it deleted
        # (retention._props_losing_events), which `prop_name_hours` still counts.
        if floor is not None and (name is not None or query.start is None or query.start < floor):
            return None
    params: dict[str, object] = {"kind": KIND_CODES[kind]}
    site = _site(query, params)
    rolled = [site, "kind = {kind:UInt8}", split.spans_sql(params, "h")]
    table, edge_table, edge_filters = "hourly", "views", ""
    if keyed is not None:
        params["ffield"] = keyed[0]
        rolled.insert(1, f"field = {{ffield:UInt8}} AND fkey IN ({in_list('fkey', keyed[1], params)})")
        table, edge_table = "filter_hours", _table(query)
        edge_filters = " AND " + " AND ".join(where_sql(query.view_filters, params))
    if name is not None:
        params["pname"] = name
        rolled.insert(1, "name = {pname:String}")
        table, edge_table = "prop_name_hours", "views_by_prop"
        edge_filters = " AND named = 1 AND lower(name) = {pname:String}"
    raw_sql = split.raw_sql(params, "h")
    edges = [] if raw_sql is None else [raw_sql]  # the parts of the period outside the whole hours, read raw
    wanted = ("pageviews", *(field for field in fields if field != "pageviews"))  # pageviews: the label exists
    sums = ", ".join(f"sum({field})" for field in wanted)
    sql = f"SELECT value, {sums} FROM {table} WHERE {' AND '.join(rolled)} GROUP BY value"
    if edges:
        raw = ", ".join(_COUNT_SQL[_COUNT_FIELDS.index(field)] for field in wanted)
        sql += (
            f" UNION ALL SELECT {LABELS[kind]} AS label, {raw} FROM {edge_table}"
            f" WHERE {site} AND (({') OR ('.join(edges)})){edge_filters} GROUP BY label"
        )
    totals: dict[str, list[int]] = {}
    for label, *counts in client.rows(sql, params):
        found = totals.setdefault(str(label), [0] * len(wanted))
        for i, count in enumerate(counts):
            found[i] += int(count)
    groups = {}
    for label, counts in totals.items():
        if counts[0] > 0:
            group = groups[label] = Group()
            for field, count in zip(wanted, counts, strict=True):
                setattr(group, field, count)
    return groups


def _prop_groups(client: Client, query: Query, label: str) -> dict[str, Group] | None:
    """The visitor counts per label of a property-filtered query, from `prop_views` alone (schema migration 7):
    the period's event rows matching every prop filter and view filter, one per view (its beacon id: one view
    per beacon id and site), each carrying its view's flags and label. None when an event stored before its
    view (site '') matches the prop filters: only `views` can tell which of the period's views it belongs to.

    Exact as the read of `views` is: every event row under a view copies that view's flags and dimensions,
    which an unload never changes, and retention deletes a row with its view or its event (retention._OLDEST).
    """
    params: dict[str, object] = {}
    clauses = [_site(query, params, "site")]
    for op, name, bound in ((">=", "lo", query.start), ("<=", "hi", query.end)):
        if bound is not None:
            clauses.append(f"view_created {op} {{{name}:Int64}}")
            params[name] = bound
    props = " AND ".join(where_sql(query.prop_filters, params, "p"))
    clauses += [props, *where_sql(query.view_filters, params)]
    per_view = (
        f"SELECT any({label}) AS label, any(is_unique_user) AS u, any(is_unique_page) AS p FROM prop_views"
        f" WHERE {' AND '.join(clauses)} GROUP BY bid"
    )
    # The orphans' count rides along as a row of its own (flag 1), so an empty list still reports it.
    sql = (
        f"SELECT toUInt8(0) AS orphan, label, toUInt64(sum(u)), toUInt64(sum(p)) FROM ({per_view}) GROUP BY label"
        f" UNION ALL SELECT toUInt8(1), '', toUInt64(count()), toUInt64(0) FROM events"
        f" WHERE site_key = {_ORPHAN_KEY} AND site = '' AND {props}"
    )
    groups = {}
    for orphan, found, visitors, page_visitors in client.rows(sql, params):
        if int(orphan):
            if int(visitors):
                return None
            continue
        groups[str(found)] = Group(visitors=int(visitors), page_visitors=int(page_visitors))
    return groups


def _groups(client: Client, query: Query, label: str, full: bool) -> dict[str, Group]:
    """Aggregates per label: every count and the median with `full`, else the visitor counts only."""
    if query.prop_filters and not full and not _by_prop(query) and not _by_keys(query):
        found = _prop_groups(client, query, label)
        if found is not None:
            return found
    params: dict[str, object] = {}
    columns = f"{COUNTS}, {MIDDLES}" if full else _VISITORS
    rows = _rows(query, params, labels=(label,))
    sql = f"SELECT {label} AS label, {columns} FROM {rows} GROUP BY label HAVING sum(sign) > 0"
    groups = {}
    for row in client.rows(sql, params):
        if full:
            groups[str(row[0])] = _group(row[1:-1], row[-1])
        else:
            groups[str(row[0])] = Group(visitors=int(row[1]), page_visitors=int(row[2]))
    return groups


def list_stats(
    client: Client, query: Query, endpoint: str, summary: bool, page: Page, variant: bool = False
) -> list[dict[str, Any]]:
    """pages, referrers, sources, ... languages. `variant`: grouped=false / locale=true."""
    query = _resolve(client, query)
    kind, key = LISTS[endpoint]
    if variant:
        kind = {"referrer": "referrer_host", "language": "language_dialect"}.get(kind, kind)
    found = _hourly_groups(client, query, kind, ("visitors", "page_visitors")) if summary else None
    groups = found if found is not None else _groups(client, query, LABELS[kind], not summary)
    pages = endpoint == "pages"
    total = Group()
    for group in groups.values():
        total.add(group)
    if pages:
        items = [(label, g) for label, g in groups.items() if g.page_visitors > 0]
        if summary:
            items.sort(key=lambda item: (-item[1].page_visitors, item[0]))
        else:
            items.sort(key=lambda item: (-item[1].page_visitors, -item[1].pageviews, item[0]))
    else:
        items = sorted(groups.items(), key=lambda item: (-item[1].visitors, item[0]))
    rows = []
    for label, group in page.cut(items):
        visitors = group.page_visitors if pages else group.visitors
        row: dict[str, Any] = {
            key: label,
            "visitors": visitors,
            "visitors_percentage": fraction(visitors, total.page_visitors if pages else total.visitors),
        }
        if not summary:
            if pages:
                row["pageviews"] = group.pageviews
                row["pageviews_percentage"] = fraction(group.pageviews, total.pageviews)
            row["bounce_percentage"] = group.bounce_rate()
            row["duration"] = group.duration()
        rows.append(row)
    return rows


# ---- /time ------------------------------------------------------------------------------------------


def _medians(client: Client, query: Query, groups: dict[str, Group], paths: list[str]) -> None:
    """Fix the medians of some pages' groups, for an unfiltered query (the duration tables)."""
    if not paths:
        return
    params: dict[str, object] = {}
    site = _site(query, params)
    family = Family(Windows(query.start, query.end))
    found = middles(client, site, params, KIND_CODES["path"], LABELS["path"], paths, [family])
    for path in paths:
        n, low, high = found.get((0, 0, path), (0, 0, 0))
        groups[path].fixed = {0.5: _interpolate(n, 0.5, low, high) if n else None}


# The live durations of each page: every (page, duration) with a positive net sign, repeated that many
# times, then sorted per page; the four order statistics of the quartiles are read at their indexes.
_QUARTILES_SQL: Final = """
SELECT label, n, a[intDiv(n - 1, 4) + 1], a[intDiv(n + 2, 4) + 1], a[intDiv(n - 1, 2) + 1], a[intDiv(n, 2) + 1],
    a[intDiv(3 * n - 3, 4) + 1], a[intDiv(3 * n, 4) + 1]
FROM (
    SELECT label, count() AS n, arraySort(groupArray(d)) AS a FROM (
        SELECT label, d FROM (
            SELECT pathname AS label, assumeNotNull(duration_ms) AS d, sum(sign) AS net FROM {rows}
            AND isNotNull(duration_ms) AND pathname IN ({paths})
            GROUP BY label, d HAVING net > 0
        ) ARRAY JOIN range(toUInt64(net)) AS copy
    ) GROUP BY label
)"""


def _quartiles(client: Client, query: Query, groups: dict[str, Group], paths: list[str]) -> None:
    """Fix the quartiles and medians of some pages' groups."""
    if not paths:
        return
    params: dict[str, object] = {}
    rows = _rows(query, params, labels=("pathname",))
    sql = _QUARTILES_SQL.format(rows=rows, paths=in_list("path", paths, params))
    for label, n, *values in client.rows(sql, params):
        pairs = dict(zip(QUARTILES, zip(values[::2], values[1::2], strict=True), strict=True))
        groups[str(label)].fixed = {q: _interpolate(int(n), q, int(lo), int(hi)) for q, (lo, hi) in pairs.items()}


def _raw_counts(client: Client, query: Query, fields: tuple[str, ...]) -> dict[str, Group]:
    """Some counts per page, from the raw rows."""
    params: dict[str, object] = {}
    columns = ", ".join(_COUNT_SQL[_COUNT_FIELDS.index(field)] for field in fields)
    rows = _rows(query, params, labels=("pathname",))
    sql = f"SELECT pathname, {columns} FROM {rows} GROUP BY pathname HAVING sum(sign) > 0"
    groups = {}
    for path, *counts in client.rows(sql, params):
        group = groups[str(path)] = Group()
        for field, count in zip(fields, counts, strict=True):
            setattr(group, field, int(count))
    return groups


def time_stats(client: Client, query: Query, summary: bool, page: Page) -> list[dict[str, Any]]:
    """/time: median, quartiles and share of total time per page (spec §4.3)."""
    query = _resolve(client, query)
    # Only what the keep rule and the shares read: page visitors, and the durations' sum and counts.
    fields = ("page_visitors", "duration_sum", "measured", "zeros", "ones")
    found = _hourly_groups(client, query, "path", fields)
    medians_known = found is None and summary  # a raw read: one pass gives every page's median too
    if found is not None:
        groups = found
    elif summary:
        groups = _groups(client, query, LABELS["path"], True)
    else:
        groups = _raw_counts(client, query, fields)
    kept = [(path, g) for path, g in groups.items() if g.page_visitors >= 3 and g.median_positive()]
    if not summary:
        _quartiles(client, query, groups, [path for path, _ in kept])
        kept = [(path, g) for path, g in kept if g.duration(0.25) > 0]
    total = sum(g.duration_sum for _, g in kept)
    shares = {path: fraction(g.duration_sum, total) for path, g in kept}
    if summary:
        # Sorted by share first; medians are read only for the rows up to the page's end and their ties.
        kept.sort(key=lambda item: -shares[item[0]])
        wanted = len(kept) if page.limit is None else min(len(kept), page.offset + page.limit)
        kept = [item for item in kept if wanted and shares[item[0]] >= shares[kept[wanted - 1][0]]]
        if not medians_known:
            _medians(client, query, groups, [path for path, _ in kept])
        kept.sort(key=lambda item: (-shares[item[0]], -item[1].duration(), -item[1].page_visitors, item[0]))
    else:
        kept.sort(key=lambda item: (-item[1].page_visitors, -item[1].duration(), item[0]))
    rows = []
    for path, group in page.cut(kept):
        if summary:
            rows.append({"path": path, "duration": group.duration(), "duration_percentage": shares[path]})
        else:
            rows.append(
                {
                    "path": path,
                    "duration": group.duration(),
                    "duration_upper_quartile": group.duration(0.75),
                    "duration_lower_quartile": group.duration(0.25),
                    "duration_percentage": shares[path],
                    "visitors": group.page_visitors,
                }
            )
    return rows


# ---- /properties ------------------------------------------------------------------------------------


def property_counts(client: Client, query: Query) -> dict[tuple[str, str], int]:
    """Events per (name, value) of the site's views, the period applied to the events' own time.

    An event carries its view's site and dimensions (schema.py), so the view filters read its own
    columns; an event stored before its view (site '') is matched to the site's views by beacon id.
    """
    query = _resolve(client, query)
    params: dict[str, object] = {}
    site = _site(query, params, "site")
    period = []
    if query.start is not None:
        period.append("date_created >= {lo:Int64}")
        params["lo"] = query.start
    if query.end is not None:
        period.append("date_created <= {hi:Int64}")
        params["hi"] = query.end
    when = " AND ".join(period) or "1"
    views = " AND ".join(where_sql(query.view_filters, params)) or "1"
    props = " AND ".join(where_sql(query.prop_filters, params, "p")) or "1"
    parts = []
    split = plan(Windows(query.start, query.end))
    if not query.view_filters and split.hours:
        # The site's own events: `event_hours` for the whole hours, which keeps each (name, value), so property
        # filters test its rows as they test the events (as the SQLite store's rollups: sqlite/stats.py).
        hours = split.hours_sql(params, "e")
        parts.append(f"SELECT name, value, events FROM event_hours WHERE {site} AND {hours} AND {props}")
        raw = split.raw_sql(params, "e")
        if raw is not None:
            parts.append(f"SELECT name, value, toInt64(1) AS events FROM events WHERE {site} AND ({raw}) AND {props}")
    else:
        parts.append(
            f"SELECT name, value, toInt64(1) AS events FROM events WHERE {site} AND {when} AND {props} AND {views}"
        )
    # Events stored before their view (site ''), matched to the site's views by beacon id.
    parts.append(
        f"""SELECT name, value, toInt64(1) AS events FROM events
        WHERE site_key = {_ORPHAN_KEY} AND site = '' AND {when} AND {props} AND bid != ''
        AND bid IN (
            SELECT bid FROM views WHERE {_site(query, params)} AND {views}
            AND (site_key, hostname, date_created, bid) IN (
                SELECT sipHash64(hostname), hostname, date_created, bid FROM view_keys
                WHERE hostname = {{hostname:String}}
                AND bid IN (SELECT bid FROM events WHERE site_key = {_ORPHAN_KEY} AND site = ''
                    AND bid != '' AND {when})))"""
    )
    sql = f"SELECT name, value, sum(events) AS n FROM ({' UNION ALL '.join(parts)}) GROUP BY name, value HAVING n > 0"
    return {(str(name), str(value)): int(n) for name, value, n in client.rows(sql, params)}


def properties(client: Client, query: Query, page: Page) -> list[dict[str, Any]]:
    """Event counts per property name, or per value when a non-empty prop_name filter is given."""
    # An empty prop_name selects no property: it lists names, as if absent (spec §4.4).
    kept = tuple(f for f in query.filters if not (f.field == "prop_name" and f.value == ""))
    by_value = any(f.field == "prop_name" for f in kept)
    counts = property_counts(client, Query(query.hostname, query.start_us, query.end_us, kept))
    total = sum(counts.values())
    if by_value:
        items = sorted(counts.items(), key=lambda item: (-item[1], item[0][1], item[0][0]))
        return [
            {"value": value, "events": n, "events_percentage": fraction(n, total)} for (_, value), n in page.cut(items)
        ]
    names: dict[str, int] = {}
    for (name, _), n in counts.items():
        names[name] = names.get(name, 0) + n
    ranked = sorted(names.items(), key=lambda item: (-item[1], item[0]))
    return [{"name": name, "events": n, "events_percentage": fraction(n, total)} for name, n in page.cut(ranked)]
