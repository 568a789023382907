"""The analytics database's WAL checkpointed on a thread and connection of its own (store/sqlite/checkpointer.py),
beside the writer's open transaction, not in the writer's commits."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

from medama_core.backends.sqlite import WAL_CHECKPOINT_PAGES, SQLiteAnalytics
from medama_core.store.sqlite import db
from medama_core.store.sqlite.checkpointer import CHECKPOINT_PAGES, Checkpointer

ROW_BYTES = 3000  # a row's blob: about one 4 KiB page, so a row is a WAL frame or so


def _fill(conn: sqlite3.Connection, rows: int) -> None:
    conn.execute("CREATE TABLE IF NOT EXISTS filler (body BLOB)")
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany("INSERT INTO filler VALUES (randomblob(:size))", [{"size": ROW_BYTES}] * rows)
    conn.execute("COMMIT")


def _watch_steps(checkpointer: Checkpointer) -> threading.Event:
    """An event set once the checkpointer's thread has checkpointed (its `step` wrapped)."""
    checkpointed = threading.Event()
    step = checkpointer.step

    def watched() -> bool:
        done = step()
        if done:
            checkpointed.set()
        return done

    checkpointer.step = watched  # type: ignore[method-assign]
    return checkpointed


def test_a_step_copies_the_committed_frames_while_the_writer_holds_its_transaction(tmp_path: Path) -> None:
    path = str(tmp_path / "a.db")
    writer = db.connect(path)
    writer.execute("PRAGMA wal_autocheckpoint = 0")
    _fill(writer, 200)
    checkpointer = Checkpointer(path, pages=100, wal_pages=10_000)
    try:
        committed = checkpointer.pending()
        assert committed >= 200
        writer.execute("BEGIN IMMEDIATE")  # the writer's lock held, with pages written, during the checkpoint
        writer.executemany("INSERT INTO filler VALUES (randomblob(:size))", [{"size": ROW_BYTES}] * 50)
        assert checkpointer.step()
        assert checkpointer.pending() == 0  # every committed frame copied, the open transaction's not counted
        writer.execute("COMMIT")
        assert 50 <= checkpointer.pending() < committed
        assert not checkpointer.step()  # fewer frames than its limit wait: no checkpoint
    finally:
        checkpointer.stop()
        checkpointer.close_index()
    reader = sqlite3.connect(path)
    assert reader.execute("SELECT count(*) FROM filler").fetchone() == (250,)
    reader.close()
    writer.close()


def test_it_stands_aside_at_the_writers_limit_and_the_writer_restarts_the_wal(tmp_path: Path) -> None:
    path = str(tmp_path / "a.db")
    writer = db.connect(path)
    writer.execute("PRAGMA wal_autocheckpoint = 0")
    _fill(writer, 300)
    checkpointer = Checkpointer(path, pages=100, wal_pages=200)
    try:
        assert not checkpointer.step()  # 300 frames wait, but the WAL is past 200: the writer's to copy
        assert checkpointer.pending() >= 300
        writer.execute("PRAGMA wal_autocheckpoint = 200")
        _fill(writer, 1)  # this commit checkpoints, finding the lock free
        assert checkpointer.pending() == 0
        _fill(writer, 1)  # the next transaction starts the WAL again from its first frame
        assert checkpointer.frames()[0] < 10
    finally:
        checkpointer.stop()
        checkpointer.close_index()
    writer.close()


def test_the_analytics_writer_leaves_its_checkpoints_to_the_checkpointer(tmp_path: Path) -> None:
    store = SQLiteAnalytics(str(tmp_path / "me_analytics.db"))
    checkpointer = store.db.checkpointer
    assert checkpointer is not None
    checkpointed = _watch_steps(checkpointer)
    rows = CHECKPOINT_PAGES + CHECKPOINT_PAGES // 2
    assert rows < WAL_CHECKPOINT_PAGES  # the writer's own autocheckpoint does not come into it
    try:
        asyncio.run(store.db.write(_fill, rows))
        assert checkpointed.wait(30)  # the writer's call nudged the checkpointer, which copied the frames
        assert checkpointer.pending() < CHECKPOINT_PAGES
    finally:
        store.db.close()
    conn = sqlite3.connect(str(tmp_path / "me_analytics.db"))
    assert conn.execute("SELECT count(*) FROM filler").fetchone() == (rows,)
    conn.close()


def test_the_writer_wakes_the_checkpointer_only_once_a_checkpoint_is_due(tmp_path: Path) -> None:
    path = str(tmp_path / "a.db")
    writer = db.connect(path)
    writer.execute("PRAGMA wal_autocheckpoint = 0")
    checkpointer = Checkpointer(path, pages=100, wal_pages=10_000)
    checkpointed = _watch_steps(checkpointer)
    try:
        while checkpointer.pending() < 80:  # batches under the limit: each nudge only looks at the wal-index
            _fill(writer, 5)
            checkpointer.nudge()
        assert checkpointer.pending() < 100
        assert checkpointer.wakes == 0
        _fill(writer, 30)  # past the limit: this nudge wakes the thread, which copies the frames
        checkpointer.nudge()
        assert checkpointer.wakes == 1
        assert checkpointed.wait(30)
        assert checkpointer.pending() == 0
    finally:
        checkpointer.stop()
        checkpointer.close_index()
    writer.close()


# Another process's view of the wal-index's locks: SQLite's unix VFS keeps a shared lock on this byte of the
# -shm file for as long as a connection is open (UNIX_SHM_DMS in os_unix.c: (22 + 8) * 4 + 8), and a process
# that can lock it exclusively takes itself for the first user of the WAL and rebuilds the index.
_SHM_DMS_BYTE = 128
_TRY_DMS_LOCK = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
try:
    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, int(sys.argv[2]))
except OSError:
    print("held")
else:
    print("free")
"""


def _dms_lock_seen_from_another_process(shm: str) -> str:
    found = subprocess.run(
        [sys.executable, "-c", _TRY_DMS_LOCK, shm, str(_SHM_DMS_BYTE)], capture_output=True, text=True, check=True
    )
    return found.stdout.strip()


def test_stopping_the_checkpointer_leaves_the_connections_locks_on_the_wal_index(tmp_path: Path) -> None:
    path = str(tmp_path / "a.db")
    writer = db.connect(path)
    _fill(writer, 20)
    checkpointer = Checkpointer(path, pages=10, wal_pages=10_000)
    assert checkpointer.frames()[0] > 0  # its descriptor of the -shm file is open
    assert _dms_lock_seen_from_another_process(path + "-shm") == "held"
    checkpointer.stop()
    # The writer's connection is still open: its shared lock must still hold.
    assert _dms_lock_seen_from_another_process(path + "-shm") == "held"
    writer.close()
    checkpointer.close_index()
