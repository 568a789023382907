"""glibc's allocator settings (store/sqlite/malloc.py): freed pages handed back, and nothing done without glibc."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from medama_core.store.sqlite import malloc

ROOT = Path(__file__).resolve().parents[2]


def _rss_kib() -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


@pytest.mark.skipif(malloc._LIBC is None, reason="not glibc")
def test_trim_hands_freed_pages_back() -> None:
    """Memory freed between live blocks stays resident until malloc_trim gives its pages back."""
    blocks = [bytearray(1000) for _ in range(60_000)]  # 60 MB from malloc (above pymalloc's 512 bytes)
    kept = blocks[::40]  # one live block every ~10 pages: glibc cannot shrink the heap past them
    before = _rss_kib()
    del blocks
    freed = _rss_kib()
    malloc.trim()
    after = _rss_kib()
    assert freed > before - 20_000  # free() alone gave little back
    assert after < freed - 30_000, (before, freed, after)
    assert len(kept) == 1500


def test_nothing_without_glibc_or_when_the_environment_decides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert malloc.limit_arenas() is False  # the operator's setting wins
    monkeypatch.delenv("MALLOC_ARENA_MAX")
    monkeypatch.setattr(malloc, "_LIBC", None)
    assert malloc.limit_arenas() is False
    malloc.trim()  # a no-op, no error


# A child process: the threshold is the allocator's, for the whole process. It frees one 16 MB block (which
# raises glibc's own threshold to 16 MB), then holds 24 blocks of 1 MB with a small block allocated after
# each, frees the big ones, and prints how much of the 24 MB stayed resident.
_AFTER_A_BIG_FREE = """
import sys
from medama_core.store.sqlite import malloc
def rss():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
if sys.argv[1] == "fixed":
    assert malloc.fix_mmap_threshold()
big = bytearray(16 << 20)
del big
before = rss()
blocks, small = [], []
for _ in range(24):
    blocks.append(bytearray(1 << 20))
    small.append(bytearray(1000))  # above pymalloc's 512 bytes: from malloc, after each big block
held = rss()
del blocks
print(rss() - before, held - before)
"""


@pytest.mark.skipif(malloc._LIBC is None, reason="not glibc")
def test_blocks_above_the_threshold_go_back_when_freed(tmp_path: Path) -> None:
    """With the threshold fixed, a big block freed after an even bigger one has gone goes back to the system
    at once; with glibc's moving threshold it stays in the heap, pinned by the small blocks after it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    env["PYTHONPATH"] = str(ROOT)

    def kept_kib(mode: str) -> tuple[int, int]:
        done = subprocess.run(
            [sys.executable, "-c", _AFTER_A_BIG_FREE, mode], capture_output=True, text=True, env=env, check=True
        )
        kept, held = (int(x) for x in done.stdout.split())
        return kept, held

    kept, held = kept_kib("fixed")
    assert held > 20_000  # the 24 MB were resident while held
    assert kept < 4_000, (kept, held)
    kept, held = kept_kib("moving")
    assert kept > 20_000, (kept, held)  # what the fix is for: glibc alone keeps them
