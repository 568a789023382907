"""Two-factor login codes: TOTP (RFC 6238, over RFC 4226's HOTP), its otpauth URI, and one-time recovery codes.

Pure: the time is passed in. Checking a code says which time step it belongs to;
the caller records that step (store/sqlite/meta.use_totp_step), so a code is accepted
once, never replayed within its window.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import struct
import urllib.parse
from typing import Final

SECRET_BYTES: Final = 20  # 160 bits, the length RFC 4226 §4 (R6) recommends and authenticator apps expect
DIGITS: Final = 6  # what every authenticator app shows by default
STEP_S: Final = 30  # RFC 6238 §5.2's recommended time step, the apps' default
# Steps either side of now that still count: RFC 6238 §5.2 suggests at most one step of clock drift,
# which also lets a code typed in its last seconds arrive after its step has ended.
WINDOW: Final = 1
ISSUER: Final = "Medama"  # the name the authenticator app lists the account under
RECOVERY_CODES: Final = 10  # as many as the issue asks; each works once
# 10 base32 characters: 50 random bits each. Guessing is bounded by the login throttle, and whoever
# reads the database holds the TOTP secret anyway, so a fast hash (SHA-256) is enough to store them.
RECOVERY_CODE_CHARS: Final = 10

_BASE32_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"
_CODE = re.compile(rf"[0-9]{{{DIGITS}}}")  # ASCII only: \\d would take any script's digits
_RECOVERY = re.compile(rf"[a-z2-7]{{{RECOVERY_CODE_CHARS}}}")
_DIGESTS = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "sha512": hashlib.sha512}


def new_secret() -> str:
    """A random secret as unpadded upper-case base32, the form otpauth URIs and the apps' keyboards use."""
    return base64.b32encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii").rstrip("=")


def secret_bytes(secret: str) -> bytes:
    """The key a base32 secret stands for (padding and case as the apps accept them)."""
    text = secret.strip().upper()
    return base64.b32decode(text + "=" * (-len(text) % 8))


def hotp(key: bytes, counter: int, digits: int = DIGITS, digest: str = "sha1") -> str:
    """RFC 4226 §5.3: HMAC the 8-byte counter, truncate dynamically, keep `digits` decimal digits."""
    mac = hmac.new(key, struct.pack(">Q", counter), _DIGESTS[digest]).digest()
    offset = mac[-1] & 0x0F
    value = struct.unpack(">I", mac[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(value % 10**digits).zfill(digits)


def step_of(unix_time: float) -> int:
    """RFC 6238 §4.2: T = floor((time - T0) / X), T0 = 0."""
    return int(unix_time // STEP_S)


def code_at(secret: str, unix_time: float, digits: int = DIGITS, digest: str = "sha1") -> str:
    return hotp(secret_bytes(secret), step_of(unix_time), digits, digest)


def is_code(text: str) -> bool:
    """Whether `text` has the shape of a TOTP code (spaces ignored, as apps show `123 456`)."""
    return bool(_CODE.fullmatch(text.replace(" ", "")))


def matching_step(secret: str, code: str, unix_time: float) -> int | None:
    """The time step within WINDOW of `unix_time` whose code is `code`, or None.

    Every step of the window is compared, in constant time, so the answer time
    does not tell how close a guess was.
    """
    code = code.replace(" ", "")
    if not _CODE.fullmatch(code):
        return None
    key = secret_bytes(secret)
    now = step_of(unix_time)
    found = None
    for step in range(now - WINDOW, now + WINDOW + 1):
        if hmac.compare_digest(hotp(key, step), code) and found is None:
            found = step
    return found


def otpauth_uri(secret: str, account: str, issuer: str = ISSUER) -> str:
    """The `otpauth://totp/...` URI authenticator apps read from a QR code (Google's Key Uri Format)."""
    label = urllib.parse.quote(f"{issuer}:{account}", safe=":@")
    query = urllib.parse.urlencode(
        {"secret": secret, "issuer": issuer, "algorithm": "SHA1", "digits": DIGITS, "period": STEP_S}
    )
    return f"otpauth://totp/{label}?{query}"


def new_recovery_codes() -> list[str]:
    """RECOVERY_CODES random codes, shown as `xxxxx-xxxxx`."""
    codes = []
    for _ in range(RECOVERY_CODES):
        raw = "".join(secrets.choice(_BASE32_ALPHABET) for _ in range(RECOVERY_CODE_CHARS))
        half = RECOVERY_CODE_CHARS // 2
        codes.append(f"{raw[:half]}-{raw[half:]}")
    return codes


def normalise_recovery_code(text: str) -> str | None:
    """A recovery code as typed (any case, hyphens and spaces anywhere) in its stored form, or None."""
    raw = re.sub(r"[\s-]", "", text).lower()
    return raw if _RECOVERY.fullmatch(raw) else None


def recovery_hash(code: str) -> bytes:
    """What is stored of a recovery code (its normalised form's SHA-256)."""
    raw = normalise_recovery_code(code)
    if raw is None:
        raise ValueError("not a recovery code")
    return hashlib.sha256(raw.encode("ascii")).digest()
