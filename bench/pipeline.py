"""In-process cost of the ingest pipeline: a load beacon's JSON parse and its enrichment into rows.

No HTTP and no writer: `ingest.hit.parse_hit` on the body, then
`ingest.pipeline.rows_for` with the User-Agent and Accept-Language, over
beacons drawn from bench/ingest.py's value mix (so the caches see the repeats
real traffic has), timed in CPU time of this thread. The first round fills the
caches; the later ones are the steady state a running server is in.

Usage: python bench/pipeline.py [--hits 20000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Not bench/ itself on the path: its http.py would hide the standard library's http package.
sys.path[0] = str(ROOT)


# bench/ingest.py (its wrk script, value mix and CPU accounting), as a module of the namespace package bench.
from bench import ingest as mix  # noqa: E402
from medama_core.ingest import pipeline  # noqa: E402
from medama_core.ingest.hit import parse_hit  # noqa: E402

NOW_MS = 1_733_000_000_000


def beacons(count: int) -> list[tuple[bytes, str, str]]:
    rng = random.Random(1)
    out = []
    for i in range(count):
        site = rng.choice(mix.SITES)
        body = {
            "e": "load",
            "b": f"lx{i:08d}{rng.randrange(10**9)}",
            "u": f"https://{site}{rng.choice(mix.PATHS)}",
            "r": rng.choice(mix.REFERRERS),
            "p": rng.random() < 0.5,
            "q": rng.random() < 0.7,
            "t": rng.choice(mix.TIMEZONES),
        }
        out.append((json.dumps(body).encode(), rng.choice(mix.USER_AGENTS), rng.choice(mix.LANGUAGES)))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description="in-process cost of parse + enrichment per load beacon")
    parser.add_argument("--hits", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    sites = frozenset(mix.SITES)
    bodies = beacons(args.hits)
    print(f"{args.hits} load beacons, load avg {os.getloadavg()[0]:.2f}")
    print(f"{'round':>5} {'parse µs':>9} {'enrich µs':>10} {'rows':>7} {'dropped':>8}")
    for round_ in range(1, args.rounds + 1):
        start = time.thread_time()
        hits = [parse_hit(body) for body, _ua, _lang in bodies]
        parse_us = (time.thread_time() - start) / args.hits * 1e6
        stored = dropped = 0
        start = time.thread_time()
        for hit, (_body, ua, lang) in zip(hits, bodies, strict=True):
            try:
                pipeline.rows_for(hit, ua, lang, sites, NOW_MS)
                stored += 1
            except (pipeline.Dropped, pipeline.UnknownSite):
                dropped += 1
        enrich_us = (time.thread_time() - start) / args.hits * 1e6
        print(f"{round_:>5} {parse_us:>9.2f} {enrich_us:>10.2f} {stored:>7} {dropped:>8}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
