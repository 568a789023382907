"""/auth/login and /auth/logout: password and two-factor code checks, login throttling, and the session cookie."""

from __future__ import annotations

import asyncio
import contextlib

from medama_core import auth, throttle
from medama_core.api import Context, cookie_secure
from medama_core.http.errors import HTTPError
from medama_core.http.jsonbody import json_object, optional_string, required_string
from medama_core.http.protocol import Request, Response, json_response
from medama_core.store import protocol as meta

# Upstream's AuthLogin schema. A username longer than 48 can never log in, so PATCH /user keeps to it too.
USERNAME_MIN, USERNAME_MAX = 3, 48
PASSWORD_MIN, PASSWORD_MAX = 5, 128
LOGIN_FAILED = "user not found"  # upstream's one message for unknown user and wrong password alike
# Ours: the password was right and the account has two-factor login; the dashboard then asks for the code.
CODE_REQUIRED = "two-factor code required"
CODE_WRONG = "two-factor code is wrong"
CODE_MAX = 32  # a 6-digit code or a recovery code, as typed


async def post_login(request: Request, ctx: Context) -> Response:
    """Check the password, then (for an account with two-factor login) the `code`; start a session.

    All of it is one throttled attempt on the sign-in keys: a correct password without its
    code neither clears nor counts as a failure, so codes cannot be guessed faster than passwords.
    """
    body = json_object(request)
    username = required_string(body, "username", USERNAME_MIN, USERNAME_MAX)
    password = required_string(body, "password", PASSWORD_MIN, PASSWORD_MAX)
    code = optional_string(body, "code", 1, CODE_MAX)
    network = auth.client_network(request, ctx.config.trustedproxies)
    user = await ctx.meta.get_user_by_username(username)
    steps: list[str] = []  # how far the check got: "password", then "code"

    async def check() -> bool | None:
        # An unknown username is charged and timed as a wrong password, so the answer tells neither apart.
        if not await auth.verify(ctx.auth, ctx.log, user, password) or user is None:
            return False
        steps.append("password")
        if not user.totp:
            return True
        if code is None:
            return None
        steps.append("code")
        return await auth.second_factor(ctx.meta, user.id, code)

    ok = await auth.throttled(ctx.auth, ctx.log, throttle.login_keys(network, username), check)
    if not ok or user is None:
        raise HTTPError(401, {0: LOGIN_FAILED, 1: CODE_REQUIRED, 2: CODE_WRONG}[len(steps)])
    is_default = password == meta.DEFAULT_ADMIN_PASSWORD  # known here without hashing; GET /user reports it
    if user.password_is_default is not is_default:
        await ctx.meta.set_password_is_default(user.id, is_default)
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
