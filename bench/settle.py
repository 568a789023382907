"""Settle bench: the server's background work on a copy of imported databases, timed per kind of unit.

Copies an analytics database (say the one `bench/stats.py --server` keeps right after its import, in
DIR/SHAPE/imported/me_analytics.db) and runs the SQLite backend's `maintain` on it, as the server does
after start with no request coming: hour batches, blocks, today's copies and day copies, one unit at a
time on the writer thread. Prints per kind of unit the calls, the writer thread's CPU seconds and the
wall seconds, the whole run's wall and CPU time, and the peak RSS (the process's, which has none of the
server's modules). With --profile, cProfile on the writer thread: the functions with the most own and
cumulative time.

Usage: python bench/settle.py --db /tmp/medama-bench/1000000-30d-p200000-r5000/imported/me_analytics.db
       [--checkout OTHER_TREE] [--work /tmp/medama-settle] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import importlib
import os
import pstats
import resource
import shutil
import sqlite3
import sys
import time
from collections.abc import Callable
from typing import Any


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True, help="the analytics database right after an import (copied)")
    parser.add_argument("--checkout", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    parser.add_argument("--work", default="/tmp/medama-settle")
    parser.add_argument("--profile", action="store_true", help="cProfile the writer thread")
    parser.add_argument("--top", type=int, default=40, help="functions listed with --profile")
    parser.add_argument("--sql", action="store_true", help="the writer's CPU per SQL statement")
    parser.add_argument(
        "--set", action="append", default=[], help="MODULE.NAME=INTEGER: a bound of store/sqlite/MODULE.py changed"
    )
    parser.add_argument(
        "--pragma", action="append", default=[], help="NAME=VALUE: a PRAGMA set on the writer's connection first"
    )
    args = parser.parse_args()
    sys.path.insert(0, os.path.abspath(args.checkout))
    os.makedirs(args.work, exist_ok=True)
    path = os.path.join(args.work, "me_analytics.db")
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)
    shutil.copyfile(args.db, path)
    for suffix in ("-wal",):
        if os.path.exists(args.db + suffix):
            shutil.copyfile(args.db + suffix, path + suffix)
    backend = importlib.import_module("medama_core.backends.sqlite")
    columns = importlib.import_module("medama_core.store.sqlite.columns")
    rollups = importlib.import_module("medama_core.store.sqlite.rollups")
    for setting in args.set:
        name, value = setting.split("=")
        module, attribute = name.split(".")
        setattr(importlib.import_module(f"medama_core.store.sqlite.{module}"), attribute, int(value))
    print(f"checkout {args.checkout} {' '.join(args.set)}", flush=True)
    calls: dict[str, list[float]] = {}  # kind -> [calls, CPU s, wall s, units that did something]
    profile = cProfile.Profile(time.thread_time) if args.profile else None
    statements: dict[str, list[float]] = {}  # --sql: statement -> [calls, CPU s]
    if args.sql:
        _time_statements(statements)

    def timed(kind: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def unit(*a: Any) -> Any:
            cpu, wall = time.thread_time(), time.perf_counter()
            if profile is not None:
                profile.enable()
            try:
                done = fn(*a)
            finally:
                if profile is not None:
                    profile.disable()
                entry = calls.setdefault(kind, [0, 0.0, 0.0, 0])
                entry[0] += 1
                entry[1] += time.thread_time() - cpu
                entry[2] += time.perf_counter() - wall
            entry[3] += bool(done)
            return done

        return unit

    for module, name in (
        (rollups, "refresh_hours"),
        (rollups, "build_blocks"),
        (columns, "refresh_open"),
        (columns, "backfill"),
    ):
        setattr(module, name, timed(name, getattr(module, name)))
    store = backend.SQLiteAnalytics(path)
    for pragma in args.pragma:
        store.db.writer_conn.execute(f"PRAGMA {pragma}")
    cpu, wall = time.process_time(), time.perf_counter()
    hours = asyncio.run(store.maintain())
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    store.close()
    print(f"{'unit':<16} {'calls':>6} {'did work':>8} {'CPU s':>8} {'wall s':>8} {'ms/call':>8}")
    for kind, (n, unit_cpu, unit_wall, worked) in calls.items():
        print(f"{kind:<16} {n:>6.0f} {worked:>8.0f} {unit_cpu:>8.2f} {unit_wall:>8.2f} {unit_wall / n * 1000:>8.1f}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"settled: {hours} hours rebuilt, {wall:.1f} s wall, {cpu:.1f} s CPU, peak RSS {peak:.1f} MB", flush=True)
    for sql, (n, seconds) in sorted(statements.items(), key=lambda item: -item[1][1])[: args.top]:
        print(f"{seconds:8.2f} s {n:>8.0f}  {sql}")
    if profile is not None:
        stats = pstats.Stats(profile)
        stats.sort_stats("tottime").print_stats(args.top)
        stats.sort_stats("cumulative").print_stats(args.top)


def _time_statements(statements: dict[str, list[float]]) -> None:
    """Make every connection opened from now on add each statement's thread CPU time to `statements`."""

    def add(sql: str, started: float) -> None:
        entry = statements.setdefault(" ".join(sql.split())[:150], [0, 0.0])
        entry[0] += 1
        entry[1] += time.thread_time() - started

    class Timed(sqlite3.Connection):
        def execute(self, sql: str, *a: Any) -> sqlite3.Cursor:
            started = time.thread_time()
            try:
                return super().execute(sql, *a)
            finally:
                add(sql, started)

        def executemany(self, sql: str, *a: Any) -> sqlite3.Cursor:
            started = time.thread_time()
            try:
                return super().executemany(sql, *a)
            finally:
                add(sql, started)

    connect = sqlite3.connect

    def timed_connect(*a: Any, **k: Any) -> sqlite3.Connection:
        return connect(*a, factory=Timed, **k)

    sqlite3.connect = timed_connect  # type: ignore[assignment]


if __name__ == "__main__":
    main()
