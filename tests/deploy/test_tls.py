"""Certificate files, renewal dates, SSLContexts and live reloads."""

from __future__ import annotations

import socket
import ssl
import stat
import threading
from pathlib import Path

import pytest

pytest.importorskip("cryptography")

from medama_core import tls  # noqa: E402
from tests.deploy.certs import CA, peer_serial  # noqa: E402

DAY = 24 * 3600.0


@pytest.mark.parametrize(
    "domain, ok",
    [
        ("example.com", True),
        ("stats.example.co.uk", True),
        ("a-b.example", True),
        ("localhost", True),
        ("Example.com", False),  # pass names lower-case: they become file names
        ("*.example.com", False),
        ("-a.example", False),
        ("a-.example", False),
        ("a..example", False),
        ("../etc/passwd", False),
        ("", False),
        ("a" * 64 + ".example", False),
        ("a." * 127 + "ab", False),  # 256 characters
    ],
)
def test_valid_domain(domain: str, ok: bool) -> None:
    assert tls.valid_domain(domain) is ok


@pytest.mark.parametrize(
    "lifetime, renew_before",
    [
        (90 * DAY, 30 * DAY),  # Let's Encrypt today: 30 days before expiry
        (365 * DAY, 30 * DAY),  # long certificates still renew 30 days ahead
        (6 * DAY, 2 * DAY),  # short-lived: a third of the lifetime
        (30.0, 10.0),  # pebble in the tests
    ],
)
def test_renewal_date(lifetime: float, renew_before: float) -> None:
    validity = tls.Validity(not_before=1000.0, not_after=1000.0 + lifetime, serial=1, names=("a.example",))
    assert validity.renew_at() == pytest.approx(1000.0 + lifetime - renew_before)


def test_data_dir_defaults_to_the_app_database_folder(tmp_path: Path) -> None:
    assert tls.data_dir("", str(tmp_path / "db" / "me_meta.db")) == tmp_path / "db"
    assert tls.data_dir("/srv/medama", "./me_meta.db") == Path("/srv/medama")


def test_private_files_are_0600_in_a_0700_directory_and_replaced_atomically(tmp_path: Path) -> None:
    target = tmp_path / "tls" / "secret.pem"
    tls.write_private(target, b"one")
    tls.write_private(target, b"two")
    assert target.read_bytes() == b"two"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert stat.S_IMODE(target.parent.stat().st_mode) == 0o700
    assert [p.name for p in target.parent.iterdir()] == ["secret.pem"]  # no temporary left behind


def test_store_round_trip(tmp_path: Path) -> None:
    ca = CA.create()
    chain, key, serial = ca.issue("a.example")
    store = tls.CertStore(tmp_path)
    assert store.load("a.example") is None and store.read_account_key() is None
    saved = store.save("a.example", key, chain, "https://ca/dir")
    loaded = store.load("a.example")
    assert loaded == saved
    assert loaded.validity.serial == serial and loaded.validity.names == ("a.example",)
    assert loaded.directory == "https://ca/dir"
    store.write_account_key(b"KEY")
    assert store.read_account_key() == b"KEY"
    tls.server_context(loaded.path)  # one file holds chain and key
    (tmp_path / "tls" / "a.example.pem").write_bytes(b"garbage")
    assert store.load("a.example") is None


def handshake_serial(port: int, ca: CA, tmp_path: Path) -> int:
    cafile = tmp_path / "ca.pem"
    cafile.write_bytes(ca.pem())
    client = ssl.create_default_context(cafile=str(cafile))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with client.wrap_socket(raw, server_hostname="a.example") as wrapped:
            return peer_serial(wrapped.getpeercert(binary_form=True))


class TLSAcceptor:
    """A bare TLS server on a thread: accepts, handshakes, closes; enough to see which chain is served."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self.context = context
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.05)  # accept() wakes up to notice close()
        self.port = self.listener.getsockname()[1]
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            conn.settimeout(5)
            with conn:
                try:
                    with self.context.wrap_socket(conn, server_side=True):
                        pass
                except (ssl.SSLError, OSError):
                    pass

    def close(self) -> None:
        self.stopping.set()
        self.thread.join(5)
        self.listener.close()


def test_reloading_a_live_context_serves_the_new_chain_and_a_bad_pair_keeps_the_old(tmp_path: Path) -> None:
    ca = CA.create()
    cert, key, first = ca.write(tmp_path, "a.example", stem="one")
    context = tls.server_context(cert, key)
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    acceptor = TLSAcceptor(context)
    try:
        assert handshake_serial(acceptor.port, ca, tmp_path) == first
        new_cert, new_key, second = ca.write(tmp_path, "a.example", stem="two")
        tls.load(context, new_cert, new_key)
        assert handshake_serial(acceptor.port, ca, tmp_path) == second
        with pytest.raises(tls.CertificateError, match="cannot load certificate"):
            tls.load(context, new_cert, key)  # the first key does not match the second chain
        with pytest.raises(tls.CertificateError):
            tls.load(context, tmp_path / "missing.pem")
        assert handshake_serial(acceptor.port, ca, tmp_path) == second
    finally:
        acceptor.close()
