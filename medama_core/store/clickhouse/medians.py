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
from typing import Final

from medama_core.store.clickhouse.client import Client
from medama_core.store.clickhouse.schema import BUCKET, HOUR_MS, SITE_KIND
from medama_core.store.clickhouse.sql import in_list
from medama_core.store.clickhouse.windows import Windows, plan

__all__ = ["MAX_VALUES", "Family", "middles"]

Key = tuple[int, int, str]  # (family, window, value)
# Values (pages) whose middles one pair of reads finds: each is an element of an IN list, and its index
# takes 16 bits of a packed key (_pack). /time asks for the pages shown, a handful.
MAX_VALUES: Final = 1000
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
    if len(values) > MAX_VALUES:
        found = {}
        for start in range(0, len(values), MAX_VALUES):
            found.update(middles(client, site, params, kind, label, values[start : start + MAX_VALUES], families))
        return found
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
        if not pending:
            break
        before += count
    return found


# A (reader, window, value index, bucket) packed in one UInt64, so rows are matched and grouped by a number:
# 8 bits of reader, 24 of window + 1, 16 of value index, 16 of bucket.


def _pack(reader: int, window: int, value: int, bucket: int) -> int:
    return (((reader << 24 | (window + 1)) << 16 | value) << 16) | bucket


def _unpack(key: int) -> tuple[int, int, int, int]:
    return key >> 56, (key >> 32 & 0xFFFFFF) - 1, key >> 16 & 0xFFFF, key & 0xFFFF


def _pack_sql(reader: int, window: str, value: str, bucket: str) -> str:
    return (
        f"bitOr(bitShiftLeft(toUInt64({reader}), 56), bitOr(bitShiftLeft(toUInt64({window} + 1), 32),"
        f" bitOr(bitShiftLeft(toUInt64({value}), 16), toUInt64({bucket}))))"
    )


def _values_sql(source: _Source, params: dict[str, object], column: str) -> str:
    return f"{column} IN ({in_list('mv', list(source.values), params)})"


def _value_of(source: _Source, column: str) -> str:
    """The index of a row's value among the values, a number to group and pack by (a String search per row:
    skipped for one value, as the summary's site; it was a sixth of the 90-day summary's middle values statement
    at 10 M views)."""
    names = ", ".join(f"{{mv{i}:String}}" for i in range(len(source.values)))
    return "toUInt16(0)" if len(source.values) == 1 else f"toUInt16(indexOf([{names}], {column}) - 1)"


def _bucket_counts(
    client: Client, source: _Source, params: dict[str, object], families: Sequence[Family]
) -> dict[Key, dict[int, int]]:
    """Durations per bucket of every window (and of each `whole` family's union of windows)."""
    branches = []
    params["mkind"] = source.kind
    for f, family in enumerate(families):
        split = plan(family.windows, days=source.kind == SITE_KIND)
        prefix = f"m{f}"
        if split.hours:
            index = family.windows.index_sql(f"hour * {HOUR_MS}", params, prefix)
            branches.append(
                f"SELECT toUInt8({f}) AS fam, toInt64({index}) AS w, {_value_of(source, 'value')} AS v, bucket AS b, n"
                f" FROM duration_hours"
                f" WHERE {source.site} AND {_values_sql(source, params, 'value')}"
                f" AND {split.duration_hours_sql('{mkind:UInt8}', params, prefix)}"
            )
        raw = split.raw_sql(params, prefix)
        if raw is not None:
            raw_index = family.windows.index_sql("date_created", params, prefix)
            branches.append(
                f"SELECT toUInt8({f}) AS fam, toInt64({raw_index}) AS w, {_value_of(source, source.label)} AS v,"
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
    for f, w, v, buckets, ns in client.rows(sql, params):
        value = source.values[v]
        by_bucket = counts[(f, w, value)] = dict(zip(buckets, ns, strict=True))  # ints already (JSON numbers)
        if families[f].whole:
            whole = counts.setdefault((f, -1, value), {})
            for b, n in by_bucket.items():
                whole[b] = whole.get(b, 0) + n
    return counts


def _select(
    client: Client,
    source: _Source,
    params: dict[str, object],
    families: Sequence[Family],
    wanted: dict[Key, tuple[int, tuple[int, int], tuple[int, int]]],
) -> dict[tuple[int, int, str, int, int], int]:
    """The durations at the wanted (bucket, rank) of each window: (family, window, value, bucket, rank) -> value."""
    # Family f's union of windows has reader number whole_of[f], read with family f's rows: each of them
    # carries two keys (arrayJoin), its window's and the union's, so the same rows are not read twice.
    readers = [family.windows for family in families]
    whole_of = {f: len(readers) + i for i, f in enumerate(f for f, family in enumerate(families) if family.whole)}
    ranks: dict[tuple[int, int, str, int], set[int]] = {}
    for (f, w, value), (_, low, high) in wanted.items():
        reader, window = (whole_of[f], 0) if w == -1 else (f, w)
        for bucket, rank in (low, high):
            ranks.setdefault((reader, window, value, bucket), set()).add(rank)
    if not ranks:
        return {}
    value_index = {value: i for i, value in enumerate(source.values)}
    packed = {_pack(reader, w, value_index[value], b): found for (reader, w, value, b), found in ranks.items()}
    wanted_keys = ", ".join(str(key) for key in packed)
    branches = []
    params["mkind"] = source.kind
    for r, windows in enumerate(readers):
        split = plan(windows)
        prefix = f"m{r}"
        mine = {r, whole_of[r]} if r in whole_of else {r}
        buckets = ", ".join(str(b) for b in sorted({b for (reader, _, _, b) in ranks if reader in mine}))
        if not buckets:
            continue

        def keys(index: str, value: str, bucket: str, r: int = r) -> str:
            own = _pack_sql(r, index, value, bucket)
            return f"arrayJoin([{own}, {_pack_sql(whole_of[r], '0', value, bucket)}])" if r in whole_of else own

        # Only the wanted buckets' range of each value, then only the wanted (window, value, bucket) in it.
        if split.hours:
            index = windows.index_sql(f"hour * {HOUR_MS}", params, prefix)
            key = keys(index, _value_of(source, "value"), "bucket")
            branches.append(
                f"SELECT {key} AS k, duration AS d, n FROM durations WHERE {source.site} AND kind = {{mkind:UInt8}}"
                f" AND {_values_sql(source, params, 'value')} AND bucket IN ({buckets})"
                f" AND {split.hours_sql(params, prefix)} AND k IN ({wanted_keys})"
            )
        raw = split.raw_sql(params, prefix)
        if raw is not None:
            raw_index = windows.index_sql("date_created", params, prefix)
            of_row = BUCKET.format(column=_DURATION)
            key = keys(raw_index, _value_of(source, source.label), of_row)
            branches.append(
                f"SELECT {key} AS k, {_DURATION} AS d, toInt64(sign) AS n"
                f" FROM views WHERE {source.site} AND ({raw}) AND isNotNull(duration_ms)"
                f" AND {_values_sql(source, params, source.label)} AND k IN ({wanted_keys})"
            )
    lows = ", ".join(str(min(found)) for found in packed.values())
    highs = ", ".join(str(max(found)) for found in packed.values())
    # Each wanted bucket's rows sorted by duration, a value's cancelling (negative) rows before its others,
    # and the running sum of their counts: the value at a rank is that of the first row whose running count
    # reaches it. Within a value the running count dips and then climbs to its net, so it first reaches a
    # rank on a row of the right value; no GROUP BY per duration is needed (it cost more than the rest).
    order = "toUInt64(d) * 2 + (n > 0)"  # durations are below 2**63: twice one fits a UInt64
    pick = "intDiv(arrayElement(ks, arrayFirstIndex(c -> c >= {rank}, cs)), 2)"
    sql = (
        f"SELECT k, {pick.format(rank='low')}, {pick.format(rank='high')}, low, high FROM ("
        f" SELECT k, arraySort(groupArray({order})) AS ks,"
        f" arrayCumSum(arraySort((x, y) -> y, groupArray(n), groupArray({order}))) AS cs,"
        f" transform(k, [{wanted_keys}], [{lows}], 0) AS low, transform(k, [{wanted_keys}], [{highs}], 0) AS high"
        f" FROM ({' UNION ALL '.join(branches)}) GROUP BY k)"
    )
    found_values: dict[tuple[int, int, str, int, int], int] = {}
    back = {r: f for f, r in whole_of.items()}
    for key, low_value, high_value, low, high in client.rows(sql, params):
        reader, w, vi, b = _unpack(int(key))
        f, window = (back[reader], -1) if reader in back else (reader, w)
        found_values[(f, window, source.values[vi], b, int(low))] = int(low_value)
        found_values[(f, window, source.values[vi], b, int(high))] = int(high_value)
    return found_values
