"""Exact middle durations from `duration_hours` and `durations`: bucket counts find them, one bucket's values give them.

The n durations of a window (a period, a previous period, an interval's bucket;
of the whole site or of one page) have their two middle values at the 1-based
ranks (n - 1) // 2 + 1 and n // 2 + 1. Two reads find them, neither sorting
the window's durations:

1. The counts per duration bucket (`duration_hours`: per hour, 16 buckets per
   doubling) over the window's whole hours, plus the raw rows of its partial
   hours, summed per bucket. Walking the buckets in order, Python finds the
   bucket of each rank and the rank inside it.
2. The exact durations of only those buckets and hours (`durations`, sorted
   by bucket, then hour, then duration), plus the raw rows, with their
   counts: ClickHouse sorts each bucket's few distinct values and picks the
   ranks by a running sum of the counts.

Counts are sums of `sign` (schema.py), so an unload pair adds nothing at any
stage: the answers are exact before and after merges.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from medama_core.store.clickhouse.client import Client
from medama_core.store.clickhouse.schema import BUCKET, HOUR_MS
from medama_core.store.clickhouse.sql import in_list
from medama_core.store.clickhouse.windows import Windows, plan, whole_hours

__all__ = ["Family", "middles"]

Key = tuple[int, int, str]  # (family, window, value)
_DURATION = "assumeNotNull(duration_ms)"


@dataclass(frozen=True)
class Family:
    """Windows whose middle values are wanted; `whole`: also those of all of them together (window -1)."""

    windows: Windows
    whole: bool = False


@dataclass(frozen=True)
class _Source:
    """Where the durations of one family come from: the site, one kind, some values."""

    site: str  # the site's condition, over `hostname` (its values in the params)
    kind: int
    label: str  # the value's SQL over `views`
    values: Sequence[str]


def middles(
    client: Client,
    site: str,
    params: dict[str, object],
    kind: int,
    label: str,
    values: Sequence[str],
    families: Sequence[Family],
) -> dict[Key, tuple[int, int, int]]:
    """(family index, window index, value) -> (n, lower middle, upper middle), for every window with durations."""
    source = _Source(site, kind, label, values)
    counts = _bucket_counts(client, source, dict(params), families)
    wanted: dict[Key, tuple[int, tuple[int, int], tuple[int, int]]] = {}  # n, (bucket, rank) of each middle
    for key, by_bucket in counts.items():
        n = sum(by_bucket.values())
        if n > 0:
            low, high = _locate(by_bucket, [(n - 1) // 2 + 1, n // 2 + 1])
            wanted[key] = (n, low, high)
    values_at = _select(client, source, dict(params), families, wanted)
    return {
        (f, w, v): (n, values_at[(f, w, v, low[0], low[1])], values_at[(f, w, v, high[0], high[1])])
        for (f, w, v), (n, low, high) in wanted.items()
    }


def _locate(by_bucket: dict[int, int], ranks: list[int]) -> list[tuple[int, int]]:
    """For each 1-based rank, its bucket and its 1-based rank among that bucket's durations."""
    found = []
    before = 0
    pending = sorted(ranks)
    for bucket in sorted(by_bucket):
        count = by_bucket[bucket]
        while pending and pending[0] <= before + count:
            found.append((bucket, pending.pop(0) - before))
        before += count
    return found


def _values_sql(source: _Source, params: dict[str, object], column: str) -> str:
    return f"{column} IN ({in_list('mv', list(source.values), params)})"


def _bucket_counts(
    client: Client, source: _Source, params: dict[str, object], families: Sequence[Family]
) -> dict[Key, dict[int, int]]:
    """Durations per bucket of every window (and of each `whole` family's union of windows)."""
    branches = []
    params["mkind"] = source.kind
    for f, family in enumerate(families):
        split = plan(family.windows)
        prefix = f"m{f}"
        if split.hours:
            index = family.windows.index_sql(f"hour * {HOUR_MS}", params, prefix)
            branches.append(
                f"SELECT toUInt8({f}) AS fam, toInt64({index}) AS w, value AS v, bucket AS b, n FROM duration_hours"
                f" WHERE {source.site} AND kind = {{mkind:UInt8}} AND {_values_sql(source, params, 'value')}"
                f" AND {split.hours_sql(params, prefix)}"
            )
        raw = split.raw_sql(params, prefix)
        if raw is not None:
            raw_index = family.windows.index_sql("date_created", params, prefix)
            branches.append(
                f"SELECT toUInt8({f}) AS fam, toInt64({raw_index}) AS w, {source.label} AS v,"
                f" {BUCKET.format(column=_DURATION)} AS b, toInt64(sign) AS n"
                f" FROM views WHERE {source.site} AND ({raw}) AND isNotNull(duration_ms)"
                f" AND {_values_sql(source, params, source.label)}"
            )
    counts: dict[Key, dict[int, int]] = {}
    if not branches:
        return counts
    sql = (
        "SELECT fam, w, v, groupArray(b), groupArray(n) FROM (SELECT fam, w, v, b, sum(n) AS n FROM ("
        + " UNION ALL ".join(branches)
        + ") GROUP BY fam, w, v, b HAVING n != 0) GROUP BY fam, w, v"
    )
    for f, w, value, buckets, ns in client.rows(sql, params):
        key = (int(f), int(w), str(value))
        counts[key] = {int(b): int(n) for b, n in zip(buckets, ns, strict=True)}
        if families[int(f)].whole:
            whole = counts.setdefault((int(f), -1, str(value)), {})
            for b, n in zip(buckets, ns, strict=True):
                whole[int(b)] = whole.get(int(b), 0) + int(n)
    return counts


def _select(
    client: Client,
    source: _Source,
    params: dict[str, object],
    families: Sequence[Family],
    wanted: dict[Key, tuple[int, tuple[int, int], tuple[int, int]]],
) -> dict[tuple[int, int, str, int, int], int]:
    """The durations at the wanted (bucket, rank) of each window: (family, window, value, bucket, rank) -> value."""
    # Family f's union of windows is read as a family of its own (one window, index 0), after the others.
    readers = [family.windows for family in families]
    whole_of = {f: len(readers) + i for i, f in enumerate(f for f, family in enumerate(families) if family.whole)}
    readers += [Windows(families[f].windows.lo, families[f].windows.hi) for f in whole_of]
    ranks: dict[tuple[int, int, str, int], set[int]] = {}
    for (f, w, value), (_, low, high) in wanted.items():
        reader, window = (whole_of[f], 0) if w == -1 else (f, w)
        for bucket, rank in (low, high):
            ranks.setdefault((reader, window, value, bucket), set()).add(rank)
    if not ranks:
        return {}
    value_index = {value: i for i, value in enumerate(source.values)}
    branches = []
    params["mkind"] = source.kind
    for r, windows in enumerate(readers):
        split = plan(windows)
        prefix = f"m{r}"
        targets = sorted({(w, b) for (reader, w, _, b) in ranks if reader == r})
        if not targets:
            continue
        buckets = sorted({b for _, b in targets})
        if split.hours:
            index = windows.index_sql(f"hour * {HOUR_MS}", params, prefix)
            ranges = []
            for i, (w, b) in enumerate(targets):
                first, last = whole_hours(*windows.bounds(w))
                clauses = [f"bucket = {{{prefix}_b{i}:UInt64}}"]
                params[f"{prefix}_b{i}"] = b
                if first is not None:
                    clauses.append(f"hour >= {{{prefix}_h{i}:Int64}}")
                    params[f"{prefix}_h{i}"] = first
                if last is not None:
                    clauses.append(f"hour <= {{{prefix}_k{i}:Int64}}")
                    params[f"{prefix}_k{i}"] = last
                ranges.append(" AND ".join(clauses))
            branches.append(
                f"SELECT toUInt8({r}) AS fam, toInt64({index}) AS w, value AS v, bucket AS b, duration AS d, n"
                f" FROM durations WHERE {source.site} AND kind = {{mkind:UInt8}}"
                f" AND {_values_sql(source, params, 'value')} AND {split.hours_sql(params, prefix)}"
                f" AND (({') OR ('.join(ranges)}))"
            )
        raw = split.raw_sql(params, prefix)
        if raw is not None:
            raw_index = windows.index_sql("date_created", params, prefix)
            of_row = BUCKET.format(column=_DURATION)
            branches.append(
                f"SELECT toUInt8({r}) AS fam, toInt64({raw_index}) AS w, {source.label} AS v, {of_row} AS b,"
                f" {_DURATION} AS d, toInt64(sign) AS n"
                f" FROM views WHERE {source.site} AND ({raw}) AND isNotNull(duration_ms)"
                f" AND {_values_sql(source, params, source.label)}"
                f" AND {of_row} IN ({', '.join(str(b) for b in buckets)})"
            )
    keys, low_ranks, high_ranks = [], [], []
    for (reader, w, value, b), found in ranks.items():
        keys.append(f"'{reader}:{w}:{value_index[value]}:{b}'")
        low_ranks.append(str(min(found)))
        high_ranks.append(str(max(found)))
    names = ", ".join(f"{{mv{i}:String}}" for i in range(len(source.values)))
    key = f"concat(toString(fam), ':', toString(w), ':', toString(indexOf([{names}], v) - 1), ':', toString(b))"
    # The value at a rank: the first distinct duration whose running count reaches it.
    cumulative = "arrayCumSum(arrayMap(p -> tupleElement(p, 2), pairs))"
    pick = "tupleElement(arrayElement(pairs, arrayFirstIndex(c -> c >= {rank}, " + cumulative + ")), 1)"
    sql = (
        f"SELECT fam, w, v, b, {pick.format(rank='low')}, {pick.format(rank='high')}, low, high FROM ("
        f" SELECT fam, w, v, b, arraySort(groupArray((d, n))) AS pairs,"
        f" transform(any(k), [{', '.join(keys)}], [{', '.join(low_ranks)}], 0) AS low,"
        f" transform(any(k), [{', '.join(keys)}], [{', '.join(high_ranks)}], 0) AS high FROM ("
        f" SELECT fam, w, v, b, d, sum(n) AS n, {key} AS k FROM ({' UNION ALL '.join(branches)})"
        f" GROUP BY fam, w, v, b, d HAVING n != 0 AND k IN ({', '.join(keys)})"
        ") GROUP BY fam, w, v, b)"
    )
    found_values: dict[tuple[int, int, str, int, int], int] = {}
    back = {r: f for f, r in whole_of.items()}
    for reader, w, value, b, low_value, high_value, low, high in client.rows(sql, params):
        f, window = (back[int(reader)], -1) if int(reader) in back else (int(reader), int(w))
        found_values[(f, window, str(value), int(b), int(low))] = int(low_value)
        found_values[(f, window, str(value), int(b), int(high))] = int(high_value)
    return found_values
