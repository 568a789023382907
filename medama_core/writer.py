"""Group commit: many concurrent writes share one transaction, and each waits until it is durable.

Handlers hand an op to `Batcher.write` and await it. One drain task takes
everything queued (at most `max_ops`), hands it to the store's batch write once
(AnalyticsStore.write_hits: SQLite's writer thread, or ClickHouse's INSERTs),
then resolves each op's future with its own outcome. While a batch commits, new ops queue up behind it, so batches grow
with the load by themselves: one op per transaction when idle, up to
`max_ops` under pressure, and no timer ever delays a lone write. A store
whose every write has a high fixed cost (ClickHouse: each INSERT makes parts
that merges rewrite) sets a linger instead: a batch shorter than `max_ops` is
written no sooner than `linger_s` after the previous batch was taken, so at
most 1 / `linger_s` batches a second go out short at any load, and a lone write
after a quiet spell goes at once. `weigh` counts an op as more than one
towards `max_ops` (a store whose memory per batch grows with the rows an op
holds). A future
resolves only after COMMIT returned, so a write that was acknowledged is in
the WAL file and survives the process being killed (spec issue: "no
acknowledged hit may be lost by kill -9").
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Final, Generic, TypeVar

from medama_core.log import Logger
from medama_core.store.protocol import is_disk_full

__all__ = [
    "DISK_FULL_LOG_INTERVAL_S",
    "MAX_BATCH_OPS",
    "MAX_PENDING_OPS",
    "MAX_SETTLE_TURNS",
    "Batcher",
    "Closed",
    "Overloaded",
    "StorageFull",
]

Op = TypeVar("Op")
BatchFn = Callable[[Sequence[Op]], Awaitable[Sequence[Exception | None]]]  # one outcome per op
Done = Callable[[Exception | None], None]  # told an op's outcome (`Batcher.write_then`)
Weigh = Callable[[Op], int]  # how much of a batch's `max_ops` an op takes (at least 1)

# One transaction of 1,000 hits takes 2-4 ms on a small VM, which bounds the wait of a
# hit queued behind a full batch; larger batches measured no faster.
MAX_BATCH_OPS: Final = 1000
# ~400 bytes per queued hit: 50,000 is ~20 MB, a few seconds of peak load. Past it the
# disk is not keeping up, and refusing (503) beats growing until the VM runs out of memory.
MAX_PENDING_OPS: Final = 50_000
# While the disk stays full every batch fails; one log line per minute (with the count refused since
# the last one) says so without writing a line per refused hit to a disk that may be the same one.
DISK_FULL_LOG_INTERVAL_S: Final = 60.0
# Without a linger, a batch is taken once a turn of the event loop queued no op, not as soon as the last one
# committed. At 128 connections and a client that answers at once, the answers of a batch come back as a burst
# of requests; a batch taken as it starts has the writer's statements overlap the loop's reads, the GIL handed
# between the two threads at each (0.7-0.8 futex calls a request, 63-hit batches, 41-46 µs a stored load),
# where a batch taken after it runs mostly while the loop waits (0.15-0.29, 94-105 hits, 34-36 µs;
# docs/ingestion.md, *Which pattern a run falls into*). At most this many turns: under a steady stream of
# requests every turn brings some, and each turn waited delays the queued ops by one more turn.
MAX_SETTLE_TURNS: Final = 8


class Overloaded(Exception):
    """The queue is full: the database is not keeping up."""


class Closed(Exception):
    """The batcher was closed for shutdown and takes no more writes."""


class StorageFull(Exception):
    """The disk is full: the op was not written. Every batch tries again, so this clears by itself."""


class Batcher(Generic[Op]):
    """Queue ops and write them in batches with `apply`, which returns one outcome per op; `name` says
    where they go in log lines."""

    def __init__(
        self,
        apply: BatchFn[Op],
        *,
        name: str = "",
        max_ops: int = MAX_BATCH_OPS,
        max_pending: int = MAX_PENDING_OPS,
        log: Logger | None = None,
        linger_s: float = 0.0,
        weigh: Weigh[Op] | None = None,
    ) -> None:
        self.name = name
        self.linger_s = linger_s
        self.weigh = weigh  # None: every op weighs 1
        self._weight = 0  # of the queued ops
        self._last_taken = -math.inf  # the loop's time the last batch was taken (lingering waits from it)
        self.log = log
        self.full_refused = 0  # ops refused since the disk filled up (0: it is not full)
        self._full_logged = -DISK_FULL_LOG_INTERVAL_S  # monotonic time of the last disk-full line
        self.apply = apply
        self.max_ops = max_ops
        self.max_pending = max_pending
        self.closed = False
        self.batches = 0  # committed batches, for tests and the benchmark
        self.ops = 0
        self._queue: deque[tuple[Op, asyncio.Future[None] | Done | None]] = deque()
        self._drain: asyncio.Task[None] | None = None
        self._filled: asyncio.Future[None] | None = None  # while lingering: resolved when a batch is full

    def __len__(self) -> int:
        return len(self._queue)

    def write(self, op: Op) -> asyncio.Future[None]:
        """Queue `op`; the returned future resolves once its batch committed, or with its error.

        Raises `Overloaded` when too many ops wait, `Closed` after `close`.
        """
        future = asyncio.get_running_loop().create_future()
        self._put(op, future)
        return future

    def write_then(self, op: Op, done: Done) -> None:
        """Queue `op`; `done(outcome)` is called on the event loop once its batch committed (None) or with
        its error, without a future or a scheduled callback per op (the tracker's fast path, app.py).

        Raises `Overloaded` when too many ops wait, `Closed` after `close`. `done` must not raise.
        """
        # `_put`, inline (once per stored tracker hit)
        queue = self._queue
        if self.closed:
            raise Closed("the server is shutting down")
        if len(queue) >= self.max_pending:
            raise Overloaded(f"more than {self.max_pending} writes are waiting")
        queue.append((op, done))
        weigh = self.weigh
        self._weight += 1 if weigh is None else weigh(op)
        if self._filled is not None and self._weight >= self.max_ops and not self._filled.done():
            self._filled.set_result(None)
        if self._drain is None:
            self._drain = asyncio.get_running_loop().create_task(self._run())

    def post(self, op: Op) -> None:
        """Queue `op` without waiting for it (counters); errors are dropped with it."""
        self._put(op, None)

    def _put(self, op: Op, future: asyncio.Future[None] | Done | None) -> None:
        if self.closed:
            raise Closed("the server is shutting down")
        if len(self._queue) >= self.max_pending:
            raise Overloaded(f"more than {self.max_pending} writes are waiting")
        self._queue.append((op, future))
        self._weight += 1 if self.weigh is None else self.weigh(op)
        if self._filled is not None and self._weight >= self.max_ops and not self._filled.done():
            self._filled.set_result(None)
        if self._drain is None:
            self._drain = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        queue = self._queue
        loop = asyncio.get_running_loop()
        try:
            while queue:
                if self.linger_s > 0 and self._weight < self.max_ops and not self.closed:
                    wait = self._last_taken + self.linger_s - loop.time()
                    if wait > 0:
                        await self._linger(wait)
                else:
                    await self._settle()
                self._last_taken = loop.time()
                batch = self._take()
                ops = [op for op, _ in batch]
                try:
                    outcomes: Sequence[Exception | None] = await self.apply(ops)
                except Exception as exc:  # COMMIT failed: nothing of this batch was written
                    outcomes = [exc] * len(batch)
                outcomes = self._check_disk(outcomes)
                self.batches += 1
                self.ops += len(batch)
                told: list[tuple[Done, Exception | None]] = []
                for (_, waiter), outcome in zip(batch, outcomes, strict=True):
                    if waiter is None:  # fire-and-forget
                        continue
                    if not isinstance(waiter, asyncio.Future):
                        told.append((waiter, outcome))
                    elif waiter.done():  # the waiter went away
                        continue
                    elif outcome is None:
                        waiter.set_result(None)
                    else:
                        waiter.set_exception(outcome)
                if told:
                    # In one callback of the loop's next turn, so the next batch is on the writer thread
                    # while the answers of this one are written.
                    asyncio.get_running_loop().call_soon(self._tell, told)
        finally:
            self._drain = None

    def _take(self) -> list[tuple[Op, asyncio.Future[None] | Done | None]]:
        """The next batch off the queue: ops up to `max_ops` (weighed), at least one."""
        queue = self._queue
        if self._weight <= self.max_ops:  # all of it fits (a lingering store's batches, mostly): no walk per op
            batch = list(queue)
            queue.clear()
            self._weight = 0
            return batch
        if self.weigh is None:
            batch = [queue.popleft() for _ in range(min(len(queue), self.max_ops))]
            self._weight -= len(batch)
            return batch
        batch = []
        weight = 0
        while queue:
            w = self.weigh(queue[0][0])
            if batch and weight + w > self.max_ops:
                break
            batch.append(queue.popleft())
            weight += w
        self._weight -= weight
        return batch

    async def _settle(self) -> None:
        """Wait until a turn of the loop queued no op (at most `MAX_SETTLE_TURNS` turns), a full batch
        waits, or `close` was called."""
        queue = self._queue
        for _ in range(MAX_SETTLE_TURNS):
            if self._weight >= self.max_ops or self.closed:
                return
            seen = len(queue)  # only this task takes ops off the queue
            await asyncio.sleep(0)  # one turn: the loop polls its sockets and runs what they brought
            if len(queue) == seen:
                return

    async def _linger(self, wait: float) -> None:
        """Wait until the queue holds a full batch, `wait` seconds passed, or `close` was called."""
        loop = asyncio.get_running_loop()
        self._filled = filled = loop.create_future()
        timer = loop.call_later(wait, _wake, filled)
        try:
            await filled
        finally:
            timer.cancel()
            self._filled = None

    def _tell(self, told: list[tuple[Done, Exception | None]]) -> None:
        """Tell `write_then` callers their ops' outcomes; one that fails does not keep the others from theirs."""
        for done, outcome in told:
            try:
                done(outcome)
            except Exception as exc:
                if self.log is not None:
                    self.log.error("a write's callback failed", database=self.name, error=repr(exc))

    def _check_disk(self, outcomes: Sequence[Exception | None]) -> Sequence[Exception | None]:
        """Turn disk-full errors into `StorageFull`, logging once per interval while it lasts."""
        if not self.full_refused and outcomes.count(None) == len(outcomes):  # every op written: nothing to check
            return outcomes
        full = sum(1 for outcome in outcomes if outcome is not None and is_disk_full(outcome))
        if not full:
            if self.full_refused and any(outcome is None for outcome in outcomes):
                if self.log is not None:
                    self.log.warn("disk space is back; writing hits again", refused=self.full_refused)
                self.full_refused = 0
            return outcomes
        self.full_refused += full
        now = time.monotonic()
        if now - self._full_logged >= DISK_FULL_LOG_INTERVAL_S:
            self._full_logged = now
            if self.log is not None:
                self.log.error(
                    "disk full: hits are refused with 503 until space is freed",
                    database=self.name,
                    refused=self.full_refused,
                )
        error = StorageFull("the server's disk is full; the hit was not stored, try again later")
        return [error if outcome is not None and is_disk_full(outcome) else outcome for outcome in outcomes]

    async def close(self) -> None:
        """Refuse new ops, then wait until every queued op has been written."""
        self.closed = True
        if self._filled is not None and not self._filled.done():
            self._filled.set_result(None)
        while self._drain is not None:
            await asyncio.shield(self._drain)


def _wake(filled: asyncio.Future[None]) -> None:
    if not filled.done():
        filled.set_result(None)
