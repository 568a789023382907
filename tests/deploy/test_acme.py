"""The ACME client's pure parts: JWS and JWK encoding, message bodies, problem handling, nonce retries."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from typing import Any

import pytest

pytest.importorskip("cryptography")

from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature  # noqa: E402

from medama_core import acme  # noqa: E402


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@pytest.mark.parametrize(
    "data, expected",
    [(b"", ""), (b"\xfb\xff", "-_8"), (b"abc", "YWJj"), (b"ab", "YWI"), (bytes(range(3)), "AAEC")],
)
def test_b64url_is_unpadded_and_url_safe(data: bytes, expected: str) -> None:
    assert acme.b64url(data) == expected


def test_jwk_has_fixed_width_coordinates_and_a_stable_thumbprint() -> None:
    key = acme.generate_key()
    public = acme.jwk(key)
    assert public["kty"] == "EC" and public["crv"] == "P-256"
    assert len(unb64(public["x"])) == 32 and len(unb64(public["y"])) == 32
    # RFC 7638 §3: the hash input is exactly the required members in order, with no whitespace.
    canonical = f'{{"crv":"P-256","kty":"EC","x":"{public["x"]}","y":"{public["y"]}"}}'.encode()
    assert acme.thumbprint(public) == acme.b64url(hashlib.sha256(canonical).digest())
    assert acme.thumbprint({**public, "kid": "ignored"}) == acme.thumbprint(public)


def test_key_pem_round_trip_and_a_foreign_key_is_refused() -> None:
    key = acme.generate_key()
    again = acme.key_from_pem(acme.key_to_pem(key))
    assert acme.jwk(again) == acme.jwk(key)
    other = ec.generate_private_key(ec.SECP384R1())
    with pytest.raises(acme.AcmeError, match="P-256"):
        acme.key_from_pem(acme.key_to_pem(other))


def verify(body: bytes, key: ec.EllipticCurvePrivateKey) -> tuple[dict[str, Any], bytes]:
    """Check a flattened JWS with `key`'s public half; return its header and raw payload."""
    jws = json.loads(body)
    assert set(jws) == {"protected", "payload", "signature"}
    raw = unb64(jws["signature"])
    assert len(raw) == 64
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    signing_input = f"{jws['protected']}.{jws['payload']}".encode()
    key.public_key().verify(der, signing_input, ec.ECDSA(hashes.SHA256()))  # raises if it does not verify
    return json.loads(unb64(jws["protected"])), unb64(jws["payload"])


def test_new_account_request_carries_the_jwk_and_a_verifiable_signature() -> None:
    key = acme.generate_key()
    body = acme.sign(key, "https://ca/new-acct", "nonce-1", acme.new_account_payload("a@b.example"), kid=None)
    header, payload = verify(body, key)
    assert header == {"alg": "ES256", "nonce": "nonce-1", "url": "https://ca/new-acct", "jwk": acme.jwk(key)}
    assert json.loads(payload) == {"termsOfServiceAgreed": True, "contact": ["mailto:a@b.example"]}


def test_later_requests_name_the_account_and_post_as_get_has_an_empty_payload() -> None:
    key = acme.generate_key()
    header, payload = verify(acme.sign(key, "https://ca/order/1", "n2", None, kid="https://ca/acct/7"), key)
    assert header["kid"] == "https://ca/acct/7" and "jwk" not in header
    assert payload == b""
    _, empty_object = verify(acme.sign(key, "https://ca/chall/1", "n3", {}, kid="k"), key)
    assert empty_object == b"{}"


def test_account_without_email_has_no_contact() -> None:
    assert acme.new_account_payload("") == {"termsOfServiceAgreed": True}


def test_key_authorization_joins_token_and_thumbprint() -> None:
    assert acme.key_authorization("tok", "thumb") == "tok.thumb"


def test_csr_names_the_domain_in_cn_and_san() -> None:
    key = acme.generate_key()
    payload = acme.finalize_payload(key, "stats.example.org")
    csr = x509.load_der_x509_csr(unb64(payload["csr"]))
    assert csr.is_signature_valid
    san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["stats.example.org"]
    assert csr.subject.rfc4514_string() == "CN=stats.example.org"


def test_http01_is_picked_and_its_absence_is_explained() -> None:
    authz = {"challenges": [{"type": "dns-01", "token": "a"}, {"type": "http-01", "token": "b", "url": "u"}]}
    assert acme.http01_challenge(authz)["token"] == "b"
    with pytest.raises(acme.AcmeError, match="offered: dns-01, tls-alpn-01"):
        acme.http01_challenge({"challenges": [{"type": "dns-01"}, {"type": "tls-alpn-01"}]})


def test_an_invalid_authorization_reports_the_challenge_error() -> None:
    authz = {
        "status": "invalid",
        "challenges": [
            {"type": "http-01", "error": {"type": "urn:ietf:params:acme:error:connection", "detail": "refused"}}
        ],
    }
    error = acme.authorization_problem(authz)
    assert error.kind == "connection" and error.detail == "refused"
    assert "A/AAAA records" in acme.hint(error, "a.example", 80) and "port 80 is open" in acme.hint(error, "a.ex", 80)


@pytest.mark.parametrize(
    "kind, domain, expected",
    [
        ("dns", "a.example", "A/AAAA records"),
        ("unauthorized", "a.example", "A/AAAA records"),
        ("rateLimited", "a.example", "staging directory"),
        ("caa", "a.example", "CAA record"),
        ("rejectedIdentifier", "intranet", "not a public domain name"),
        ("serverInternal", "a.example", "CA's message"),
    ],
)
def test_hints(kind: str, domain: str, expected: str) -> None:
    assert expected in acme.hint(acme.AcmeError("x", acme.ERROR_PREFIX + kind), domain, 80)


@pytest.mark.parametrize(
    "headers, expected",
    [({}, acme.POLL_INTERVAL_S), ({"retry-after": "3"}, 3.0), ({"retry-after": "999"}, acme.MAX_POLL_INTERVAL_S)],
)
def test_retry_after_is_honoured_within_bounds(headers: dict[str, str], expected: float) -> None:
    assert acme.retry_after(headers) == expected


class FakeCA:
    """Answers newNonce and newAccount; rejects the first `bad_nonces` signed requests with badNonce."""

    def __init__(self, bad_nonces: int) -> None:
        self.bad_nonces = bad_nonces
        self.counter = 0
        self.seen_nonces: list[str] = []

    def _nonce(self) -> dict[str, str]:
        self.counter += 1
        return {"replay-nonce": f"n{self.counter}"}

    def __call__(self, method: str, url: str, body: bytes | None, headers: Mapping[str, str]) -> acme.Reply:
        if url.endswith("/dir"):
            return acme.Reply(
                200,
                {},
                json.dumps({"newNonce": "https://ca/nonce", "newOrder": "o", "newAccount": "https://ca/acct"}).encode(),
            )
        if method == "HEAD":
            return acme.Reply(200, self._nonce(), b"")
        assert body is not None and headers["Content-Type"] == "application/jose+json"
        self.seen_nonces.append(json.loads(unb64(json.loads(body)["protected"]))["nonce"])
        if self.bad_nonces:
            self.bad_nonces -= 1
            problem = {"type": "urn:ietf:params:acme:error:badNonce", "detail": "stale"}
            return acme.Reply(400, self._nonce(), json.dumps(problem).encode())
        return acme.Reply(201, {**self._nonce(), "location": "https://ca/acct/1"}, b"{}")


def test_bad_nonces_are_retried_with_the_nonce_from_the_error() -> None:
    ca = FakeCA(bad_nonces=2)
    client = acme.Client("https://ca/dir", acme.generate_key(), ca)
    assert client.register("") == "https://ca/acct/1"
    assert ca.seen_nonces == ["n1", "n2", "n3"]  # each retry used the nonce the previous error carried


def test_endless_bad_nonces_give_up() -> None:
    client = acme.Client("https://ca/dir", acme.generate_key(), FakeCA(bad_nonces=100))
    with pytest.raises(acme.AcmeError, match="nonces"):
        client.register("")


def test_other_problems_surface_with_type_and_detail() -> None:
    def transport(method: str, url: str, body: bytes | None, headers: Mapping[str, str]) -> acme.Reply:
        if url.endswith("/dir"):
            return acme.Reply(200, {}, b'{"newNonce": "n", "newOrder": "o", "newAccount": "a"}')
        if method == "HEAD":
            return acme.Reply(200, {"replay-nonce": "x"}, b"")
        problem = {"type": "urn:ietf:params:acme:error:rateLimited", "detail": "too many certificates"}
        return acme.Reply(429, {}, json.dumps(problem).encode())

    with pytest.raises(acme.AcmeError) as caught:
        acme.Client("https://ca/dir", acme.generate_key(), transport).register("")
    assert caught.value.kind == "rateLimited" and caught.value.status == 429
    assert str(caught.value) == "too many certificates (rateLimited)"


def test_a_page_that_is_not_a_directory_is_named() -> None:
    def transport(method: str, url: str, body: bytes | None, headers: Mapping[str, str]) -> acme.Reply:
        return acme.Reply(200, {}, b'{"hello": "world"}')

    with pytest.raises(acme.AcmeError, match="is not an ACME directory"):
        acme.Client("https://example/", acme.generate_key(), transport).register("")
