"""Deploy tests: the real .pyz as a subprocess, with its log captured to a file we can wait on."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
START_TIMEOUT_S = 60.0  # an ACME order against pebble plus start-up; normally 2-3 s


def build(directory: Path, commit: str) -> Path:
    out = directory / f"medama-{commit}.pyz"
    subprocess.run(
        [sys.executable, str(ROOT / "build_zipapp.py"), "-o", str(out), "--commit", commit],
        check=True,
        capture_output=True,
    )
    out.chmod(0o755)
    return out


@pytest.fixture(scope="session")
def pyz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("dist"), "deploytest")


@pytest.fixture(scope="session")
def next_pyz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same code stamped as another release, for upgrade drills."""
    return build(tmp_path_factory.mktemp("dist-next"), "nextrelease")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Proc:
    """A running `medama.pyz` whose stderr (the JSON log) goes to a file."""

    def __init__(
        self,
        pyz: Path,
        args: Sequence[str],
        log_path: Path,
        *,
        python: str = sys.executable,
        interpreter_flags: Sequence[str] = ("-I",),
        env: dict[str, str] | None = None,
        user: int | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.log_path = log_path
        self._log = open(log_path, "wb")  # closed in stop()
        self.proc = subprocess.Popen(
            [python, *interpreter_flags, str(pyz), *args],
            stdout=subprocess.DEVNULL,
            stderr=self._log,
            env=env if env is not None else {"PATH": os.environ.get("PATH", "")},
            user=user,
            cwd=cwd or log_path.parent,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for(self, text: str, timeout: float = START_TIMEOUT_S, *, after: int = 0) -> None:
        """Wait until `text` shows up in the log past offset `after`; fail if the process exits first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log()[after:]:
                return
            if self.proc.poll() is not None:
                raise AssertionError(f"exited with {self.proc.returncode} before {text!r}:\n{self.log()}")
            time.sleep(0.05)
        raise AssertionError(f"no {text!r} within {timeout} s:\n{self.log()}")

    def wait_exit(self, timeout: float = 30.0) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"did not exit within {timeout} s:\n{self.log()}") from None

    def terminate(self, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.wait_exit(timeout)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._log.close()


@pytest.fixture
def procs() -> Iterator[list[Proc]]:
    """Every Proc a test appends here is killed and its log closed afterwards."""
    started: list[Proc] = []
    yield started
    for proc in started:
        proc.stop()
