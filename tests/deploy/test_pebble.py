"""-autossl end to end against a real ACME CA (Debian's pebble): obtain, serve, redirect, renew, restart."""

from __future__ import annotations

import http.client
import json
import os
import socket
import ssl
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("cryptography")

from tests.deploy import pebble  # noqa: E402
from tests.deploy.certs import peer_serial  # noqa: E402
from tests.deploy.conftest import Proc, free_port  # noqa: E402

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (pebble.PEBBLE and pebble.CHALLTESTSRV), reason="Debian package pebble not installed"),
]

DOMAIN = "medama.test"  # resolved by pebble through challtestsrv; unknown to this machine's resolver
VALIDITY_S = 30  # pebble's certificate lifetime: renewal is due after 20 s (a third before expiry)
RENEWAL_WAIT_S = 45.0


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> Iterator[pebble.Pebble]:
    with pebble.running(tmp_path_factory.mktemp("pebble"), validity_s=VALIDITY_S) as running:
        yield running


def autossl_args(ca: pebble.Pebble, data: Path, https_port: int, domain: str = DOMAIN) -> list[str]:
    return [
        "start",
        "-autossl",
        domain,
        "-autosslemail",
        "ops@medama.test",
        "-acmedirectory",
        ca.directory,
        "-acmeca",
        str(ca.ca_file),
        "-httpport",
        str(ca.http_port),
        "-httpsport",
        str(https_port),
        "-host",
        "127.0.0.1",
        "-appdb",
        str(data / "me_meta.db"),
        "-analyticsdb",
        str(data / "me_analytics.db"),
    ]


class DomainHTTPS(http.client.HTTPSConnection):
    """Connects to 127.0.0.1, but sends SNI and Host for DOMAIN and checks the certificate against it."""

    def __init__(self, port: int, root: Path) -> None:
        self.tls = ssl.create_default_context(cafile=str(root))
        self.tls.set_alpn_protocols(["h2", "http/1.1"])
        super().__init__(DOMAIN, port, context=self.tls, timeout=10)

    def connect(self) -> None:
        raw = socket.create_connection(("127.0.0.1", self.port), self.timeout)
        self.sock = self.tls.wrap_socket(raw, server_hostname=DOMAIN)


def https_connection(port: int, root: Path) -> DomainHTTPS:
    return DomainHTTPS(port, root)


def served_serial(port: int, root: Path) -> int:
    conn = https_connection(port, root)
    try:
        conn.request("GET", "/api/health")
        response = conn.getresponse()
        assert response.status == 200, response.read()
        response.read()
        assert conn.sock is not None
        return peer_serial(conn.sock.getpeercert(binary_form=True))
    finally:
        conn.close()


def log_records(proc: Proc) -> list[dict[str, object]]:
    return [json.loads(line) for line in proc.log().splitlines() if line.startswith("{")]


def test_obtains_serves_redirects_renews_and_restarts_with_the_stored_certificate(
    ca: pebble.Pebble, pyz: Path, tmp_path: Path, procs: list[Proc]
) -> None:
    data = tmp_path / "data"
    root = tmp_path / "pebble-root.pem"
    root.write_bytes(ca.root_pem())
    https_port = free_port()
    # Two worker processes serve HTTPS from the files the parent obtains and renews (the restart below
    # runs one process; the live load into a single process's context is test_https.py's renewal test).
    server = Proc(pyz, [*autossl_args(ca, data, https_port), "-workers", "2"], tmp_path / "first.log")
    procs.append(server)
    server.wait_for('"medama is running"')
    for worker in (1, 2):
        server.wait_for(f'"worker": {worker}')
    messages = [r["message"] for r in log_records(server)]
    assert "obtained certificate" in messages
    # This machine cannot resolve the test domain: the self-check says so, the CA (through its DNS) succeeds.
    assert "reachability self-check failed; asking the CA anyway" in messages

    # HTTPS with a chain that verifies against pebble's root, for DOMAIN, over HTTP/1.1.
    conn = https_connection(https_port, root)
    conn.request("GET", "/api/health")
    response = conn.getresponse()
    assert response.status == 200
    assert json.loads(response.read())["status"] == "ok"
    assert conn.sock is not None
    assert conn.sock.selected_alpn_protocol() == "http/1.1"
    first_serial = peer_serial(conn.sock.getpeercert(binary_form=True))

    # Port 80 (here pebble's httpPort): 301 to the same path on HTTPS; unknown challenge tokens are 404.
    plain = http.client.HTTPConnection("127.0.0.1", ca.http_port, timeout=10)
    plain.request("GET", "/some/page?x=1&y=%C3%A9", headers={"Host": DOMAIN})
    redirect = plain.getresponse()
    redirect.read()
    assert redirect.status == 301
    assert redirect.getheader("Location") == f"https://{DOMAIN}:{https_port}/some/page?x=1&y=%C3%A9"
    plain.request("GET", "/.well-known/acme-challenge/not-a-token")
    missing = plain.getresponse()
    missing.read()
    assert missing.status == 404
    plain.close()

    # Stored next to the databases, private.
    tls_dir = data / "tls"
    assert stat.S_IMODE(tls_dir.stat().st_mode) == 0o700
    for name in (f"{DOMAIN}.pem", "acme-account.key", f"{DOMAIN}.json"):
        assert stat.S_IMODE((tls_dir / name).stat().st_mode) == 0o600, name

    # Renewal: pebble's certificates live 30 s, so the background task renews after ~20 s, with no restart.
    offset = len(server.log())
    server.wait_for('"renewed certificate"', timeout=RENEWAL_WAIT_S, after=offset)
    deadline = time.monotonic() + 5  # the parent's SIGHUP reaches each child within moments
    while sum(r["message"] == "reloaded certificate" for r in log_records(server)) < 2:
        assert time.monotonic() < deadline, server.log()
        time.sleep(0.05)
    served = {served_serial(https_port, root) for _ in range(10)}  # fresh connections: either child
    assert len(served) == 1 and first_serial not in served
    (renewed_serial,) = served
    conn.request("GET", "/api/health")  # the connection opened before the renewal still works
    assert conn.getresponse().status == 200
    conn.close()
    assert server.proc.poll() is None

    # Restart: the stored (renewed) certificate is served again; no new order is placed.
    assert server.terminate() == 0
    again = Proc(pyz, autossl_args(ca, data, https_port), tmp_path / "second.log")
    procs.append(again)
    again.wait_for('"medama is running"')
    messages = [r["message"] for r in log_records(again)]
    assert "using stored certificate" in messages and "obtaining certificate" not in messages
    assert served_serial(https_port, root) == renewed_serial
    assert again.terminate() == 0


def test_a_domain_that_does_not_point_here_fails_start_up_with_a_hint(
    ca: pebble.Pebble, pyz: Path, tmp_path: Path, procs: list[Proc]
) -> None:
    ca.point("elsewhere.test", "127.0.0.2")  # nothing of ours listens there
    server = Proc(pyz, autossl_args(ca, tmp_path / "data", free_port(), "elsewhere.test"), tmp_path / "run.log")
    procs.append(server)
    assert server.wait_exit(60) == 1
    log = server.log()
    assert "ERROR: could not obtain a certificate for elsewhere.test" in log
    assert "A/AAAA records point to this machine" in log and f"port {ca.http_port} is open" in log
    assert not (tmp_path / "data" / "tls" / "elsewhere.test.pem").exists()


def test_without_cryptography_autossl_names_the_package(pyz: Path, tmp_path: Path, procs: list[Proc]) -> None:
    # -S drops site-packages, where cryptography lives.
    server = Proc(
        pyz,
        ["start", "-autossl", DOMAIN, "-httpport", str(free_port()), "-appdb", str(tmp_path / "a.db")],
        tmp_path / "run.log",
        interpreter_flags=("-I", "-S"),
    )
    procs.append(server)
    assert server.wait_exit() == 1
    assert "needs the Python package 'cryptography'" in server.log()
    assert "pip install cryptography" in server.log()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to start a process as another user")
def test_a_privileged_port_without_the_capability_explains_setcap(pyz: Path, procs: list[Proc]) -> None:
    unprivileged_start = int(Path("/proc/sys/net/ipv4/ip_unprivileged_port_start").read_text())
    if unprivileged_start <= 81:
        pytest.skip("this kernel lets anyone bind low ports (ip_unprivileged_port_start)")
    with tempfile.TemporaryDirectory(prefix="medama-nobody-") as name:  # pytest's tmp dirs are root-only
        work = Path(name)
        work.chmod(0o777)
        run_as_nobody(pyz, work, procs)


def run_as_nobody(pyz: Path, work: Path, procs: list[Proc]) -> None:
    shared_pyz = work / "medama.pyz"
    shared_pyz.write_bytes(pyz.read_bytes())
    shared_pyz.chmod(0o755)
    args = ["start", "-autossl", DOMAIN, "-httpport", "81", "-appdb", str(work / "me_meta.db")]
    args += ["-analyticsdb", str(work / "me_analytics.db")]
    # /usr/bin/python3 rather than this interpreter: the test's own may live under /root, which nobody cannot read.
    server = Proc(shared_pyz, args, work / "run.log", python="/usr/bin/python3", user=65534, cwd=work)
    procs.append(server)
    assert server.wait_exit() == 1
    log = server.log()
    assert "cannot listen on port 81" in log and "permission denied" in log
    assert "setcap cap_net_bind_service=+ep" in log and "AmbientCapabilities=CAP_NET_BIND_SERVICE" in log
