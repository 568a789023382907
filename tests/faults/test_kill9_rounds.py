"""kill -9 the server three times under load: each restart opens the databases, no 204 is lost, nothing is partial.

bench/crash.py runs the same rounds 20 times (`python bench/crash.py --rounds 20`).
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.faults.crash import run_rounds

ROUNDS = 3


@pytest.mark.slow
def test_repeated_kill_9_loses_no_acknowledged_hit(tmp_path: Path) -> None:
    results = run_rounds(tmp_path, ROUNDS)
    assert len(results) == ROUNDS
    for result in results:
        assert result.exit_code == -signal.SIGKILL
        assert result.integrity == ("ok", "ok"), result
        assert result.acked > 50, f"round {result.round}: the load must have been running when the kill came"
        assert not result.lost, f"round {result.round}: {len(result.lost)} acknowledged hits lost: {result.lost[:5]}"
        assert not result.partial, f"round {result.round}: half-written: {result.partial[:5]}"
    assert results[-1].stored_views >= sum(r.acked_loads for r in results)
