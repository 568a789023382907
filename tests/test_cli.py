"""The command line as a user runs it: usage, exit codes, one-line errors, --help."""

from __future__ import annotations

import os
import pty
import re
import select
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from medama_core.config import OPTIONS
from tests.helpers import live_server

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(ROOT / "medama.py"), *args], capture_output=True, text=True, timeout=60)


def test_no_command_prints_usage_and_exits_2() -> None:
    result = run()
    assert result.returncode == 2 and result.stderr.startswith("Usage: medama <command> [flags]")


def test_unknown_command_exits_1() -> None:
    result = run("frobnicate")
    assert result.returncode == 1
    assert result.stderr.strip() == 'ERROR: medama: unknown command "frobnicate" (run `medama --help` for the list)'


def test_version() -> None:
    result = run("version")
    assert result.returncode == 0 and result.stdout.startswith("Medama Analytics ")


def test_bad_flag_is_one_line_and_exit_2() -> None:
    result = run("start", "-port", "eighty")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "-port" in result.stderr


def test_help_for_every_command() -> None:
    for command in ("start", "version"):
        result = run(command, "--help")
        assert result.returncode == 0 and "Usage" in result.stdout
    assert "-analyticsdb" in run("start", "--help").stdout


@pytest.mark.parametrize("spelling", ["version", "-version", "--version"])
def test_every_spelling_of_version(spelling: str) -> None:
    result = run(spelling)
    assert result.returncode == 0 and result.stdout.startswith("Medama Analytics ") and result.stderr == ""


# One help style: `Usage: …`, what the command does, then every flag with its default.
FLAG_LINE = re.compile(r"  -[\w-]+(, -[\w-]+)* \(default: [^)]*(; env [A-Z_]+)?\)")


@pytest.mark.parametrize(
    ("argv", "flags"),
    [
        (["start"], [option.name for option in OPTIONS]),
        (["backup"], ["appdb", "analyticsdb", "env"]),
        (
            ["import"],
            [
                *("type", "from-medama", "from", "site", "sessions", "dry-run", "create-websites"),
                *("appdb", "analyticsdb", "env"),
            ],
        ),
        (["export"], ["type", "format", "hostname", "start", "end", "output", "appdb", "analyticsdb", "env"]),
        (["user", "password"], ["appdb", "env"]),
        (["user", "list"], ["appdb", "env"]),
        (["user", "add"], ["role", "websites", "appdb", "env"]),
        (["user", "role"], ["appdb", "env"]),
        (["user", "remove"], ["appdb", "env"]),
        (["user", "totp-off"], ["appdb", "env"]),
    ],
)
def test_one_help_style_listing_every_flag_with_its_default(argv: list[str], flags: list[str]) -> None:
    for help_flag in ("--help", "-h", "-help"):
        result = run(*argv, help_flag)
        assert result.returncode == 0 and result.stderr == "", result.stderr
        text = result.stdout
        assert text.startswith(f"Usage: medama {' '.join(argv)}") and "\nFlags:\n" in text
        listed = [line.split()[0].removeprefix("-").rstrip(",") for line in text.splitlines() if FLAG_LINE.match(line)]
        assert listed == flags
        assert all(FLAG_LINE.fullmatch(line) for line in text.splitlines() if line.startswith("  -")), text
    assert "  user " in run("--help").stdout and "password NAME" in run("user", "--help").stdout


def test_help_names_the_defaults() -> None:
    text = run("export", "--help").stdout
    assert "  -type (default: views)" in text and "  -output, -o (default: standard output)" in text
    assert "  -port (default: 8080; env PORT)" in run("start", "--help").stdout


# `medama user password NAME`: recovery on the database file, with or without the server running.


def user_password(appdb: Path, name: str, stdin: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "medama.py"), "user", "password", name, "-appdb", str(appdb)],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_user_password_from_a_pipe_while_the_server_runs_ends_the_sessions(tmp_path: Path) -> None:
    with live_server(tmp_path) as server:
        client = server.client()
        client.login()
        assert client.get("/api/user").json()["passwordChangeRequired"] is True
        appdb = Path(server.config.appdb)
        done = user_password(appdb, "admin", "s3cret-recovered\n")
        assert done.returncode == 0, done.stderr
        assert done.stdout == "changed the password of admin; 1 session(s) signed out\n"
        assert client.get("/api/user").status == 401, "the old session ended at once"
        client.login("admin", "s3cret-recovered")
        assert client.get("/api/user").json()["passwordChangeRequired"] is False
        client.close()


@pytest.mark.parametrize(
    ("name", "stdin", "message"),
    [
        ("nobody", "whatever\n", "no user named 'nobody' in"),
        ("admin", "", "no password on standard input"),
        ("admin", "1234\n", "the password must be 5 to 128 characters long; nothing was changed"),
        ("admin", "CHANGE_ME_ON_FIRST_LOGIN\n", "must not be the default CHANGE_ME_ON_FIRST_LOGIN"),
    ],
)
def test_user_password_refusals_change_nothing(tmp_path: Path, name: str, stdin: str, message: str) -> None:
    with live_server(tmp_path):
        pass
    done = user_password(tmp_path / "me_meta.db", name, stdin)
    assert done.returncode == 1 and done.stderr.startswith("ERROR: ") and message in done.stderr, done.stderr
    assert done.stderr.count("\n") == 1
    conn = sqlite3.connect(tmp_path / "me_meta.db")
    assert conn.execute("SELECT password_is_default FROM users").fetchall() == [(1,)]
    conn.close()


def test_user_password_without_a_database_creates_none(tmp_path: Path) -> None:
    done = user_password(tmp_path / "typo.db", "admin", "new-password\n")
    assert done.returncode == 1 and "no app database at" in done.stderr and "(-appdb)" in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_user_password_on_a_terminal_asks_twice_without_echo(tmp_path: Path) -> None:
    with live_server(tmp_path):
        pass
    controller, terminal = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "medama.py"), "user", "password", "admin", "-appdb", str(tmp_path / "me_meta.db")],
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        start_new_session=True,  # no controlling terminal: getpass turns echo off on stdin itself
    )
    os.close(terminal)
    seen = b""
    try:
        for answer in (b"typed-twice\n", b"typed-twice\n"):
            seen += read_until(controller, b": ")
            os.write(controller, answer)
        assert proc.wait(timeout=30) == 0
        seen += read_until(controller, b"signed out")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(controller)
    text = seen.decode()
    assert "New password for admin: " in text and "Repeat it: " in text
    assert "typed-twice" not in text, "the password was echoed"
    with live_server(tmp_path) as server:
        client = server.client()
        client.login("admin", "typed-twice")
        client.close()


def read_until(fd: int, marker: bytes, timeout: float = 20) -> bytes:
    data = b""
    deadline = time.monotonic() + timeout
    while marker not in data and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(fd, 1024)
            except OSError:  # EIO: the other side closed
                break
            if not chunk:
                break
            data += chunk
    assert marker in data, data
    return data
