"""The plain-HTTP app (challenges, redirects), bind errors, and -tlscert with SIGHUP reloads on the real .pyz."""

from __future__ import annotations

import asyncio
import errno
import http.client
import json
import signal
import socket
import ssl
import time
from pathlib import Path

import pytest

from medama_core import https
from medama_core.http.protocol import Request, Response
from tests.deploy.conftest import Proc, free_port


@pytest.mark.parametrize(
    "host, port, path, query, expected",
    [
        ("a.example", 443, "/", "", "https://a.example/"),
        ("a.example", 8443, "/x", "q=1", "https://a.example:8443/x?q=1"),
        ("a.example", 443, "/caf\u00e9 au lait", "", "https://a.example/caf%C3%A9%20au%20lait"),
        ("a.example", 443, "/a:b@c/d;e", "", "https://a.example/a:b@c/d;e"),
        ("[::1]", 443, "/", "", "https://[::1]/"),
    ],
)
def test_redirect_location(host: str, port: int, path: str, query: str, expected: str) -> None:
    assert https.redirect_location(host, port, path, query) == expected


@pytest.mark.parametrize(
    "header, expected",
    [
        ("a.example", "a.example"),
        ("A.Example:80", "a.example"),
        ("192.0.2.1:80", "192.0.2.1"),
        ("[2001:db8::1]:80", "[2001:db8::1]"),
        ("", ""),
        ("evil.example/path", ""),
        ("a b", ""),
        ("[::1", ""),
    ],
)
def test_host_only(header: str, expected: str) -> None:
    assert https.host_only(header) == expected


def answer(app: https.PlainApp, path: str, query: str = "", host: str = "") -> tuple[int, str, bytes]:
    headers = {"host": host} if host else {}
    response = asyncio.run(app.handle(Request("GET", path, query, headers)))
    return response.status, response.header("Location") or "", response.body


def test_plain_app_answers_challenges_and_redirects_the_rest() -> None:
    app = https.PlainApp("stats.example", 443)
    app.challenges["tok"] = "tok.thumb"
    assert answer(app, "/.well-known/acme-challenge/tok") == (200, "", b"tok.thumb")
    assert answer(app, "/.well-known/acme-challenge/other")[0] == 404
    assert answer(app, "/api/user", "a=1", host="ignored.example") == (301, "https://stats.example/api/user?a=1", b"")


def test_plain_app_asks_the_main_app_only_for_the_health_check() -> None:
    async def main_app(request: Request) -> Response:
        return Response(200, request.path.encode())

    app = https.PlainApp("stats.example", 443, main_app)
    assert answer(app, "/api/health") == (200, "", b"/api/health")
    assert answer(app, "/api/user")[0] == 301


def test_plain_app_without_a_domain_redirects_to_the_host_asked_for() -> None:
    app = https.PlainApp("", 8443)
    assert answer(app, "/x", host="b.example:80")[:2] == (301, "https://b.example:8443/x")
    assert answer(app, "/x")[0] == 400


@pytest.mark.parametrize(
    "code, expected",
    [
        (errno.EACCES, "setcap cap_net_bind_service=+ep"),
        (errno.EADDRINUSE, "another program already uses it"),
        (errno.EADDRNOTAVAIL, "is not an address of this machine"),
    ],
)
def test_listen_errors_say_what_to_do(code: int, expected: str) -> None:
    import os

    message = str(https.listen_error(OSError(code, os.strerror(code)), 80, "ACME challenges", "10.9.8.7"))
    assert message.startswith("cannot listen on 10.9.8.7:80 (ACME challenges)")
    assert expected in message


# -tlscert on the real archive


class NamedHTTPS(http.client.HTTPSConnection):
    """Connects to 127.0.0.1 and checks the certificate for `name`."""

    def __init__(self, port: int, cafile: Path, name: str = "stats.example") -> None:
        self.tls = ssl.create_default_context(cafile=str(cafile))
        self.name = name
        super().__init__(name, port, context=self.tls, timeout=10)

    def connect(self) -> None:
        raw = socket.create_connection(("127.0.0.1", self.port), self.timeout)
        self.sock = self.tls.wrap_socket(raw, server_hostname=self.name)


def serial_of(port: int, cafile: Path) -> int:
    from tests.deploy.certs import peer_serial

    conn = NamedHTTPS(port, cafile)
    try:
        conn.request("GET", "/api/health")
        response = conn.getresponse()
        assert response.status == 200
        response.read()
        assert conn.sock is not None
        return peer_serial(conn.sock.getpeercert(binary_form=True))
    finally:
        conn.close()


def test_tlscert_serves_https_redirects_http_and_reloads_on_sighup(
    pyz: Path, tmp_path: Path, procs: list[Proc]
) -> None:
    pytest.importorskip("cryptography")
    from tests.deploy.certs import CA

    ca = CA.create()
    cafile = tmp_path / "ca.pem"
    cafile.write_bytes(ca.pem())
    cert, key, first = ca.write(tmp_path, "stats.example")
    http_port, https_port = free_port(), free_port()
    args = ["start", "-tlscert", str(cert), "-tlskey", str(key), "-host", "127.0.0.1"]
    args += ["-httpport", str(http_port), "-httpsport", str(https_port), "-appdb", str(tmp_path / "me_meta.db")]
    args += ["-analyticsdb", str(tmp_path / "me_analytics.db")]
    # No -S: the interpreter may bring uvloop, and TLS must work on it too. -tlscert needs no cryptography.
    server = Proc(pyz, args, tmp_path / "server.log")
    procs.append(server)
    server.wait_for('"medama is running"')
    assert serial_of(https_port, cafile) == first

    plain = http.client.HTTPConnection("127.0.0.1", http_port, timeout=10)
    plain.request("GET", "/api/user?x=1", headers={"Host": "stats.example"})
    response = plain.getresponse()
    response.read()
    assert response.status == 301
    assert response.getheader("Location") == f"https://stats.example:{https_port}/api/user?x=1"
    plain.request("GET", "/api/health")  # probes (Docker HEALTHCHECK) need no certificate
    response = plain.getresponse()
    assert response.status == 200 and b'"status":"ok"' in response.read()
    plain.close()

    # New files in place, then SIGHUP: the next handshake gets the new chain, from the same process.
    _, _, second = ca.write(tmp_path, "stats.example")
    offset = len(server.log())
    server.proc.send_signal(signal.SIGHUP)
    server.wait_for('"reloaded certificate"', timeout=10, after=offset)
    assert serial_of(https_port, cafile) == second

    # A broken file on SIGHUP is reported and the previous certificate stays in service.
    cert.write_bytes(b"not a certificate")
    offset = len(server.log())
    server.proc.send_signal(signal.SIGHUP)
    server.wait_for('"certificate reload failed; still serving the previous one"', timeout=10, after=offset)
    assert serial_of(https_port, cafile) == second
    assert server.terminate() == 0


def start_failure(pyz: Path, tmp_path: Path, procs: list[Proc], code: int, *extra: str) -> str:
    """Exit 2 for flags that cannot be used, 1 for what this machine refuses (README, "Exit codes")."""
    args = ["start", "-host", "127.0.0.1", "-appdb", str(tmp_path / "me_meta.db")]
    args += ["-analyticsdb", str(tmp_path / "me_analytics.db"), *extra]
    server = Proc(pyz, args, tmp_path / f"fail-{time.monotonic_ns()}.log")
    procs.append(server)
    assert server.wait_exit() == code
    return server.log()


def test_start_up_errors_are_one_clear_line(pyz: Path, tmp_path: Path, procs: list[Proc]) -> None:
    log = start_failure(pyz, tmp_path, procs, 2, "-autossl", "a.example", "-tlscert", "x.pem")
    assert "ERROR: use -autossl or -tlscert, not both" in log
    log = start_failure(pyz, tmp_path, procs, 2, "-autossl", "*.example.com")
    assert "is not a domain name" in log
    log = start_failure(pyz, tmp_path, procs, 1, "-tlscert", str(tmp_path / "missing.pem"), "-httpsport", "0")
    assert "ERROR: cannot load certificate" in log
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        pytest.importorskip("cryptography")
        from tests.deploy.certs import CA

        cert, key, _ = CA.create().write(tmp_path, "stats.example")
        log = start_failure(pyz, tmp_path, procs, 1, "-tlscert", str(cert), "-tlskey", str(key), "-httpport", str(port))
    assert f"ERROR: cannot listen on 127.0.0.1:{port} (redirects to HTTPS): another program already uses it" in log
    assert "Traceback" not in log


def test_a_failed_renewal_is_logged_with_a_hint_then_retried_and_loaded_live(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("cryptography")
    import io

    from medama_core import acme, tls
    from medama_core.config import Config
    from medama_core.log import Logger
    from tests.deploy.certs import CA
    from tests.deploy.test_tls import TLSAcceptor, handshake_serial

    ca = CA.create()
    cert, key, first = ca.write(tmp_path, "a.example")
    now = time.time()
    due = tls.Validity(not_before=now - 100, not_after=now + 0.3, serial=first, names=("a.example",))
    config = Config(autossl="a.example", acmedirectory="https://ca.example/dir", httpport=80)
    stream = io.StringIO()
    store = tls.CertStore(tmp_path / "data")
    auto = https.AutoCert(config, Logger("json", "info", stream), https.PlainApp("a.example", 443), store)
    auto.current = tls.Stored(cert, due, config.acmedirectory)
    monkeypatch.setattr(https, "RETRY_MIN_S", 0.05)
    attempts: list[int] = []
    second = 0

    async def obtain() -> tls.Stored:
        nonlocal second
        attempts.append(1)
        if len(attempts) == 1:
            raise acme.AcmeError("connection refused", acme.ERROR_PREFIX + "connection")
        chain, new_key, second = ca.issue("a.example")
        return store.save("a.example", new_key, chain, config.acmedirectory)

    monkeypatch.setattr(auto, "obtain", obtain)
    context = tls.server_context(cert, key)
    acceptor = TLSAcceptor(context)

    told: list[int] = []  # the hook that tells -workers children to load the files again

    async def run() -> None:
        task = asyncio.ensure_future(auto.renew_forever(context, lambda: told.append(len(attempts))))
        while "renewed certificate" not in stream.getvalue():
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    try:
        assert handshake_serial(acceptor.port, ca, tmp_path) == first
        asyncio.run(asyncio.wait_for(run(), 10))
        assert handshake_serial(acceptor.port, ca, tmp_path) == second
    finally:
        acceptor.close()
    failed = [json.loads(line) for line in stream.getvalue().splitlines() if "renewal failed" in line]
    assert len(failed) == 1 and len(attempts) == 2
    assert told == [2]  # once, after the renewal that worked
    assert "connection refused" in failed[0]["error"] and "A/AAAA records" in failed[0]["error"]
    assert failed[0]["retry_s"] == 0.05
    assert auto.current.validity.serial == second
