"""TOTP codes as RFC 6238 defines them (its Appendix B vectors), their window, URI and recovery codes."""

from __future__ import annotations

import base64
import urllib.parse

import pytest
from hypothesis import given
from hypothesis import strategies as st

from medama_core import totp

# RFC 6238 Appendix B: the seeds are ASCII "12345678901234567890" repeated to each digest's length.
SEEDS = {
    "sha1": b"12345678901234567890",
    "sha256": b"12345678901234567890123456789012",
    "sha512": b"1234567890123456789012345678901234567890123456789012345678901234",
}
# (time, T as hex, 8-digit TOTP for SHA1, SHA256, SHA512), as the RFC's table gives them.
VECTORS = [
    (59, "0000000000000001", "94287082", "46119246", "90693936"),
    (1111111109, "00000000023523EC", "07081804", "68084774", "25091201"),
    (1111111111, "00000000023523ED", "14050471", "67062674", "99943326"),
    (1234567890, "000000000273EF07", "89005924", "91819424", "93441116"),
    (2000000000, "0000000003F940AA", "69279037", "90698825", "38618901"),
    (20000000000, "0000000027BC86AA", "65353130", "77737706", "47863826"),
]


@pytest.mark.parametrize(("unix_time", "step_hex", "sha1", "sha256", "sha512"), VECTORS)
def test_rfc_6238_appendix_b(unix_time: int, step_hex: str, sha1: str, sha256: str, sha512: str) -> None:
    assert totp.step_of(unix_time) == int(step_hex, 16)
    for digest, expected in (("sha1", sha1), ("sha256", sha256), ("sha512", sha512)):
        secret = base64.b32encode(SEEDS[digest]).decode()
        assert totp.code_at(secret, unix_time, digits=8, digest=digest) == expected


def test_rfc_4226_appendix_d() -> None:
    """HOTP itself: the first ten values of RFC 4226's test table, 6 digits."""
    expected = ["755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871", "520489"]
    assert [totp.hotp(SEEDS["sha1"], counter) for counter in range(10)] == expected


def test_a_code_is_accepted_one_step_either_side_and_no_further() -> None:
    secret = totp.new_secret()
    now = 1_700_000_015.0
    step = totp.step_of(now)
    for offset in (-1, 0, 1):
        code = totp.code_at(secret, now + offset * totp.STEP_S)
        assert totp.matching_step(secret, code, now) == step + offset
    for offset in (-3, -2, 2, 3):
        code = totp.code_at(secret, now + offset * totp.STEP_S)
        if code not in {totp.code_at(secret, now + o * totp.STEP_S) for o in (-1, 0, 1)}:
            assert totp.matching_step(secret, code, now) is None
    assert totp.matching_step(secret, "12345", now) is None
    assert totp.matching_step(secret, "abcdef", now) is None
    assert totp.matching_step(secret, "\u0661\u0662\u0663\u0664\u0665\u0666", now) is None  # Arabic-Indic digits
    spaced = totp.code_at(secret, now)
    assert totp.matching_step(secret, f"{spaced[:3]} {spaced[3:]}", now) == step  # as the apps show it


def test_secrets_are_160_random_bits_in_base32() -> None:
    secrets = {totp.new_secret() for _ in range(20)}
    assert len(secrets) == 20
    for secret in secrets:
        assert len(totp.secret_bytes(secret)) == totp.SECRET_BYTES == 20
        assert secret == secret.upper() and "=" not in secret


def test_the_uri_is_what_authenticator_apps_read() -> None:
    uri = totp.otpauth_uri("JBSWY3DPEHPK3PXP", "alice@example")
    parsed = urllib.parse.urlsplit(uri)
    assert (parsed.scheme, parsed.netloc) == ("otpauth", "totp")
    assert urllib.parse.unquote(parsed.path) == "/Medama:alice@example"
    query = dict(urllib.parse.parse_qsl(parsed.query))
    assert query == {
        "secret": "JBSWY3DPEHPK3PXP",
        "issuer": "Medama",
        "algorithm": "SHA1",
        "digits": "6",
        "period": "30",
    }


def test_recovery_codes_are_ten_distinct_codes_read_however_typed() -> None:
    codes = totp.new_recovery_codes()
    assert len(codes) == len(set(codes)) == 10
    for code in codes:
        assert len(code) == 11 and code[5] == "-"
        assert totp.recovery_hash(code) == totp.recovery_hash(code.upper().replace("-", " "))
    assert totp.normalise_recovery_code("short") is None
    assert totp.normalise_recovery_code("abcde-fghi1") is None  # 1 is not base32


@given(st.text(max_size=40))
def test_any_text_is_a_code_or_not_never_an_error(text: str) -> None:
    assert totp.matching_step("JBSWY3DPEHPK3PXP", text, 1_700_000_000) in (None, *range(56666665, 56666668))
    assert totp.normalise_recovery_code(text) is None or len(totp.normalise_recovery_code(text) or "") == 10
    assert isinstance(totp.is_code(text), bool)
