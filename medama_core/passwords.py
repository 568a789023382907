"""Password hashing: argon2id PHC strings when argon2-cffi is importable, scrypt otherwise.

Upstream stores `$argon2id$v=19$m=65536,t=1,p=N$salt$key` (alexedwards/argon2id
defaults), so a `me_meta.db` from the Go server verifies here unchanged when
argon2-cffi is installed. Without it, new hashes use the standard library's
`hashlib.scrypt` in a self-describing `$scrypt$ln=..,r=..,p=..$salt$key`
string, and both forms verify wherever the library that made them is present.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
from typing import Any

try:  # optional: compiled extension, used when importable beside the .pyz
    import argon2
    import argon2.exceptions

    _ARGON2: Any = argon2.PasswordHasher(
        time_cost=1,  # upstream DefaultParams: iterations 1
        memory_cost=64 * 1024,  # 64 MiB, upstream DefaultParams
        parallelism=min(os.cpu_count() or 1, 255),  # upstream: number of CPUs (uint8)
        hash_len=32,
        salt_len=16,
        type=argon2.Type.ID,
    )
except ImportError:  # pragma: no cover - exercised by the no-dependencies test run
    _ARGON2 = None

SCRYPT_LOG2_N = 15  # N = 32768: OWASP's minimum recommendation for scrypt (2023), ~50 ms here
SCRYPT_R = 8
SCRYPT_P = 1
SCRYPT_MAXMEM = 64 * 1024 * 1024  # 128 * r * N = 32 MiB needed; leave headroom, refuse absurd params
SALT_BYTES = 16
KEY_BYTES = 32
_SCRYPT_RE = re.compile(r"\$scrypt\$ln=(\d{1,2}),r=(\d{1,2}),p=(\d{1,2})\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)")


class PasswordHashUnsupported(RuntimeError):
    """A stored hash needs a library this process does not have."""


_dummy_hash: str | None = None  # made on first use: a hash no password can match in practice


def argon2_available() -> bool:
    return _ARGON2 is not None


def verify_dummy(password: str) -> None:
    """Spend the time a real verification takes, so an unknown username answers as slowly as a wrong password."""
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = hash_password(base64.b64encode(os.urandom(KEY_BYTES)).decode())
    verify_password(_dummy_hash, password)


def hash_password(password: str) -> str:
    if _ARGON2 is not None:
        result: str = _ARGON2.hash(password)
        return result
    return _scrypt_hash(password)


def verify_password(stored: str, password: str) -> bool:
    """True when `password` matches `stored`; constant time in the comparison of keys."""
    if stored.startswith("$argon2"):
        if _ARGON2 is None:
            raise PasswordHashUnsupported(
                "this account's password is an argon2 hash; install argon2-cffi (pip install argon2-cffi)"
                " beside medama.pyz to log in with it"
            )
        try:
            ok: bool = _ARGON2.verify(stored, password)
            return ok
        except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
            return False
    if stored.startswith("$scrypt$"):
        return _scrypt_verify(stored, password)
    return False


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


def _scrypt_hash(password: str, salt: bytes | None = None) -> str:
    salt = salt if salt is not None else os.urandom(SALT_BYTES)
    key = hashlib.scrypt(
        password.encode(), salt=salt, n=2**SCRYPT_LOG2_N, r=SCRYPT_R, p=SCRYPT_P, maxmem=SCRYPT_MAXMEM, dklen=KEY_BYTES
    )
    return f"$scrypt$ln={SCRYPT_LOG2_N},r={SCRYPT_R},p={SCRYPT_P}${_b64(salt)}${_b64(key)}"


def _scrypt_verify(stored: str, password: str) -> bool:
    match = _SCRYPT_RE.fullmatch(stored)
    if match is None:
        return False
    log2_n, r, p = (int(match.group(i)) for i in (1, 2, 3))
    if not (1 <= log2_n <= 20 and 1 <= r <= 16 and 1 <= p <= 16):
        return False
    try:
        salt, expected = _unb64(match.group(4)), _unb64(match.group(5))
        key = hashlib.scrypt(
            password.encode(), salt=salt, n=2**log2_n, r=r, p=p, maxmem=SCRYPT_MAXMEM * 4, dklen=len(expected)
        )
    except (ValueError, MemoryError):
        return False
    return hmac.compare_digest(key, expected)
