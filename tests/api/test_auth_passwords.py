"""Password hashes: argon2id (ours and foreign PHC strings), scrypt, and what login does with each."""

from __future__ import annotations

import sqlite3
import statistics
import time

import pytest

from medama_core import passwords
from tests.helpers import Client, LiveServer

argon2 = pytest.importorskip("argon2")
low_level = pytest.importorskip("argon2.low_level")

ADMIN_PASSWORD = "CHANGE_ME_ON_FIRST_LOGIN"
ARGON2_TIMING_SAMPLES = 4  # per kind; fewer than the throttle's free attempts for one account
ARGON2_TIMING_TOLERANCE = 0.5  # medians within 50%: the oracle was 2.5 ms against ~100 ms
# Computed once with the reference C implementation (argon2.low_level.hash_secret) using upstream's
# DefaultParams on a 2-CPU machine: m=64 MiB, t=1, p=2, 16-byte salt, 32-byte key. Fixed text, so
# this checks the PHC format as the Go server writes it, not a round trip through our own hasher.
UPSTREAM_STYLE_HASH = (
    "$argon2id$v=19$m=65536,t=1,p=2$bWVkYW1hLXRlc3Qtc2FsdA$9V/X32TW8RrQ3nnTVyTxOLHMAKDM+57GCHAbf20nWW8"
)


def set_admin_hash(server: LiveServer, stored: str) -> None:
    with sqlite3.connect(server.config.appdb) as conn:
        conn.execute("UPDATE users SET password = :stored WHERE username = 'admin'", {"stored": stored})


def test_new_hashes_are_argon2id_phc_and_verify() -> None:
    stored = passwords.hash_password("s3cret-pass")
    assert stored.startswith("$argon2id$v=19$m=65536,t=1,")
    assert passwords.verify_password(stored, "s3cret-pass")
    assert not passwords.verify_password(stored, "s3cret-pasS")


def test_scrypt_hashes_verify() -> None:
    stored = passwords._scrypt_hash("s3cret-pass")
    assert stored.startswith("$scrypt$ln=15,r=8,p=1$")
    assert passwords.verify_password(stored, "s3cret-pass")
    assert not passwords.verify_password(stored, "wrong")


def test_a_fixed_upstream_style_phc_string_verifies() -> None:
    assert passwords.verify_password(UPSTREAM_STYLE_HASH, ADMIN_PASSWORD)
    assert not passwords.verify_password(UPSTREAM_STYLE_HASH, ADMIN_PASSWORD.lower())


def test_a_phc_string_from_the_low_level_api_with_other_parameters_verifies() -> None:
    raw = low_level.hash_secret(
        b"hunter22", b"0123456789abcdef", time_cost=1, memory_cost=65536, parallelism=2, hash_len=32,
        type=low_level.Type.ID,
    )  # fmt: skip
    assert passwords.verify_password(raw.decode(), "hunter22")


@pytest.mark.parametrize("stored", ["", "plain", "$argon2id$garbage", "$scrypt$ln=99,r=8,p=1$AAAA$AAAA", "$md5$x"])
def test_malformed_hashes_never_verify(stored: str) -> None:
    assert not passwords.verify_password(stored, "anything")


def test_without_argon2_new_hashes_are_scrypt_and_argon2_hashes_raise(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(passwords, "_ARGON2", None)
    assert passwords.hash_password("s3cret-pass").startswith("$scrypt$")
    with pytest.raises(passwords.PasswordHashUnsupported, match="argon2-cffi"):
        passwords.verify_password(UPSTREAM_STYLE_HASH, ADMIN_PASSWORD)


def test_login_with_an_upstream_hash(client: Client, server: LiveServer) -> None:
    set_admin_hash(server, UPSTREAM_STYLE_HASH)
    assert client.post("/api/auth/login", json_body={"username": "admin", "password": ADMIN_PASSWORD}).status == 200


def test_login_with_a_scrypt_hash(client: Client, server: LiveServer) -> None:
    set_admin_hash(server, passwords._scrypt_hash("scrypt-pass"))
    assert client.post("/api/auth/login", json_body={"username": "admin", "password": "scrypt-pass"}).status == 200
    assert client.post("/api/auth/login", json_body={"username": "admin", "password": "wrong-pass"}).status == 401


def test_login_with_an_argon2_hash_but_no_library_answers_as_a_wrong_password(
    client: Client, server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It answered 500 with the reason in 2.5 ms, an unknown user 401 in ~100 ms: a username oracle.
    Now the same 401 in the time of one password check; the reason goes to the server's log."""
    monkeypatch.setattr(passwords, "_ARGON2", None)
    monkeypatch.setattr(passwords, "_dummy_hash", None)  # as in a process that never had argon2: a scrypt dummy
    set_admin_hash(server, UPSTREAM_STYLE_HASH)
    argon2_account: list[float] = []
    unknown: list[float] = []
    for i in range(ARGON2_TIMING_SAMPLES):
        for username, samples in (("admin", argon2_account), (f"nobody{i}", unknown)):
            started = time.perf_counter()
            result = client.post("/api/auth/login", json_body={"username": username, "password": ADMIN_PASSWORD})
            samples.append(time.perf_counter() - started)
            assert (result.status, result.json()["error"]["message"]) == (401, "user not found")
    argon2_median, unknown_median = statistics.median(argon2_account), statistics.median(unknown)
    difference = abs(argon2_median - unknown_median) / max(argon2_median, unknown_median)
    assert difference <= ARGON2_TIMING_TOLERANCE, (argon2_median, unknown_median)
    assert "cannot verify password" in server.log_stream.getvalue()
    assert "install argon2-cffi" in server.log_stream.getvalue()
    monkeypatch.undo()
    assert client.post("/api/auth/login", json_body={"username": "admin", "password": ADMIN_PASSWORD}).status == 200


def test_unknown_user_costs_a_dummy_verification(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = passwords.verify_dummy
    monkeypatch.setattr(passwords, "verify_dummy", lambda password: calls.append(password) or real(password))
    result = client.post("/api/auth/login", json_body={"username": "nobody", "password": "guess-1"})
    assert result.status == 401
    assert result.json()["error"]["message"] == "user not found"
    assert calls == ["guess-1"]
