"""Network fuzz run: 100,000 malformed and random requests against a real server process, then it must still serve.

Uses the generators and the judge of tests/security/fuzzer.py (documented
there): each case on its own connection, every answer a well-framed response
below 500 with the JSON error shape and `nosniff`, no hang, no file leaked.
Starts `medama.py start -ratelimit 0` on fresh databases, logs in as the
default admin (so the authenticated routes are fuzzed too) and registers
`example.com`. Prints the status counts, the rate, the problems (at most 50 in
full), whether the server survived, its RSS and descriptors, and a final
health/hit/stats check. Exit status 1 if anything was wrong.

Usage: python bench/fuzz.py [--cases 100000] [--seed N] [--workers 8]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[0] = str(ROOT)  # not bench/, whose http.py would hide the standard library's http

from tests.faults.process import ADMIN, ServerProcess  # noqa: E402
from tests.helpers import Client  # noqa: E402
from tests.security import fuzzer  # noqa: E402


def still_serving(port: int, cookie: str) -> list[str]:
    problems = []
    client = Client(port)
    try:
        if client.get("/api/health").status != 200:
            problems.append("health check failed")
        body = {"e": "load", "b": "after-fuzz", "u": f"https://{fuzzer.SITE}/after-fuzz", "r": "", "p": True,
                "q": True, "t": "Europe/Paris"}  # fmt: skip
        headers = {"User-Agent": fuzzer.CHROME, "Accept-Language": "en", "Content-Type": "application/json"}
        if client.post("/api/event/hit", body=json.dumps(body).encode(), headers=headers).status != 204:
            problems.append("a valid hit was refused")
        pages = client.get(
            f"/api/website/{fuzzer.SITE}/pages?path[eq]=/after-fuzz", headers={"Cookie": f"_me_sess={cookie}"}
        )
        if pages.status != 200 or [row["path"] for row in pages.json()] != ["/after-fuzz"]:
            problems.append(f"stats after the run: {pages.status} {pages.body[:200]!r}")
    finally:
        client.close()
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=None, help="default: a random one, printed")
    parser.add_argument("--workers", type=int, default=8)
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    print(f"seed {seed}, {args.cases} cases, {args.workers} connections at a time")
    with (
        tempfile.TemporaryDirectory(prefix="medama-fuzz-") as tmp,
        ServerProcess(Path(tmp), "-ratelimit", "0") as server,
    ):
        client = Client(server.port)
        client.login(*ADMIN)
        client.post("/api/websites", json_body={"hostname": fuzzer.SITE})
        cookie = client.cookies["_me_sess"]
        client.close()
        rss_before, fds_before = server.rss_kib(), server.fds()
        report = fuzzer.run(server.port, fuzzer.Fuzzer(seed, cookie).cases(args.cases), workers=args.workers)
        print(report.summary())
        alive = server.alive()
        print(f"server alive: {alive}; RSS {rss_before / 1024:.1f} -> {server.rss_kib() / 1024:.1f} MiB, "
              f"fds {fds_before} -> {server.fds()}" if alive else "server alive: NO")  # fmt: skip
        problems = still_serving(server.port, cookie) if alive else ["the server crashed"]
        log = server.log_text()
        if "unhandled exception" in log or "Traceback" in log:
            problems.append("the log has unhandled exceptions")
    for kind, problem, data in report.problems:
        print(f"  {kind}: {problem}: {data[:400]!r}")
    problems += [f"{report.problem_count} problem answers"] if report.problem_count else []
    print("result:", "OK" if not problems else "; ".join(problems))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
