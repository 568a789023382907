"""Ingestion benchmark: tracker hits per second end-to-end over HTTP, with latency and server memory.

Starts `medama.py start -ratelimit 0 -level warn` as a subprocess on fresh
databases (three registered sites, default IP block presets), then drives it
with Debian's `wrk` and a Lua script that builds every request anew:
realistic User-Agents, Accept-Language headers, page URLs with and without
UTM tags, referrers (half of them a page of the same site) and time zones, and tracker-style beacon ids
(base-36 milliseconds then random digits, time-ordered like
`Date.now().toString(36) + Math.random().toString(36)`).

Scenarios, each after a warm-up:
  ping     GET /api/event/ping, the cheapest route: the server's ceiling here
  load     POST load beacons (every one a new page view row)
  pairs    each connection sends a load and then the unload of the same id
  bot      loads from a bot's User-Agent: dropped (204) and counted
  unknown  loads for sites nobody registered: 404, counted under 50 names
  bad      loads with a field of the wrong type: 400, counted as bad_payload
With `--ratelimit N` the server limits each network to N requests a minute,
so nearly every request of a run is a 429 counted as rate_limited. With
`--clickhouse` the analytics go to a clickhouse-server started here in a
temporary folder (tests/engines.py) and stopped after: the table adds that
server's CPU per request (its merges of the run's parts included as far as
they happen within the run and the second after it), measured after
`--clickhouse-warmup` seconds of load hits (a new server's first INSERTs cost
it several times more). `--clickhouse-data DIR` puts the server's data on
DIR's filesystem instead (a tmpfs: without the cost of creating each part's
files, which on this machine's ext4 is most of the server's CPU; docs/scale.md). With
`--workers N` the server runs N processes (`-workers N`); CPU time and peak
RSS are then summed over all of them.

It prints requests/s, hits/s, p50/p99 latency from wrk, peak server RSS,
the rows stored, the server's CPU time per request (which, unlike
requests/s, hardly moves when other processes share the machine) and the
1-minute load average. No thresholds are asserted: the numbers are for reading.

With `--behind-proxy` the server trusts loopback as a proxy
(`-trustedproxies loopback`), so wrk's connections, all from one address,
are not capped at an eighth of `-maxconnections` (above 512 the rest would
be cheap 503s). A line per scenario gives the CPU per stored view (load:
per hit; pairs: per load and its unload), the figure to compare when some
requests are refused.

Usage: python bench/ingest.py [--duration 10] [--connections 128] [--threads 1] [--clickhouse] [--behind-proxy]
Needs `wrk` (apt-get install wrk).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
sys.path[0] = str(ROOT)  # not bench/ itself: its http.py would hide the standard library http package

from medama_core.store.clickhouse.client import Client  # noqa: E402
from medama_core.store.sqlite import db, meta  # noqa: E402
from tests.engines import TEST_PASSWORD, TEST_USER, Server, clickhouse_server  # noqa: E402

SITES = ("example.com", "blog.example.org", "shop.example.net")

USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/123.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 "
    "Edg/124.0.0.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 "
    "Safari/605.1.15",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 "
    "Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.4; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 "
    "Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 "
    "Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 "
    "Safari/604.1",
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/24.0 "
    "Chrome/117.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 13; SM-X200) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/123.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Android 14; Mobile; rv:125.0) Gecko/125.0 Firefox/125.0",
    "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 "
    "OPR/109.0.0.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 "
    "YaBrowser/24.4.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Vivaldi/6.6 Chrome/124.0.0.0 "
    "Safari/537.36",
)
LANGUAGES = (
    "en-US,en;q=0.9",
    "en-GB,en;q=0.9",
    "de-DE,de;q=0.9,en;q=0.8",
    "fr-FR,fr;q=0.9,en-US;q=0.8,en;q=0.7",
    "es-ES,es;q=0.9",
    "ja,en-US;q=0.9,en;q=0.8",
    "pt-BR,pt;q=0.9,en;q=0.8",
    "zh-CN,zh;q=0.9",
    "nl-NL,nl;q=0.9,en;q=0.8",
    "it-IT,it;q=0.9",
    "pl-PL,pl;q=0.9",
    "en",
)
PATHS = (
    "/",
    "/about",
    "/pricing",
    "/blog/",
    "/blog/how-we-built-it",
    "/blog/2024/05/release-notes",
    "/docs/getting-started",
    "/docs/api/events",
    "/contact",
    "/products/widget-42",
    "/search?q=analytics",
    "/pricing?utm_source=newsletter&utm_medium=email&utm_campaign=spring",
    "/?utm_source=twitter&utm_medium=social",
    "/landing?utm_source=google&utm_medium=cpc&utm_campaign=brand%20terms",
)
REFERRERS = (
    "",
    "",
    "",
    "https://www.google.com/",
    "https://www.bing.com/search?q=medama",
    "https://duckduckgo.com/",
    "https://news.ycombinator.com/item?id=40000000",
    "https://www.reddit.com/r/selfhosted/comments/abc/medama/",
    "https://t.co/xyz",
    "https://github.com/medama-io/medama",
    "https://example.com/blog/",
    "https://l.facebook.com/l.php?u=x",
)
TIMEZONES = (
    "America/New_York",
    "Europe/London",
    "Europe/Berlin",
    "Europe/Paris",
    "Asia/Tokyo",
    "America/Los_Angeles",
    "Australia/Sydney",
    "Asia/Kolkata",
    "America/Sao_Paulo",
    "Europe/Amsterdam",
)

# Requests between a load and its unload in the pairs scenario: enough for the load to have committed.
UNLOAD_LAG = 512
# Seconds of load hits sent to a new clickhouse-server before the measured scenarios: its first INSERTs
# cost it up to several times the CPU of later ones (mostly system time; 18.16 on this machine, batches of
# 128: 53 and 254 ms per batch over the first 10-20 against 15-30 later), a one-off of a fresh process that
# a 2 s warm-up left in the first scenario.
CLICKHOUSE_WARMUP_S = 20

LUA = r"""
local mode = "%(mode)s"
local sites = {%(sites)s}
local uas = {%(uas)s}
local langs = {%(langs)s}
local paths = {%(paths)s}
local refs = {%(refs)s}
local tzs = {%(tzs)s}
local digits = "0123456789abcdefghijklmnopqrstuvwxyz"
local threads = {}
local counter, start_ms, tid = 0, %(start_ms)d, 0
-- pairs: an unload follows its load %(lag)d requests later, as a page is left after its load committed
local unloads, first, last = {}, 1, 0

local function base36(n)
  local s = ""
  repeat
    local d = n %% 36
    s = string.sub(digits, d + 1, d + 1) .. s
    n = math.floor(n / 36)
  until n == 0
  return s
end

local function pick(t) return t[math.random(#t)] end

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(tid * 7919 + os.time())
end

local function post(body, ua, lang)
  return "POST /api/event/hit HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: " .. ua ..
    "\r\nAccept-Language: " .. lang .. "\r\nContent-Type: text/plain;charset=UTF-8\r\nOrigin: https://example.com" ..
    "\r\nContent-Length: " .. #body .. "\r\n\r\n" .. body
end

function request()
  if mode == "ping" then
    return "GET /api/event/ping?u=" .. pick(sites) .. pick(paths):gsub("[?&=%%%% ]", "_") ..
      " HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: " .. pick(uas) .. "\r\n\r\n"
  end
  if last - first + 1 > %(lag)d then
    local req = unloads[first]
    unloads[first] = nil
    first = first + 1
    return req
  end
  counter = counter + 1
  -- Date.now().toString(36) + Math.random().toString(36).substr(2): time-ordered, then random
  local bid = base36(start_ms + counter * 3) .. base36(tid) .. base36(math.random(0, 2176782335)) ..
    base36(math.random(0, 60466175))
  local ua, lang = pick(uas), pick(langs)
  local site = pick(sites)
  if mode == "bot" then ua = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)" end
  if mode == "unknown" then site = "unregistered" .. math.random(1, 50) .. ".example" end
  if mode == "bad" then
    return post('{"b":"' .. bid .. '","e":"load","u":"https://' .. site .. '/","p":"yes"}', ua, lang)
  end
  -- Half the views come from another page of the same site by a link (an internal referrer: its path is
  -- stored for entry and exit pages), the others from the referrers above (a third of them none).
  local ref = math.random() < 0.5 and "https://" .. site .. pick(paths) or pick(refs)
  local body = '{"b":"' .. bid .. '","e":"load","u":"https://' .. site .. pick(paths) ..
    '","r":"' .. ref .. '","p":' .. (math.random() < 0.3 and "true" or "false") ..
    ',"q":' .. (math.random() < 0.6 and "true" or "false") .. ',"t":"' .. pick(tzs) .. '"}'
  if mode == "pairs" then
    last = last + 1
    unloads[last] = post('{"b":"' .. bid .. '","e":"unload","m":' .. math.random(200, 600000) .. '}', ua, lang)
  end
  return post(body, ua, lang)
end
"""


def lua_list(items: tuple[str, ...]) -> str:
    return ", ".join('"' + item.replace("\\", "\\\\").replace('"', '\\"') + '"' for item in items)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"nothing listening on port {port}")


def proc_status(pid: int, field: str) -> int:
    """A `/proc/<pid>/status` memory field in KiB (VmRSS now, VmHWM peak)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def server_pids(pid: int) -> list[int]:
    """The server process and its children (the -workers processes)."""
    found = [pid]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def wait_workers(pid: int, workers: int, timeout: float = 60.0) -> None:
    """Until the server has its -workers children, and a moment for them to start listening."""
    deadline = time.monotonic() + timeout
    while len(server_pids(pid)) < workers:
        if time.monotonic() > deadline:
            raise RuntimeError("the server's worker processes did not start")
        time.sleep(0.05)
    if workers > 1:
        time.sleep(3.0)  # a child imports, opens the databases and listens within ~1-2 s here


def prepare(workdir: Path) -> None:
    """Fresh databases with one user and the benchmark's sites; the IP block presets keep their defaults (on)."""
    conn = db.connect(str(workdir / "me_meta.db"))
    db.migrate(conn, meta.MIGRATIONS)
    meta.insert_user(conn, meta.new_user_id(), "admin", "not-a-hash", 0)
    user_id = conn.execute("SELECT id FROM users").fetchone()[0]
    for site in SITES:
        meta.insert_website(conn, site, user_id, 0)
    conn.close()


def run_wrk(port: int, mode: str, duration: int, connections: int, threads: int, script_dir: Path) -> dict[str, float]:
    script = script_dir / f"{mode}.lua"
    script.write_text(
        LUA
        % {
            "mode": mode,
            "sites": lua_list(SITES),
            "uas": lua_list(USER_AGENTS),
            "langs": lua_list(LANGUAGES),
            "paths": lua_list(PATHS),
            "refs": lua_list(REFERRERS),
            "tzs": lua_list(TIMEZONES),
            "start_ms": int(time.time() * 1000),
            "lag": UNLOAD_LAG,
        }
    )
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency", "-s", str(script)]
    out = subprocess.run([*cmd, f"http://127.0.0.1:{port}/"], capture_output=True, text=True, check=True).stdout
    found = re.search(r"(\d+) requests in ([\d.]+)s", out)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if found is None or rps is None:
        raise RuntimeError(f"cannot read wrk output:\n{out}")
    result = {"requests": float(found.group(1)), "rps": float(rps.group(1))}
    units = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    for pct in ("50", "99"):
        match = re.search(rf"\s{pct}%\s+([\d.]+)(us|ms|s)\b", out)
        result[f"p{pct}_ms"] = float(match.group(1)) * units[match.group(2)] if match else float("nan")
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    result["non2xx"] = float(non2xx.group(1)) if non2xx else 0.0
    result["socket_errors"] = 1.0 if errors else 0.0
    return result


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its threads so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def thread_cpu(pid: int) -> tuple[float, float, float, float]:
    """CPU seconds so far of a process's main (event-loop) thread, user and system, and of its other threads
    (the SQLite writer, readers, background jobs), user and system; threads that ended are not counted."""
    tick = os.sysconf("SC_CLK_TCK")
    loop_user = loop_sys = other_user = other_sys = 0.0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        user, system = int(fields[11]) / tick, int(fields[12]) / tick
        if int(task.name) == pid:
            loop_user, loop_sys = user, system
        else:
            other_user += user
            other_sys += system
    return loop_user, loop_sys, other_user, other_sys


def context_switches(pid: int) -> int:
    """Context switches so far of every thread of a process, voluntary and not: each hand-off of the GIL
    between the event loop and the writer thread is one or two, a count the machine's load moves little."""
    switches = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            status = (task / "status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if "ctxt_switches:" in line:
                switches += int(line.split()[1])
    return switches


def count_rows(workdir: Path, ch: Client | None = None) -> tuple[int, int]:
    """(views, views with a duration) stored so far."""
    if ch is not None:
        views, durations = ch.rows("SELECT sum(sign), sum(sign * isNotNull(duration_ms)) FROM views")[0]
        return int(views), int(durations)
    conn = sqlite3.connect(workdir / "me_analytics.db")
    views = conn.execute("SELECT count(*) FROM views").fetchone()[0]
    durations = conn.execute("SELECT count(*) FROM views WHERE duration_ms IS NOT NULL").fetchone()[0]
    conn.close()
    return views, durations


def main() -> int:
    parser = argparse.ArgumentParser(description="ingestion benchmark (hits/s over HTTP)")
    parser.add_argument("--duration", type=int, default=10, help="seconds per measured run")
    parser.add_argument("--connections", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (the server has the other core)")
    parser.add_argument("--modes", default="ping,load,pairs", help="also: bot, unknown, bad")
    parser.add_argument("--ratelimit", type=int, default=0, help="the server's -ratelimit (0: none)")
    parser.add_argument(
        "--behind-proxy",
        action="store_true",
        help="-trustedproxies loopback: wrk's connections as a proxy's, not capped at an eighth of -maxconnections "
        "(above 512 connections the rest would be 503s)",
    )
    parser.add_argument("--workers", type=int, default=1, help="the server's -workers (processes)")
    parser.add_argument("--profile", help="sample the server with py-spy; collapsed stacks go to PROFILE.<mode>.txt")
    parser.add_argument(
        "--cprofile",
        help="run the server under cProfile (event-loop thread only) and print µs per request by function; "
        "use with one mode, e.g. --modes load (the warm-up run is counted too)",
    )
    parser.add_argument("--clickhouse", action="store_true", help="analytics on a clickhouse-server started here")
    parser.add_argument(
        "--clickhouse-warmup",
        type=int,
        default=CLICKHOUSE_WARMUP_S,
        help="seconds of load hits before the scenarios with --clickhouse (a new server's first INSERTs cost more)",
    )
    parser.add_argument(
        "--clickhouse-data",
        help="with --clickhouse: the folder on whose filesystem the server keeps its data (a new folder in it, removed"
        " after), e.g. a tmpfs, to tell the filesystem's cost of creating each part's files from the rest",
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install wrk", file=sys.stderr)
        return 1
    rows: list[tuple[str, dict[str, float]]] = []
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        workdir = Path(tmp)
        analytics = str(workdir / "me_analytics.db")
        ch_server: Server | None = None
        ch: Client | None = None
        if args.clickhouse:
            data_dir = str(workdir / "clickhouse")
            if args.clickhouse_data:
                data_dir = tempfile.mkdtemp(prefix="medama-ingest-clickhouse-", dir=args.clickhouse_data)
                stack.callback(shutil.rmtree, data_dir, True)  # after the server stopped (the stack unwinds in turn)
            ch_server = stack.enter_context(clickhouse_server(data_dir))
            ch_server.query("CREATE DATABASE bench")
            credentials = f"{quote(TEST_USER, safe='')}:{quote(TEST_PASSWORD, safe='')}"
            analytics = f"clickhouse://{credentials}@127.0.0.1:{ch_server.http_port}/bench"
            ch = Client.connect(ch_server.url("bench"))
            stack.callback(ch.close)
        prepare(workdir)
        port = free_port()
        prof = ["-m", "cProfile", "-o", args.cprofile] if args.cprofile else []
        cmd = [sys.executable, *prof, str(ROOT / "medama.py"), "start", "-port", str(port), "-host", "127.0.0.1"]
        # With workers the children's "worker stopped" lines (info) say how many hits each stored.
        level = "info" if args.workers > 1 else "warn"
        cmd += ["-level", level, "-ratelimit", str(args.ratelimit), "-workers", str(args.workers)]
        if args.behind_proxy:
            cmd += ["-trustedproxies", "loopback"]
        cmd += ["-appdb", str(workdir / "me_meta.db"), "-analyticsdb", analytics]
        log = (workdir / "server.log").open("wb")
        server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log, cwd=workdir)
        try:
            wait_port(port)
            pid = server.pid
            wait_workers(pid, args.workers)
            pids = server_pids(pid)
            idle_kib = sum(proc_status(one, "VmRSS") for one in pids)
            if ch_server and args.clickhouse_warmup > 0:
                ch_before = cpu_seconds(ch_server.proc.pid)
                warm = run_wrk(port, "load", args.clickhouse_warmup, args.connections, args.threads, workdir)
                ch_warm = (cpu_seconds(ch_server.proc.pid) - ch_before) / max(warm["requests"], 1) * 1e6
                print(
                    f"ClickHouse warm-up: {args.clickhouse_warmup} s of load hits, {warm['requests']:.0f} requests,"
                    f" {ch_warm:.1f} µs of its CPU per request (not counted below)",
                    flush=True,
                )
            for mode in args.modes.split(","):
                warm = run_wrk(port, mode, 2, args.connections, args.threads, workdir)  # warm-up: caches, page cache
                before = count_rows(workdir, ch)
                spy = _profile(pid, f"{args.profile}.{mode}.txt", args.duration) if args.profile else None
                cpu_before = sum(cpu_seconds(one) for one in pids)
                parent_before = cpu_seconds(pid)
                threads_before = thread_cpu(pid)
                switches_before = context_switches(pid)
                ch_before = cpu_seconds(ch_server.proc.pid) if ch_server else 0.0
                result = run_wrk(port, mode, args.duration, args.connections, args.threads, workdir)
                result["cpu_s"] = sum(cpu_seconds(one) for one in pids) - cpu_before
                result["parent_cpu_s"] = cpu_seconds(pid) - parent_before
                for name, now, then in zip(
                    ("loop_user", "loop_sys", "other_user", "other_sys"), thread_cpu(pid), threads_before, strict=True
                ):
                    result[name] = now - then
                result["switches"] = context_switches(pid) - switches_before
                result["warmup"] = warm["requests"]
                if spy is not None:
                    spy.wait(30)
                time.sleep(1.0 if ch_server else 0.2)
                if ch_server:
                    result["ch_cpu_s"] = cpu_seconds(ch_server.proc.pid) - ch_before
                after = count_rows(workdir, ch)
                result["views"] = after[0] - before[0]
                result["durations"] = after[1] - before[1]
                result["hwm_mib"] = sum(proc_status(one, "VmHWM") for one in pids) / 1024
                result["loadavg"] = os.getloadavg()[0]
                rows.append((mode, result))
        finally:
            server.terminate()
            server.wait(30)
            log.close()
        server_lines = (workdir / "server.log").read_text().splitlines()
        children_stored = [line for line in server_lines if '"worker stopped"' in line]
        warnings = [line for line in server_lines if '"level":"warn"' in line or '"level":"error"' in line]
        if warnings:
            print(f"the server logged {len(warnings)} warnings and errors; the first: {warnings[0][:400]}")
        stored_total = count_rows(workdir, ch)[0]
    for line in children_stored:
        print(f"over the whole run ({stored_total} views stored in all): {line}")
    if args.cprofile:
        total = sum(r["requests"] for _, r in rows) + sum(r.get("warmup", 0.0) for _, r in rows)
        print_profile(args.cprofile, total)
    print(
        f"\n{args.connections} connections, wrk -t{args.threads}, {args.duration} s per run, "
        f"{os.cpu_count()} cores, -workers {args.workers}; idle RSS {idle_kib / 1024:.1f} MiB\n"
    )
    header = f"{'scenario':8} {'req/s':>9} {'hits/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'non-2xx':>8} {'stored':>9}"
    ch_head = f" {'ClickHouse CPU us/req':>22}" if args.clickhouse else ""
    print(header + f" {'peak RSS MiB':>13} {'server CPU us/req':>18}{ch_head} {'load avg':>9}")
    for mode, r in rows:
        hits = r["rps"] / 2 if mode == "pairs" else r["rps"]
        label = "pairs/s" if mode == "pairs" else ""
        stored = "-" if mode == "ping" else f"{r['views']:.0f}"
        cpu_us = r["cpu_s"] / max(r["requests"], 1) * 1e6
        ch_us = f" {r['ch_cpu_s'] / max(r['requests'], 1) * 1e6:>22.1f}" if "ch_cpu_s" in r else ""
        print(
            f"{mode:8} {r['rps']:>9.0f} {hits:>9.0f} {r['p50_ms']:>7.2f} {r['p99_ms']:>7.2f} {r['non2xx']:>8.0f} "
            f"{stored:>9} {r['hwm_mib']:>13.1f} {cpu_us:>18.1f}{ch_us} {r['loadavg']:>9.2f} {label}"
        )
        per = 1e6 / max(r["requests"], 1)
        print(
            f"{'':8} of which the event-loop thread {r['loop_user'] * per:.1f} user + {r['loop_sys'] * per:.1f} system,"
            f" other threads (the writer) {r['other_user'] * per:.1f} user + {r['other_sys'] * per:.1f} system us/req;"
            f" {r['switches'] / max(r['requests'], 1):.2f} context switches/req"
            + (" (the parent process)" if args.workers > 1 else "")
        )
        if args.workers > 1:
            parent_us = r["parent_cpu_s"] / max(r["requests"], 1) * 1e6
            print(f"{'':8} of which the parent process (its own requests and the one writer): {parent_us:.1f} us/req")
        if mode != "ping" and r["views"]:
            per_stored = 1e6 / r["views"]
            ch_stored = f", ClickHouse {r['ch_cpu_s'] * per_stored:.1f}" if "ch_cpu_s" in r else ""
            print(f"{'':8} CPU per stored view: server {r['cpu_s'] * per_stored:.1f}{ch_stored} us")
        if mode == "pairs":
            print(
                f"{'':8} unloads applied to stored views: {r['durations']:.0f} of {r['views']:.0f} "
                f"(the last {UNLOAD_LAG} loads of each wrk thread have no unload yet when the run ends)"
            )
    return 0


# The steps of a request, each the cumulative time of one function (file name, function name) in the
# profile; a step's time includes the ones listed under it, so the table shows each step minus those.
PROFILE_STEPS = (
    ("HTTP server: read, frame, answer (http/)", ("server.py", "data_received"), None),
    ("app: route, authorise, decorate, log (app.py)", ("app.py", "handle"), "HTTP server: read, frame, answer (http/)"),
    ("endpoint wiring (api/events.py)", ("events.py", "post_hit"), "app: route, authorise, decorate, log (app.py)"),
    (
        "ping answer (api/events.py get_ping)",
        ("events.py", "get_ping"),
        "app: route, authorise, decorate, log (app.py)",
    ),
    # The fast path (App.answer_now): the same steps without the general machinery.
    (
        "app fast path: decorate, log (app.py answer_now)",
        ("app.py", "answer_now"),
        "HTTP server: read, frame, answer (http/)",
    ),
    (
        "ping answer (api/events.py ping_now)",
        ("events.py", "ping_now"),
        "app fast path: decorate, log (app.py answer_now)",
    ),
    (
        "endpoint wiring (api/events.py hit_op)",
        ("events.py", "hit_op"),
        "app fast path: decorate, log (app.py answer_now)",
    ),
    ("JSON parse + hit checks (ingest/hit.py)", ("hit.py", "parse_hit"), "endpoint wiring (api/events.py hit_op)"),
    ("client IP, rate limit", ("events.py", "client"), "endpoint wiring (api/events.py hit_op)"),
    ("enrichment (pipeline)", ("pipeline.py", "rows_for"), "endpoint wiring (api/events.py hit_op)"),
    ("client IP block lists", ("events.py", "_blocked"), "endpoint wiring (api/events.py hit_op)"),
    ("hand-off to the writer", ("events.py", "store"), "app fast path: decorate, log (app.py answer_now)"),
    ("writer's drain task: hand the batch over, take it back (writer.py)", ("writer.py", "_run"), None),
    (
        "answer a stored hit once its batch committed (server.py _deferred_done)",
        ("server.py", "_deferred_done"),
        "writer's drain task: hand the batch over, take it back (writer.py)",
    ),
)


def print_profile(path: str, requests: float, top: int = 30) -> None:
    """The cProfile dump at `path` as µs of the event-loop thread per request: by step, then by function."""
    import pstats

    stats = pstats.Stats(path).stats  # type: ignore[attr-defined]
    cum: dict[tuple[str, str], float] = {}
    for (file, _line, name), (_cc, _calls, _own, total, _callers) in stats.items():
        key = (Path(file).name, name)
        cum[key] = cum.get(key, 0.0) + total
    print(f"\ncProfile, event-loop thread only, {requests:.0f} requests (warm-up included); µs per request")
    print(f"{'step':52} {'cum µs':>8} {'own µs':>8}")
    totals: dict[str, float] = {}
    for label, key, _parent in PROFILE_STEPS:
        totals[label] = cum.get(key, 0.0) / requests * 1e6
    for label, _key, _parent in PROFILE_STEPS:
        if not totals[label]:
            continue
        children = sum(totals[child] for child, _k, parent in PROFILE_STEPS if parent == label)
        print(f"{label:52} {totals[label]:>8.2f} {totals[label] - children:>8.2f}")
    rows = sorted(stats.items(), key=lambda item: -item[1][2])
    print(f"\n{'own µs':>8} {'cum µs':>8} {'calls':>6}  function (per request)")
    for (file, line, name), (_cc, calls, own, total, _callers) in rows[:top]:
        where = f"{Path(file).name}:{line}" if line else file
        per = 1e6 / requests
        print(f"{own * per:>8.2f} {total * per:>8.2f} {calls / requests:>6.2f}  {name} ({where})")


def _profile(pid: int, path: str, duration: int) -> subprocess.Popen[bytes]:
    """Sample the server with py-spy for `duration` seconds into collapsed stacks (flamegraph.pl input)."""
    cmd = ["py-spy", "record", "-p", str(pid), "-d", str(duration), "-r", "250", "-f", "raw", "-o", path]
    return subprocess.Popen([*cmd, "--threads", "--nonblocking"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


if __name__ == "__main__":
    sys.exit(main())
