"""glibc's allocator settings (store/sqlite/malloc.py): freed pages handed back, and nothing done without glibc."""

from __future__ import annotations

import pytest

from medama_core.store.sqlite import malloc


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
