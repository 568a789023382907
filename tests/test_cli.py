"""The command line as a user runs it: usage, exit codes, one-line errors, --help."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(ROOT / "medama.py"), *args], capture_output=True, text=True, timeout=60)


def test_no_command_prints_usage_and_exits_2() -> None:
    result = run()
    assert result.returncode == 2 and result.stderr.startswith("Usage: medama <command> [flags]")


def test_unknown_command_exits_1() -> None:
    result = run("frobnicate")
    assert result.returncode == 1 and result.stderr.strip() == 'ERROR: medama: unknown command "frobnicate"'


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
