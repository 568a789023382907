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
from medama_core.config import ConfigError
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


def make_databases(directory: Path) -> list[str]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = [str(directory / "me_meta.db"), str(directory / "me_analytics.db")]
    for path in paths:
        conn = sqlite3.connect(path)
        conn.execute("create table t (n integer)")
        conn.close()
    return paths


@pytest.mark.parametrize("where", ["first", "last", "between"])
def test_destination_first_last_or_between_flags(tmp_path: Path, where: str) -> None:
    appdb, analyticsdb = make_databases(tmp_path / "data")
    flags = ["-appdb", appdb, "-analyticsdb", analyticsdb]
    dest = str(tmp_path / "out")
    args = {"first": [dest, *flags], "last": [*flags, dest], "between": [*flags[:2], dest, *flags[2:]]}[where]
    assert backup.main(args, {}) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["me_analytics.db", "me_meta.db"]


def test_destination_is_required(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="missing DEST"):
        backup.main(["-env"], {})
    with pytest.raises(ConfigError, match="give one DEST"):
        backup.main(["a", "b"], {})


def test_a_failed_backup_leaves_nothing_in_dest(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    appdb, analyticsdb = make_databases(tmp_path / "data")
    Path(analyticsdb).write_bytes(b"not a database, but a file of the right name" * 100)
    flags = ["-appdb", appdb, "-analyticsdb", analyticsdb]
    assert backup.main([str(tmp_path / "new" / "out"), *flags], {}) == 1
    assert "cannot back up" in capsys.readouterr().err
    assert not (tmp_path / "new").exists(), "the folders it made are gone again"
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "me_meta.db").write_text("yesterday's copy")
    assert backup.main([str(tmp_path / "old"), *flags], {}) == 1
    assert [p.name for p in (tmp_path / "old").iterdir()] == ["me_meta.db"], "no new or partial file"
    assert (tmp_path / "old" / "me_meta.db").read_text() == "yesterday's copy"
    assert backup.main([str(tmp_path / "x"), "-appdb", appdb, "-analyticsdb", str(tmp_path / "missing.db")], {}) == 1
    assert "no database at" in capsys.readouterr().err and not (tmp_path / "x").exists()


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
