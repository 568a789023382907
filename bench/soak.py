"""Soak: ten minutes of steady hits, dashboard reads and 1,000 idle/slowloris connections; RSS, fds, latency.

Runs the load of tests/load/soak.py (documented there) against
`medama.py start -ratelimit 0` on fresh databases and prints the samples
(RSS, sockets and other descriptors, machine load) and the summary: hit
latency percentiles, failed requests, how the slowloris connections were
closed. Exit status 1 if RSS passed 160 MiB, the non-socket descriptors grew,
sockets were not released, p99 passed 50 ms, or a request failed.

Usage: python bench/soak.py [--minutes 10] [--rate 100] [--idle 500] [--slowloris 500]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[0] = str(ROOT)  # not bench/, whose http.py would hide the standard library's http

from tests.faults.process import ServerProcess  # noqa: E402
from tests.load.soak import SoakConfig, soak  # noqa: E402

MAX_RSS_MIB = 160
MAX_P99_MS = 50.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=100.0, help="hits per second")
    parser.add_argument("--idle", type=int, default=500)
    parser.add_argument("--slowloris", type=int, default=500)
    parser.add_argument("--sample", type=float, default=30.0, help="seconds between samples")
    parser.add_argument("--memory-limit", default="", help="e.g. 16MiB: caps SQLite's page caches (settings/usage)")
    args = parser.parse_args()
    config = SoakConfig(duration_s=args.minutes * 60, hit_rate=args.rate, idle=args.idle, slowloris=args.slowloris,
                        sample_every_s=args.sample, memory_limit=args.memory_limit)  # fmt: skip
    with (
        tempfile.TemporaryDirectory(prefix="medama-soak-") as tmp,
        ServerProcess(Path(tmp), "-ratelimit", "0") as server,
    ):
        result = soak(server, config)
    print("   time     RSS   sockets  other fds  load")
    for s in result.samples:
        print(f"{s.at_s:6.0f} s {s.rss_kib / 1024:6.1f} MiB {s.sockets:7} {s.other_fds:10} {s.load_average:5.1f}")
    print(result.summary())
    steady = [s for s in result.samples if s.at_s >= config.header_timeout_s]
    problems = []
    if max(s.rss_kib for s in result.samples) / 1024 > MAX_RSS_MIB:
        problems.append("RSS over 160 MiB")
    if len({s.other_fds for s in steady}) > 1:
        problems.append("non-socket descriptors changed")
    if result.sockets_after > result.sockets_before:
        problems.append("sockets not released")
    if result.percentile(99) > MAX_P99_MS:
        problems.append(f"p99 {result.percentile(99):.1f} ms")
    if result.hit_failures or result.read_failures:
        problems.append(f"{len(result.hit_failures)} hits and {len(result.read_failures)} reads failed")
    print("result:", "OK" if not problems else "; ".join(problems))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
