"""Share links: their ids, the password cookie that opens a protected one, and the pages that may frame one.

The link is the capability: its id is 128 random bits, so links cannot be
guessed. A share with a password is opened by `POST /api/share/{id}/auth`,
which sets a cookie scoped to that share's API path. The cookie carries its
expiry and an HMAC keyed with the share's stored password hash, so it needs no
table of its own and stops working when the share is deleted or re-created.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from typing import Final

ID_BYTES: Final = 16  # 128 bits: a link no one can guess or enumerate
COOKIE_NAME: Final = "_me_share"
# How long a share's password is remembered; a shared dashboard is looked at for a while, not for weeks.
COOKIE_LIFETIME_S: Final = 24 * 60 * 60
NAME_MAX: Final = 64  # the owner's label for the link
MAX_FRAME_ANCESTORS: Final = 10  # origins allowed to embed one share; a handful of sites in practice
MAX_SHARES_PER_SITE: Final = 100  # far above real use; bounds the list and what one site can store
K_MAX: Final = 1000  # a floor above this hides everything of all but the largest sites

_ID = re.compile(r"[A-Za-z0-9_-]{22}")  # base64url of ID_BYTES, unpadded
_TOKEN = re.compile(r"(\d{1,12})\.([A-Za-z0-9_-]{43})")
# An origin as CSP's frame-ancestors accepts it: scheme, host (its leftmost label may be `*`), port.
_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_ORIGIN = re.compile(rf"https?://(\*\.)?({_LABEL}\.)*{_LABEL}(:\d{{1,5}})?")


def new_id() -> str:
    return secrets.token_urlsafe(ID_BYTES)


def well_formed_id(text: str) -> bool:
    return bool(_ID.fullmatch(text))


def _mac(share_id: str, password_hash: str, expires: int) -> str:
    digest = hmac.new(password_hash.encode(), f"{share_id}.{expires}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def cookie_token(share_id: str, password_hash: str, expires: int) -> str:
    """The cookie value that opens `share_id` until `expires` (Unix s), while its password hash is this one."""
    return f"{expires}.{_mac(share_id, password_hash, expires)}"


def cookie_opens(token: str | None, share_id: str, password_hash: str, now: float) -> bool:
    if token is None:
        return False
    found = _TOKEN.fullmatch(token)
    if found is None:
        return False
    expires = int(found.group(1))
    return now < expires and hmac.compare_digest(found.group(2), _mac(share_id, password_hash, expires))


def cookie_path(share_id: str) -> str:
    """The API path the cookie is sent to: that share's routes and no other's."""
    return f"/api/share/{share_id}"


def set_cookie(share_id: str, token: str, *, secure: bool, embedded: bool) -> str:
    """The Set-Cookie value. A share other sites frame needs `SameSite=None` (and so `Secure`) for the
    browser to send the cookie from inside their pages; `Partitioned` keeps it to that embedding."""
    attributes = f"Path={cookie_path(share_id)}; HttpOnly"
    if embedded and secure:
        attributes += "; Secure; SameSite=None; Partitioned"
    else:
        attributes += "; Secure; SameSite=Lax" if secure else "; SameSite=Lax"
    return f"{COOKIE_NAME}={token}; {attributes}"


def frame_ancestor_problem(origin: str) -> str | None:
    """What is wrong with `origin` as an allowed embedder, or None: `'self'`, or
    `http(s)://host[:port]` (`*.` may lead the host) with no path."""
    if origin == "'self'" or _ORIGIN.fullmatch(origin):
        return None
    return f"{origin[:80]!r} is not 'self' or an origin such as https://blog.example.com"


def frame_ancestors_source(origins: tuple[str, ...]) -> str:
    """The source list of CSP's `frame-ancestors` for these origins; `'none'` for none."""
    return " ".join(origins) if origins else "'none'"
