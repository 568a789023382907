"""Websites-page benchmark: `GET /api/websites?summary=true` and the websites page in Chromium, at many sites.

The shape of an agency or a hosting provider: --sites sites (2,000) sharing
--views page views (1,000,000) over the last --days days (30), site sizes
spread log-normally around a median of about 350 views. The views are written
as JSON Lines and loaded with `medama import --create-websites` (the first
run of `medama start` creates the admin who owns them). --busy N adds one
more site with N views over the same days, as a hosting provider has a few
large sites among the small ones. After the import every hour holds rows that
were never rolled up; with --settle every closed dirty hour is then rebuilt
once (store/sqlite/rollups.py refresh, as a server's refresher would in the
background), the state of a server that has kept up: about half an hour at
the defaults on the 2-core VM. --dir keeps the databases, and --seeded
DIR/seed starts a later run from them (the 24-hour window has moved on since).

Then a `medama.py start` of each --medama checkout (default: this one) runs on
a copy of the same databases in a directory of its own, and the benchmark
prints for each:

  summary   wall time of `GET /api/websites?summary=true` over a keep-alive
            connection: the first request and the median of --summary-runs,
            the servers taking turns request by request;
  page      (one server after the other)
            Chromium opening the websites page (`/`) in a fresh context,
            logged in: the time from navigation start until every card the
            page shows has its sparkline drawn ("complete"), and until the
            cards inside the first screen (1280x800) have ("first screen"),
            with the API requests the page made and how many failed; a page
            that does not complete within --page-timeout seconds is "never".

The machine is shared: the numbers are for reading, not asserted.

Usage: python bench/websites_page.py [--sites 2000] [--views 1000000] [--days 30] [--busy 0] [--runs 5]
           [--settle] [--dir DIR] [--seeded DIR/seed] [--page-timeout 60]
           [--medama /work/main/medama.py --medama medama.py]   # before/after in one run
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The script's own directory comes first on sys.path, and bench/http.py would hide the standard
# library's http package: look in the repository root instead.
sys.path[0] = str(ROOT)

import argparse  # noqa: E402
import http.client  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import random  # noqa: E402
import shutil  # noqa: E402
import socket  # noqa: E402
import sqlite3  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

from medama_core.store.sqlite import rollups  # noqa: E402
from medama_core.transfer import format_time  # noqa: E402
from tests.browser import CHROMIUM, CHROMIUM_ARGS  # noqa: E402

SEED = 20
MEDIAN_SITE_VIEWS = 350  # the brief's shape: a long tail of small sites
BUSY_SITE = "busy.example.com"  # --busy: one large site among them, as a hosting provider has
DAY_MS = 86_400_000
FIRST_PASSWORD = "CHANGE_ME_ON_FIRST_LOGIN"
# The admin's password once changed: a dashboard that asks for a new password on first login would show
# that form instead of the websites page.
PASSWORD = "bench-websites-page"
VIEWPORT = {"width": 1280, "height": 800}
PATHS = ["/", "/about", "/contact", "/blog", *(f"/blog/post-{i}" for i in range(30))]
BROWSERS = ("Chrome", "Firefox", "Safari", "Edge")
OSES = ("Windows", "MacOS", "Linux", "iOS", "Android")
COUNTRIES = ("United States", "Germany", "France", "United Kingdom", "Canada", "India", "Japan", "Unknown")

# Every card the page shows has a drawn sparkline (an SVG with a line); returns the time since navigation.
_COMPLETE_JS = """(firstScreen) => {
  const cards = [...document.querySelectorAll("li.site-card")];
  const wanted = firstScreen ? cards.filter((c) => c.getBoundingClientRect().top < innerHeight) : cards;
  if (!wanted.length) return false;
  return wanted.every((c) => c.querySelector("svg.sparkline polyline")) ? performance.now() : false;
}"""


def site_sizes(sites: int, views: int, rng: random.Random) -> list[int]:
    """Log-normal sizes with median MEDIAN_SITE_VIEWS scaled to sum to `views` (sigma from mean/median)."""
    mean = views / sites
    sigma = math.sqrt(2 * math.log(max(mean / MEDIAN_SITE_VIEWS, 1.0001)))
    raw = [rng.lognormvariate(0, sigma) for _ in range(sites)]
    scale = views / sum(raw)
    sizes = [max(1, round(r * scale)) for r in raw]
    sizes[0] += views - sum(sizes)  # rounding leftovers go to one site
    return sizes


def write_views(path: Path, sizes: dict[str, int], days: int, now_ms: int, seed: int) -> None:
    """`sizes[hostname]` views of each site over the `days` days before `now_ms`, in time order, as ingestion
    stores them and `medama export` writes them."""
    rng = random.Random(seed)
    start = now_ms - days * DAY_MS
    stamps = sorted((start + rng.randrange(days * DAY_MS), host) for host, size in sizes.items() for _ in range(size))
    with path.open("w") as out:
        for i, (ms, hostname) in enumerate(stamps):
            r = rng.random()
            row = {
                "bid": f"{seed:x}-{i:010x}",
                "hostname": hostname,
                "pathname": rng.choice(PATHS),
                "is_unique_user": r < 0.55,
                "is_unique_page": r < 0.7,
                "referrer_host": "",
                "referrer_group": "",
                "country": rng.choice(COUNTRIES),
                "language_base": "English",
                "language_dialect": "American English",
                "ua_browser": rng.choice(BROWSERS),
                "ua_os": rng.choice(OSES),
                "ua_device_type": "Desktop",
                "utm_source": "",
                "utm_medium": "",
                "utm_campaign": "",
                "duration_ms": int(rng.expovariate(1 / 30_000)) if r < 0.8 else None,
                "date_created": format_time(ms),
            }
            out.write(json.dumps(row) + "\n")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start_server(medama: Path, data: Path, port: int) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, str(medama), "start", "-port", str(port), "-level", "warn", "-ratelimit", "0"]
    cmd += ["-appdb", str(data / "me_meta.db"), "-analyticsdb", str(data / "me_analytics.db")]
    proc = subprocess.Popen(cmd, cwd=data, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return proc
        except OSError:
            time.sleep(0.02)
    proc.kill()
    raise RuntimeError(f"{medama} did not start")


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    proc.wait(30)


def import_views(directory: Path, sizes: dict[str, int], days: int, seed: int) -> None:
    jsonl = directory / "views.jsonl"
    started = time.perf_counter()
    write_views(jsonl, sizes, days, int(time.time() * 1000), seed)
    generated = time.perf_counter() - started
    subprocess.run(
        [sys.executable, str(ROOT / "medama.py"), "import", "--create-websites", str(jsonl)]
        + ["-appdb", str(directory / "me_meta.db"), "-analyticsdb", str(directory / "me_analytics.db")],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    jsonl.unlink()
    print(
        f"  generated in {generated:.0f} s, imported in {time.perf_counter() - started - generated:.0f} s", flush=True
    )


def seed(directory: Path, args: argparse.Namespace) -> None:
    """The databases every checkout starts from: the admin, the sites and their views."""
    rng = random.Random(SEED)
    sizes = site_sizes(args.sites, args.views, rng)
    ordered = sorted(sizes)
    print(
        f"{sum(sizes):,} views for {len(sizes):,} sites over {args.days} days (views a site: median "
        f"{ordered[len(ordered) // 2]}, largest {ordered[-1]:,}, smallest {ordered[0]})",
        flush=True,
    )
    stop_server(start_server(ROOT / "medama.py", directory, free_port()))  # creates the admin
    import_views(directory, {f"site{n:04d}.example.com": size for n, size in enumerate(sizes)}, args.days, SEED)


def add_busy_site(directory: Path, args: argparse.Namespace) -> None:
    print(f"{args.busy:,} views for {BUSY_SITE} over {args.days} days", flush=True)
    import_views(directory, {BUSY_SITE: args.busy}, args.days, SEED + 1)


def settle(directory: Path) -> None:
    started = time.perf_counter()
    conn = sqlite3.connect(directory / "me_analytics.db", isolation_level=None)
    hours = rollups.refresh(conn, int(time.time() * 1000), limit=10**9)
    conn.close()
    print(f"settled: {hours:,} hours rolled up in {time.perf_counter() - started:.0f} s", flush=True)


def _call(conn: http.client.HTTPConnection, method: str, path: str, body: object) -> tuple[int, str]:
    """(status, the session cookie it set, if any)."""
    headers = {"Content-Type": "application/json", "Cookie": getattr(conn, "cookie", "")}
    conn.request(method, path, body=json.dumps(body), headers=headers)
    response = conn.getresponse()
    response.read()
    return response.status, response.getheader("set-cookie", "").split(";", 1)[0]


def login(port: int) -> http.client.HTTPConnection:
    """A connection with the admin's session; on the first run, the admin's password is changed first."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    status, cookie = _call(conn, "POST", "/api/auth/login", {"username": "admin", "password": PASSWORD})
    if status != 200:
        status, cookie = _call(conn, "POST", "/api/auth/login", {"username": "admin", "password": FIRST_PASSWORD})
        assert status == 200, status
        conn.cookie = cookie  # type: ignore[attr-defined]
        # currentPassword: servers that ask for it (an older one ignores it).
        change = {"password": PASSWORD, "currentPassword": FIRST_PASSWORD}
        assert _call(conn, "PATCH", "/api/user", change)[0] == 200
    conn.cookie = cookie  # type: ignore[attr-defined]
    return conn


def time_summaries(ports: list[int], runs: int) -> list[tuple[float, float, int]]:
    """Per server: (first request ms, median of `runs` more, sites listed). The servers take turns, request
    by request, so a busy spell on the shared machine falls on all of them alike."""
    conns = [login(port) for port in ports]
    times: list[list[float]] = [[] for _ in ports]
    sites = [0 for _ in ports]
    for _ in range(runs + 1):
        for i, conn in enumerate(conns):
            started = time.perf_counter()
            conn.request("GET", "/api/websites?summary=true", headers={"Cookie": conn.cookie})  # type: ignore[attr-defined]
            response = conn.getresponse()
            body = response.read()
            times[i].append((time.perf_counter() - started) * 1000)
            assert response.status == 200, body[:200]
            sites[i] = len(json.loads(body))
    for conn in conns:
        conn.close()
    return [(t[0], statistics.median(t[1:]), n) for t, n in zip(times, sites, strict=True)]


def time_page(port: int, runs: int, timeout_s: float) -> list[dict[str, Any]]:
    """Per run: ms to the first screen's and to every card's sparkline (None: not within `timeout_s`),
    the cards, the sparklines drawn, the API requests made and those that failed."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    base = f"http://localhost:{port}"
    results = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for _ in range(runs):
            context = browser.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]
            login_response = context.request.post(
                f"{base}/api/auth/login", data={"username": "admin", "password": PASSWORD}
            )
            assert login_response.ok, login_response.status
            page = context.new_page()
            requests: list[str] = []
            failed: list[str] = []
            page.on("request", lambda r, seen=requests: seen.append(r.url) if "/api/" in r.url else None)
            page.on("requestfailed", lambda r, seen=failed: seen.append(r.url))
            page.goto(base + "/", wait_until="commit")
            times: dict[str, float | None] = {}
            for name, first_screen in (("first", True), ("complete", False)):
                left = max(1.0, timeout_s * 1000 - page.evaluate("performance.now()"))
                try:
                    handle = page.wait_for_function(_COMPLETE_JS, arg=first_screen, polling="raf", timeout=left)
                    times[name] = handle.json_value()
                except PlaywrightTimeout:
                    times[name] = None
            cards = page.locator("li.site-card").count()
            drawn = page.locator("li.site-card svg.sparkline polyline.sparkline-line").count()
            results.append({**times, "cards": cards, "drawn": drawn, "requests": len(requests), "failed": len(failed)})
            context.close()
        browser.close()
    return results


def _ms(values: list[float | None]) -> str:
    """The median, or "never" when most runs did not get there."""
    done = [value for value in values if value is not None]
    return f"{statistics.median(done):,.0f} ms" if len(done) * 2 > len(values) else "never"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sites", type=int, default=2000)
    parser.add_argument("--views", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--runs", type=int, default=5, help="page loads per checkout")
    parser.add_argument("--summary-runs", type=int, default=15, help="summary requests per checkout, after the first")
    parser.add_argument("--busy", type=int, default=0, help=f"views of one more site, {BUSY_SITE}")
    parser.add_argument("--settle", action="store_true", help="roll up every closed hour before measuring")
    parser.add_argument("--page-timeout", type=float, default=60, help="seconds a page may take to complete")
    parser.add_argument("--medama", action="append", help="a checkout's medama.py (repeatable)")
    parser.add_argument("--dir", help="work directory (default: a new temporary one, removed afterwards)")
    parser.add_argument(
        "--seeded", help="a seed directory of an earlier run (in --dir) to start from instead of generating one"
    )
    args = parser.parse_args()
    checkouts = [Path(m).resolve() for m in args.medama or [str(ROOT / "medama.py")]]
    work = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="medama-websites-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        seeded = work / "seed"
        shutil.rmtree(seeded, ignore_errors=True)
        if args.seeded:
            age = (time.time() - (Path(args.seeded) / "me_analytics.db").stat().st_mtime) / 60
            print(f"reusing {args.seeded}, written {age:.0f} minutes ago (its last 24 hours hold that much less)")
            shutil.copytree(args.seeded, seeded)
        else:
            seeded.mkdir()
            seed(seeded, args)
        if args.busy:
            add_busy_site(seeded, args)
        if args.settle:
            settle(seeded)
        servers = []
        try:
            for number, medama in enumerate(checkouts):
                data = work / f"run{number}"
                shutil.rmtree(data, ignore_errors=True)
                shutil.copytree(seeded, data)
                port = free_port()
                servers.append((medama, port, start_server(medama, data, port)))
            summaries = time_summaries([port for _, port, _ in servers], args.summary_runs)
            for (medama, port, proc), (first, median, sites) in zip(servers, summaries, strict=True):
                pages = time_page(port, args.runs, args.page_timeout)
                stop_server(proc)  # its refresher, started by the page's stats reads, must not slow the next
                print(f"\n{medama.parent}: {sites:,} sites")
                print(
                    f"  GET /api/websites?summary=true: first {first:,.0f} ms, then median of {args.summary_runs}"
                    f" {median:,.0f} ms"
                )
                print(
                    f"  websites page (median of {len(pages)}): first screen {_ms([r['first'] for r in pages])}, "
                    f"complete {_ms([r['complete'] for r in pages])} (limit {args.page_timeout:.0f} s)"
                )
                for r in pages:
                    print(
                        f"    {r['cards']:,} cards, {r['drawn']:,} sparklines drawn, {r['requests']:,} API requests"
                        f" ({r['failed']:,} failed)"
                    )
                sys.stdout.flush()
        finally:
            for _, _, proc in servers:
                stop_server(proc)
    finally:
        if not args.dir:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
