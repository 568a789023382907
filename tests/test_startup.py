"""`medama start` failures a stranger meets first: one line on stderr naming the cause and the fix, exit 1."""

from __future__ import annotations

import json
import os
import pwd
import socket
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.helpers import live_server

ROOT = Path(__file__).resolve().parent.parent
NOBODY = 65534


def start(cwd: Path, *args: str, user: int | None = None) -> subprocess.CompletedProcess[str]:
    """Run `medama start` and expect it to fail at once (a start that works is killed by the timeout)."""
    # As another user, the system's interpreter: the test's own may live under /root, which nobody can read.
    python = sys.executable if user is None else "/usr/bin/python3"
    cmd = [python, str(ROOT / "medama.py"), "start", "-host", "127.0.0.1", *args]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=60, user=user)


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR: ")]
    assert len(errors) == 1 and result.stderr.endswith(errors[0] + "\n"), result.stderr
    return errors[0]


def test_port_in_use(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        line = one_error_line(start(tmp_path, "-port", str(port)))
    assert f"cannot listen on 127.0.0.1:{port}" in line and "another program already uses it" in line
    assert f"ss -ltnp 'sport = :{port}'" in line


@pytest.mark.parametrize(
    ("host", "expected"),
    [("999.1.1.1", "is neither an IP address nor a name"), ("192.0.2.77", "is not an address of this machine")],
)
def test_bad_host(tmp_path: Path, host: str, expected: str) -> None:
    result = start(tmp_path, "-port", "0", "-host", host)
    line = one_error_line(result)
    assert f"cannot listen on {host}:0" in line and expected in line and "leave -host out" in line


def test_a_file_that_is_not_sqlite(tmp_path: Path) -> None:
    (tmp_path / "notes.db").write_text("hello, these are my notes\n")
    line = one_error_line(start(tmp_path, "-port", "0", "-appdb", "notes.db"))
    assert f"cannot use {tmp_path / 'notes.db'} (-appdb): it is not a SQLite database" in line
    assert (tmp_path / "notes.db").read_text() == "hello, these are my notes\n"


def test_upstreams_duckdb_file_is_named_and_the_import_suggested(tmp_path: Path) -> None:
    (tmp_path / "me_analytics.db").write_bytes(b"\0" * 8 + b"DUCK" + b"\0" * 4084)
    line = one_error_line(start(tmp_path, "-port", "0"))
    assert "(-analyticsdb): it is a DuckDB file" in line and "medama import --from-medama" in line


def test_another_programs_database_or_swapped_flags(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "firefox.sqlite")
    conn.execute("CREATE TABLE moz_places (url TEXT)")
    conn.close()
    line = one_error_line(start(tmp_path, "-port", "0", "-appdb", "firefox.sqlite"))
    assert "not the one expected (it has no users table)" in line
    with live_server(tmp_path / "good"):
        pass  # two real databases to swap
    swapped = ["-appdb", "good/me_analytics.db", "-analyticsdb", "good/me_meta.db"]
    line = one_error_line(start(tmp_path, "-port", "0", *swapped))
    assert "(-appdb)" in line and "are -appdb and -analyticsdb swapped?" in line
    conn = sqlite3.connect(tmp_path / "firefox.sqlite")
    assert [row[0] for row in conn.execute("SELECT name FROM sqlite_master")] == ["moz_places"], "left untouched"
    conn.close()


def test_a_path_that_is_a_folder(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    line = one_error_line(start(tmp_path, "-port", "0", "-analyticsdb", "data"))
    assert f"cannot use {tmp_path / 'data'} (-analyticsdb): it is a folder, not a file" in line


def test_a_folder_the_user_cannot_write(tmp_path: Path) -> None:
    if os.geteuid() == 0:  # root writes anywhere: run as nobody, in a folder of root's
        with tempfile.TemporaryDirectory(prefix="medama-startup-") as name:  # pytest's tmp dirs are root-only
            work = Path(name)
            work.chmod(0o755)
            (work / "data").mkdir(mode=0o755)
            result = start(work, "-port", "0", "-appdb", str(work / "data" / "me_meta.db"), user=NOBODY)
            user = "nobody"
            data = work / "data"
            line = one_error_line(result)
            assert list(data.iterdir()) == []
    else:
        data = tmp_path / "data"
        data.mkdir(mode=0o555)
        line = one_error_line(start(tmp_path, "-port", "0", "-appdb", str(data / "me_meta.db")))
        user = pwd.getpwuid(os.geteuid()).pw_name
    assert f"cannot use {data / 'me_meta.db'} (-appdb): user {user}" in line
    assert f"cannot write in its folder {data}" in line and "sudo chown" in line


def test_the_start_line_names_both_databases(tmp_path: Path) -> None:
    with live_server(tmp_path, appdb=str(tmp_path / "a" / "app.db"), level="info") as server:
        pass
    running = next(
        json.loads(line) for line in server.log_stream.getvalue().splitlines() if '"medama is running"' in line
    )
    assert running["appdb"] == str(tmp_path / "a" / "app.db")
    assert running["analyticsdb"] == str(tmp_path / "me_analytics.db")
