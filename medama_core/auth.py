"""Sessions: random tokens kept server-side, the `_me_sess` cookie, and the session behind a request.

A session token is 256 random bits, sent to the browser base64url-encoded and
stored in the app store only as its SHA-256. Sessions therefore survive a
restart, logout really deletes them (upstream revoked the wrong key, spec
§10.4), and a copy of the database holds no usable cookies.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from medama_core import passwords, throttle, totp
from medama_core.http.errors import HTTPError
from medama_core.http.protocol import Request
from medama_core.ingest import ipfilter
from medama_core.log import Logger
from medama_core.store.protocol import MetaStore, User
from medama_core.throttle import LoginThrottle

COOKIE_NAME = "_me_sess"
TOKEN_BYTES = 32  # 256 bits: guessing a live session is hopeless
SESSION_LIFETIME_S = 30 * 24 * 60 * 60  # upstream's SessionDuration: 30 days from login
PURGE_INTERVAL_S = 60 * 60  # expired sessions are refused on read anyway; this only bounds the table's growth
# Each argon2id check holds 64 MiB; two at a time keeps a burst of logins inside a 256 MB VM.
MAX_CONCURRENT_HASHES = 2

# The attributes upstream sets. No Expires/Max-Age: the browser drops the cookie when it closes.
# Secure means browsers keep it only over HTTPS or on http://localhost (see docs/auth.md); it is left
# out only on plain-HTTP requests when the server runs with -securecookie=false (api.cookie_secure).
_COOKIE_ATTRIBUTES = "Path=/; HttpOnly; Secure; SameSite=Lax"
_PLAIN_COOKIE_ATTRIBUTES = "Path=/; HttpOnly; SameSite=Lax"
_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")  # base64url of TOKEN_BYTES, unpadded

MISSING_COOKIE = "missing security token or cookie"
BAD_SESSION = "unauthorised session"
THROTTLED = "too many failed password attempts; try again later"


@dataclass
class AuthState:
    """Process-wide login state: the failure counters and the gate on concurrent password hashing."""

    throttle: LoginThrottle = field(default_factory=LoginThrottle)
    hashing: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(MAX_CONCURRENT_HASHES))


@dataclass(frozen=True, slots=True)
class Session:
    """The caller of an authenticated request."""

    user: User
    token_hash: bytes


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode("ascii")).digest()


def session_cookie(token: str, *, secure: bool = True) -> str:
    return f"{COOKIE_NAME}={token}; {_COOKIE_ATTRIBUTES if secure else _PLAIN_COOKIE_ATTRIBUTES}"


def expired_cookie(*, secure: bool = True) -> str:
    attributes = _COOKIE_ATTRIBUTES if secure else _PLAIN_COOKIE_ATTRIBUTES
    return f"{COOKIE_NAME}=; {attributes}; Expires=Thu, 01 Jan 1970 00:00:00 GMT"


async def create_session(db: MetaStore, user_id: str) -> str:
    """Store a new session for `user_id` and return its token (the cookie value)."""
    token = new_token()
    now = int(time.time())
    await db.insert_session(token_hash(token), user_id, now, now + SESSION_LIFETIME_S)
    return token


async def find_session(request: Request, db: MetaStore) -> Session | None:
    """The live session behind the request's cookie, or None. An expired session found here is deleted."""
    token = request.cookies.get(COOKIE_NAME)
    if not token or not _TOKEN.fullmatch(token):
        return None
    digest = token_hash(token)
    found = await db.session_user(digest)
    if found is None:
        return None
    user, expires = found
    if expires <= time.time():
        await db.delete_session(digest)
        return None
    return Session(user, digest)


def sign_in_error(request: Request) -> HTTPError:
    """The 401 for a request without a live session: upstream's two messages, no cookie or a bad one."""
    return HTTPError(401, BAD_SESSION if request.cookies.get(COOKIE_NAME) else MISSING_COOKIE)


async def revoke(db: MetaStore, token: str) -> bool:
    """Delete the session a cookie names; False if there was none."""
    if not _TOKEN.fullmatch(token):
        return False
    return await db.delete_session(token_hash(token))


async def purge_expired(db: MetaStore) -> int:
    return await db.purge_expired_sessions(int(time.time()))


DEMO_MODE = "user in demo mode"  # upstream's 403 message for a write in demo mode (-demo)


# Password checks: signing in and the current password of PATCH and DELETE /user share one throttle.


async def verify(state: AuthState, log: Logger, user: User | None, password: str) -> bool:
    """Whether `password` is `user`'s, taking the time of one real check whoever `user` is.

    No such user costs a dummy check, and so does a stored hash this process
    cannot verify (argon2 without argon2-cffi): its reason goes to the log, the
    caller sees a wrong password. Either way the answer time tells nothing.
    """
    async with state.hashing:
        if user is not None:
            try:
                return await asyncio.to_thread(passwords.verify_password, user.password, password)
            except passwords.PasswordHashUnsupported as exc:
                log.error("cannot verify password", username=user.username, error=str(exc))
        await asyncio.to_thread(passwords.verify_dummy, password)
        return False


async def throttled_verify(
    state: AuthState, log: Logger, network: str, username: str, user: User | None, password: str
) -> bool:
    """`verify`, charged to the throttle keys of `username` from `network`; 429 while they must wait.

    The attempt counts before the check runs; a correct password clears the account's failures
    from this network.
    """
    outcome = await throttled(
        state, log, throttle.login_keys(network, username), lambda: verify(state, log, user, password)
    )
    return outcome is True


Check = Callable[[], Awaitable[bool | None]]  # one throttled attempt: True passed, False failed, None neither


async def throttled(state: AuthState, log: Logger, keys: list[throttle.Key], check: Check) -> bool | None:
    """Run `check` as one throttled attempt on `keys`; 429 while they must wait.

    The attempt counts before the check runs. True clears the keys' account failures, False
    records a failure; None (a correct password still waiting for its second factor) does
    neither, so the attempt stays counted until the code is right.
    """
    now = time.monotonic()
    wait = state.throttle.retry_after(keys, now)
    if wait:
        raise HTTPError(429, THROTTLED, headers=[("Retry-After", str(wait))])
    state.throttle.attempt(keys, now)
    if state.throttle.full_warning(now):
        log.warn("login throttle table is full of locks; new keys go unrecorded", untracked=state.throttle.untracked)
    outcome = await check()
    if outcome is True:
        state.throttle.succeeded(keys)
    elif outcome is False:
        state.throttle.failed(keys, time.monotonic())
    return outcome


async def verify_hash(state: AuthState, log: Logger, password_hash: str, password: str) -> bool:
    """Whether `password` matches a stored hash that is not a user's (a share's), in one check's time."""
    async with state.hashing:
        try:
            return await asyncio.to_thread(passwords.verify_password, password_hash, password)
        except passwords.PasswordHashUnsupported as exc:
            log.error("cannot verify password", error=str(exc))
            return False


async def second_factor(db: MetaStore, user_id: str, code: str) -> bool:
    """Whether `code` is a current TOTP code of the user, never used before, or one of their unused
    recovery codes; either is spent by this check (a replay of it fails)."""
    if totp.is_code(code):
        secret = await db.get_totp(user_id)
        if secret is None or not secret.enabled:
            return False
        step = totp.matching_step(secret.secret, code, time.time())
        return step is not None and await db.use_totp_step(user_id, step)
    if totp.normalise_recovery_code(code) is None:
        return False
    return await db.use_recovery_code(user_id, totp.recovery_hash(code))


def client_network(request: Request, trusted_proxies: tuple[str, ...]) -> str:
    """The client's network (/24 or /48, as the ingestion rate limit), read through forwarding headers
    only from trusted proxies; the peer text itself when it is not an address."""
    address = (
        ipfilter.client_ip(request.client, request.headers, ipfilter.trusted_networks(trusted_proxies))
        or request.client
    )
    try:
        return ipfilter.network_key(address)
    except ValueError:
        return address
