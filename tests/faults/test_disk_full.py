"""Disk full: ingestion answers 503 and says so once, reads keep working, and writing resumes by itself.

The databases live on a small tmpfs mounted for the test (root only; the test
is skipped with the reason otherwise). A filler file takes the free space,
hits with large properties make the WAL grow until SQLite reports
SQLITE_FULL, then the filler goes and the same server, never restarted, must
store hits again. Every hit answered 204 must be on disk at the end.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.process import ADMIN, ServerProcess
from tests.helpers import Client

SITE = "example.com"
DISK_SIZE = "6m"  # room for both databases and their WAL files at the start, and little more
FILLER_CHUNK = 64 * 1024
MAX_HITS_UNTIL_FULL = 20_000  # a hit at the property limits stores ~5 KB (bench/hit_size.py): 6 MB fills long before
# At the per-hit property limits (ingest/hit.py: 10 properties, 1,024 bytes in all): fills the disk fastest.
BIG_PROPERTIES = {f"k{i}": "x" * 96 for i in range(10)}
CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
HEADERS = {"User-Agent": CHROME, "Accept-Language": "en-GB", "Content-Type": "text/plain;charset=UTF-8"}


@contextlib.contextmanager
def small_disk(mountpoint: Path) -> Iterator[Path]:
    mountpoint.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK_SIZE}", "tmpfs", str(mountpoint)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=False)


def fill(disk: Path) -> Path:
    """Write a file until the disk has no byte left."""
    filler = disk / "filler"
    chunk = b"\0" * FILLER_CHUNK
    with filler.open("wb", buffering=0) as out:
        while True:
            try:
                out.write(chunk)
            except OSError:
                break
        for size in (4096, 512, 1):  # the last partial blocks
            while True:
                try:
                    out.write(b"\0" * size)
                except OSError:
                    break
    return filler


def hit(client: Client, bid: str) -> tuple[int, dict[str, str], bytes]:
    body = {"e": "load", "b": bid, "u": f"https://{SITE}/full", "r": "", "p": True, "q": True, "t": "Europe/Paris",
            "d": BIG_PROPERTIES}  # fmt: skip
    result = client.post("/api/event/hit", body=json.dumps(body).encode(), headers=HEADERS)
    return result.status, result.headers, result.body


def stored_bids(db_path: Path) -> set[str]:
    conn = sqlite3.connect(db_path)
    try:
        return {row[0] for row in conn.execute("SELECT bid FROM views")}
    finally:
        conn.close()


@pytest.mark.slow
def test_disk_full_answers_503_logs_once_keeps_reads_and_recovers(tmp_path: Path) -> None:
    with small_disk(tmp_path / "disk") as disk:
        server = ServerProcess(tmp_path, "-ratelimit", "0", data_dir=disk)
        with server:
            client = Client(server.port)
            try:
                client.login(*ADMIN)
                assert client.post("/api/websites", json_body={"hostname": SITE}).status == 201
                acked: list[str] = []
                for i in range(5):
                    status, _, _ = hit(client, f"before{i}")
                    assert status == 204
                    acked.append(f"before{i}")

                filler = fill(disk)
                refused = 0
                for i in range(MAX_HITS_UNTIL_FULL):
                    status, headers, body = hit(client, f"full{i}")
                    assert status in (204, 503), body
                    if status == 204:
                        acked.append(f"full{i}")
                        continue
                    refused += 1
                    assert "disk is full" in json.loads(body)["error"]["message"]
                    assert headers.get("retry-after")
                    if refused == 20:
                        break
                assert refused == 20, "the disk never filled up"

                # Reads go on: the session check, the site list and the stats read from the full disk.
                assert client.get("/api/user").status == 200
                assert client.get("/api/websites?summary=true").status == 200
                summary = client.get(f"/api/website/{SITE}/summary")
                assert summary.status == 200, summary.body
                assert summary.json()["current"]["pageviews"] >= 5
                assert client.get(f"/api/website/{SITE}/pages").status == 200
                assert client.get("/api/health").status in (200, 503)  # never a 500

                full_lines = [line for line in server.log_text().splitlines() if "disk full" in line]
                assert len(full_lines) == 1, full_lines

                filler.unlink()
                deadline = time.monotonic() + 10
                recovered = False
                i = 0
                while time.monotonic() < deadline and not recovered:
                    status, _, _ = hit(client, f"after{i}")
                    if status == 204:
                        acked.append(f"after{i}")
                        recovered = True
                    i += 1
                assert recovered, "ingestion did not resume once space returned"
                for j in range(5):
                    status, _, _ = hit(client, f"later{j}")
                    assert status == 204
                    acked.append(f"later{j}")
            finally:
                client.close()
        log = server.log_text()
        assert "disk space is back" in log
        assert "unhandled exception" not in log
        missing = set(acked) - stored_bids(server.analyticsdb)
        assert not missing, f"{len(missing)} acknowledged hits lost"
