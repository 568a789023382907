"""Filtered aggregates over a day's column copy (store/sqlite/columns.py), a piece of its planes at a time.

A set of views is a mask: a big integer with one byte per view, 0xFF when the
view is in the set. A filter becomes a mask through `bytes.translate` of the
column's code plane (a 256-byte table marks the matching codes) and
`int.from_bytes`; masks combine with `&`, `|` and `^`; counts are
`int.bit_count()`. The codes of the selected views come out of a plane by
masking it and deleting the zero bytes (codes and flags are never zero). Python
touches single views only to count the selected codes (`Counter`) and, for the
groups' durations, to distribute them.

Quantiles over masked days need no sorting: a day's views are in duration
order, so "how many selected views last at most x" is a bisection in the
day's sorted durations and a count of 0xFF bytes in the mask up to there.
"""

from __future__ import annotations

import json
import math
import sys
import weakref
from array import array
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from functools import lru_cache, reduce
from itertools import accumulate, compress, count, islice
from operator import add, itemgetter, or_
from typing import Final, Protocol, cast

from medama_core.store.aggregate import SAMPLE_STEP, Group
from medama_core.store.filters import FIELDS, MAX_IN_VALUES, NEGATED, Filter, positive_op, value_test
from medama_core.store.sqlite import columns
from medama_core.store.sqlite.columns import Column, Day

# Filter field -> the columns of the copies it reads (the same columns as the SQL in store/filters.py):
# a view's in both copies, an event's (prop_name, prop_value) in the events' copy only.
FILTER_COLUMNS: dict[str, tuple[str, ...]] = {
    field: tuple(column.split(".", 1)[1] for column in cols) for field, cols in FIELDS.items()
}
# Keys whose durations are taken out of a day's selected views by a pass each (`compress`, ~10 ns a view)
# rather than one Python loop over the views (~150 ns a view).
FEW_KEYS: Final = 8
# A day's selected views are picked from the planes row by row (DayScan.picks, ~30 ns a view and plane)
# when fewer than 1 in this many; more are cut out of each masked plane (~1.5 ns a view and plane, in C).
PICK_RATIO: Final = 16
SPARSE_RATIO = 16  # below 1 selected view in 16, finding each (~0.4 µs) beats `compress` over all (~20 ns each)
COUNT_BLOCK = 1024  # views per block of a masked run's cumulative counts: a count reads at most this many bytes
# A masked run that selects at most 1 view in this many keeps the positions of those views (4 bytes each:
# at most a quarter of a byte per view) instead of the day's byte per view. A filtered summary keeps a run
# per day for its median: at 10 M views in 30 days, a day's 333 KB each, ~10 MB, for a page filter.
POSITIONS_RATIO: Final = 16
_SELECTED = 0xFF
# Some views of a day (a piece): a mask, or their rows in order (DayScan.picks: a few of many).
Selected = int | list[int]


def _flag_table(*bits: int) -> bytes:
    """1 for the flag bytes with every bit in `bits` set, else 0: a selector for `compress`."""
    need = sum(1 << bit for bit in bits)
    return bytes(1 if value & need == need else 0 for value in range(256))


_BIT = columns.FLAG_BITS
_UNIQUE_USER = _flag_table(_BIT["unique_user"])
_UNIQUE_PAGE = _flag_table(_BIT["unique_page"])
_BOUNCED = _flag_table(_BIT["unique_user"], _BIT["bounce"])
_TIMED_VISITOR = _flag_table(_BIT["unique_user"], _BIT["timed"])
# Group field -> the flag selector of the views it counts (None: every selected view). "labels" counts
# every selected view too, read only for the labels; "duration_sum" adds the views' durations up.
GROUP_FIELDS: dict[str, bytes | None] = {
    "visitors": _UNIQUE_USER,
    "page_visitors": _UNIQUE_PAGE,
    "pageviews": None,
    "bounces": _BOUNCED,
    "timed": _TIMED_VISITOR,
    "measured": _flag_table(_BIT["timed"]),
    "zeros": _flag_table(_BIT["zero"]),
    "ones": _flag_table(_BIT["at_most_one"]),
    "twos": _flag_table(_BIT["at_most_two"]),
    "labels": None,
}
DURATION_SUM = "duration_sum"


# Day lengths whose all-ones masks are remembered: a mask is n bytes (a 333k-view day's 333 KB), and a
# request goes day by day, so a few serve it; 32 of each held up to 21 MB between requests at 10 M views.
MASKS_HELD: Final = 4


@lru_cache(maxsize=MASKS_HELD)
def _ones(n: int) -> int:
    """0x01 in each of n bytes: `(x >> bit) & _ones(n)` keeps one flag bit per view."""
    return int.from_bytes(b"\x01" * n, "big")


@lru_cache(maxsize=MASKS_HELD)
def everything(n: int) -> int:
    """0xFF in each of n bytes: every view."""
    return (1 << 8 * n) - 1


# Verdicts of a test other than eq/in remembered per value (days share most of their values): past this
# many (a long tail over a long range) they are forgotten and found again, ~100 bytes each held.
TEST_MEMO_HELD: Final = 8192


class ColumnTest:
    """One column's test of a filter on the lowered dictionary: the values of an `eq`/`in` are found in
    its JSON text (`Column.find`, a scan in C; a long tail's day has tens of thousands of values, which
    then stay unparsed), else by going through the dictionary a window at a time; any other test's
    verdicts are remembered per value, up to TEST_MEMO_HELD. A day's pieces share its dictionary: the
    codes found for the first serve the others."""

    __slots__ = ("name", "_memo", "_test", "_equal", "_last")

    def __init__(self, name: str, test: Callable[[str], bool], equal: Sequence[str] = ()) -> None:
        self.name = name
        self._test = test
        self._equal = tuple(dict.fromkeys(equal))  # lowered values of an eq/in test, else empty
        self._memo: dict[str, bool] = {}
        self._last: tuple[weakref.ref[columns.Dictionary] | None, list[int]] = (None, [])  # not kept alive

    def codes(self, column: Column) -> list[int]:
        """The dictionary positions of the column's values that pass."""
        if self._last[0] is None or self._last[0]() is not column.dictionary:
            self._last = (weakref.ref(column.dictionary), self._codes(column))
        return self._last[1]

    def _codes(self, column: Column) -> list[int]:
        if self._equal:
            found = column.find(self._equal)  # a long tail's dictionary left unparsed
            if found is not None:
                return found
        equal, memo, test = set(self._equal), self._memo, self._test
        found, base = [], 0
        for batch in column.dictionary.batches(lowered=True):  # a window of the dictionary at a time
            if equal:
                found += [base + i for i, text in enumerate(batch) if text in equal]
            else:
                if len(memo) > TEST_MEMO_HELD:
                    memo.clear()
                for text in set(batch).difference(memo):
                    memo[text] = test(text)
                found += compress(range(base, base + len(batch)), map(memo.__getitem__, batch))
            base += len(batch)
        return found


class Selection:
    """A query's filters as column tests: store/filters.py's SQL, over the columns' dictionaries.

    `flts` test columns of the copy read (prop filters there test an event's own name and value);
    `view_props` are prop filters on views: one test of the view's event pairs (columns.PROPS).
    """

    def __init__(self, flts: Sequence[Filter], view_props: Sequence[Filter] = ()) -> None:
        self.parts: list[tuple[bool, list[ColumnTest]]] = []  # per filter: (negated, tests OR-ed)
        for flt in flts:
            values = flt.values()
            op = positive_op(flt.op)
            tests = []
            for index, name in enumerate(FILTER_COLUMNS[flt.field]):
                # An empty referrer means direct traffic: compared with the host only, never the group.
                col_values = values if index == 0 or flt.field != "referrer" else [v for v in values if v]
                if col_values:
                    equal = col_values[:MAX_IN_VALUES] if op in ("eq", "in") else ()
                    tests.append(ColumnTest(name, value_test(op, col_values), equal))
            self.parts.append((flt.op in NEGATED, tests))
        if view_props:
            self.parts.append((False, [ColumnTest(columns.PROPS, pairs_test(view_props))]))
        self.columns = list(dict.fromkeys(test.name for _, tests in self.parts for test in tests))


def pairs_test(flts: Sequence[Filter]) -> Callable[[str], bool]:
    """The raw SQL's `EXISTS (an event of the view matching every prop filter)`, on a view's event pairs
    (columns.PROPS, lower-cased: JSON's escapes are lower case, so lowering the text lowers the strings)."""
    tests = [
        (flt.field == "prop_name", value_test(positive_op(flt.op), flt.values()), flt.op in NEGATED) for flt in flts
    ]

    def test(pairs: str) -> bool:
        return any(
            all(match(name if is_name else value) != negated for is_name, match, negated in tests)
            for name, value in json.loads(pairs)
        )

    return test


class DayScan:
    """One day's column copy with its planes as integers, each converted on first use."""

    def __init__(self, day: Day) -> None:
        self.day = day
        self.n = day.rows
        self._ints: dict[tuple[str, int], int] = {}

    def _int(self, name: str, index: int, plane: bytes) -> int:
        key = (name, index)
        value = self._ints.get(key)
        if value is None:
            value = self._ints[key] = int.from_bytes(plane, "big")
        return value

    def _translate(self, plane: bytes, table: bytes | bytearray) -> int:
        return int.from_bytes(plane.translate(table), "big")

    # ---- masks ----

    def filters_mask(self, selection: Selection) -> int:
        """The views matching every filter of the selection."""
        mask = everything(self.n)
        for negated, tests in selection.parts:
            mask &= self.filter_mask(negated, tests)
            if not mask:
                break
        return mask

    def filter_mask(self, negated: bool, tests: list[ColumnTest]) -> int:
        """The views one filter selects: the OR of its column tests, negated for neq, not_in, ..."""
        mask = 0
        for test in tests:
            column = self.day.columns[test.name]
            mask |= self.codes_mask(column, test.codes(column))
        return mask ^ everything(self.n) if negated else mask

    def codes_mask(self, column: Column, codes: list[int]) -> int:
        """The views whose value of `column` is one of `codes` (0-based dictionary positions)."""
        if not codes:
            return 0
        # Two planes hold more than `base` values: fewer codes cannot be all of them, and the values of a
        # long tail's text need not be counted (~0.4 ms at 300 KB).
        if (len(column.planes) == 1 or len(codes) > column.base) and len(codes) == len(column):
            return everything(self.n)
        if len(column.planes) == 1:
            table = bytearray(256)
            for code in codes:
                table[code + 1] = _SELECTED
            return self._translate(column.planes[0], table)
        base = column.base
        lows: dict[int, bytearray] = {}
        for code in codes:
            lows.setdefault(code // base + 1, bytearray(256))[code % base + 1] = _SELECTED
        mask = 0
        for high, low_table in lows.items():
            high_table = bytearray(256)
            high_table[high] = _SELECTED
            mask |= self._translate(column.planes[0], high_table) & self._translate(column.planes[1], low_table)
        return mask

    def hours_mask(self, first: int, last: int) -> int:
        """The views of hours first..last of the day (0..23)."""
        return self.hours_in([(first, last)])

    def in_hours(self, selected: Selected, first: int, last: int) -> Selected:
        """The views of `selected` (a mask, or the rows `picks` gave) in hours first..last of the day."""
        if isinstance(selected, int):
            return selected & self.hours_mask(first, last)
        if first == 0 and last >= columns.HOURS_PER_DAY - 1:
            return selected
        hours = self.day.hours
        return [row for row in selected if first < hours[row] <= last + 1]  # the plane holds the hour + 1

    @staticmethod
    def union(parts: Sequence[Selected]) -> Selected:
        """The views of any of `parts`, all masks or all rows."""
        if all(isinstance(part, int) for part in parts):
            return reduce(or_, cast("Sequence[int]", parts), 0)
        return sorted({row for part in cast("Sequence[list[int]]", parts) for row in part})

    def hours_in(self, runs: Sequence[tuple[int, int]]) -> int:
        """The views of the hours of the day (0..23) in the (first, last) runs."""
        hours = {hour for first, last in runs for hour in range(first, last + 1)}
        if len(hours) >= columns.HOURS_PER_DAY:
            return everything(self.n)
        assert self.day.hours, "the hours plane was not loaded for a partial day"
        table = bytearray(256)
        for hour in hours:
            table[hour + 1] = _SELECTED
        return self._translate(self.day.hours, table)

    # ---- the whole site ----

    def site_counts(self, selected: Selected) -> Group:
        """What /summary reads of the selected views (a mask, or the rows `picks` gave): visitors,
        pageviews, bounces and timed visitors (the other counts are left at 0; each costs a pass over
        the day, or over the flags of the rows)."""
        if not isinstance(selected, int):
            picked = self._selected(self.day.flags, columns.FLAGS, 0, 0, selected)
            return Group(
                visitors=picked.translate(_UNIQUE_USER).count(1),
                pageviews=len(selected),
                bounces=picked.translate(_BOUNCED).count(1),
                timed=picked.translate(_TIMED_VISITOR).count(1),
            )
        ones = _ones(self.n)
        flags = selected & self._int(columns.FLAGS, 0, self.day.flags)
        return Group(
            visitors=(flags & ones).bit_count(),
            pageviews=selected.bit_count() // 8,
            bounces=(flags & flags >> 3 & ones).bit_count(),
            timed=(flags & flags >> 2 & ones).bit_count(),
        )

    def flag_count(self, mask: int, flag: str) -> int:
        """How many selected views have the flag (a key of columns.FLAG_BITS): one pass over the day."""
        return (mask & self._int(columns.FLAGS, 0, self.day.flags) >> _BIT[flag] & _ones(self.n)).bit_count()

    def masked_run(self, selected: Selected, window: Callable[[int, int], Sequence[int]], whole: bool) -> Source:
        """The selected views' durations (a mask, or the rows `picks` gave). With `whole` (the caller can
        afford the piece's durations), for picked rows, or when at most 1 view in POSITIONS_RATIO is
        selected, the selected durations themselves (sorted, as the piece's are): 4 bytes a selected view,
        never more than the piece's durations and its mask would hold, and the piece is let go. Else the
        mask, every SAMPLE_STEP-th duration and `window` (columns.DurationsWindow) to read the rest."""
        durations = self.day.durations
        assert durations is not None
        untimed = self.day.untimed
        if not isinstance(selected, int):
            rows = islice(selected, bisect_left(selected, untimed), None)
            return ArrayRun(array(durations.typecode, [durations[row - untimed] for row in rows]))
        chosen = selected.to_bytes(self.n, "big")[untimed:]
        count = chosen.count(_SELECTED)
        if whole or count * POSITIONS_RATIO <= len(chosen):
            if count * SPARSE_RATIO < len(chosen):  # few views: find them rather than test every one
                return ArrayRun(array(durations.typecode, (durations[i] for i in _positions(chosen, count))))
            return ArrayRun(array(durations.typecode, compress(durations, chosen)))
        return MaskedRun(durations[SAMPLE_STEP - 1 :: SAMPLE_STEP], len(durations), window, chosen)

    # ---- groups ----

    def picks(self, mask: int) -> list[int] | None:
        """The rows of the selected views, in order, when they are under 1 in PICK_RATIO (a page filter:
        a few hundred of a day's 33k views), else None. Picking their bytes from each plane then costs
        less than masking and squeezing the whole plane (a big integer and two passes over its bytes)."""
        selected = mask.bit_count() // 8
        if selected * PICK_RATIO >= self.n:
            return None
        # Each is the sum of the gaps of unselected views before it plus its index, all counted in C.
        gaps = accumulate(map(len, mask.to_bytes(self.n, "big").split(b"\xff")))
        return list(islice(map(add, gaps, count()), selected))

    def _selected(self, plane: bytes, name: str, index: int, mask: int, picks: list[int] | None = None) -> bytes:
        """The bytes of `plane` at the selected views (the rows `picks`, when given), in row order (the
        plane holds no zero byte)."""
        if picks is not None:
            return bytes(itemgetter(*picks)(plane)) if len(picks) > 1 else bytes(plane[row] for row in picks)
        return (mask & self._int(name, index, plane)).to_bytes(self.n, "big").translate(None, b"\0")

    def keys(
        self, name: str, mask: int, picks: list[int] | None = None
    ) -> tuple[Sequence[int], Callable[[Collection[int]], dict[int, str]]]:
        """The selected views' keys of column `name`, in row order, and the labels of some keys."""
        column = self.day.columns[name]
        values_at = column.dictionary.values_at
        if len(column.planes) == 1:
            keys: Sequence[int] = self._selected(column.planes[0], name, 0, mask, picks)
            return keys, lambda chosen: dict(zip(chosen, values_at([key - 1 for key in chosen]), strict=True))
        high = self._selected(column.planes[0], name, 0, mask, picks)
        low = self._selected(column.planes[1], name, 1, mask, picks)
        pairs = bytearray(2 * len(high))  # interleaved into 16-bit keys, high * 256 + low
        pairs[0::2], pairs[1::2] = (low, high) if sys.byteorder == "little" else (high, low)
        wide = array("H")
        wide.frombytes(pairs)
        base = column.base

        def labels(chosen: Collection[int]) -> dict[int, str]:
            positions = [((key >> 8) - 1) * base + (key & 255) - 1 for key in chosen]
            return dict(zip(chosen, values_at(positions), strict=True))

        return wide, labels

    def group_counts(
        self, name: str, mask: int, fields: Sequence[str], with_durations: bool
    ) -> tuple[dict[str, Counter[str]], dict[str, array[int]]]:
        """Counts per label of column `name` over the selected views for each of `fields` (Group fields
        among GROUP_FIELDS or DURATION_SUM, or "labels": how many selected views each label has, read only
        for the labels), and with `with_durations` each label's sorted durations."""
        picks = self.picks(mask)
        keys, labels_of = self.keys(name, mask, picks)
        flags = self._selected(self.day.flags, columns.FLAGS, 0, mask, picks)
        by_key: dict[str, Counter[int]] = {}
        for field in fields:
            if field != DURATION_SUM:
                table = GROUP_FIELDS[field]
                by_key[field] = Counter(keys if table is None else compress(keys, flags.translate(table)))
        runs: dict[int, array[int]] = {}
        if with_durations or DURATION_SUM in fields:
            by_run = _runs_by_key(*self._timed(keys, mask, picks))
            if DURATION_SUM in fields:
                by_key[DURATION_SUM] = Counter({key: sum(run) for key, run in by_run.items()})
            if with_durations:
                runs = by_run
        labels = labels_of(list(set().union(*by_key.values(), runs)))
        counts = {field: Counter({labels[key]: n for key, n in counter.items()}) for field, counter in by_key.items()}
        return counts, {labels[key]: run for key, run in runs.items()}

    def _timed(
        self, keys: Sequence[int], mask: int, picks: list[int] | None = None
    ) -> tuple[Sequence[int], array[int]]:
        """The keys of the selected views that have a duration, and their durations (sorted)."""
        # Views without a duration come first: the selected ones among them lead `keys`.
        untimed = self.day.untimed
        durations = self.day.durations
        assert durations is not None
        if picks is not None:
            leading = bisect_left(picks, untimed)
            timed_rows = [row - untimed for row in islice(picks, leading, None)]
            return keys[leading:], array(durations.typecode, map(durations.__getitem__, timed_rows))
        leading = (mask >> 8 * (self.n - untimed)).bit_count() // 8
        timed_keys = keys[leading:]
        selected = mask.to_bytes(self.n, "big")[untimed:]
        if len(timed_keys) * SPARSE_RATIO < len(selected):  # few views: find them rather than test every one
            return timed_keys, array(durations.typecode, (durations[i] for i in _positions(selected, len(timed_keys))))
        return timed_keys, array(durations.typecode, compress(durations, selected))

    def pair_counts(self, first: str, second: str, mask: int) -> Counter[tuple[str, str]]:
        """How many selected rows have each pair of values of two columns (an event's name and value)."""
        picks = self.picks(mask)
        keys_a, labels_a = self.keys(first, mask, picks)
        keys_b, labels_b = self.keys(second, mask, picks)
        pairs = Counter(zip(keys_a, keys_b, strict=True))
        names, values = labels_a(list({a for a, _ in pairs})), labels_b(list({b for _, b in pairs}))
        return Counter({(names[a], values[b]): n for (a, b), n in pairs.items()})


def _runs_by_key(keys: Sequence[int], durations: array[int]) -> dict[int, array[int]]:
    """Each key's durations, in their order: taken out by `compress` per key (in C) when the keys are
    at most FEW_KEYS (a page filter's one path), else view by view."""
    distinct = dict.fromkeys(keys)
    if len(distinct) == 1:
        return {next(iter(distinct)): durations}
    if len(distinct) <= FEW_KEYS:
        return {key: array(durations.typecode, compress(durations, map(key.__eq__, keys))) for key in distinct}
    runs: dict[int, array[int]] = {}
    for key, duration in zip(keys, durations, strict=True):
        run = runs.get(key)
        if run is None:
            run = runs[key] = array(durations.typecode)
        run.append(duration)
    return runs


def _positions(selected: bytes, count: int) -> list[int]:
    """The indexes of the first `count` selected bytes."""
    found = []
    position = -1
    for _ in range(count):
        position = selected.find(_SELECTED, position + 1)
        found.append(position)
    return found


# ---- quantiles over masked days and in-memory runs -------------------------------------------------


class Source(Protocol):
    """Sorted durations that can say how many of them are at most x."""

    count: int
    low: int  # a value <= the smallest (when count > 0)
    high: int  # a value >= the largest

    def at_most(self, x: int) -> int: ...


class MaskedRun:
    """The selected views of a day piece as durations: the day's sorted durations (sampled in memory,
    read by windows) and a 0xFF/0x00 byte per view saying which are selected."""

    __slots__ = (
        "count",
        "high",
        "low",
        "_blocks",
        "_length",
        "_samples",
        "_selected",
        "_positions",
        "_window",
        "_cached",
        "_whole",
    )

    def __init__(
        self,
        samples: Sequence[int],
        length: int,
        window: Callable[[int, int], Sequence[int]],
        selected: bytes,
        whole: Sequence[int] | None = None,
        positions: array[int] | None = None,
    ) -> None:
        """`selected`: a byte per duration, 0xFF when selected; or, given `positions` (ascending), those
        of the selected durations (`selected` is then unused)."""
        self._whole = whole  # all the durations, when the caller can afford to hold them
        self._samples = samples  # samples[i] is the value at position (i + 1) * SAMPLE_STEP - 1
        self._length = length
        self._window = window
        self._selected = selected
        self._cached: tuple[int, Sequence[int]] = (-1, ())
        self._positions: array[int] | None = positions
        self._blocks: list[int] = []
        if positions is not None:
            self._selected = b""
            self.count = len(positions)
            self.low = self._value(positions[0]) if positions else 0
            self.high = self._value(positions[-1]) if positions else 0
            return
        self.count = selected.count(_SELECTED)
        if self.count * POSITIONS_RATIO <= len(selected):
            # Few selected: their positions (4 bytes each), not a byte per view, stay with the run. Each
            # is the sum of the gaps of unselected views before it plus its index, all counted in C.
            gaps = accumulate(map(len, selected.split(b"\xff")))
            self._positions = array("I", islice(map(add, gaps, count()), self.count))
            self._selected = b""
        else:
            counts = (selected.count(_SELECTED, i, i + COUNT_BLOCK) for i in range(0, len(selected), COUNT_BLOCK))
            self._blocks = list(accumulate(counts, initial=0))
        self.low = self._value(selected.find(_SELECTED)) if self.count else 0
        self.high = self._value(selected.rfind(_SELECTED)) if self.count else 0

    def _part(self, part: int) -> Sequence[int]:
        """Positions part * SAMPLE_STEP .. (part + 1) * SAMPLE_STEP - 1 of the durations, the last one kept."""
        if self._cached[0] != part:
            lo = part * SAMPLE_STEP
            self._cached = (part, self._window(lo, min(self._length, lo + SAMPLE_STEP)))
        return self._cached[1]

    def _value(self, position: int) -> int:
        if self._whole is not None:
            return self._whole[position]
        return self._part(position // SAMPLE_STEP)[position % SAMPLE_STEP]

    def _selected_before(self, position: int) -> int:
        if self._positions is not None:
            return bisect_left(self._positions, position)
        block = position // COUNT_BLOCK
        return self._blocks[block] + self._selected.count(_SELECTED, block * COUNT_BLOCK, position)

    def at_most(self, x: int) -> int:
        if x < self.low:
            return 0
        if x >= self.high:
            return self.count
        if self._whole is not None:
            return self._selected_before(bisect_right(self._whole, x))
        # Samples <= x cover whole parts of values <= x; the next part holds the boundary.
        part = bisect_right(self._samples, x)
        position = part * SAMPLE_STEP
        if position < self._length:
            position += bisect_right(self._part(part), x)
        return self._selected_before(position)


class ArrayRun:
    """Sorted durations held in memory."""

    __slots__ = ("count", "high", "low", "_values")

    def __init__(self, values: Sequence[int]) -> None:
        self._values = values
        self.count = len(values)
        self.low = values[0] if values else 0
        self.high = values[-1] if values else 0

    def at_most(self, x: int) -> int:
        return bisect_right(self._values, x)


def quantile(sources: Sequence[Source], q: float) -> float | None:
    """DuckDB's `quantile_cont` over the union of the sources (as aggregate.quantile_cont over runs)."""
    sources = [source for source in sources if source.count]
    n = sum(source.count for source in sources)
    if n == 0:
        return None
    position = (n - 1) * q
    lower, upper = math.floor(position), math.ceil(position)
    low = kth(sources, lower)
    if upper == lower:
        return float(low)
    high = low if sum(s.at_most(low) for s in sources) > upper else kth(sources, upper, low + 1)
    return float(low) + float(high - low) * (position - lower)


def kth(sources: Sequence[Source], k: int, floor: int | None = None) -> int:
    """The k-th smallest value (0-based) of the union: the least x with more than k values at most x."""
    low = min(source.low for source in sources)
    if floor is not None:
        low = max(low, floor)
    high = max(source.high for source in sources)
    return _least(lambda x: sum(source.at_most(x) for source in sources) > k, low, high)


def _least(holds: Callable[[int], bool], low: int, high: int) -> int:
    """The least x in low..high for which the monotone (false, then true) `holds` is true, else high."""
    while low < high:
        middle = (low + high) // 2
        if holds(middle):
            high = middle
        else:
            low = middle + 1
    return low
