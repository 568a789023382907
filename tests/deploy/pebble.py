"""Debian's pebble (an RFC 8555 test CA) and pebble-challtestsrv (its mock DNS), started per test module.

pebble serves its ACME API over TLS with a certificate we make here (the
Debian package ships none), validates HTTP-01 challenges by resolving names
through challtestsrv (every name → 127.0.0.1 unless told otherwise) and
connecting to `http_port`, and issues certificates that live `validity_s`.
"""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.deploy.certs import CA
from tests.deploy.conftest import free_port

PEBBLE = shutil.which("pebble")
CHALLTESTSRV = shutil.which("pebble-challtestsrv")
READY_TIMEOUT_S = 20.0


@dataclass
class Pebble:
    directory: str  # the ACME directory URL
    ca_file: Path  # trust this for the ACME API itself (-acmeca)
    http_port: int  # where pebble expects our HTTP-01 answers
    management: str  # https://127.0.0.1:PORT of pebble's management API
    dns_management: str  # http://127.0.0.1:PORT of challtestsrv's API
    context: ssl.SSLContext

    def root_pem(self) -> bytes:
        """The root that issued certificates chain to (random per pebble run): /roots/0."""
        with urllib.request.urlopen(f"{self.management}/roots/0", context=self.context, timeout=10) as response:
            data: bytes = response.read()
            return data

    def point(self, host: str, address: str) -> None:
        """Make challtestsrv answer A queries for `host` with `address`."""
        body = json.dumps({"host": host, "addresses": [address]}).encode()
        request = urllib.request.Request(f"{self.dns_management}/add-a", data=body, method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()


def _wait_ready(url: str, context: ssl.SSLContext | None, procs: list[subprocess.Popen[bytes]], log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        for proc in procs:
            if proc.poll() is not None:
                raise AssertionError(f"pebble exited early:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url, context=context, timeout=2) as response:
                response.read()
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"{url} not ready:\n{log.read_text()}")


@contextmanager
def running(workdir: Path, *, validity_s: int) -> Iterator[Pebble]:
    assert PEBBLE and CHALLTESTSRV
    ca = CA.create("pebble API test CA")
    ca_file = workdir / "pebble-api-ca.pem"
    ca_file.write_bytes(ca.pem())
    cert, key, _ = ca.write(workdir, "localhost", "127.0.0.1", stem="pebble-api")
    acme_port, management_port, dns_port, dns_management_port, http_port = (free_port() for _ in range(5))
    config = {
        "pebble": {
            "listenAddress": f"127.0.0.1:{acme_port}",
            "managementListenAddress": f"127.0.0.1:{management_port}",
            "certificate": str(cert),
            "privateKey": str(key),
            "httpPort": http_port,
            "tlsPort": free_port(),
            "ocspResponderURL": "",
            "externalAccountBindingRequired": False,
            "certificateValidityPeriod": validity_s,
        }
    }
    config_path = workdir / "pebble-config.json"
    config_path.write_text(json.dumps(config))
    log_path = workdir / "pebble.log"
    with ExitStack() as stack:
        log = stack.enter_context(open(log_path, "wb"))
        dns = subprocess.Popen(
            [
                CHALLTESTSRV,
                "-defaultIPv4=127.0.0.1",
                "-defaultIPv6=",
                f"-dns01=127.0.0.1:{dns_port}",
                "-http01=",
                "-https01=",
                "-tlsalpn01=",
                f"-management=127.0.0.1:{dns_management_port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        stack.callback(_stop, dns)
        # NOSLEEP: no random 0-15 s validation delay. Nonce rejection (5%) and authz reuse (50%) stay on:
        # they exercise the client's badNonce retry and its handling of already-valid authorizations.
        env = {"PEBBLE_VA_NOSLEEP": "1", "PATH": "/usr/bin:/bin"}
        ca_server = subprocess.Popen(
            [PEBBLE, "-config", str(config_path), "-dnsserver", f"127.0.0.1:{dns_port}"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=workdir,
        )
        stack.callback(_stop, ca_server)
        context = ssl.create_default_context(cafile=str(ca_file))
        directory = f"https://localhost:{acme_port}/dir"
        _wait_ready(directory, context, [dns, ca_server], log_path)
        yield Pebble(
            directory,
            ca_file,
            http_port,
            f"https://localhost:{management_port}",
            f"http://127.0.0.1:{dns_management_port}",
            context,
        )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
