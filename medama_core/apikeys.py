"""API keys: random bearer tokens, shown once, stored as a SHA-256, and read from `Authorization: Bearer`.

A key is 256 random bits behind a fixed prefix, so secret scanners and people
can tell a Medama key at a glance. As for session tokens, only its SHA-256 is
stored: a copy of the database holds no usable key, and a fast hash is enough
for a value no one can guess.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from typing import Final

PREFIX: Final = "medama_"
TOKEN_BYTES: Final = 32  # 256 bits, as session tokens
NAME_MAX: Final = 64  # a label for the owner ("CI", "Grafana"); room for a short phrase
# How fresh a key's "last used" is: a request writes it only when the stored time is older, so a
# key polled every second costs one write a minute, not one a request.
LAST_USED_RESOLUTION_S: Final = 60
MAX_KEYS_PER_USER: Final = 100  # far above any real use; bounds the list and what one account can store

_KEY = re.compile(re.escape(PREFIX) + r"[A-Za-z0-9_-]{43}")  # base64url of TOKEN_BYTES, unpadded
_BEARER = re.compile(r"[Bb][Ee][Aa][Rr][Ee][Rr] +(\S+) *")  # RFC 6750 §2.1; the scheme is case-insensitive


def new_key() -> str:
    return PREFIX + secrets.token_urlsafe(TOKEN_BYTES)


def key_hash(key: str) -> bytes:
    return hashlib.sha256(key.encode("ascii")).digest()


def well_formed(key: str) -> bool:
    return bool(_KEY.fullmatch(key))


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header; None for no header or another scheme."""
    if authorization is None:
        return None
    found = _BEARER.fullmatch(authorization.strip())
    return found.group(1) if found else None
