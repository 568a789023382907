"""-workers N: the parent process and the N children it keeps running on its listening sockets.

The parent binds the port as a single process does, stops accepting on it and
starts each child with the listening sockets inherited (`HTTPServer.hand_over`):
the port stays one listener in the kernel, which every child accepts from. A
busy child accepts less by itself, a child killed leaves the accept queue
whole, and for a -reuseport upgrade the whole group is still one member of
the port.

The children parse and enrich. The parent answers no request: on SQLite it
keeps the one analytics writer, and on either engine every background job.
A child's `Batcher` hands each batch of ops (the pipeline's output) to the
parent over a pipe, the parent queues them on its own `Batcher` and sends
back each op's outcome once its batch committed, and only then does the
child answer the hit: acknowledged still means committed. On ClickHouse
every child is a whole stateless node and inserts its own batches. App data
(sites, settings, users, sessions) is read by every process from the app
store; a change one process makes reaches the others through the store's
change watch (app.py, META_POLL_INTERVAL_S).

Pipes carry length-prefixed pickles between processes of this program only.
A child that dies is started again, at most once per RESTART_MIN_S and
backing off to RESTART_MAX_S while it keeps dying; the pipe's end of file
tells a child its parent is gone, and it stops (no orphans).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import pickle
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final

import medama_core
from medama_core import backends
from medama_core.api import Context
from medama_core.api import stats as stats_api
from medama_core.config import Config
from medama_core.http.server import SHUTDOWN_GRACE_S
from medama_core.store.protocol import Op, Outcomes
from medama_core.writer import Batcher, Closed, Overloaded, StorageFull

__all__ = ["MAX_MESSAGE_BYTES", "ParentLink", "Supervisor", "forwards_hits", "from_environment", "per_process_limit"]

# A child that died is started again no sooner than this after its last start, the wait doubling up to
# RESTART_MAX_S while children keep dying young (a database that refuses them, a crash at start-up): a
# loop of restarts costs at most a start-up (~0.3 s of CPU) per RESTART_MAX_S.
RESTART_MIN_S: Final = 0.5
RESTART_MAX_S: Final = 30.0
STABLE_S: Final = 10.0  # a child that served this long is healthy again: the next restart waits RESTART_MIN_S
# On SIGTERM a child finishes its requests within SHUTDOWN_GRACE_S and then hands over its queued hits;
# past this it is killed (anything it acknowledged is committed already).
STOP_GRACE_S: Final = SHUTDOWN_GRACE_S + 5.0
# Largest message on a pipe: a batch of MAX_BATCH_OPS ops, each at most a 64 KiB beacon's rows
# (app.EVENT_BODY_LIMIT), pickled. Anything bigger is a broken pipe, not a batch. Only SQLite's hits cross
# the pipe (`forwards_hits`), in batches of writer.MAX_BATCH_OPS; on ClickHouse each process writes its own
# larger batches (backends/clickhouse.py, WRITE_BATCH_ROWS) and sends none.
MAX_MESSAGE_BYTES: Final = 128 * 1024 * 1024
MAINTAIN_NUDGE_S: Final = 1.0  # a child asks the parent for the rollup refresh at most this often
ENV_SPEC: Final = "MEDAMA_WORKER"  # the environment variable a child finds its place in (`child_main`)
_HEADER: Final = struct.Struct(">I")
CHILD_CODE: Final = "from medama_core.cli import worker_main; raise SystemExit(worker_main())"

# Messages: (kind, sequence number, payload).
HITS: Final = "hits"  # child -> parent: a batch of ops
DONE: Final = "done"  # parent -> child: one outcome per op of batch `seq`
MAINTAIN: Final = "maintain"  # child -> parent: a stats read asks for the rollup refresh
READY: Final = "ready"  # child -> parent: listening

# An op's error crosses the pipe as its kind and message; the child raises the same kind.
_OUTCOME_KINDS: Final[dict[str, type[Exception]]] = {
    "overloaded": Overloaded,
    "closed": Closed,
    "full": StorageFull,
}


def forwards_hits(config: Config) -> bool:
    """Whether children hand their hits to the parent: on SQLite, whose file has one writer."""
    return not backends.is_url(config.analyticsdb)


def per_process_limit(limit: int, workers: int) -> int:
    """Each process's share of -ratelimit (0: none), rounded up: a network's requests spread over the
    processes with its connections, so together they allow about `limit` (docs/ingestion.md)."""
    return -(-limit // workers)


def _encode(outcome: Exception | None) -> tuple[str, str] | None:
    if outcome is None:
        return None
    for kind, cls in _OUTCOME_KINDS.items():
        if isinstance(outcome, cls):
            return kind, str(outcome)
    return "error", repr(outcome)


def _decode(outcome: tuple[str, str] | None) -> Exception | None:
    if outcome is None:
        return None
    kind, message = outcome
    return _OUTCOME_KINDS.get(kind, RuntimeError)(message)


async def _open_pipes(read_fd: int, write_fd: int) -> tuple[asyncio.StreamReader, asyncio.WriteTransport]:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(read_fd, "rb", buffering=0))
    transport, _ = await loop.connect_write_pipe(asyncio.Protocol, os.fdopen(write_fd, "wb", buffering=0))
    return reader, transport


def _send(transport: asyncio.WriteTransport, message: tuple[str, int, Any]) -> bool:
    """Write one message; False when the other end is gone."""
    if transport.is_closing():
        return False
    data = pickle.dumps(message, pickle.HIGHEST_PROTOCOL)
    transport.write(_HEADER.pack(len(data)) + data)
    return True


async def _receive(reader: asyncio.StreamReader) -> tuple[str, int, Any] | None:
    """The next message; None at end of file (the other process is gone)."""
    try:
        (size,) = _HEADER.unpack(await reader.readexactly(_HEADER.size))
        if size > MAX_MESSAGE_BYTES:
            raise ValueError(f"a message of {size} bytes on a worker pipe")
        message: tuple[str, int, Any] = pickle.loads(await reader.readexactly(size))
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    return message


class _Reply:
    """The outcomes of one child batch, sent back once the last op's is known."""

    __slots__ = ("left", "outcomes", "seq", "transport")

    def __init__(self, seq: int, size: int, transport: asyncio.WriteTransport) -> None:
        self.seq = seq
        self.left = size
        self.outcomes: list[tuple[str, str] | None] = [None] * size
        self.transport = transport

    def done(self, index: int, outcome: Exception | None) -> None:
        if outcome is not None:
            self.outcomes[index] = _encode(outcome)
        self.left -= 1
        if not self.left:
            _send(self.transport, (DONE, self.seq, self.outcomes))


class Supervisor:
    """The parent's side: start the children, write their batches, start again the ones that die, stop them."""

    def __init__(self, ctx: Context, listeners: Sequence[int]) -> None:
        self.ctx = ctx
        self.listeners = tuple(listeners)
        self.children = ctx.config.workers
        self.processes: dict[int, subprocess.Popen[bytes]] = {}  # by worker number, 1 to `children`
        self.restarts = 0
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._keep(index)) for index in range(1, self.children + 1)]

    async def stop(self) -> None:
        """SIGTERM every child, wait for them to finish (their last batches are written meanwhile), kill
        the ones still running after STOP_GRACE_S."""
        self._stopping.set()
        for process in self.processes.values():
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
        if not self._tasks:
            return
        _, late = await asyncio.wait(self._tasks, timeout=STOP_GRACE_S)
        if late:
            for index, process in self.processes.items():
                self.ctx.log.warn("a worker did not stop in time; killing it", worker=index, pid=process.pid)
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
            await asyncio.wait(late)

    def reload_children(self) -> None:
        """Tell every child to load the certificate files again (SIGHUP; the parent reloaded or renewed)."""
        for process in self.processes.values():
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGHUP)

    async def _keep(self, index: int) -> None:
        """Run child `index`, and again each time it dies, until the parent stops."""
        log = self.ctx.log
        delay = RESTART_MIN_S
        while not self._stopping.is_set():
            started = time.monotonic()
            try:
                code = await self._run(index)
            except Exception as exc:  # could not start it (no memory, no descriptors): try again later
                log.error("could not start a worker", worker=index, error=repr(exc))
                code = None
            if self._stopping.is_set():
                return
            if time.monotonic() - started >= STABLE_S:
                delay = RESTART_MIN_S
            log.warn("a worker stopped; starting it again", worker=index, exit_code=code, delay_s=delay)
            self.restarts += 1
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)
            delay = min(delay * 2, RESTART_MAX_S)

    async def _run(self, index: int) -> int:
        """Start child `index` and serve its pipe until it exits; its exit code."""
        down_read, down_write = os.pipe()  # parent -> child
        up_read, up_write = os.pipe()  # child -> parent
        spec = {
            "worker": index,
            "config": _config_dict(self.ctx.config),
            "listeners": list(self.listeners),
            "read": down_read,
            "write": up_write,
        }
        env = {**os.environ, ENV_SPEC: json.dumps(spec), "PYTHONPATH": _import_path()}
        try:
            process = subprocess.Popen(
                [sys.executable, "-c", CHILD_CODE], pass_fds=(*self.listeners, down_read, up_write), env=env
            )
        except BaseException:
            os.close(up_read)
            os.close(down_write)
            raise
        finally:
            os.close(down_read)  # the child's ends: only the child may hold them, so its exit is our end of file
            os.close(up_write)
        self.processes[index] = process
        try:
            reader, transport = await _open_pipes(up_read, down_write)
            try:
                await self._serve(index, process.pid, reader, transport)
            finally:
                transport.close()
            return await asyncio.to_thread(process.wait)  # its end of the pipe closed: it has exited
        finally:
            del self.processes[index]

    async def _serve(
        self, index: int, pid: int, reader: asyncio.StreamReader, transport: asyncio.WriteTransport
    ) -> None:
        while (message := await _receive(reader)) is not None:
            kind, seq, payload = message
            if kind == HITS:
                self._write(seq, payload, transport)
            elif kind == MAINTAIN:
                stats_api._schedule_refresh(self.ctx)
            elif kind == READY:
                self.ctx.log.info("worker is serving", worker=index, pid=pid)

    def _write(self, seq: int, ops: Sequence[Op], transport: asyncio.WriteTransport) -> None:
        """Queue a child's batch on the parent's writer; its outcomes go back as they come."""
        reply = _Reply(seq, len(ops), transport)
        writer = self.ctx.hits
        for index, op in enumerate(ops):
            try:
                if writer is None:
                    raise Closed("ingestion is not running")
                writer.write_then(op, functools.partial(reply.done, index))
            except (Overloaded, Closed) as exc:
                reply.done(index, exc)


class ParentLink:
    """A child's side of its pipes: its hits' batches to the parent and their outcomes back, and the
    parent's end of file, which stops the child."""

    def __init__(self, index: int, listeners: Sequence[int], read_fd: int, write_fd: int) -> None:
        self.index = index
        self.listeners = tuple(listeners)
        self._fds = (read_fd, write_fd)
        self._transport: asyncio.WriteTransport | None = None
        self._pending: dict[int, asyncio.Future[Outcomes]] = {}
        self._seq = 0
        self._nudged = -MAINTAIN_NUDGE_S
        self._listening: asyncio.Task[None] | None = None

    async def attach(self, ctx: Context, parent_gone: Callable[[], None]) -> None:
        """Open the pipes; on SQLite make `ctx.hits` hand batches to the parent; call `parent_gone` at its
        end of file."""
        reader, self._transport = await _open_pipes(*self._fds)
        self._listening = asyncio.get_running_loop().create_task(self._listen(reader, parent_gone))
        if forwards_hits(ctx.config):
            ctx.hits = Batcher(self.write_hits, name="the parent's writer", log=ctx.log)
        ctx.maintain_elsewhere = self.nudge

    def ready(self) -> None:
        if self._transport is not None:
            _send(self._transport, (READY, 0, None))

    def nudge(self) -> None:
        """Ask the parent for the rollup refresh (a stats read would start it), at most once per MAINTAIN_NUDGE_S."""
        now = time.monotonic()
        if self._transport is not None and now - self._nudged >= MAINTAIN_NUDGE_S:
            self._nudged = now
            _send(self._transport, (MAINTAIN, 0, None))

    async def write_hits(self, ops: Sequence[Op]) -> Outcomes:
        """The `Batcher`'s batch write: to the parent, returning when it says each op's outcome."""
        self._seq += 1
        future: asyncio.Future[Outcomes] = asyncio.get_running_loop().create_future()
        if self._transport is None or not _send(self._transport, (HITS, self._seq, list(ops))):
            raise Closed("the parent process is gone")
        self._pending[self._seq] = future
        return await future

    async def _listen(self, reader: asyncio.StreamReader, parent_gone: Callable[[], None]) -> None:
        while (message := await _receive(reader)) is not None:
            _, seq, outcomes = message
            future = self._pending.pop(seq, None)
            if future is not None and not future.done():
                future.set_result([_decode(outcome) for outcome in outcomes])
        for future in self._pending.values():
            if not future.done():
                future.set_exception(Closed("the parent process is gone"))
        self._pending.clear()
        if self._transport is not None:
            self._transport.close()
        parent_gone()

    async def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
        if self._listening is not None:
            self._listening.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listening


def _config_dict(config: Config) -> dict[str, Any]:
    return {name: list(value) if isinstance(value, tuple) else value for name, value in vars(config).items()}


def _import_path() -> str:
    """Where a child imports medama_core from: this one's folder, or the .pyz file it runs from."""
    root = str(Path(medama_core.__file__).resolve().parent.parent)
    inherited = os.environ.get("PYTHONPATH")
    return root if not inherited else root + os.pathsep + inherited


def from_environment() -> tuple[Config, ParentLink]:
    """In a child (cli.worker_main): the configuration and the pipes and sockets its parent passed down."""
    spec = json.loads(os.environ.pop(ENV_SPEC))
    values: dict[str, Any] = {
        name: tuple(value) if isinstance(value, list) else value for name, value in spec["config"].items()
    }
    return Config(**values), ParentLink(spec["worker"], spec["listeners"], spec["read"], spec["write"])
