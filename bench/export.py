"""Stream a large site's export from a running server and watch its memory: the download is never whole in memory.

Seeds --views page views of one site straight into a fresh me_analytics.db (as an import would), starts
`python medama.py start` on it, logs in, and downloads GET /api/websites/<site>/export in each format
asked for, reading the body as it comes and throwing it away. Per download it prints the rows, the
bytes received, the time, and the server's RSS (VmRSS from /proc/<pid>/status, sampled every 20 ms)
before, at the peak and after. The body is many times larger than the peak's growth when it streams.

The machine is shared: times are noisy; run it a few times.

Usage: python bench/export.py [--views 500000] [--formats csv,jsonl] [--gzip]
"""

from __future__ import annotations

import sys
from pathlib import Path

# bench/http.py would shadow the standard library's http package: drop this folder from the path first.
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != Path(__file__).resolve().parent]

import argparse  # noqa: E402
import http.client  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from medama_core.store.sqlite import analytics, db  # noqa: E402

SITE = "example.com"
SAMPLE_S = 0.02
READ_BYTES = 256 * 1024


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def seed(path: Path, views: int) -> None:
    conn = db.connect(str(path))
    db.migrate(conn, analytics.MIGRATIONS)
    start = int(time.time() * 1000) - 30 * 86_400_000
    step = 30 * 86_400_000 // max(views, 1)
    columns = "bid, hostname, pathname, is_unique_user, is_unique_page, referrer_host, referrer_group, country," \
        " language_base, language_dialect, ua_browser, ua_os, ua_device_type, utm_source, utm_medium, utm_campaign," \
        " duration_ms, date_created"  # fmt: skip
    sql = f"INSERT INTO views ({columns}) VALUES ({', '.join('?' * 18)})"
    batch = []
    with db.Transaction(conn):
        for i in range(views):
            batch.append(
                (
                    f"b{i:09d}",
                    SITE,
                    f"/blog/post-{i % 500}",
                    i % 3 == 0,
                    i % 2 == 0,
                    "www.google.com",
                    "Google",
                    "Germany",
                    "German",
                    "German",
                    "Firefox",
                    "Linux",
                    "Desktop",
                    "newsletter",
                    "email",
                    "spring",
                    1000 + i % 60_000,
                    start + i * step,
                )  # fmt: skip
            )
            if len(batch) == 10_000:
                conn.executemany(sql, batch)
                batch.clear()
        if batch:
            conn.executemany(sql, batch)
    conn.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def request(port: int, method: str, path: str, body: object = None, cookie: str = "") -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    headers = {"Cookie": cookie} if cookie else {}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    conn.request(method, path, body=data, headers=headers)
    return conn.getresponse()


def download(port: int, pid: int, cookie: str, fmt: str, gzip: bool) -> None:
    path = f"/api/websites/{SITE}/export?type=views&format={fmt}"
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    headers = {"Cookie": cookie, **({"Accept-Encoding": "gzip"} if gzip else {})}
    before = rss_kib(pid)
    peak = [before]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], rss_kib(pid))
            time.sleep(SAMPLE_S)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.perf_counter()
    conn.request("GET", path, headers=headers)
    response = conn.getresponse()
    received = lines = 0
    while data := response.read(READ_BYTES):
        received += len(data)
        lines += data.count(b"\n")
    elapsed = time.perf_counter() - started
    done.set()
    sampler.join()
    conn.close()
    time.sleep(0.5)
    after = rss_kib(pid)
    rows = "?" if gzip else str(lines - (1 if fmt == "csv" else 0))
    print(
        f"{fmt:5} gzip={'yes' if gzip else 'no ':3} rows {rows:>9}  {received / 1e6:8.1f} MB in {elapsed:6.2f} s"
        f"  RSS before {before / 1024:6.1f} MiB, peak {peak[0] / 1024:6.1f} MiB (+{(peak[0] - before) / 1024:.1f}),"
        f" after {after / 1024:6.1f} MiB"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--views", type=int, default=500_000)
    parser.add_argument("--formats", default="csv,jsonl")
    parser.add_argument("--gzip", action="store_true", help="also download each format gzipped")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        began = time.perf_counter()
        seed(root / "me_analytics.db", args.views)
        print(f"seeded {args.views:,} views in {time.perf_counter() - began:.1f} s")
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, str(ROOT / "medama.py"), "start", "-port", str(port), "-host", "127.0.0.1",
             "-appdb", str(root / "me_meta.db"), "-analyticsdb", str(root / "me_analytics.db"), "-level", "error"],
            cwd=folder,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    login = request(
                        port, "POST", "/api/auth/login", {"username": "admin", "password": "CHANGE_ME_ON_FIRST_LOGIN"}
                    )
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
            cookie = (login.getheader("set-cookie") or "").split(";", 1)[0]
            login.read()
            created = request(port, "POST", "/api/websites", {"hostname": SITE}, cookie)
            created.read()
            for fmt in args.formats.split(","):
                download(port, server.pid, cookie, fmt, gzip=False)
                if args.gzip:
                    download(port, server.pid, cookie, fmt, gzip=True)
        finally:
            server.terminate()
            server.wait(timeout=30)
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())} (a shared machine: times are noisy)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
