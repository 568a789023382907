"""A WAL checkpointer on a thread and connection of its own, beside the writer's appends.

A checkpoint copies the WAL's frames into the database file and waits for
two `fdatasync`s (the WAL's, then the database's). Run by SQLite's
autocheckpoint, it runs on the writer thread inside the commit that crossed
the limit, and every hit waiting for the next batch waits for it too. Here a
connection of its own runs `PRAGMA wal_checkpoint(PASSIVE)` once the frames
not yet copied pass CHECKPOINT_PAGES; in WAL mode a checkpoint and a writer's
appends run at once (a PASSIVE checkpoint takes no writer lock and copies only
the frames committed when it starts). Only the writer restarts the WAL from
its start, at a transaction that finds every frame copied, so the writer's own
autocheckpoint stays as the bound on the WAL's length (docs/ingestion.md,
*Checkpoints beside the writer*).
"""

from __future__ import annotations

import os
import sqlite3
import struct
import threading
from typing import Final

# Frames committed and not yet copied into the database before the checkpointer copies them: at ~0.3 frames
# a stored hit and ~30,000 hits/s, about a checkpoint every 0.4 s at full rate, so each `fdatasync` of the
# WAL carries ~16 MB rather than the ~64 MB the writer's autocheckpoint at 16,000 pages left it; fewer,
# larger checkpoints cost less CPU and disk time a page, and none of them waits on the writer thread.
CHECKPOINT_PAGES: Final = 4_000
# The checkpointer's page cache: a checkpoint reads each frame from the WAL and writes it to the database
# without the cache, so it needs only its schema.
CHECKPOINTER_CACHE_KIB: Final = 256
# The wal-index (the `-shm` file, https://www.sqlite.org/walformat.html): its header's mxFrame (the last
# committed frame, a native u32 at byte 16 of the first of the header's two copies) and the checkpoint
# information's nBackfill (the frames already copied, a native u32 right after the header's two 48-byte
# copies). Read without SQLite's locks: a torn read only moves one checkpoint by one batch.
_MX_FRAME: Final = struct.Struct("=I")
_MX_FRAME_AT: Final = 16
_BACKFILL_AT: Final = 96


def wal_frames(wal_index: bytes) -> tuple[int, int]:
    """The WAL's committed frames and, of those, the ones copied into the database, from the wal-index's
    first bytes ((0, 0) for fewer bytes than that: no WAL yet)."""
    if len(wal_index) < _BACKFILL_AT + _MX_FRAME.size:
        return 0, 0
    last: int = _MX_FRAME.unpack_from(wal_index, _MX_FRAME_AT)[0]
    copied: int = _MX_FRAME.unpack_from(wal_index, _BACKFILL_AT)[0]
    return last, min(copied, last)


class Checkpointer:
    """A thread that checkpoints `path`'s WAL on a connection of its own when the writer has left `pages`
    frames uncopied, and stands aside once the WAL holds `wal_pages` frames, the writer's wal_autocheckpoint:
    that commit's checkpoint then finds the lock free, copies the few frames left and lets the writer's next
    transaction restart the WAL (were the checkpointer to hold the lock at each such commit, the WAL would
    grow on). The writer calls `nudge` after each of its calls."""

    def __init__(self, path: str, pages: int, wal_pages: int) -> None:
        self.path = path
        self.pages = pages
        self.wal_pages = wal_pages
        self.checkpoints = 0  # checkpoints run (for tests and benches)
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._conn.execute(f"PRAGMA cache_size = -{CHECKPOINTER_CACHE_KIB}")
        self._shm: int | None = None  # the wal-index's file descriptor, opened at the first look
        self.wakes = 0  # times `nudge` woke the thread (for tests and benches)
        self._wake = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name=f"checkpoint-{os.path.basename(path)}", daemon=True)
        self._thread.start()

    def nudge(self) -> None:
        """Say the writer has committed (the writer's thread): the thread is woken only once a checkpoint is
        due, so a batch under the limit costs the writer a read of the wal-index's header (one `pread`)
        rather than a wake-up of a third thread that takes the GIL from the event loop to read it and gives
        it back (docs/ingestion.md, *Which pattern a run falls into*)."""
        if self._due(*self.frames()):
            self.wakes += 1
            self._wake.set()

    def _due(self, last: int, copied: int) -> bool:
        """A checkpoint is due: `pages` frames wait, and the WAL is still shorter than the writer's limit."""
        return last - copied >= self.pages and last < self.wal_pages

    def frames(self) -> tuple[int, int]:
        """The WAL's committed frames and the ones copied into the database ((0, 0) without a WAL)."""
        # A read on a descriptor kept open, not a mapping: a version that mapped the header and closed its
        # descriptor died of SIGBUS in 5 of 22 bench runs. Closing any descriptor of a file drops every POSIX
        # lock the process holds on it, SQLite's too, so a connection opened later likely took itself for the
        # first and shortened the file under the mapping; a read past a file's end only reads less.
        try:
            if self._shm is None:
                self._shm = os.open(self.path + "-shm", os.O_RDONLY)
            head = os.pread(self._shm, _BACKFILL_AT + _MX_FRAME.size, 0)
        except OSError:
            return 0, 0
        return wal_frames(head)

    def pending(self) -> int:
        """Frames of the WAL not yet copied into the database (0 without a WAL)."""
        last, copied = self.frames()
        return last - copied

    def step(self) -> bool:
        """Checkpoint once if `pages` frames wait and the WAL is shorter than `wal_pages` (the checkpointer's
        thread, or a test's); True if it did."""
        if not self._due(*self.frames()):
            return False
        try:
            self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.Error:  # busy or out of room: the next nudge, or the writer's autocheckpoint, copies them
            return False
        self.checkpoints += 1
        return True

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            if self._stopping:
                return
            self.step()

    def stop(self) -> None:
        """End the thread (after a checkpoint it is running) and close its connection. The wal-index's
        descriptor stays open: call `close_index` once every connection of this process to the database is
        closed."""
        self._stopping = True
        self._wake.set()
        self._thread.join()
        self._conn.close()

    def close_index(self) -> None:
        """Close the wal-index's descriptor. Closing any descriptor of a file ends every POSIX lock this
        process holds on it, and SQLite's connections hold theirs on the `-shm` file (the shared lock that
        tells other processes the wal-index is in use, among them): while one of them is open, another
        process could take itself for the first user of the WAL and rebuild the index under it."""
        if self._shm is not None:
            os.close(self._shm)
            self._shm = None
