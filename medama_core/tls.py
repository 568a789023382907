"""TLS certificates: files in the data directory, server SSLContexts, renewal dates and live reloads.

A certificate obtained over ACME is kept as one PEM bundle per domain (the
full chain, then its private key) so that replacing it is a single atomic
rename: a reader never sees a new chain beside an old key. Private files are
created 0600 inside a 0700 directory.
"""

from __future__ import annotations

import json
import os
import re
import ssl
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

RENEW_BEFORE_S = 30 * 24 * 3600  # renew once 30 days remain: certbot's default, a third of a 90-day certificate
# Shorter certificates (6-day ones, or pebble's in tests) renew once a third of their lifetime remains, as
# certmagic (upstream's ACME library) does; a 30-day margin would have them renewing without pause.
RENEW_FRACTION = 1 / 3
PRIVATE_FILE_MODE = 0o600  # keys: readable by the service user only
PRIVATE_DIR_MODE = 0o700
ALPN_PROTOCOLS = ["http/1.1"]  # the server speaks HTTP/1.1 only; offering h2 would strand clients that pick it
MAX_DOMAIN_LENGTH = 253  # RFC 1035 §2.3.4, in text form
_DOMAIN = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))*")

MISSING_CRYPTOGRAPHY = (
    "-autossl needs the Python package 'cryptography' for keys, CSRs and ACME signatures: "
    "install it beside the server (pip install cryptography, or apt install python3-cryptography)"
)


class CertificateError(ValueError):
    """A certificate or key that cannot be used."""


def valid_domain(domain: str) -> bool:
    """A DNS name we can ask a certificate for and use as a file name (no wildcards, no IP literals)."""
    return len(domain) <= MAX_DOMAIN_LENGTH and _DOMAIN.fullmatch(domain) is not None


def data_dir(explicit: str, appdb: str) -> Path:
    """The data directory: -datadir when given, otherwise the directory holding the app database (the working
    directory when the app database is a server's URL)."""
    if explicit:
        return Path(explicit)
    return Path.cwd() if "://" in appdb else Path(os.path.abspath(appdb)).parent


def write_private(path: Path, data: bytes) -> None:
    """Replace `path` atomically with `data`, mode 0600 from the first byte."""
    path.parent.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)  # mkstemp creates it 0600
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, PRIVATE_FILE_MODE)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


@dataclass(frozen=True)
class Validity:
    """The leaf certificate's dates (Unix seconds) and serial number."""

    not_before: float
    not_after: float
    serial: int
    names: tuple[str, ...]

    def renew_at(self) -> float:
        """When to renew: 30 days before expiry, or a third of the lifetime before it if that is shorter."""
        margin = min(RENEW_BEFORE_S, (self.not_after - self.not_before) * RENEW_FRACTION)
        return self.not_after - margin


def validity(chain_pem: bytes) -> Validity:
    """Read the first (leaf) certificate of a PEM chain. Needs `cryptography`."""
    from cryptography import x509

    try:
        leaf = x509.load_pem_x509_certificate(chain_pem)
    except ValueError as exc:
        raise CertificateError(f"not a PEM certificate: {exc}") from None
    try:
        names = tuple(
            leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
        )
    except x509.ExtensionNotFound:
        names = ()
    return Validity(
        _timestamp(leaf.not_valid_before_utc), _timestamp(leaf.not_valid_after_utc), leaf.serial_number, names
    )


def _timestamp(moment: datetime) -> float:
    return moment.timestamp()


@dataclass(frozen=True)
class Stored:
    """A certificate bundle found on disk, with the directory URL of the CA that issued it."""

    path: Path
    validity: Validity
    directory: str


class CertStore:
    """`<datadir>/tls/`: the ACME account key, and per domain a PEM bundle plus a small JSON note."""

    def __init__(self, data_directory: Path) -> None:
        self.root = data_directory / "tls"

    @property
    def account_key_path(self) -> Path:
        return self.root / "acme-account.key"

    def bundle_path(self, domain: str) -> Path:
        return self.root / f"{domain}.pem"

    def note_path(self, domain: str) -> Path:
        return self.root / f"{domain}.json"

    def read_account_key(self) -> bytes | None:
        try:
            return self.account_key_path.read_bytes()
        except FileNotFoundError:
            return None

    def write_account_key(self, pem: bytes) -> None:
        write_private(self.account_key_path, pem)

    def load(self, domain: str) -> Stored | None:
        """The stored bundle for `domain`, or None when there is none or it cannot be read."""
        path = self.bundle_path(domain)
        try:
            bundle = path.read_bytes()
            note = json.loads(self.note_path(domain).read_text())
            return Stored(path, validity(bundle), str(note.get("directory", "")))
        except (OSError, ValueError, AttributeError):
            return None

    def save(self, domain: str, key_pem: bytes, chain_pem: bytes, directory: str) -> Stored:
        """Write the bundle (chain first, then key) and its note; returns what was stored."""
        path = self.bundle_path(domain)
        write_private(path, chain_pem.rstrip(b"\n") + b"\n" + key_pem)
        write_private(self.note_path(domain), json.dumps({"domain": domain, "directory": directory}).encode())
        return Stored(path, validity(chain_pem), directory)


def server_context(certfile: str | Path, keyfile: str | Path | None = None) -> ssl.SSLContext:
    """A server SSLContext (TLS 1.2+, ALPN http/1.1) holding the given chain and key."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2  # RFC 8996 retires TLS 1.0 and 1.1
    context.set_alpn_protocols(ALPN_PROTOCOLS)
    load(context, certfile, keyfile)
    return context


def load(context: ssl.SSLContext, certfile: str | Path, keyfile: str | Path | None = None) -> None:
    """(Re)load the chain and key into `context`; connections accepted afterwards use them.

    On failure the context keeps what it had, so a bad file on SIGHUP or a
    failed renewal never takes HTTPS down.
    """
    cert, key = str(certfile), str(keyfile) if keyfile else None
    try:
        # OpenSSL installs the chain before it checks the key, so a bad pair would half-replace what the
        # live context holds: try the files on a scratch context first.
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(cert, key)
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        where = f"{certfile}" + (f" with key {keyfile}" if keyfile else "")
        raise CertificateError(f"cannot load certificate {where}: {exc}") from None
