"""/auth/login and /auth/logout: password check, login throttling, and the session cookie."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import time

from medama_core import auth, passwords
from medama_core.api import Context, cookie_secure
from medama_core.http.errors import HTTPError
from medama_core.http.jsonbody import json_object, required_string
from medama_core.http.protocol import Request, Response, json_response
from medama_core.ingest import ipfilter
from medama_core.store import meta

# Upstream's AuthLogin schema. A username longer than 48 can never log in, so PATCH /user keeps to it too.
USERNAME_MIN, USERNAME_MAX = 3, 48
PASSWORD_MIN, PASSWORD_MAX = 5, 128
LOGIN_FAILED = "user not found"  # upstream's one message for unknown user and wrong password alike
# What "loopback" stands for in -trustedproxies.
_LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))


async def post_login(request: Request, ctx: Context) -> Response:
    body = json_object(request)
    username = required_string(body, "username", USERNAME_MIN, USERNAME_MAX)
    password = required_string(body, "password", PASSWORD_MIN, PASSWORD_MAX)
    keys = ["user:" + username, "addr:" + client_address(request, ctx)]
    throttle = ctx.auth.throttle
    wait = throttle.retry_after(keys, time.monotonic())
    if wait:
        raise HTTPError(429, "too many failed logins; try again later", headers=[("Retry-After", str(wait))])
    throttle.attempt(keys, time.monotonic())
    user = await authenticate(ctx, username, password)
    if user is None:
        raise HTTPError(401, LOGIN_FAILED)
    throttle.succeeded(keys)
    is_default = password == meta.DEFAULT_ADMIN_PASSWORD  # known here without hashing; GET /user reports it
    if user.password_is_default is not is_default:
        await ctx.meta.write(meta.set_password_is_default, user.id, is_default)
    token = await auth.create_session(ctx.meta, user.id)
    return Response(200, headers=[("Set-Cookie", auth.session_cookie(token, secure=cookie_secure(request, ctx)))])


async def post_logout(request: Request, ctx: Context) -> Response:
    """Revoke the session and expire the cookie; upstream requires the cookie but does not check it."""
    token = request.cookies.get(auth.COOKIE_NAME)
    if token is None:
        raise HTTPError(400, "missing _me_sess cookie")
    await auth.revoke(ctx.meta, token)
    return Response(204, headers=[("Set-Cookie", auth.expired_cookie(secure=cookie_secure(request, ctx)))])


async def get_auth_config(request: Request, ctx: Context) -> Response:
    """What the login page needs to know before anyone types a password (no login needed)."""
    return json_response({"secureCookie": ctx.config.securecookie})


async def authenticate(ctx: Context, username: str, password: str) -> meta.User | None:
    """The user if the password is theirs. Hashing runs in a worker thread; an unknown
    username costs a dummy verification, so the answer time does not tell which part was wrong."""
    user = await ctx.meta.read(meta.get_user_by_username, username)
    async with ctx.auth.hashing:
        if user is None:
            await asyncio.to_thread(passwords.verify_dummy, password)
            return None
        try:
            ok = await asyncio.to_thread(passwords.verify_password, user.password, password)
        except passwords.PasswordHashUnsupported as exc:
            ctx.log.error("cannot verify password", username=user.username, error=str(exc))
            raise HTTPError(500, str(exc)) from None
    return user if ok else None


def client_address(request: Request, ctx: Context) -> str:
    """The client's address for throttling, read through forwarding headers only from trusted proxies."""
    networks = _networks(ctx.config.trustedproxies)
    return ipfilter.client_ip(request.client, request.headers, networks) or request.client


@functools.cache
def _networks(entries: tuple[str, ...]) -> tuple[ipfilter.Network, ...]:
    networks: list[ipfilter.Network] = []
    for entry in entries:
        if entry == "loopback":
            networks.extend(_LOOPBACK)
        else:
            networks.append(ipaddress.ip_network(entry, strict=False))
    return tuple(networks)


def start_session_purger(ctx: Context) -> None:
    """Purge expired sessions now and hourly while the server runs (needs a running event loop)."""
    task = asyncio.get_running_loop().create_task(_purge_loop(ctx))

    async def stop() -> None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    ctx.on_shutdown.append(stop)


async def _purge_loop(ctx: Context) -> None:
    while True:
        try:
            purged = await auth.purge_expired(ctx.meta)
            if purged:
                ctx.log.debug("purged expired sessions", count=purged)
        except Exception as exc:  # a failed purge must not stop the next one
            ctx.log.error("session purge failed", error=repr(exc))
        await asyncio.sleep(auth.PURGE_INTERVAL_S)
