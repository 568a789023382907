"""A real medama server as a subprocess (`python medama.py start`): start, measure, kill, restart.

The fault, load and fuzz tests need what a thread in the test process cannot
give: a process that can be killed with SIGKILL, whose memory and file
descriptors can be read from /proc, and whose crash would show as an exit.
Its log (stderr, JSON lines) goes to `server.log` in its directory; every
start appends to it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

ROOT = Path(__file__).resolve().parent.parent.parent
START_TIMEOUT_S = 30.0  # a cold start (migrations, data tables) takes ~1 s; the CI machine may be busy
STOP_TIMEOUT_S = 30.0  # SIGTERM lets requests finish (5 s) and commits queued hits, well inside this
ADMIN = ("admin", "CHANGE_ME_ON_FIRST_LOGIN")  # the default user a fresh app database gets


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class ServerProcess:
    """`medama.py start` on 127.0.0.1 with its log in `directory`, its databases there or in `data_dir`."""

    def __init__(
        self,
        directory: Path,
        *args: str,
        port: int | None = None,
        level: str = "warn",
        data_dir: Path | None = None,
    ) -> None:
        self.directory = directory
        self.data_dir = data_dir if data_dir is not None else directory  # where the databases live
        self.port = port if port is not None else free_port()
        self.args = args
        self.level = level
        self.log_path = directory / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def appdb(self) -> Path:
        return self.data_dir / "me_meta.db"

    @property
    def analyticsdb(self) -> Path:
        return self.data_dir / "me_analytics.db"

    def command(self) -> list[str]:
        cmd = [sys.executable, str(ROOT / "medama.py"), "start", "-host", "127.0.0.1", "-port", str(self.port)]
        cmd += ["-level", self.level, "-appdb", str(self.appdb), "-analyticsdb", str(self.analyticsdb)]
        return cmd + list(self.args)

    def start(self) -> ServerProcess:
        """Start the server and wait until it accepts connections."""
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.directory.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(self.command(), stdout=subprocess.DEVNULL, stderr=log, cwd=self.directory)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited with {self.proc.returncode}:\n{self.log_text()[-4000:]}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                time.sleep(0.05)
        self.kill()
        raise AssertionError("server did not start listening")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self, sig: signal.Signals = signal.SIGKILL) -> int | None:
        """Send `sig` and wait for the exit; returns the exit status (negative: killed by a signal)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
        try:
            return self.proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"server did not exit after {sig.name}") from None

    def stop(self) -> int | None:
        return self.kill(signal.SIGTERM)

    def rss_kib(self) -> int:
        """Resident memory now, from /proc/<pid>/status (VmRSS)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS line")

    def fds(self) -> int:
        """Open file descriptors now (sockets, database files, the log)."""
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def fd_kinds(self) -> tuple[int, int]:
        """(sockets, other descriptors) in one pass over /proc/<pid>/fd; churning sockets do not move `other`."""
        sockets = other = 0
        for fd in os.listdir(f"/proc/{self.pid}/fd"):
            try:
                target = os.readlink(f"/proc/{self.pid}/fd/{fd}")
            except OSError:
                continue  # closed between listdir and readlink
            if target.startswith("socket:"):
                sockets += 1
            else:
                other += 1
        return sockets, other

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def __enter__(self) -> ServerProcess:
        return self.start() if not self.alive() else self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.alive():
            self.stop()
