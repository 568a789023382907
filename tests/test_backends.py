"""`medama start` with -appdb/-analyticsdb URLs: the scheme picks the engine, and every way a URL can be
unusable is one line on stderr and exit 2 before anything is served (docs/scale.md, "Choosing the engines")."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from medama_core import backends
from tests.engines import TEST_USER, Stack, running_stack
from tests.helpers import live_server

ROOT = Path(__file__).resolve().parent.parent


def start(cwd: Path, *args: str, prelude: str = "") -> subprocess.CompletedProcess[str]:
    """Run `medama start` (after `prelude`, Python run first in the same process) and expect it to stop at once."""
    code = f"import sys; sys.path.insert(0, {str(ROOT)!r}); {prelude}\nfrom medama_core.cli import main\n"
    code += "sys.exit(main(sys.argv[1:]))"
    cmd = [sys.executable, "-c", code, "start", "-host", "127.0.0.1", "-port", "0", *args]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=60)


def one_line_exit_2(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("ERROR: "), result.stderr
    return result.stderr.strip()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # nothing listens on it once the socket is closed


@pytest.fixture(scope="module")
def servers() -> Iterator[Stack]:
    yield from running_stack()


def test_the_scheme_picks_the_engine() -> None:
    assert backends.scheme("./me_meta.db") == "" and backends.scheme("/var/lib/medama/a://b") == ""
    assert backends.scheme("PostgreSQL://u@h/db") == "postgresql"
    assert set(backends.META_ENGINES) == {"", "postgres", "postgresql"}
    assert set(backends.ANALYTICS_ENGINES) == {"", "clickhouse", "clickhouses"}


@pytest.mark.parametrize(
    ("flag", "url", "expected"),
    [
        ("-appdb", "mysql://u@h/db", "-appdb: unknown database URL scheme mysql://"),
        ("-analyticsdb", "postgres://u@h/db", "-analyticsdb: unknown database URL scheme postgres://"),
        ("-appdb", "postgres://u@h:99999/db", "-appdb: the port is not a number from 1 to 65535"),
        ("-analyticsdb", "clickhouse://u:p@h/", "-analyticsdb: the database name '' must be"),
        ("-analyticsdb", "clickhouse://u:secret@h:1:2/db", "-analyticsdb:"),
    ],
)
def test_a_bad_url_is_one_line(tmp_path: Path, flag: str, url: str, expected: str) -> None:
    line = one_line_exit_2(start(tmp_path, flag, url))
    assert line.startswith(f"ERROR: {expected}"), line
    assert "secret" not in line


def test_an_unreachable_server_is_one_line(tmp_path: Path) -> None:
    port = closed_port()
    line = one_line_exit_2(start(tmp_path, "-appdb", f"postgres://medama:secret@127.0.0.1:{port}/medama"))
    assert line.startswith(f"ERROR: -appdb: cannot connect to PostgreSQL at medama@127.0.0.1:{port}/medama"), line
    assert "secret" not in line
    meta = str(tmp_path / "me_meta.db")
    line = one_line_exit_2(
        start(tmp_path, "-appdb", meta, "-analyticsdb", f"clickhouse://u:secret@127.0.0.1:{port}/db")
    )
    assert (
        line
        == f"ERROR: -analyticsdb: cannot reach ClickHouse at clickhouse://u@127.0.0.1:{port}/db: Connection refused"
    )


def test_a_missing_driver_is_one_line(tmp_path: Path) -> None:
    result = start(tmp_path, "-appdb", "postgres://u@127.0.0.1/db", prelude="sys.modules['psycopg'] = None")
    line = one_line_exit_2(result)
    assert "needs the psycopg driver" in line and "pip install 'psycopg[binary]'" in line, line


def test_wrong_credentials_are_one_line(tmp_path: Path, servers: Stack) -> None:
    app, analytics = servers.urls()
    wrong_app = app.replace("medama-test-pw", "not-the-password")
    line = one_line_exit_2(start(tmp_path, "-appdb", wrong_app, "-analyticsdb", analytics))
    assert "password authentication failed" in line and "not-the-password" not in line, line
    wrong_analytics = analytics.replace(f"{quote(TEST_USER)}:", f"{quote(TEST_USER)}:x")
    line = one_line_exit_2(start(tmp_path, "-appdb", app, "-analyticsdb", wrong_analytics))
    assert line.startswith("ERROR: -analyticsdb: ") and "password" in line.lower(), line
    database = analytics.rsplit("/", 1)[0] + "/no_such_database"
    line = one_line_exit_2(start(tmp_path, "-appdb", app, "-analyticsdb", database))
    assert "CREATE DATABASE no_such_database" in line, line


@pytest.mark.parametrize("mix", ["sqlite+clickhouse", "postgres+sqlite"])
def test_mixed_engines_serve_hits_and_stats(tmp_path: Path, servers: Stack, mix: str) -> None:
    app, analytics = servers.urls()
    if mix == "sqlite+clickhouse":
        app = str(tmp_path / "me_meta.db")
    else:
        analytics = str(tmp_path / "me_analytics.db")
    with live_server(tmp_path, appdb=app, analyticsdb=analytics) as server:
        client = server.client()
        client.login()
        assert client.post("/api/websites", json_body={"hostname": "example.com"}).status == 201
        hit = {"e": "load", "b": "mixbid0001", "u": "https://example.com/a", "r": "", "p": True, "q": True}
        headers = {"Content-Type": "application/json", "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0"}
        assert client.post("/api/event/hit", body=json.dumps(hit).encode(), headers=headers).status == 204
        assert client.get("/api/website/example.com/pages").json()[0]["path"] == "/a"
        assert client.get("/api/health").json()["databases"] == {"meta": "ok", "analytics": "ok"}
        exported = client.get("/api/websites/example.com/export?format=jsonl")  # on either analytics engine
        assert exported.status == 200 and json.loads(exported.body)["bid"] == "mixbid0001", exported.body
        client.close()
    assert "secret" not in server.log_stream.getvalue()
