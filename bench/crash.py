"""kill -9 rounds: SIGKILL the server again and again under load; count acknowledged hits lost and half-written rows.

Runs the rounds of tests/faults/crash.py (documented there) on one pair of
databases: start, eight keep-alive senders posting loads (with properties),
custom events and unloads, SIGKILL at a random moment, then integrity checks
and a search for every hit that got a 204. Prints one line per round and the
totals. Exit status 1 if a hit was lost, a row was half-written or a database
failed its integrity check.

Usage: python bench/crash.py [--rounds 20] [--senders 8] [--seed N]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[0] = str(ROOT)  # not bench/, whose http.py would hide the standard library's http

from tests.faults.crash import run_rounds  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--senders", type=int, default=8)
    parser.add_argument("--seed", type=int, default=None, help="default: a random one, printed")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    print(f"seed {seed}, {args.rounds} rounds, {args.senders} senders")
    with tempfile.TemporaryDirectory(prefix="medama-crash-") as tmp:
        results = run_rounds(Path(tmp), args.rounds, senders=args.senders, seed=seed)
    bad = 0
    for r in results:
        print(
            f"round {r.round + 1:2}: killed after {r.run_s:.2f} s (exit {r.exit_code}); sent {r.sent}, "
            f"acknowledged {r.acked} ({r.acked_loads} page views); views on disk {r.stored_views}; "
            f"lost {len(r.lost)}; half-written {len(r.partial)}; integrity {'/'.join(r.integrity)}"
        )
        bad += len(r.lost) + len(r.partial) + (r.integrity != ("ok", "ok"))
        for item in (r.lost + r.partial)[:5]:
            print("    ", item)
    acked = sum(r.acked for r in results)
    lost = sum(len(r.lost) for r in results)
    print(f"total: {len(results)} kill -9 rounds, {acked} acknowledged hits, {lost} lost, "
          f"{sum(len(r.partial) for r in results)} half-written")  # fmt: skip
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
