"""A throwaway PostgreSQL server for tests and benchmarks: initdb in a temp folder, a free port, stopped at the end.

`initdb` refuses to run as root, so as root the server runs as the `postgres` system user
(`runuser -u postgres --`), which owns the temp folder; as anyone else it runs as that user.
The superuser `postgres` logs in without a password over the Unix socket (in the temp folder)
and with PASSWORD over TCP on 127.0.0.1, so tests can reach both kinds of URL and a wrong
password is refused. Durability is off (fsync, full-page writes): the data is thrown away.

    with postgres_server() as server:          # or the session-scoped `pg_server` fixture
        url = server.create_database("t1")    # postgres://postgres:...@127.0.0.1:PORT/t1
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

# Debian's postgresql-15 package; a custom install may link its binaries into /usr/local/bin.
BINARY_DIRS = (Path("/usr/lib/postgresql/15/bin"), Path("/usr/local/bin"), Path("/usr/lib/postgresql/16/bin"))
SERVER_USER = "postgres"  # the system user Debian's package creates; initdb will not run as root
PASSWORD = "medama-test-pw"
START_TIMEOUT_S = 60  # pg_ctl -w waits this long for the server to accept connections (a loaded 2-core CI)
# Settings for a disposable test server: small memory, no durability, enough connections for a few pools.
SERVER_SETTINGS = (
    "fsync=off",
    "full_page_writes=off",
    "synchronous_commit=off",
    "shared_buffers=16MB",
    "max_connections=60",
    "listen_addresses=127.0.0.1",
    "log_min_messages=warning",
)


class Unavailable(Exception):
    """PostgreSQL's binaries (or the user to run them as) are missing here; the message says which."""


def find_bin_dir() -> Path | None:
    for directory in BINARY_DIRS:
        if (directory / "initdb").exists() and (directory / "pg_ctl").exists():
            return directory
    return None


@dataclass
class PostgresServer:
    """A running test server. `url()` builds URLs for it; `psql` runs SQL as the superuser."""

    root: Path
    bin_dir: Path
    port: int
    run_as: list[str]  # command prefix: runuser as root, nothing otherwise

    @property
    def socket_dir(self) -> str:
        return str(self.root / "socket")

    def url(self, database: str = "postgres", *, user: str = SERVER_USER, password: str | None = PASSWORD) -> str:
        """A TCP URL (127.0.0.1) with the superuser's password by default."""
        auth = urllib.parse.quote(user, safe="")
        if password is not None:
            auth += ":" + urllib.parse.quote(password, safe="")
        return f"postgres://{auth}@127.0.0.1:{self.port}/{urllib.parse.quote(database, safe='')}"

    def socket_url(self, database: str = "postgres") -> str:
        """A Unix-socket URL: the socket folder as the `host` query parameter, no password (trust)."""
        query = urllib.parse.urlencode({"host": self.socket_dir})
        return f"postgresql://{SERVER_USER}@:{self.port}/{database}?{query}"

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run SQL through psql over the socket; its unaligned output."""
        command = [str(self.bin_dir / "psql"), "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1"]
        command += ["-h", self.socket_dir, "-p", str(self.port), "-U", SERVER_USER, "-d", database, "-c", sql]
        return subprocess.run(
            self.run_as + command, check=True, capture_output=True, text=True, cwd=self.root
        ).stdout.strip()

    def create_database(self, name: str) -> str:
        """A fresh, empty database; its TCP URL.

        Its collation is ICU's en-US, a linguistic order like the en_US.UTF-8 most servers are set up
        with, so a test catches code that relies on the C order initdb gave this cluster.
        """
        self.psql(f"CREATE DATABASE \"{name}\" TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US'")
        return self.url(name)

    def drop_database(self, name: str) -> None:
        self.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def start(self) -> None:
        """Start (or restart after `stop`) the server on its port; RuntimeError with its log if it fails."""
        options = f"-p {self.port} -k {self.socket_dir} " + " ".join(f"-c {setting}" for setting in SERVER_SETTINGS)
        pg_ctl = [str(self.bin_dir / "pg_ctl"), "-D", str(self.root / "data"), "-l", str(self.root / "server.log")]
        pg_ctl += ["-o", options, "-t", str(START_TIMEOUT_S), "-w", "start"]
        done = subprocess.run(self.run_as + pg_ctl, capture_output=True, text=True, cwd=self.root)
        if done.returncode != 0:
            log = (self.root / "server.log").read_text(errors="replace") if (self.root / "server.log").exists() else ""
            self.stop()
            raise RuntimeError(f"pg_ctl start failed: {done.stderr.strip()}\n{log[-2000:]}")

    def stop(self, mode: str = "immediate") -> None:
        """Stop the server: `immediate` (a crash, so recent commits may be lost: durability is off) or `fast`."""
        command = [str(self.bin_dir / "pg_ctl"), "-D", str(self.root / "data"), "-m", mode, "-w", "stop"]
        subprocess.run(self.run_as + command, capture_output=True, cwd=self.root)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run_as() -> tuple[list[str], int | None, int | None]:
    """The command prefix and uid/gid that run PostgreSQL here."""
    if os.geteuid() != 0:
        return [], None, None
    if shutil.which("runuser") is None:
        raise Unavailable("running as root needs runuser (util-linux) to start PostgreSQL as another user")
    try:
        entry = pwd.getpwnam(SERVER_USER)
    except KeyError:
        raise Unavailable(f"running as root needs a {SERVER_USER!r} system user (Debian's postgresql)") from None
    return ["runuser", "-u", SERVER_USER, "--"], entry.pw_uid, entry.pw_gid


def start_postgres() -> PostgresServer:
    """initdb and start a server in a new temp folder; raises Unavailable if that cannot be done here."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        raise Unavailable(f"PostgreSQL binaries not found in {', '.join(map(str, BINARY_DIRS))}")
    run_as, uid, gid = _run_as()
    root = Path(tempfile.mkdtemp(prefix="medama-pg-"))
    os.chmod(root, 0o755)  # the server user must reach its folders inside
    for name in ("data", "socket"):
        (root / name).mkdir()
    pwfile = root / "pwfile"
    pwfile.write_text(PASSWORD + "\n")
    (root / "server.log").touch()
    if uid is not None and gid is not None:
        for path in (root / "data", root / "socket", pwfile, root / "server.log"):
            os.chown(path, uid, gid)
    initdb = [str(bin_dir / "initdb"), "-D", str(root / "data"), "-U", SERVER_USER, "--pwfile", str(pwfile)]
    initdb += ["--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C", "--no-sync"]
    done = subprocess.run(run_as + initdb, capture_output=True, text=True, cwd=root)
    if done.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        raise RuntimeError(f"initdb failed: {done.stderr.strip() or done.stdout.strip()}")
    server = PostgresServer(root, bin_dir, _free_port(), run_as)
    try:
        server.start()
    except RuntimeError:
        shutil.rmtree(root, ignore_errors=True)
        raise
    return server


@contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """A running server for the block; stopped (immediately) and deleted after it."""
    server = start_postgres()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.root, ignore_errors=True)
