"""The real archive: build dist/medama.pyz, run it isolated from site-packages, stop it with SIGTERM."""

from __future__ import annotations

import functools
import glob
import http.client
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import Client

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def pyz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist") / "medama.pyz"
    subprocess.run([sys.executable, str(ROOT / "build_zipapp.py"), "-o", str(out)], check=True, capture_output=True)
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited early: {proc.stderr.read() if proc.stderr else b''!r}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("server did not start listening")


def get(port: int, path: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def cleanup(proc: subprocess.Popen[bytes] | subprocess.Popen[str]) -> None:
    """Kill the server if a failed assertion left it running, and close its stderr pipe."""
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    if proc.stderr:
        proc.stderr.close()


def isolated(pyz: Path, *args: str) -> list[str]:
    """python -I -S: no site-packages, no user site, no PYTHON* variables — a bare interpreter."""
    return [sys.executable, "-I", "-S", str(pyz), *args]


@pytest.fixture
def workdir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path


def stop(proc: subprocess.Popen[bytes]) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError("server did not exit within 5 s of SIGTERM") from None


def test_archive_contents(pyz: Path) -> None:
    with open(pyz, "rb") as f:
        assert f.readline() == b"#!/usr/bin/env python3\n"
    names = set(zipfile.ZipFile(pyz).namelist())
    assert {
        "__main__.py",
        "medama_core/app.pyc",
        "medama_core/static/openapi.yaml",
        "dashboard_dist/index.html",
    } <= names
    assert "medama_core/static/scripts/default.js" in names
    assert "LICENSE" in names


def test_version_reports_a_commit(pyz: Path) -> None:
    result = subprocess.run(isolated(pyz, "version"), capture_output=True, text=True, timeout=30)
    assert result.returncode == 0 and "commit=" in result.stdout and "development" not in result.stdout


def test_runs_isolated_serves_and_stops_on_sigterm(pyz: Path, workdir: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(isolated(pyz, "start", "-port", str(port)), cwd=workdir, stderr=subprocess.PIPE)
    try:
        wait_listening(port, proc)
        status, body = get(port, "/openapi.yaml")
        assert status == 200 and body.startswith(b"openapi:")
        status, body = get(port, "/")
        assert status == 200 and b"<html" in body
        status, _ = get(port, "/script.js")
        assert status == 200
        assert stop(proc) == 0
    finally:
        cleanup(proc)
    assert (workdir / "me_meta.db").exists() and (workdir / "me_analytics.db").exists()


def test_ingestion_tables_load_in_the_background_at_start(pyz: Path, workdir: Path) -> None:
    # The UA parser and the block lists load on a worker thread once the server listens, so the
    # first visitor's hit does not wait ~0.5 s for them; the server says when they are in, and how
    # many objects it then froze.
    port = free_port()
    cmd = isolated(pyz, "start", "-port", str(port), "-level", "debug")
    proc = subprocess.Popen(cmd, cwd=workdir, stderr=subprocess.PIPE, text=True)
    lines: queue.Queue[str] = queue.Queue()
    assert proc.stderr is not None
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stderr or ()], daemon=True).start()
    try:
        records: list[dict[str, object]] = []
        messages: list[object] = []
        deadline = time.monotonic() + 60
        while "ingestion tables loaded" not in messages and time.monotonic() < deadline:
            try:
                records.append(json.loads(lines.get(timeout=1)))
            except queue.Empty:
                continue
            messages.append(records[-1]["message"])
        assert "ingestion tables loaded" in messages, messages
        assert messages.index("medama is running") < messages.index("ingestion tables loaded")
        # Then what start-up made is hidden from the cyclic collector (app._freeze_start_up): the
        # tables and modules alone are far more objects than this.
        loaded = records[messages.index("ingestion tables loaded")]
        assert isinstance(loaded["frozen_objects"], int) and loaded["frozen_objects"] > 10_000, loaded
        assert stop(proc) == 0  # type: ignore[arg-type]
    finally:
        cleanup(proc)


def test_env_flag_reads_port_and_database_paths(pyz: Path, workdir: Path) -> None:
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PORT": str(port),
        "APP_DATABASE_HOST": str(workdir / "data" / "app.db"),
        "ANALYTICS_DATABASE_HOST": str(workdir / "data" / "analytics.db"),
    }
    proc = subprocess.Popen(isolated(pyz, "start", "-env"), cwd=workdir, env=env, stderr=subprocess.PIPE)
    try:
        wait_listening(port, proc)
        assert get(port, "/openapi.yaml")[0] == 200
        assert stop(proc) == 0
    finally:
        cleanup(proc)
    assert (workdir / "data" / "app.db").exists() and (workdir / "data" / "analytics.db").exists()


# The interpreters the archive promises to run on (pyproject.toml's requires-python, README).
SUPPORTED_PYTHONS = ("3.10", "3.11", "3.12", "3.13")
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
)


def interpreters(version: str) -> list[str]:
    """Every python`version` on this machine: pyenv builds, PATH, the system python3, the running one."""
    found = sorted(glob.glob(f"/root/.pyenv/versions/{version}.*/bin/python{version}"))
    found += [path for path in (shutil.which(f"python{version}"), "/usr/bin/python3", sys.executable) if path]
    unique: dict[str, str] = {}
    for path in found:
        real = os.path.realpath(path)
        if real not in unique and os.access(real, os.X_OK) and python_version(real) == version:
            unique[real] = path
    return list(unique.values())


@functools.cache
def python_version(path: str) -> str:
    result = subprocess.run(
        [path, "-I", "-S", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    return result.stdout.strip()


@pytest.mark.parametrize("version", SUPPORTED_PYTHONS)
def test_smoke_on_every_supported_python(pyz: Path, tmp_path: Path, version: str) -> None:
    """start, the API document, login, one hit that shows in the stats, SIGTERM: on each Python present.

    Both ways the README gives: the built `.pyz` isolated from any installed package, and `python3 medama.py`
    from the source tree as a user runs it.
    """
    found = interpreters(version)
    if not found:
        pytest.skip(f"NOT TESTED: no Python {version} on this machine (looked in /root/.pyenv, PATH, /usr/bin)")
    for python in found:
        name = os.path.realpath(python).replace("/", "_")
        print(f"smoke test of medama.pyz on Python {version}: {python}")
        smoke([python, "-I", "-S", str(pyz)], tmp_path / f"pyz{name}")
        print(f"smoke test of medama.py on Python {version}: {python}")
        smoke([python, str(ROOT / "medama.py")], tmp_path / f"py{name}")


def smoke(program: list[str], workdir: Path) -> None:
    workdir.mkdir()
    port = free_port()
    cmd = [*program, "start", "-host", "127.0.0.1", "-port", str(port)]
    proc = subprocess.Popen(cmd, cwd=workdir, stderr=subprocess.PIPE)
    client = Client(port)
    try:
        wait_listening(port, proc)
        status, body = get(port, "/openapi.yaml")
        assert status == 200 and body.startswith(b"openapi:")
        client.login()
        assert client.post("/api/websites", json_body={"hostname": "smoke.example"}).status == 201
        beacon = {"e": "load", "b": "smoke1234567", "u": "https://smoke.example/", "r": "", "p": True, "q": True}
        beacon["t"] = "Europe/London"
        headers = {"User-Agent": CHROME, "Accept-Language": "en-GB", "Content-Type": "text/plain"}
        assert client.post("/api/event/hit", body=json.dumps(beacon).encode(), headers=headers).status == 204
        summary = client.get("/api/website/smoke.example/summary").json()
        assert summary["current"]["pageviews"] == 1 and summary["current"]["visitors"] == 1, summary
        client.close()
        assert stop(proc) == 0, proc.stderr.read() if proc.stderr else b""
    finally:
        client.close()
        cleanup(proc)


def test_an_old_python_gets_one_line_naming_the_version_needed(pyz: Path) -> None:
    old = sorted(glob.glob("/root/.pyenv/versions/3.9.*/bin/python3.9")) + [shutil.which("python3.9") or ""]
    old = [path for path in old if path]
    if not old:
        pytest.skip("NOT TESTED: no Python 3.9 on this machine")
    for argv in ([str(pyz), "start"], [str(pyz), "version"], [str(ROOT / "medama.py"), "start"]):
        result = subprocess.run([old[0], *argv], capture_output=True, text=True, timeout=30)
        assert result.returncode == 2 and result.stdout == ""
        assert result.stderr.count("\n") == 1 and "needs Python 3.10 or newer; this is Python 3.9" in result.stderr
