"""The ingest write path without HTTP: batch store functions on SQLite, and the group-commit batcher."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, cast

import pytest

from medama_core.store.sqlite import analytics, db, hits
from medama_core.writer import MAX_SETTLE_TURNS, Batcher, Closed, Overloaded

NO_HANG_S = 30.0  # a write the batcher should send at once; only a hang (the bug) takes this long


def view(bid: str, hostname: str = "example.com", **fields: Any) -> hits.Row:
    row: dict[str, Any] = {
        "bid": bid,
        "hostname": hostname,
        "pathname": "/",
        "is_unique_user": True,
        "is_unique_page": False,
        "referrer_host": "",
        "referrer_group": "",
        "country": "Unknown",
        "language_base": "English",
        "language_dialect": "English",
        "ua_browser": "Firefox",
        "ua_os": "Linux",
        "ua_device_type": "Desktop",
        "utm_source": "",
        "utm_medium": "",
        "utm_campaign": "",
        "duration_ms": None,
        "date_created": 1_700_000_000_000,
    }
    row.update(fields)
    return hits.view_row(row)


def event(bid: str, name: str, value: str) -> hits.Row:
    return (bid, "event_x", "example.com", name, value, 1_700_000_000_000)


@pytest.fixture
def conn() -> Iterator[sqlite3.Connection]:
    connection = db.connect(":memory:")
    db.migrate(connection, analytics.MIGRATIONS)
    yield connection
    connection.close()


# --- store/sqlite/hits.py ---


def test_a_batch_writes_views_events_durations_and_drops(conn: sqlite3.Connection) -> None:
    ops: list[hits.Op] = [
        hits.NewView(view("a"), [event("a", "plan", "pro")]),
        hits.Duration("a", 1200),  # same batch as its load: durations are applied after inserts
        hits.NewEvents([event("", "click", "yes")]),
        hits.DropCount(86_400_000, "", "bot"),
        hits.DropCount(86_400_000, "", "bot", 2),
    ]
    assert hits.apply_batch(conn, ops) == [None] * 5
    assert conn.execute("SELECT bid, duration_ms FROM views").fetchall() == [("a", 1200)]
    assert conn.execute("SELECT name FROM events ORDER BY name").fetchall() == [("click",), ("plan",)]
    assert hits.drop_counts(conn, 0, 10**12) == [(86_400_000, "", "bot", 3)]
    hits.apply_batch(conn, [hits.DropCount(86_400_000, "", "bot")])
    assert hits.drop_counts(conn, 0, 10**12) == [(86_400_000, "", "bot", 4)], "counts add up across batches"


def test_a_batch_counts_each_sites_hits_per_day(conn: sqlite3.Connection) -> None:
    """`site_hits` (the quota's) gains every page view and custom event of a batch, per site and UTC day, also
    when a site has several in one batch; unloads and drops count nothing."""
    day = 1_700_000_000_000 // hits.DAY_MS * hits.DAY_MS
    ops: list[hits.Op] = [hits.NewView(view(f"a{i}", date_created=day + i)) for i in range(3)]
    ops += [hits.NewView(view("b1", "b.com", date_created=day + 5)), hits.NewView(view("b2", "b.com"))]
    ops += [hits.NewView(view("late", date_created=day + hits.DAY_MS + 1))]  # the next day
    ops += [hits.NewEvents([event("a0", "plan", "pro"), event("a0", "seats", "3")]), hits.Duration("a1", 9)]
    ops += [hits.DropCount(day, "example.com", "bot", 4)]
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    assert hits.apply_batch(conn, ops) == [None] * len(ops)
    conn.set_trace_callback(None)
    # The batch's three (day, site) counts in one statement, not one SQLite step (and GIL hand-off) each.
    assert sum("site_hits" in sql for sql in statements) == 1
    assert hits.apply_batch(conn, [hits.NewView(view("a9", date_created=day + 9))]) == [None]
    assert hits.site_hits_on(conn, day) == {"example.com": 5, "b.com": 2}
    assert hits.site_hits_on(conn, day + hits.DAY_MS) == {"example.com": 1}
    many = hits.SITE_COUNTS_AT_ONCE + 5  # more sites than one statement takes: in chunks
    assert (
        hits.apply_batch(conn, [hits.NewView(view(f"m{i}", f"s{i % many}.com", date_created=day)) for i in range(99)])
        == [None] * 99
    )
    assert hits.site_hits_on(conn, day) == {"example.com": 5, "b.com": 2} | {
        f"s{k}.com": len(range(k, 99, many)) for k in range(many)
    }


def test_unloads_in_chunks_match_one_update_per_unload(conn: sqlite3.Connection) -> None:
    # 341 unloads run as chunks of 256, 64, 16 and 5 rows (the rest, exactly); a repeated beacon id keeps its last
    # duration, a hash-mode id shared by two views sets both, an unknown id changes nothing.
    loads: list[hits.Op] = [hits.NewView(view(f"b{i}")) for i in range(300)]
    loads.append(hits.NewView(view("shared", hostname="example.com", pathname="/#/a")))
    loads.append(hits.NewView(view("shared", hostname="other.example", pathname="/#/b")))
    hits.apply_batch(conn, loads)
    unloads: list[hits.Op] = [hits.Duration(f"b{i}", 1000 + i) for i in range(300)]
    unloads += [hits.Duration("b7", 1), hits.Duration("b7", 2), hits.Duration("shared", 55)]
    unloads += [hits.Duration(f"missing{i}", 9) for i in range(38)]
    assert len(unloads) == 341
    assert hits.apply_batch(conn, unloads) == [None] * 341
    got = dict(conn.execute("SELECT bid || '@' || hostname, duration_ms FROM views").fetchall())
    want = {f"b{i}@example.com": 1000 + i for i in range(300)} | {"b7@example.com": 2}
    want |= {"shared@example.com": 55, "shared@other.example": 55}
    assert got == want


def test_repeated_views_are_ignored(conn: sqlite3.Connection) -> None:
    ops: list[hits.Op] = [hits.NewView(view("a", pathname="/1")), hits.NewView(view("a", pathname="/2"))]
    assert hits.apply_batch(conn, ops) == [None, None]
    hits.apply_batch(conn, [hits.NewView(view("a", pathname="/3"))])
    assert conn.execute("SELECT pathname FROM views").fetchall() == [("/1",)]


def test_one_bad_op_fails_alone_and_the_rest_commit(conn: sqlite3.Connection) -> None:
    broken = view("bad")[:-1]  # one value short: the whole executemany fails
    ops: list[hits.Op] = [
        hits.NewView(view("ok1")),
        hits.NewView(broken),
        hits.Duration("ok1", 5),
        hits.NewView(view("ok2")),
    ]
    outcomes = hits.apply_batch(conn, ops)
    assert [type(o).__name__ if o else None for o in outcomes] == [None, "ProgrammingError", None, None]
    assert conn.execute("SELECT bid, duration_ms FROM views ORDER BY bid").fetchall() == [("ok1", 5), ("ok2", None)]
    assert not conn.in_transaction


def test_a_failed_view_takes_its_events_with_it(conn: sqlite3.Connection) -> None:
    broken = view("bad", ua_browser=None)  # NOT NULL
    outcomes = hits.apply_batch(conn, [hits.NewView(broken, [event("bad", "k", "v")]), hits.NewView(view("good"))])
    assert isinstance(outcomes[0], sqlite3.IntegrityError) and outcomes[1] is None
    assert conn.execute("SELECT count(*) FROM events").fetchone() == (0,)


def test_views_and_events_in_chunks_match_one_insert_per_row(conn: sqlite3.Connection) -> None:
    # 341 loads run as multi-row INSERTs of 256, 64, 16 and 5 rows: every row in its columns, in arrival
    # order (rowids), the first of a repeated (bid, hostname) kept whether its repeat is in the same chunk
    # or a later one; their events the same.
    loads: list[hits.Op] = []
    for i in range(341):
        bid = "b3" if i in (250, 300) else f"b{i}"  # b3's repeats: in its own chunk of 256, and in the 64's
        loads.append(
            hits.NewView(view(bid, pathname=f"/{i}", date_created=1_700_000_000_000 + i), [event(bid, "k", str(i))])
        )
    assert hits.apply_batch(conn, loads) == [None] * 341
    got = conn.execute("SELECT bid, pathname, date_created FROM views ORDER BY rowid").fetchall()
    want = [(f"b{i}", f"/{i}", 1_700_000_000_000 + i) for i in range(341) if i not in (250, 300)]
    assert got == want
    assert conn.execute("SELECT value FROM events ORDER BY rowid").fetchall() == [(str(i),) for i in range(341)]


@pytest.mark.parametrize("tag", [None, "utm_source", "utm_medium", "utm_campaign"])
def test_views_without_a_duration_are_stored_as_one_insert_per_row_stores_them(
    conn: sqlite3.Connection, tag: str | None
) -> None:
    # A batch of views without durations binds them without that column and with the booleans as integers,
    # and without the UTM columns when none has a tag (`tag` None; else one view has that tag): every column,
    # its type included, as the plain INSERT of the tuples stores them.
    rows = [
        view(f"b{i}", pathname=f"/{i}", is_unique_user=i % 2 == 0, is_unique_page=i % 3 == 0, date_created=i)
        for i in range(70)
    ]
    if tag is not None:
        rows[66] = view("b66", **{tag: "newsletter"})  # in the batch's last chunks: the scan must reach it
    rows.append(view("int", is_unique_user=1, is_unique_page=0))  # what imports may send
    assert hits.apply_batch(conn, [hits.NewView(row, (), f"/from{i}") for i, row in enumerate(rows)]) == [None] * 71
    plain = db.connect(":memory:")
    db.migrate(plain, analytics.MIGRATIONS)
    plain.executemany(hits.INSERT_TRACKED_VIEW, [(*row, f"/from{i}") for i, row in enumerate(rows)])
    query = (
        "SELECT *, typeof(is_unique_user), typeof(is_unique_page), typeof(duration_ms), typeof(date_created)"
        " FROM views ORDER BY rowid"
    )
    assert conn.execute(query).fetchall() == plain.execute(query).fetchall()
    plain.close()


def test_rows_of_different_lengths_fail_alone_even_when_their_values_add_up(conn: sqlite3.Connection) -> None:
    # A short row and a long one together bind as many values as two good rows: chained into one INSERT
    # they would shift the other rows' values a column over instead of failing. (Durations set and the short
    # row's path a time, so the shifted values break no constraint and read as times where times are read.)
    ops: list[hits.Op] = [
        hits.NewView(view("ok1", duration_ms=5)),
        hits.NewView(view("short", duration_ms=5)[:-1], (), cast(str, 1_700_000_000_000)),
        hits.NewView((*view("long", duration_ms=5), 7)),
        hits.NewView(view("ok2", duration_ms=5)),
    ]
    outcomes = hits.apply_batch(conn, ops)
    assert [type(o).__name__ if o else None for o in outcomes] == [None, "ProgrammingError", "ProgrammingError", None]
    assert conn.execute("SELECT bid, hostname, date_created FROM views ORDER BY bid").fetchall() == [
        ("ok1", "example.com", 1_700_000_000_000),
        ("ok2", "example.com", 1_700_000_000_000),
    ]


def test_a_long_view_without_a_duration_fails_alone(conn: sqlite3.Connection) -> None:
    # Tracker views are bound without the duration, their values picked by position: a value past the row's
    # columns must still refuse the row, not be left out.
    ops: list[hits.Op] = [hits.NewView(view("ok1")), hits.NewView((*view("long"), 7)), hits.NewView(view("ok2"))]
    outcomes = hits.apply_batch(conn, ops)
    assert [type(o).__name__ if o else None for o in outcomes] == [None, "ProgrammingError", None]
    assert conn.execute("SELECT bid FROM views ORDER BY bid").fetchall() == [("ok1",), ("ok2",)]


def _open_temporary_files() -> list[str]:
    """The files SQLite made for itself that this process holds open (named etilqs_…, deleted once opened)."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/self/fd/{fd}")
            if "etilqs_" in target:
                found.append(target)
    return found


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs Linux's /proc")
def test_a_batch_on_a_file_keeps_no_statement_journal_and_its_replay_still_rolls_a_bad_op_back(tmp_path: Path) -> None:
    # A multi-row INSERT that may abort part-way keeps a statement journal, which past 64 KiB is a temporary
    # file; a batch rolls back whole on any error, so its statements need none. Looked for just before the
    # COMMIT (the file, once made, stays open until the transaction ends). Views of another batch's pages and
    # new ones, with their events, as the tracker's loads and unloads come.
    conn = db.open_file(str(tmp_path / "me_analytics.db"), analytics.MIGRATIONS)
    first = [hits.NewView(view(f"{i:05d}a", f"s{i % 3}", date_created=i * 10)) for i in range(2000)]
    assert hits.apply_batch(conn, first) == [None] * 2000
    seen: list[list[str]] = []
    conn.set_trace_callback(lambda sql: seen.append(_open_temporary_files()) if sql == "COMMIT" else None)
    batch: list[hits.Op] = []  # each new view between two old ones in both indexes: many old pages change
    for i in range(300):
        bid = f"{i * 6:05d}b"
        batch.append(hits.NewView(view(bid, f"s{i % 3}", date_created=i * 60 + 5), [event(bid, "k", "v")]))
        batch.append(hits.Duration(f"{i * 6:05d}a", i))
    assert hits.apply_batch(conn, batch) == [None] * 600
    assert seen == [[]]
    # The replay's statements still undo a failing op's rows alone (its view went in before its event failed).
    seen.clear()
    bad = hits.NewView(view("c1"), [event("c1", "k", "v"), (*event("c1", "k", "v")[:-1], None)])  # NOT NULL
    outcomes = hits.apply_batch(conn, [hits.NewView(view("c0")), bad, hits.NewView(view("c2"))])
    assert [type(o).__name__ if o else None for o in outcomes] == [None, "IntegrityError", None]
    assert conn.execute("SELECT bid FROM views WHERE bid LIKE 'c%' ORDER BY bid").fetchall() == [("c0",), ("c2",)]
    assert conn.execute("SELECT count(*) FROM events WHERE bid LIKE 'c%'").fetchone() == (0,)
    assert conn.execute("SELECT count(*) FROM views WHERE duration_ms IS NOT NULL").fetchone() == (300,)
    conn.close()


# --- writer.Batcher ---


class Recorder:
    """A batch function that records batch sizes and fails the ops named 'fail'."""

    def __init__(self) -> None:
        self.sizes: list[int] = []

    def __call__(self, conn: sqlite3.Connection, ops: Sequence[str]) -> list[Exception | None]:
        self.sizes.append(len(ops))
        conn.executemany("INSERT INTO t VALUES (?)", [(op,) for op in ops if op != "fail"])
        return [ValueError(op) if op == "fail" else None for op in ops]


@pytest.fixture
def database(tmp_path: Path) -> Iterator[db.Database]:
    database = db.Database(str(tmp_path / "t.db"), [db.Migration(1, ("CREATE TABLE t (v TEXT)",))])
    yield database
    database.close()


def test_concurrent_writes_share_batches_and_resolve_after_commit(database: db.Database) -> None:
    recorder = Recorder()

    async def main() -> None:
        batcher: Batcher[str] = Batcher(functools.partial(database.write, recorder), max_ops=100)
        await asyncio.gather(*(batcher.write(str(i)) for i in range(250)))
        count = await database.read(lambda c: c.execute("SELECT count(*) FROM t").fetchone()[0])
        assert count == 250, "every awaited write is readable"
        assert batcher.batches == len(recorder.sizes) < 250

    asyncio.run(main())
    assert max(recorder.sizes) <= 100, "a batch never exceeds max_ops"
    assert sum(recorder.sizes) == 250


def test_each_write_gets_its_own_outcome(database: db.Database) -> None:
    async def main() -> list[object]:
        batcher: Batcher[str] = Batcher(functools.partial(database.write, Recorder()))
        return await asyncio.gather(
            batcher.write("a"), batcher.write("fail"), batcher.write("b"), return_exceptions=True
        )

    results = asyncio.run(main())
    assert results[0] is None and results[2] is None
    assert isinstance(results[1], ValueError)


def test_a_failing_batch_function_fails_every_write_in_it(database: db.Database) -> None:
    def explode(conn: sqlite3.Connection, ops: Sequence[str]) -> list[Exception | None]:
        raise sqlite3.OperationalError("disk I/O error")

    async def main() -> list[object]:
        batcher: Batcher[str] = Batcher(functools.partial(database.write, explode))
        return await asyncio.gather(batcher.write("a"), batcher.write("b"), return_exceptions=True)

    assert all(isinstance(r, sqlite3.OperationalError) for r in asyncio.run(main()))


def test_a_full_queue_refuses_writes(database: db.Database) -> None:
    async def main() -> None:
        batcher: Batcher[str] = Batcher(functools.partial(database.write, Recorder()), max_pending=3)
        futures = [batcher.write(str(i)) for i in range(3)]
        with pytest.raises(Overloaded):
            batcher.write("one too many")
        await asyncio.gather(*futures)
        await batcher.write("room again")

    asyncio.run(main())


def test_close_flushes_queued_writes_then_refuses(database: db.Database) -> None:
    async def main() -> None:
        batcher: Batcher[str] = Batcher(functools.partial(database.write, Recorder()), max_ops=10)
        for i in range(95):
            batcher.post(str(i))
        await batcher.close()
        assert len(batcher) == 0
        with pytest.raises(Closed):
            batcher.write("late")
        count = await database.read(lambda c: c.execute("SELECT count(*) FROM t").fetchone()[0])
        assert count == 95

    asyncio.run(main())


def test_a_cancelled_waiter_does_not_disturb_the_others(database: db.Database) -> None:
    async def main() -> None:
        batcher: Batcher[str] = Batcher(functools.partial(database.write, Recorder()))
        first = batcher.write("a")
        second = batcher.write("b")
        first.cancel()
        await second
        await batcher.close()

    asyncio.run(main())


def test_write_then_tells_each_op_its_outcome_after_commit_and_survives_a_failing_callback(
    database: db.Database,
) -> None:
    told: list[tuple[str, object]] = []

    async def main() -> None:
        batcher: Batcher[str] = Batcher(functools.partial(database.write, Recorder()), max_ops=2)

        def done(op: str, outcome: Exception | None) -> None:
            if op == "b":
                raise RuntimeError("a callback that fails")
            told.append((op, type(outcome).__name__ if outcome else None))

        for op in ("b", "a", "fail", "c", "d"):  # b and a share the first batch
            batcher.write_then(op, functools.partial(done, op))
        await batcher.close()
        await asyncio.sleep(0)  # the last batch's callbacks run in the loop's next turn
        stored = await database.read(lambda c: [row[0] for row in c.execute("SELECT v FROM t ORDER BY v")])
        assert stored == ["a", "b", "c", "d"]

    asyncio.run(main())
    assert told == [("a", None), ("fail", "ValueError"), ("c", None), ("d", None)]


def test_a_linger_gathers_writes_into_full_batches_and_close_or_its_timer_ends_it(database: db.Database) -> None:
    recorder = Recorder()

    async def main() -> None:
        # A linger no test waits out: a batch is written when it is full, the batcher closes, or (the first
        # one) no batch was taken within the linger.
        batcher: Batcher[str] = Batcher(functools.partial(database.write, recorder), max_ops=10, linger_s=3600)
        await asyncio.wait_for(batcher.write("lone"), NO_HANG_S)  # after a quiet spell: written at once
        first = []
        for i in range(10):  # one at a time, over ten turns of the loop
            first.append(batcher.write(str(i)))
            await asyncio.sleep(0)
        await asyncio.wait_for(asyncio.gather(*first), NO_HANG_S)
        rest = [batcher.write(f"r{i}") for i in range(3)]
        await asyncio.sleep(0.01)
        assert not any(f.done() for f in rest), "a short batch waits"
        await batcher.close()
        await asyncio.gather(*rest)
        short: Batcher[str] = Batcher(functools.partial(database.write, recorder), max_ops=10, linger_s=0.01)
        await short.write("timed")  # at once
        await short.write("timed again")  # the timer ends a wait nothing fills
        count = await database.read(lambda c: c.execute("SELECT count(*) FROM t").fetchone()[0])
        assert count == 16

    asyncio.run(main())
    assert recorder.sizes == [1, 10, 3, 1, 1]


def test_a_weighed_batch_holds_at_most_max_ops_of_weight_and_a_heavy_op_alone(database: db.Database) -> None:
    recorder = Recorder()

    async def main() -> None:
        # Each op weighs its length; a linger no test waits out gathers them.
        batcher: Batcher[str] = Batcher(
            functools.partial(database.write, recorder), max_ops=10, linger_s=3600, weigh=len
        )
        await asyncio.wait_for(batcher.write("x"), NO_HANG_S)
        pending = [batcher.write(value) for value in ("aaaa", "bbbb", "c", "ddd", "ff")]
        # 4 + 4 + 1 + 3 + 2 = 14 >= 10: a full batch goes, 4 + 4 + 1 (with "ddd" it would pass 10)
        done, _ = await asyncio.wait(pending, timeout=NO_HANG_S, return_when=asyncio.FIRST_COMPLETED)
        assert done == set(pending[:3]), "the full batch went at once, without the ops past max_ops"
        heavy = batcher.write("e" * 12)  # 5 + 12 >= 10: full again; "ddd" and "ff", then the heavy op alone
        await asyncio.wait_for(asyncio.gather(*pending[3:], heavy), NO_HANG_S)
        await batcher.close()

    asyncio.run(main())
    assert recorder.sizes == [1, 3, 2, 1]


def test_a_batch_marks_its_hours_in_one_statement_per_table_it_inserted_into(conn: sqlite3.Connection) -> None:
    # Each statement gives the GIL up and takes it back (a thread switch each way while the event loop runs):
    # a table's new rows mark their hours in one statement. Which hours: tests/store/test_writer_dirty_hours.py.
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    assert hits.apply_batch(conn, [hits.NewView(view("a")), hits.NewView(view("b"))]) == [None, None]
    assert sum("rollup_dirty" in sql for sql in statements) == 1
    statements.clear()
    assert hits.apply_batch(conn, [hits.NewView(view("c"), [event("c", "k", "v")])]) == [None]
    assert sum("rollup_dirty" in sql for sql in statements) == 2
    conn.set_trace_callback(None)
    assert conn.execute("SELECT count(*) FROM rollup_dirty").fetchone() == (1,)


def test_a_batch_is_taken_once_a_turn_of_the_loop_queued_no_op() -> None:
    async def main(turns: int) -> list[int]:
        sizes: list[int] = []

        async def apply(ops: Sequence[int]) -> list[Exception | None]:
            sizes.append(len(ops))
            return [None] * len(ops)

        batcher: Batcher[int] = Batcher(apply)
        loop = asyncio.get_running_loop()

        def put(n: int) -> None:  # one op a turn, as a burst of requests read over several turns
            batcher.post(n)
            if n < turns:
                loop.call_soon(put, n + 1)

        put(1)
        while batcher.ops < turns:
            await asyncio.sleep(0)
        return sizes

    # A burst over 5 turns goes in one batch, taken at the first turn that brought nothing.
    assert asyncio.run(main(5)) == [5]
    # A stream that never pauses: the first batch waits `MAX_SETTLE_TURNS` turns and no more.
    sizes = asyncio.run(main(3 * MAX_SETTLE_TURNS))
    assert sizes[0] == MAX_SETTLE_TURNS + 1
    assert sum(sizes) == 3 * MAX_SETTLE_TURNS
