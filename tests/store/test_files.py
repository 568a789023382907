"""Data files are 0600 and the folders we make 0700, from the first byte: databases, -wal/-shm, backups, exports.

Each test runs under the common umask 022, with which a plain `open` or
`sqlite3.connect` makes files 0644 (readable by every local user) and folders
0755: the modes these files had before.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from medama_core import backup, cli
from medama_core.store.files import create_private, make_private_dirs, open_private
from medama_core.store.sqlite import db, meta
from tests.helpers import live_server

PAD_BYTES = 4096
ROWS = 5000  # ~20 MB: the copy takes long enough for the watcher below to see the partial file


@pytest.fixture(autouse=True)
def common_umask() -> Iterator[None]:
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_server_makes_its_databases_and_their_wal_and_shm_private(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)  # pytest makes it 0700; an ordinary folder is 0755
    data = tmp_path / "var" / "medama"
    with live_server(data) as server:
        client = server.client()
        client.login()  # writes a session: both WALs are in use
        assert client.post("/api/websites", json_body={"hostname": "example.com"}).status == 201
        client.close()
        files = sorted(data.iterdir())
        names = {path.name for path in files}
        assert {"me_meta.db", "me_meta.db-wal", "me_meta.db-shm", "me_analytics.db", "me_analytics.db-wal"} <= names
        assert {path.name: mode(path) for path in files} == {name: 0o600 for name in names}
    assert mode(data) == 0o700 and mode(data.parent) == 0o700
    assert mode(tmp_path) != 0o700  # a folder we did not make keeps its mode


def test_connect_creates_the_file_private_before_sqlite_writes_it(tmp_path: Path) -> None:
    path = tmp_path / "new" / "me_meta.db"
    conn = db.connect(str(path))
    try:
        db.migrate(conn, meta.MIGRATIONS)
        assert mode(path) == 0o600 and mode(path.parent) == 0o700
        assert mode(Path(f"{path}-wal")) == 0o600 and mode(Path(f"{path}-shm")) == 0o600
    finally:
        conn.close()


def test_an_existing_file_and_folder_keep_their_modes(tmp_path: Path) -> None:
    tmp_path.chmod(0o750)
    shared = tmp_path / "shared.db"
    shared.touch(0o640)
    create_private(str(shared))
    make_private_dirs(str(tmp_path))
    assert mode(shared) == 0o640 and mode(tmp_path) != 0o700


def test_open_private_truncates_and_tightens_before_writing(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    path.write_text("old rows")
    path.chmod(0o644)
    fd = open_private(str(path))
    try:
        assert mode(path) == 0o600 and path.stat().st_size == 0
    finally:
        os.close(fd)


def test_a_backup_is_private_from_its_first_byte(tmp_path: Path) -> None:
    """The copy used to be written 0644 and changed to 0600 only once complete; a watcher polling the
    partial file saw it readable with content in it. Now every sighting is 0600, and DEST is 0700."""
    source = tmp_path / "me_analytics.db"
    with sqlite3.connect(source) as conn:
        conn.execute("CREATE TABLE pad (n INTEGER PRIMARY KEY, data BLOB)")
        conn.executemany("INSERT INTO pad VALUES (?, randomblob(?))", ((n, PAD_BYTES) for n in range(ROWS)))
    destination = tmp_path / "backups" / "today"
    partial = destination / f".{source.name}.partial"
    seen: set[int] = set()
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            try:
                found = partial.stat()
            except FileNotFoundError:
                continue
            if found.st_size:
                seen.add(stat.S_IMODE(found.st_mode))

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        make_private_dirs(str(destination))  # as `backup` does, so the watcher can look in before the copy
        copied = backup.backup_database(str(source), destination / source.name)
    finally:
        done.set()
        watcher.join(5)
    assert seen == {0o600}, f"modes of the partial copy while it was written: {seen or 'never seen'}"
    assert mode(copied.target) == 0o600
    assert mode(destination) == 0o700 and mode(destination.parent) == 0o700


def test_backup_command_makes_dest_private(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with live_server(data):
        pass
    destination = tmp_path / "new-backups"
    copies = backup.backup(str(data / "me_meta.db"), str(data / "me_analytics.db"), destination)
    assert [mode(copy.target) for copy in copies] == [0o600, 0o600]
    assert mode(destination) == 0o700


@pytest.mark.parametrize("name", ["views.jsonl", "views.csv.gz"])
def test_an_export_file_is_private(tmp_path: Path, name: str, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    with live_server(data):
        pass
    out = tmp_path / "exports" / name
    flags = ["-appdb", str(data / "me_meta.db"), "-analyticsdb", str(data / "me_analytics.db")]
    assert cli.main(["export", "-o", str(out), *flags]) == 0
    assert mode(out) == 0o600 and mode(out.parent) == 0o700
