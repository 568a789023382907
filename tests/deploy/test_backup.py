"""`medama backup`: consistent copies taken while rows keep being committed, and the documented restore."""

from __future__ import annotations

import shutil
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from medama_core import backup
from tests.deploy.conftest import Proc, free_port
from tests.helpers import Client

PAD_BYTES = 4096  # per row, so the file is big enough that the copy overlaps many commits
PREFILL_ROWS = 5000  # ~20 MB


class Inserter(threading.Thread):
    """Commits rows n = 1, 2, 3 … one transaction each, as fast as it can; `committed` is the last one done."""

    def __init__(self, path: Path) -> None:
        super().__init__(daemon=True)
        self.conn = sqlite3.connect(path, isolation_level=None, timeout=30, check_same_thread=False)
        self.conn.execute("PRAGMA journal_mode = WAL")
        self.conn.execute("create table if not exists backup_probe (n integer primary key, pad blob)")
        self.conn.execute("BEGIN")
        self.conn.executemany(
            "insert into backup_probe values (?, randomblob(?))", ((n, PAD_BYTES) for n in range(1, PREFILL_ROWS + 1))
        )
        self.conn.execute("COMMIT")
        self.committed = PREFILL_ROWS
        self.stop = threading.Event()

    def run(self) -> None:
        n = self.committed
        while not self.stop.is_set():
            n += 1
            self.conn.execute("insert into backup_probe values (?, randomblob(16))", (n,))
            self.committed = n

    def finish(self) -> None:
        self.stop.set()
        self.join(10)
        self.conn.close()


def rows(path: Path) -> list[int]:
    conn = sqlite3.connect(path)
    try:
        return [n for (n,) in conn.execute("select n from backup_probe order by n")]
    finally:
        conn.close()


def test_a_copy_taken_during_writes_holds_every_earlier_commit_and_no_gap(tmp_path: Path) -> None:
    source = tmp_path / "me_analytics.db"
    inserter = Inserter(source)
    inserter.start()
    try:
        time.sleep(0.2)
        before = inserter.committed
        (tmp_path / "out").mkdir()
        copied = backup.backup_database(str(source), tmp_path / "out" / "copy.db")
        after = inserter.committed
    finally:
        inserter.finish()
    assert after > before  # the writer kept committing while the copy was made
    numbers = rows(copied.target)
    assert numbers == list(range(1, len(numbers) + 1))  # one snapshot: a prefix of the commits, no holes
    assert before <= len(numbers) <= after
    assert copied.check == "ok" and copied.size == copied.target.stat().st_size
    assert stat.S_IMODE(copied.target.stat().st_mode) == 0o600
    conn = sqlite3.connect(copied.target)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"  # one file, no -wal needed
    conn.close()
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["copy.db"]


def test_a_missing_database_or_clashing_names_are_errors(tmp_path: Path) -> None:
    with pytest.raises(backup.BackupError, match="no database at"):
        backup.backup_database(str(tmp_path / "nope.db"), tmp_path / "x.db")
    with pytest.raises(backup.BackupError, match="same file name"):
        backup.backup(str(tmp_path / "a" / "db"), str(tmp_path / "b" / "db"), tmp_path / "out")


@pytest.mark.parametrize(
    "args, expected",
    [
        (["/b"], ("/b", [])),
        (["/b", "-env"], ("/b", ["-env"])),
        (["-appdb", "x.db", "/b"], ("/b", ["-appdb", "x.db"])),
    ],
)
def test_destination_first_or_last(args: list[str], expected: tuple[str, list[str]]) -> None:
    assert backup.split_destination(args) == expected


def test_destination_is_required() -> None:
    with pytest.raises(backup.BackupError, match="missing DEST"):
        backup.split_destination(["-env"])


def test_backup_of_a_running_server_and_the_documented_restore(pyz: Path, tmp_path: Path, procs: list[Proc]) -> None:
    data = tmp_path / "data"
    port = free_port()
    db_args = ["-appdb", str(data / "me_meta.db"), "-analyticsdb", str(data / "me_analytics.db")]
    server = Proc(pyz, ["start", "-port", str(port), "-host", "127.0.0.1", *db_args], tmp_path / "server.log")
    procs.append(server)
    server.wait_for('"medama is running"')
    admin = Client(port)
    admin.login()
    assert admin.post("/api/websites", json_body={"hostname": "kept.example"}).status == 201
    admin.close()

    inserter = Inserter(data / "me_analytics.db")  # a second writer beside the server's own
    inserter.start()
    try:
        time.sleep(0.2)
        before = inserter.committed
        result = subprocess.run(
            [sys.executable, "-I", str(pyz), "backup", str(tmp_path / "backup"), *db_args],
            capture_output=True,
            text=True,
            timeout=60,
        )
        after = inserter.committed
    finally:
        inserter.finish()
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("quick_check ok") == 2
    copy = tmp_path / "backup" / "me_analytics.db"
    numbers = rows(copy)
    assert numbers == list(range(1, len(numbers) + 1)) and before <= len(numbers) <= after
    assert server.terminate() == 0

    # Restore as docs/deploy.md says: server stopped, old WAL files removed, copies put in place.
    for name in ("me_meta.db", "me_analytics.db"):
        for suffix in ("", "-wal", "-shm"):
            (data / f"{name}{suffix}").unlink(missing_ok=True)
        shutil.copy2(tmp_path / "backup" / name, data / name)
    restored = Proc(pyz, ["start", "-port", str(port), "-host", "127.0.0.1", *db_args], tmp_path / "restored.log")
    procs.append(restored)
    restored.wait_for('"medama is running"')
    client = Client(port)
    assert client.get("/api/health").json()["databases"] == {"meta": "ok", "analytics": "ok"}
    client.login()
    assert client.get("/api/websites/kept.example").status == 200
    client.close()
    assert restored.terminate() == 0
    assert rows(data / "me_analytics.db") == numbers
