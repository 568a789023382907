"""ClickHouse engines for tests: a real clickhouse-server started per session, and chDB (ClickHouse in-process).

`clickhouse_server()` starts Debian's `clickhouse-server` (or any on PATH)
with its data in a temporary folder, on free ports, with a config written
here, and stops it at the end. `ChdbTransport` runs the same statements in
the chdb-core package. `fresh_client(engine)` gives a Client on a new, migrated
database of either, so a whole suite can run once per engine.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

from medama_core.store.clickhouse import schema
from medama_core.store.clickhouse.client import Client, HTTPTransport, error_for, parse_code
from medama_core.store.clickhouse.url import ClickHouseURL

ENGINES = ("server", "chdb")
SERVER_START_S = 60.0  # a cold start on a busy 2-core machine takes a few seconds
STOP_S = 5.0  # then the test server is killed: its data is thrown away anyway
TEST_USER, TEST_PASSWORD = "medama", "s3cret 'pass"
NOW_MS = 1_750_000_000_000

_CONFIG = """<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>{dir}/server.log</log><errorlog>{dir}/server.err.log</errorlog>
    <size>10M</size><count>1</count></logger>
  <http_port>{http}</http_port>
  <tcp_port>{tcp}</tcp_port>
  <listen_host>127.0.0.1</listen_host>
  <path>{dir}/data/</path>
  <tmp_path>{dir}/data/tmp/</tmp_path>
  <user_files_path>{dir}/data/user_files/</user_files_path>
  <format_schema_path>{dir}/data/format_schemas/</format_schema_path>
  <mark_cache_size>268435456</mark_cache_size>
  <users_config>{dir}/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <timezone>UTC</timezone>
  <mlock_executable>false</mlock_executable>
</yandex>
"""
_USERS = """<?xml version="1.0"?>
<yandex>
  <profiles><default></default></profiles>
  <users>
    <default><password></password><networks><ip>127.0.0.1</ip></networks>
      <profile>default</profile><quota>default</quota></default>
    <{user}><password>{password}</password><networks><ip>127.0.0.1</ip></networks>
      <profile>default</profile><quota>default</quota></{user}>
  </users>
  <quotas><default></default></quotas>
</yandex>
"""


def discard(folder: str | os.PathLike[str]) -> None:
    """Removes a stopped server's folder in a process of its own, so the suite does not wait for it.

    A suite's servers leave thousands of part files, and removing them at the session's end was part
    of a last teardown of ~39 s in CI (ten module databases' parts: ~2,100 files, ~1.9 s to remove).
    """
    if not os.path.exists(folder):
        return
    # A shell that starts `rm` in the background and exits at once: nothing is left for this process to wait for.
    subprocess.run(
        ["sh", "-c", 'rm -rf -- "$1" &', "discard", os.fspath(folder)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        check=False,
    )


def server_binary() -> str | None:
    """The clickhouse-server to start: on PATH, or where Debian's package puts it."""
    return shutil.which("clickhouse-server") or next(
        (path for path in ("/usr/sbin/clickhouse-server", "/usr/bin/clickhouse-server") if os.path.exists(path)), None
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """A running clickhouse-server: its HTTP port and how to stop it."""

    def __init__(self, binary: str, data_dir: str | None = None) -> None:
        # A given folder is kept (a benchmark reuses its loaded tables); a temporary one is removed.
        self.keep = data_dir is not None
        self.dir = data_dir if data_dir is not None else tempfile.mkdtemp(prefix="medama-clickhouse-")
        os.makedirs(self.dir, exist_ok=True)
        self.http_port, tcp_port = free_port(), free_port()
        Path(self.dir, "config.xml").write_text(_CONFIG.format(dir=self.dir, http=self.http_port, tcp=tcp_port))
        password = TEST_PASSWORD.replace("'", "&apos;")
        Path(self.dir, "users.xml").write_text(_USERS.format(user=TEST_USER, password=password))
        self.proc = subprocess.Popen(
            [binary, f"--config-file={self.dir}/config.xml"],
            cwd=self.dir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + SERVER_START_S
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/?query=SELECT%201", timeout=2) as r:
                    r.read()
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    log = Path(self.dir, "server.err.log")
                    tail = log.read_text()[-2000:] if log.exists() else ""
                    self.stop()
                    raise RuntimeError(f"clickhouse-server did not start: {tail}") from None
                time.sleep(0.2)
        self.version = self.query("SELECT version()").strip()

    def query(self, sql: str) -> str:
        """Run a statement as the default user (setup only)."""
        request = urllib.request.Request(f"http://127.0.0.1:{self.http_port}/", data=sql.encode())
        with urllib.request.urlopen(request, timeout=60) as response:
            return str(response.read().decode())

    def url(self, database: str, user: str = TEST_USER, password: str = TEST_PASSWORD) -> ClickHouseURL:
        return ClickHouseURL(False, "127.0.0.1", self.http_port, database, user, password)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if not self.keep:
            discard(self.dir)


@contextlib.contextmanager
def clickhouse_server(data_dir: str | None = None) -> Iterator[Server]:
    """A server on free ports; its data in `data_dir` (kept) or in a temporary folder (removed)."""
    binary = server_binary()
    if binary is None:
        raise FileNotFoundError("clickhouse-server is not installed")
    server = Server(binary, data_dir)
    try:
        yield server
    finally:
        server.stop()


# One statement at a time in the chDB session: a second thread's (Client.both) would change the first's
# database and query parameters, which are session state (chDB said "Substitution `c0_origin` is not set").
_CHDB_LOCK = threading.Lock()


class ChdbTransport:
    """chDB (ClickHouse in-process, chdb-core) as a Transport, on one database of a shared session."""

    def __init__(self, session: Any, database: str) -> None:
        self.session = session
        self.database = database

    def send(
        self, sql: str, params: Mapping[str, str], rows: bytes | None = None, stream: bool = False
    ) -> Iterator[bytes]:
        try:
            statement = sql if rows is None else sql + "\n" + rows.decode()
            with _CHDB_LOCK:  # the database in use and the query parameters are the session's, shared by threads
                self.session.query(f"USE {self.database}")
                # chDB's default output format is CSV; a statement naming its own FORMAT keeps it.
                result = self.session.query(statement, "TabSeparated", params=dict(params))
        except RuntimeError as exc:
            text = str(exc)
            raise error_for(parse_code(text), text, self.database) from None
        return iter([result.bytes()] if result is not None else [])

    def close(self) -> None:
        pass


_chdb_session: Any = None


def chdb_session() -> Any:
    """One chDB session for the whole test run, in a temporary folder."""
    global _chdb_session
    if _chdb_session is None:
        from chdb import session

        folder = tempfile.mkdtemp(prefix="medama-chdb-")
        _chdb_session = session.Session(folder)
        _chdb_session.query("SET output_format_json_quote_64bit_integers = 0")
        atexit.register(discard, folder)
        atexit.register(_chdb_session.close)
    return _chdb_session


def new_database(engine: str, server: Server | None) -> str:
    name = f"t_{uuid.uuid4().hex[:12]}"
    if engine == "server":
        assert server is not None
        server.query(f"CREATE DATABASE {name}")
    else:
        chdb_session().query(f"CREATE DATABASE {name}")
    return name


def fresh_client(engine: str, server: Server | None) -> Client:
    """A Client on a new database of `engine`, with the schema migrated."""
    database = new_database(engine, server)
    if engine == "server":
        assert server is not None
        client = Client(HTTPTransport(server.url(database)))
    else:
        client = Client(ChdbTransport(chdb_session(), database))
    schema.migrate(client, NOW_MS)
    return client


class Stack:
    """PostgreSQL and clickhouse-server started once, for running the app on both (`-appdb postgres://…`,
    `-analyticsdb clickhouse://…`): `urls()` gives a fresh database on each."""

    def __init__(self) -> None:
        from tests.pg_harness import start_postgres

        binary = server_binary()
        if binary is None:
            raise FileNotFoundError("clickhouse-server is not installed")
        self.pg = start_postgres()
        try:
            self.ch = Server(binary)
        except BaseException:
            self.pg.stop()
            shutil.rmtree(self.pg.root, ignore_errors=True)
            raise

    def urls(self) -> tuple[str, str]:
        """(app database URL, analytics database URL), both new and empty."""
        name = f"t_{uuid.uuid4().hex[:12]}"
        app = self.pg.create_database(name)
        self.ch.query(f"CREATE DATABASE {name}")
        credentials = f"{quote(TEST_USER, safe='')}:{quote(TEST_PASSWORD, safe='')}"
        return app, f"clickhouse://{credentials}@127.0.0.1:{self.ch.http_port}/{name}"

    def stop(self) -> None:
        self.ch.stop()
        self.pg.stop()
        discard(self.pg.root)


def running_stack() -> Iterator[Stack]:
    """A Stack for a module's tests, stopped after them; the tests skip, loudly, where a server is missing."""
    import pytest

    from tests.pg_harness import Unavailable

    try:
        running = Stack()
    except (FileNotFoundError, Unavailable) as exc:
        pytest.skip(f"NOT RUN: PostgreSQL or clickhouse-server missing: {exc}")
    try:
        yield running
    finally:
        running.stop()
