"""Import benchmark: rows/s, wall time and peak RSS of `medama import` (the real CLI, as a subprocess).

Generates N page views (default 500,000) with realistic spreads: three sites,
hundreds of paths, about 50 referrers, 30 countries, 15% of the views with UTM
tags, durations on most of them, tracker-style time-ordered beacon ids, dates
over 90 days in time order (as `medama export` writes them); and N/4 custom
events belonging to some of those views. Writes them as JSON Lines and CSV,
then imports each file

  fresh     into new, empty databases (for events: holding only the views
            the events belong to, imported first, untimed)
  nonempty  into databases that already hold N/2 other views (and, for
            events, the views of the file and N/8 other events), imported
            first, untimed, so the import cannot start from an empty table

and prints rows/s, wall time, the import process's CPU time (user + system,
which moves less than wall time when other processes share the machine) and
its peak RSS (VmHWM). Each case runs `--repeat` times and the medians are
printed. No thresholds are
asserted: the numbers are for reading (the machine is shared).

Usage: python bench/import.py [--rows 500000] [--repeat 3] [--cases views.jsonl,views.csv,events.jsonl]
           [--medama PATH/medama.py]   # another checkout, for before/after in one run
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from medama_core.store.rows import EVENT_COLUMNS, VIEW_COLUMNS  # noqa: E402
from medama_core.store.sqlite import db, meta  # noqa: E402

SITES = ("example.com", "blog.example.org", "shop.example.net")
SITE_WEIGHTS = (6, 3, 1)
SEED = 20240305
START_MS = 1_709_251_200_000  # 2024-03-01T00:00:00Z
SPAN_MS = 90 * 86_400_000
UTM_SHARE = 0.15
TIMED_SHARE = 0.8  # views with a duration (the others never sent an unload)
EVENT_SHARE = 0.25  # events per view
COUNTRIES = (
    "United States", "Germany", "France", "United Kingdom", "Canada", "Netherlands", "Spain", "Italy", "Brazil",
    "India", "Japan", "Australia", "Poland", "Sweden", "Switzerland", "Austria", "Belgium", "Mexico", "Norway",
    "Denmark", "Finland", "Ireland", "Portugal", "Czechia", "Singapore", "South Korea", "Argentina", "Turkey",
    "Ukraine", "Unknown",
)  # fmt: skip
LANGUAGES = (
    ("English", "American English"), ("English", "British English"), ("German", "German"), ("French", "French"),
    ("Spanish", "Spanish"), ("Japanese", "Japanese"), ("Portuguese", "Brazilian Portuguese"), ("Dutch", "Dutch"),
    ("Italian", "Italian"), ("Polish", "Polish"),
)  # fmt: skip
BROWSERS = ("Chrome", "Firefox", "Safari", "Edge", "Opera", "Samsung Internet")
OSES = ("Windows", "MacOS", "Linux", "iOS", "Android", "ChromeOS")
DEVICES = ("Desktop", "Mobile", "Tablet")
UTM_SOURCES = ("newsletter", "twitter", "google", "facebook", "partner", "reddit")
UTM_MEDIUMS = ("email", "social", "cpc", "referral")
UTM_CAMPAIGNS = ("spring_sale", "launch", "black_friday", "webinar", "retargeting", "")
EVENT_NAMES = (("plan", ("free", "pro", "team")), ("signup", ("yes",)), ("theme", ("dark", "light")))


def referrers() -> list[tuple[str, str]]:
    named = [("www.google.com", "Google"), ("duckduckgo.com", "DuckDuckGo"), ("www.bing.com", "Bing"),
             ("news.ycombinator.com", "Hacker News"), ("t.co", "Twitter"), ("www.reddit.com", "Reddit"),
             ("www.facebook.com", "Facebook"), ("www.linkedin.com", "LinkedIn"), ("github.com", "GitHub")]  # fmt: skip
    blogs = [(f"blog{i}.example.info", "") for i in range(40)]
    return [("", "")] * 30 + named * 3 + blogs


def paths(rng: random.Random) -> list[str]:
    sections = ("blog", "docs", "products", "guides", "changelog", "about")
    out = ["/", "/pricing", "/contact", "/login", "/signup"]
    for section in sections:
        out.append(f"/{section}")
        out += [f"/{section}/{section[:3]}-{i}-{rng.randrange(10**6):x}" for i in range(60)]
    return out


def beacon_id(ms: int, rng: random.Random) -> str:
    """Like the tracker: base-36 milliseconds then random base-36 digits."""
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    stamp = ""
    while ms:
        ms, rest = divmod(ms, 36)
        stamp = digits[rest] + stamp
    return stamp + "".join(rng.choice(digits) for _ in range(9))


def generate_views(count: int, seed: int) -> list[dict[str, object]]:
    rng = random.Random(seed)
    all_paths = paths(rng)
    all_referrers = referrers()
    stamps = sorted(START_MS + rng.randrange(SPAN_MS) for _ in range(count))
    rows = []
    for ms in stamps:
        host = rng.choices(SITES, SITE_WEIGHTS)[0]
        referrer_host, referrer_group = rng.choice(all_referrers)
        language, dialect = rng.choice(LANGUAGES)
        utm = rng.random() < UTM_SHARE
        rows.append({
            "bid": beacon_id(ms, rng),
            "hostname": host,
            "pathname": all_paths[min(int(rng.paretovariate(1.2)) - 1, len(all_paths) - 1)],
            "is_unique_user": rng.random() < 0.6,
            "is_unique_page": rng.random() < 0.7,
            "referrer_host": referrer_host,
            "referrer_group": referrer_group,
            "country": rng.choice(COUNTRIES),
            "language_base": language,
            "language_dialect": dialect,
            "ua_browser": rng.choice(BROWSERS),
            "ua_os": rng.choice(OSES),
            "ua_device_type": rng.choice(DEVICES),
            "utm_source": rng.choice(UTM_SOURCES) if utm else "",
            "utm_medium": rng.choice(UTM_MEDIUMS) if utm else "",
            "utm_campaign": rng.choice(UTM_CAMPAIGNS) if utm else "",
            "duration_ms": int(rng.expovariate(1 / 40_000)) if rng.random() < TIMED_SHARE else None,
            "date_created": ms,
        })  # fmt: skip
    return rows


def generate_events(views: list[dict[str, object]], seed: int) -> list[dict[str, object]]:
    rng = random.Random(seed + 1)
    rows = []
    for number, owner in enumerate(rng.sample(views, int(len(views) * EVENT_SHARE))):
        name, values = rng.choice(EVENT_NAMES)
        ms = int(owner["date_created"]) + rng.randrange(60_000)  # type: ignore[call-overload]
        rows.append({"bid": owner["bid"], "batch_id": f"event_{number:08d}", "group_name": owner["hostname"],
                     "name": name, "value": rng.choice(values), "date_created": ms})  # fmt: skip
    rows.sort(key=lambda r: r["date_created"])  # type: ignore[arg-type, return-value]
    return rows


def iso(ms: int) -> str:
    seconds, milli = divmod(ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{milli:03d}Z"


def write_jsonl(path: Path, rows: list[dict[str, object]]) -> None:
    encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    with path.open("w", encoding="utf-8", newline="") as out:
        for row in rows:
            out.write(encode({**row, "date_created": iso(row["date_created"])}) + "\n")  # type: ignore[arg-type]


def write_csv(path: Path, rows: list[dict[str, object]], columns: tuple[str, ...]) -> None:
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(columns)
        for row in rows:
            values = [row[c] for c in columns]
            values[-1] = iso(row["date_created"])  # type: ignore[arg-type]
            writer.writerow(
                ["true" if v is True else "false" if v is False else "" if v is None else v for v in values]
            )


def make_dbs(directory: Path) -> list[str]:
    shutil.rmtree(directory, ignore_errors=True)  # left by an interrupted run
    directory.mkdir(parents=True)
    appdb = directory / "me_meta.db"
    conn = db.connect(str(appdb))
    db.migrate(conn, meta.MIGRATIONS)
    meta.insert_user(conn, "user_bench", "admin", "x", 0)
    for site in SITES:
        meta.insert_website(conn, site, "user_bench", 0)
    conn.close()
    return ["-appdb", str(appdb), "-analyticsdb", str(directory / "me_analytics.db")]


def run_import(medama: Path, file: Path, flags: list[str]) -> tuple[float, float, float]:
    """(wall seconds, CPU seconds, peak RSS MiB) of one `medama import`.

    Peak RSS is the child's VmHWM, polled from /proc: ru_maxrss would count the pages this
    (large) process shared with the child between fork and exec.
    """
    with tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, str(medama), "import", str(file), *flags], stdout=subprocess.DEVNULL, stderr=err
        )
        peak_kib = 0
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            try:
                with open(f"/proc/{proc.pid}/status", encoding="ascii") as lines:
                    peak_kib = max([peak_kib] + [int(line.split()[1]) for line in lines if line.startswith("VmHWM:")])
            except OSError:
                pass
            time.sleep(0.02)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            err.seek(0)
            raise SystemExit(f"import of {file} failed:\n{err.read().decode()}")
    return wall, usage.ru_utime + usage.ru_stime, peak_kib / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description="medama import benchmark (rows/s, wall time, peak RSS)")
    parser.add_argument("--rows", type=int, default=500_000, help="views per file (events: a quarter of that)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per case; the median is printed")
    parser.add_argument("--cases", default="views.jsonl,views.csv,events.jsonl,events.csv")
    parser.add_argument("--targets", default="fresh,nonempty")
    parser.add_argument("--medama", action="append", help="medama.py to run (repeat to compare checkouts)")
    parser.add_argument("--keep", help="directory for the generated files and databases (default: a temp dir)")
    args = parser.parse_args()
    programs = [Path(p).resolve() for p in (args.medama or [str(ROOT / "medama.py")])]
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="medama-import-bench-"))
    work.mkdir(parents=True, exist_ok=True)

    started = time.perf_counter()
    views = generate_views(args.rows, SEED)
    events = generate_events(views, SEED)
    prior = generate_views(args.rows // 2, SEED + 7)  # other bids: the N/2 rows already stored
    prior_events = generate_events(prior, SEED + 7)
    files = {
        "views.jsonl": work / "views.jsonl",
        "views.csv": work / "views.csv",
        "events.jsonl": work / "events.jsonl",
        "events.csv": work / "events.csv",
        "prior": work / "prior.csv",
        "prior_events": work / "prior_events.csv",
    }
    write_jsonl(files["views.jsonl"], views)
    write_csv(files["views.csv"], views, VIEW_COLUMNS)
    write_jsonl(files["events.jsonl"], events)
    write_csv(files["events.csv"], events, EVENT_COLUMNS)
    write_csv(files["prior"], prior, VIEW_COLUMNS)
    write_csv(files["prior_events"], prior_events, EVENT_COLUMNS)
    counts = {"views": len(views), "events": len(events)}
    del views, events, prior, prior_events
    sizes = ", ".join(f"{name} {path.stat().st_size / 2**20:.0f} MiB" for name, path in files.items())
    print(f"generated in {time.perf_counter() - started:.1f} s: {sizes}", flush=True)
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}; median of {args.repeat} runs", flush=True)
    print(
        f"{'program':<28} {'case':<13} {'target':<9} {'rows':>9} {'rows/s':>9} {'wall s':>7} {'CPU s':>6}"
        f" {'rows/CPU s':>10} {'peak RSS MiB':>13}"
    )

    run_number = 0
    for case in args.cases.split(","):
        kind = case.split(".")[0]
        for target in args.targets.split(","):
            for program in programs:
                walls, cpus, peaks = [], [], []
                for _ in range(args.repeat):
                    run_number += 1
                    flags = make_dbs(work / f"run{run_number}")
                    setup = ["prior"] if target == "nonempty" else []
                    if kind == "events":  # events belong to views: store their views first
                        setup += ["views.csv", "prior_events"] if target == "nonempty" else ["views.csv"]
                    for name in setup:
                        run_import(programs[0], files[name], flags)
                    wall, cpu, peak = run_import(program, files[case], flags)
                    walls.append(wall)
                    cpus.append(cpu)
                    peaks.append(peak)
                    for leftover in (work / f"run{run_number}").iterdir():
                        leftover.unlink()
                    (work / f"run{run_number}").rmdir()
                wall = statistics.median(walls)
                name = str(program.parent.name) + "/" + program.name
                cpu = statistics.median(cpus)
                print(
                    f"{name[-28:]:<28} {case:<13} {target:<9} {counts[kind]:>9,} {counts[kind] / wall:>9,.0f}"
                    f" {wall:>7.2f} {cpu:>6.2f} {counts[kind] / cpu:>10,.0f} {statistics.median(peaks):>13.1f}",
                    flush=True,
                )
    print(f"load average now {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
