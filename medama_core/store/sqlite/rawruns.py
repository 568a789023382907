"""Raw rows' durations as sorted runs: in memory up to a bound per request, beyond it in a temporary database.

The hours the refresher has not rolled up yet (right after an import, every
hour of a month) are read raw, and a median needs their durations. SQLite
sorts them (`ORDER BY label, duration`, its sorter bounded by the page cache);
here each label's sorted durations become an `aggregate.Run`. While a request
has held fewer than RAW_DURATIONS_HELD values, a run stays in memory as an
array; beyond, its values go to a private temporary SQLite database, packed
SPILL_CHUNK values to a row, and only every SAMPLE_STEP-th value stays in
memory, as for the rollups' stored runs. `aggregate.kth` then reads only the
windows it needs, so medians stay exact and what a request holds is bounded.
"""

from __future__ import annotations

import sqlite3
from array import array
from bisect import bisect_right
from collections.abc import Iterable, Iterator, Sequence
from itertools import groupby, islice
from operator import itemgetter
from typing import Any, Final

from medama_core.store.aggregate import SAMPLE_STEP, Run

# Raw durations one request holds in memory, in all its runs (512 KB as 8-byte integers: a 30-day
# /summary right after an import of 1 M views has 8 MB of them); the rest go to the temporary database.
RAW_DURATIONS_HELD: Final = 65_536
SPILL_CHUNK: Final = 4096  # durations per row of the temporary database (32 KB): a window read fetches whole rows
SPILL_CACHE_KIB: Final = 1024  # the temporary database's page cache; beyond it SQLite writes a file it deletes on close


class RawRuns:
    """The runs of one request, holding at most `held` values in memory (None: every run stays in memory)."""

    def __init__(self, held: int | None) -> None:
        self.left = held  # values still allowed in memory; None: unbounded
        self.db: sqlite3.Connection | None = None

    def runs(self, rows: Iterable[tuple[Any, int]]) -> Iterator[tuple[Any, Run]]:
        """(label, run) for rows of (label, duration) sorted by label, then duration; one label at a time."""
        for label, pairs in groupby(rows, key=itemgetter(0)):
            yield label, self._run(map(itemgetter(1), pairs))

    def _run(self, durations: Iterator[int]) -> Run:
        held = array("q")
        rowids: list[int] = []  # the run's rows in the temporary database, once it has spilled
        samples = array("q")
        count = 0
        while chunk := array("q", islice(durations, SPILL_CHUNK)):
            count += len(chunk)
            if not rowids and (self.left is None or len(held) + len(chunk) <= self.left):
                held.extend(chunk)  # full chunks only, but for the last: `held` spills in whole chunks
                continue
            for start in range(0, len(held), SPILL_CHUNK):
                rowids.append(self._write(held[start : start + SPILL_CHUNK], start, samples))
            held = array("q")
            rowids.append(self._write(chunk, count - len(chunk), samples))
        if not rowids:
            if self.left is not None:
                self.left -= len(held)
            return Run.of(held)
        return Run(count, samples, lambda lo, hi: self._read(rowids, lo, hi))

    def _write(self, chunk: array[int], position: int, samples: array[int]) -> int:
        """Store the run's values from `position` on; keep those at positions SAMPLE_STEP - 1 mod SAMPLE_STEP."""
        if self.db is None:
            self.db = sqlite3.connect("", isolation_level=None, check_same_thread=False)
            self.db.execute(f"PRAGMA cache_size = -{SPILL_CACHE_KIB}")
            self.db.execute("CREATE TABLE chunks (data BLOB NOT NULL)")
        samples.extend(chunk[(SAMPLE_STEP - 1 - position) % SAMPLE_STEP :: SAMPLE_STEP])
        rowid = self.db.execute("INSERT INTO chunks (data) VALUES (?)", (chunk.tobytes(),)).lastrowid
        assert rowid is not None
        return rowid

    def _read(self, rowids: list[int], lo: int, hi: int) -> Sequence[int]:
        """The run's values at positions lo..hi-1, from the rows that hold them."""
        assert self.db is not None
        values = array("q")
        if hi <= lo:
            return values
        first, last = lo // SPILL_CHUNK, (hi - 1) // SPILL_CHUNK
        for index in range(first, last + 1):
            row = self.db.execute("SELECT data FROM chunks WHERE rowid = ?", (rowids[index],)).fetchone()
            values.frombytes(row[0])
        start = lo - first * SPILL_CHUNK
        return values[start : start + hi - lo]

    def close(self) -> None:
        if self.db is not None:
            self.db.close()
            self.db = None


class RunSource:
    """A run as a `scan.Source`: how many of its values are at most x, from its samples and one window."""

    __slots__ = ("count", "high", "low", "_run")

    def __init__(self, run: Run) -> None:
        self._run = run
        self.count = run.count
        self.low = run.window(0, 1)[0] if run.count else 0
        self.high = run.window(run.count - 1, run.count)[0] if run.count else 0

    def at_most(self, x: int) -> int:
        # samples[j] is the value at position (j + 1) * SAMPLE_STEP - 1: the first m of them are <= x, so
        # the values before m * SAMPLE_STEP are too, and the next SAMPLE_STEP values decide the rest.
        start = bisect_right(self._run.samples, x) * SAMPLE_STEP
        window = self._run.window(start, min(self._run.count, start + SAMPLE_STEP))
        return start + bisect_right(window, x)
