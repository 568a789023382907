"""glibc's allocator kept small for a long-running server: few arenas, and freed pages handed back after big work.

Python's large objects and SQLite's page caches and sorters come from the C
allocator. glibc gives each thread that allocates at once an arena of its own
(up to 8 per core) and keeps what a thread frees there for that thread's later
use, so the server's resident memory settles at the sum of every thread's
worst moment: the refresher's, each stats reader's. Two arenas, and
`malloc_trim` after an operation long enough to have freed megabytes, bring
the resident set back after each piece of work (docs/storage.md, *Memory
bounds*). Elsewhere (musl, macOS) both are skipped: nothing else depends on
them.
"""

from __future__ import annotations

import ctypes
import os
from typing import Any, Final

# Arenas the threads share. glibc's default, 8 per core, let the 2 stats readers, the writer and the
# event loop each keep their own freed memory; 2 measured 52-59 MB at the end of settled queries
# against 65 MB (1 M views, 200k paths; bench/stats.py). 1 against 2, the refresher catching up while
# every panel ran, then the settled panels (two runs each, loaded machine): peaks of 62.2 and 69.1 MB
# against 66.8 and 67.1, then 62.1 and 67.2 against 70.0 and 65.3: at most a few MB, within the noise.
# A single arena's lock cost nothing measurable: Python's small objects never reach malloc, and the
# server's CPU time for every settled panel in turn was the same (2.6-2.8 s with either).
ARENAS: Final = 1
# An operation that ran this long (a stats request over raw rows, a refresher step) has likely freed
# megabytes; trimming then costs well under a millisecond for the server's heaps, a few percent of it.
TRIM_AFTER_S: Final = 0.02
# Blocks at least this big get pages of their own (mmap), handed back the moment they are freed. glibc's
# default starts at 128 KiB but moves: each time a mapped block is freed, the threshold rises to its size
# (up to 32 MiB), so after the first big sort or list every later one comes from the heap, where a few
# small blocks allocated meanwhile keep its pages resident (docs/storage.md, *Memory bounds*). Fixed, a sorter's
# buffer (up to its connection's cache), a big list's array or a packed run goes back when freed.
MMAP_THRESHOLD: Final = 128 << 10
_M_ARENA_MAX: Final = -8  # mallopt's parameter numbers (glibc's malloc.h)
_M_MMAP_THRESHOLD: Final = -3


def _libc() -> Any:
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt, libc.malloc_trim  # noqa: B018  present in glibc only
    except (OSError, AttributeError):
        return None
    return libc


_LIBC: Final = _libc()


def limit_arenas() -> bool:
    """Use ARENAS arenas from now on, unless MALLOC_ARENA_MAX says otherwise; True if set. Called before
    the databases' threads start (arenas that exist stay); calling it again changes nothing."""
    if _LIBC is None or "MALLOC_ARENA_MAX" in os.environ:
        return False
    return bool(_LIBC.mallopt(_M_ARENA_MAX, ARENAS))


def fix_mmap_threshold() -> bool:
    """Give blocks of MMAP_THRESHOLD bytes or more their own pages from now on, unless
    MALLOC_MMAP_THRESHOLD_ says otherwise; True if set."""
    if _LIBC is None or "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False
    return bool(_LIBC.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD))


def trim() -> None:
    """Hand the pages freed in every arena back to the system (no-op without glibc)."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)
