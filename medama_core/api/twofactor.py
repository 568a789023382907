"""/user/totp: turning two-factor login (TOTP, RFC 6238) on with a confirmed code, and off with a code.

Reached from a signed-in browser only (app.ROUTES: credentials). Codes are
throttled like passwords, on the same keys (auth.throttled), so guessing a
code is as slow as guessing the password. The secret is answered once, by
the POST that makes it; afterwards it never leaves the database.
"""

from __future__ import annotations

import time
from typing import Final

from medama_core import access, auth, throttle, totp
from medama_core.api import Context
from medama_core.http.errors import HTTPError
from medama_core.http.jsonbody import json_object, required_string
from medama_core.http.protocol import Request, Response, json_response

CODE_MAX: Final = 32  # a 6-digit code or a recovery code, with spaces or hyphens as typed
WRONG_CODE: Final = "two-factor code is wrong"  # 403, never 401 (which means "not signed in" to the dashboard)
ALREADY_ON: Final = "two-factor login is already on; turn it off first"


async def post_totp(request: Request, ctx: Context) -> Response:
    """A new secret and its `otpauth://` URI for the app; not in force until confirmed."""
    user = access.user(request)
    secret = totp.new_secret()
    if not await ctx.meta.set_totp_secret(user.id, secret, int(time.time())):
        raise HTTPError(409, ALREADY_ON)
    return json_response({"secret": secret, "uri": totp.otpauth_uri(secret, user.username)})


async def _throttled_code(request: Request, ctx: Context, check: auth.Check) -> None:
    user = access.user(request)
    keys = throttle.login_keys(auth.client_network(request, ctx.config.trustedproxies), user.username)
    if not await auth.throttled(ctx.auth, ctx.log, keys, check):
        raise HTTPError(403, WRONG_CODE)


async def confirm_totp(request: Request, ctx: Context) -> Response:
    """Turn two-factor login on with a code from the app; answers the ten recovery codes, once."""
    user = access.user(request)
    code = required_string(json_object(request), "code", 1, CODE_MAX)
    pending = await ctx.meta.get_totp(user.id)
    if pending is None or pending.enabled:
        raise HTTPError(
            409, ALREADY_ON if pending else "no two-factor setup to confirm; start with POST /api/user/totp"
        )
    codes = totp.new_recovery_codes()

    async def check() -> bool:
        step = totp.matching_step(pending.secret, code, time.time())
        hashes = [totp.recovery_hash(c) for c in codes]
        return step is not None and await ctx.meta.enable_totp(user.id, step, hashes)

    await _throttled_code(request, ctx, check)
    return json_response({"recoveryCodes": codes})


async def delete_totp(request: Request, ctx: Context) -> Response:
    """Turn two-factor login off, with a current code or a recovery code."""
    user = access.user(request)
    code = required_string(json_object(request), "code", 1, CODE_MAX)
    if not user.totp:
        raise HTTPError(409, "two-factor login is off")

    async def check() -> bool:
        return await auth.second_factor(ctx.meta, user.id, code)

    await _throttled_code(request, ctx, check)
    await ctx.meta.delete_totp(user.id)
    return Response(204)
