"""ACME (RFC 8555) client: signed messages built by pure functions, the order flow over urllib.

Only what a single-domain server needs: an ES256 account key, HTTP-01
challenges and PEM certificate chains. Signatures come from `cryptography`
(an optional dependency: only -autossl imports this module). The network
calls are blocking; the server runs `obtain` in a worker thread.

The flow (RFC 8555 §7.1): directory → nonce → newAccount (returns the existing
account for a known key) → newOrder → for each authorization, publish the
key authorization of its http-01 challenge and tell the CA to check it →
poll until valid → finalize with a CSR → poll → download the chain.
"""

from __future__ import annotations

import base64
import hashlib
import json
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from medama_core import __version__

HTTP_TIMEOUT_S = 30.0  # one round trip to the CA; Let's Encrypt answers in well under a second
POLL_INTERVAL_S = 1.0  # RFC 8555 §7.5.1 leaves the pace to the client; a Retry-After header wins
MAX_POLL_INTERVAL_S = 10.0  # a large Retry-After must not stall start-up for minutes per step
POLL_TIMEOUT_S = 180.0  # a validation or issuance still pending after this has failed for practical purposes
MAX_BAD_NONCE_RETRIES = 5  # §6.5: retry a badNonce with the fresh nonce; pebble rejects 5% of good ones on purpose
P256_COORDINATE_BYTES = 32  # RFC 7518 §3.4/§6.2.1.2: ES256 r, s and JWK x, y are fixed-width 32-byte values
USER_AGENT = f"medama/{__version__} (acme; python urllib)"  # §6.1: clients must send a User-Agent

CHALLENGE_PATH = "/.well-known/acme-challenge/"  # RFC 8555 §8.3
ERROR_PREFIX = "urn:ietf:params:acme:error:"


class AcmeError(Exception):
    """A problem document from the CA (RFC 8555 §6.7), or a flow that cannot go on."""

    def __init__(self, detail: str, kind: str = "", status: int = 0) -> None:
        self.detail = detail
        self.kind = kind.removeprefix(ERROR_PREFIX)
        self.status = status
        super().__init__(f"{detail} ({self.kind})" if self.kind else detail)


# Pure message building: no I/O below this line until `Reply`.


def b64url(data: bytes) -> str:
    """Base64url without padding (RFC 7515 §2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def generate_key() -> ec.EllipticCurvePrivateKey:
    """A P-256 key: accepted by every ACME CA for accounts (ES256) and certificates."""
    return ec.generate_private_key(ec.SECP256R1())


def key_to_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def key_from_pem(data: bytes) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(data, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise AcmeError("the stored ACME account key is not a P-256 key")
    return key


def jwk(key: ec.EllipticCurvePrivateKey) -> dict[str, str]:
    """The public half of `key` as a JSON Web Key (RFC 7518 §6.2)."""
    numbers = key.public_key().public_numbers()
    return {
        "crv": "P-256",
        "kty": "EC",
        "x": b64url(numbers.x.to_bytes(P256_COORDINATE_BYTES, "big")),
        "y": b64url(numbers.y.to_bytes(P256_COORDINATE_BYTES, "big")),
    }


def thumbprint(public_jwk: Mapping[str, str]) -> str:
    """RFC 7638: SHA-256 over the required members, sorted, without whitespace."""
    required = {name: public_jwk[name] for name in ("crv", "kty", "x", "y")}
    canonical = json.dumps(required, sort_keys=True, separators=(",", ":")).encode()
    return b64url(hashlib.sha256(canonical).digest())


def key_authorization(token: str, account_thumbprint: str) -> str:
    """What the HTTP-01 resource must answer with (RFC 8555 §8.1)."""
    return f"{token}.{account_thumbprint}"


def sign(key: ec.EllipticCurvePrivateKey, url: str, nonce: str, payload: Any, *, kid: str | None) -> bytes:
    """A flattened JWS (RFC 8555 §6.2). `payload=None` makes a POST-as-GET (empty payload).

    The account is named by `kid` once it exists; before that (newAccount) the
    header carries the public key itself.
    """
    protected: dict[str, Any] = {"alg": "ES256", "nonce": nonce, "url": url}
    if kid is None:
        protected["jwk"] = jwk(key)
    else:
        protected["kid"] = kid
    header = b64url(json.dumps(protected, separators=(",", ":")).encode())
    body = "" if payload is None else b64url(json.dumps(payload, separators=(",", ":")).encode())
    der = key.sign(f"{header}.{body}".encode("ascii"), ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)  # JWS wants the raw r||s pair, not DER (RFC 7518 §3.4)
    raw = r.to_bytes(P256_COORDINATE_BYTES, "big") + s.to_bytes(P256_COORDINATE_BYTES, "big")
    return json.dumps({"protected": header, "payload": body, "signature": b64url(raw)}).encode()


def new_account_payload(email: str) -> dict[str, Any]:
    """newAccount body: terms accepted (as upstream's certmagic does), an optional contact."""
    payload: dict[str, Any] = {"termsOfServiceAgreed": True}
    if email:
        payload["contact"] = [f"mailto:{email}"]
    return payload


def new_order_payload(domain: str) -> dict[str, Any]:
    return {"identifiers": [{"type": "dns", "value": domain}]}


def csr_der(key: ec.EllipticCurvePrivateKey, domain: str) -> bytes:
    """A CSR naming `domain` in both CN and SAN (CAs read the SAN; the CN keeps old clients happy)."""
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, domain)])
    )
    builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(domain)]), critical=False)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def finalize_payload(key: ec.EllipticCurvePrivateKey, domain: str) -> dict[str, str]:
    return {"csr": b64url(csr_der(key, domain))}


def http01_challenge(authorization: Mapping[str, Any]) -> dict[str, Any]:
    """The authorization's http-01 challenge; an AcmeError if the CA offers none."""
    for challenge in authorization.get("challenges", ()):
        if challenge.get("type") == "http-01":
            return dict(challenge)
    offered = ", ".join(str(c.get("type")) for c in authorization.get("challenges", ())) or "none"
    raise AcmeError(f"the CA offers no http-01 challenge for this name (offered: {offered})")


def authorization_problem(authorization: Mapping[str, Any]) -> AcmeError:
    """Why an authorization became invalid, from its failed challenge's error (§7.1.4)."""
    for challenge in authorization.get("challenges", ()):
        error = challenge.get("error")
        if isinstance(error, dict):
            return AcmeError(str(error.get("detail", "validation failed")), str(error.get("type", "")))
    return AcmeError(f"authorization is {authorization.get('status')}")


# Problem types whose usual cause on a self-hosted box is DNS or a closed port 80.
_REACHABILITY_PROBLEMS = ("dns", "connection", "unauthorized", "incorrectResponse")


def hint(error: AcmeError, domain: str, http_port: int) -> str:
    """One sentence telling a self-hoster what to check after `error`."""
    if error.kind in _REACHABILITY_PROBLEMS:
        return (
            f"the CA could not fetch http://{domain}{CHALLENGE_PATH}… from this server: check that {domain}'s "
            f"A/AAAA records point to this machine's public address and that port {http_port} is open to the "
            "internet (firewall, cloud security group, NAT port forward)"
        )
    if error.kind == "caa":
        return f"a CAA record in {domain}'s DNS does not allow this CA to issue for it: add the CA or remove the record"
    if error.kind == "rateLimited":
        return "the CA's rate limit was hit: wait before retrying, or test against a staging directory (-acmedirectory)"
    if error.kind in ("rejectedIdentifier", "malformed") and "." not in domain:
        return f"{domain!r} is not a public domain name; -autossl needs one that resolves on the internet"
    return "see the CA's message above"


def retry_after(headers: Mapping[str, str], default: float = POLL_INTERVAL_S) -> float:
    """Seconds to wait before polling again (RFC 8555 §7.4: the CA may send Retry-After)."""
    value = headers.get("retry-after", "")
    try:
        seconds = float(value)
    except ValueError:
        return default
    return min(max(seconds, 0.0), MAX_POLL_INTERVAL_S)


# Thin I/O: one function does the HTTP, the Client sequences messages over it.


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes

    def json(self) -> dict[str, Any]:
        try:
            value = json.loads(self.body)
        except ValueError:
            raise AcmeError(f"the CA sent a body that is not JSON (HTTP {self.status})") from None
        if not isinstance(value, dict):
            raise AcmeError(f"the CA sent unexpected JSON (HTTP {self.status})")
        return value


Transport = Callable[[str, str, bytes | None, Mapping[str, str]], Reply]


def urllib_transport(context: ssl.SSLContext | None) -> Transport:
    """A transport over urllib; `context` decides which CA certificates the ACME server must chain to."""
    opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=context))

    def send(method: str, url: str, body: bytes | None, headers: Mapping[str, str]) -> Reply:
        request = urllib.request.Request(url, data=body, method=method, headers={"User-Agent": USER_AGENT, **headers})
        try:
            with opener.open(request, timeout=HTTP_TIMEOUT_S) as response:
                return Reply(response.status, _lower(response.headers.items()), response.read())
        except urllib.error.HTTPError as exc:
            with exc:
                return Reply(exc.code, _lower(exc.headers.items()), exc.read())
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise AcmeError(f"cannot reach the ACME server at {url}: {reason}") from None

    return send


def _lower(items: Any) -> dict[str, str]:
    return {str(k).lower(): str(v) for k, v in items}


@dataclass
class Client:
    """One ACME account on one CA; every method blocks on the network."""

    directory_url: str
    key: ec.EllipticCurvePrivateKey
    transport: Transport
    sleep: Callable[[float], None] = time.sleep
    kid: str | None = None
    directory: dict[str, Any] = field(default_factory=dict)
    _nonce: str | None = None

    def _get_directory(self) -> dict[str, Any]:
        if not self.directory:
            reply = self.transport("GET", self.directory_url, None, {})
            if reply.status != 200:
                raise AcmeError(f"the ACME directory {self.directory_url} answered HTTP {reply.status}")
            self.directory = reply.json()
            if "newNonce" not in self.directory or "newOrder" not in self.directory:
                raise AcmeError(f"{self.directory_url} is not an ACME directory")
        return self.directory

    def _fresh_nonce(self) -> str:
        saved, self._nonce = self._nonce, None
        if saved:
            return saved
        reply = self.transport("HEAD", self._get_directory()["newNonce"], None, {})
        fresh = reply.headers.get("replay-nonce")
        if not fresh:
            raise AcmeError("the CA sent no Replay-Nonce")
        return fresh

    def post(self, url: str, payload: Any, *, accept: str = "application/json") -> Reply:
        """A signed POST (or POST-as-GET with `payload=None`), retrying rejected nonces (§6.5)."""
        for _ in range(MAX_BAD_NONCE_RETRIES + 1):
            body = sign(self.key, url, self._fresh_nonce(), payload, kid=self.kid)
            reply = self.transport("POST", url, body, {"Content-Type": "application/jose+json", "Accept": accept})
            self._nonce = reply.headers.get("replay-nonce")  # every response carries the next nonce
            if reply.status < 400:
                return reply
            problem = _problem(reply)
            if problem.kind != "badNonce":
                raise problem
        raise AcmeError("the CA kept rejecting our nonces", "badNonce")

    def register(self, email: str) -> str:
        """Create the account, or find the existing one for this key (§7.3.1); returns its URL."""
        self.kid = None
        reply = self.post(self._get_directory()["newAccount"], new_account_payload(email))
        kid = reply.headers.get("location")
        if not kid:
            raise AcmeError("the CA did not return an account URL")
        self.kid = kid
        return kid

    def poll(self, url: str, done: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        """POST-as-GET `url` until `done(resource)` or the poll timeout."""
        deadline = time.monotonic() + POLL_TIMEOUT_S
        while True:
            reply = self.post(url, None)
            resource = reply.json()
            if done(resource):
                return resource
            if time.monotonic() > deadline:
                raise AcmeError(f"{url} still {resource.get('status')!r} after {POLL_TIMEOUT_S:.0f} s")
            self.sleep(retry_after(reply.headers))

    def authorize(self, authz_url: str, publish: Callable[[str, str], None]) -> None:
        """Prove control of one name over HTTP-01; `publish(token, key_authorization)` must serve it."""
        authorization = self.post(authz_url, None).json()
        if authorization.get("status") == "valid":
            return  # the CA reuses a recent authorization (§7.1.4)
        challenge = http01_challenge(authorization)
        publish(challenge["token"], key_authorization(challenge["token"], thumbprint(jwk(self.key))))
        self.post(challenge["url"], {})  # §7.5.1: an empty object says "ready, check now"
        final = self.poll(authz_url, lambda a: a.get("status") != "pending")
        if final.get("status") != "valid":
            raise authorization_problem(final)

    def order(self, domain: str, publish: Callable[[str, str], None]) -> tuple[bytes, bytes]:
        """Run one order for `domain`; returns (certificate key PEM, full chain PEM)."""
        reply = self.post(self._get_directory()["newOrder"], new_order_payload(domain))
        order_url = reply.headers.get("location", "")
        if not order_url:
            raise AcmeError("the CA did not return an order URL")
        order = reply.json()
        for authz_url in order.get("authorizations", ()):
            self.authorize(authz_url, publish)
        order = self.poll(order_url, lambda o: o.get("status") != "pending")
        if order.get("status") != "ready":
            raise AcmeError(f"order is {order.get('status')!r} instead of ready")
        cert_key = generate_key()
        self.post(order["finalize"], finalize_payload(cert_key, domain))
        order = self.poll(order_url, lambda o: o.get("status") not in ("ready", "processing"))
        if order.get("status") != "valid" or "certificate" not in order:
            error = order.get("error") or {}
            raise AcmeError(f"order ended {order.get('status')!r}: {error.get('detail', 'no detail')}")
        chain = self.post(order["certificate"], None, accept="application/pem-certificate-chain").body
        if b"-----BEGIN CERTIFICATE-----" not in chain:
            raise AcmeError("the CA returned a certificate that is not PEM")
        return key_to_pem(cert_key), chain


def _problem(reply: Reply) -> AcmeError:
    try:
        document = json.loads(reply.body)
    except ValueError:
        document = {}
    if not isinstance(document, dict):
        document = {}
    detail = str(document.get("detail") or f"HTTP {reply.status} from the CA")
    return AcmeError(detail, str(document.get("type", "")), reply.status)


def interruptible_sleep(stop: threading.Event) -> Callable[[float], None]:
    """A `sleep` for `Client` that gives up as soon as `stop` is set (server shutdown)."""

    def sleep(seconds: float) -> None:
        if stop.wait(seconds):
            raise AcmeError("stopped: the server is shutting down")

    return sleep


def obtain(
    domain: str,
    email: str,
    directory_url: str,
    account_key: ec.EllipticCurvePrivateKey,
    publish: Callable[[str, str], None],
    *,
    context: ssl.SSLContext | None = None,
    stop: threading.Event | None = None,
) -> tuple[bytes, bytes]:
    """Register (or find) the account and order a certificate for `domain`; blocks until done."""
    sleep = interruptible_sleep(stop) if stop is not None else time.sleep
    client = Client(directory_url, account_key, urllib_transport(context), sleep)
    client.register(email)
    return client.order(domain, publish)
