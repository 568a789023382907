"""/user and /user/usage: the signed-in account, its changes and deletion, and host resource usage."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from medama_core import access, accounts, auth, passwords, usage
from medama_core.api import Context, cookie_secure, drain_hits, reload_site_settings
from medama_core.http.errors import HTTPError
from medama_core.http.jsonbody import json_object, optional_object, optional_string
from medama_core.http.protocol import Request, Response, json_response
from medama_core.store import protocol as meta

# Same limits as login (upstream allowed 120 on PATCH, so a long name could never log in again, spec §10.13).
USERNAME_MIN, USERNAME_MAX = 3, 48
PASSWORD_MIN, PASSWORD_MAX = 5, 128
CURRENT_PASSWORD = "currentPassword"  # the field PATCH (with a new password) and DELETE must carry
WRONG_CURRENT_PASSWORD = "current password is wrong"  # 403, never 401: 401 means "not signed in" to the dashboard
LANGUAGES = ("en",)  # the dashboard's translations; upstream's UserSettings enum
DEFAULT_LANGUAGE = "en"


def user_json(user: meta.User) -> dict[str, Any]:
    return {
        "username": user.username,
        "settings": {"language": _language(user.settings)},
        "dateCreated": user.date_created,
        "dateUpdated": user.date_updated,
        "passwordChangeRequired": user.password_is_default is True,  # None (not known yet) counts as changed
        "role": user.role,  # ours: admin or viewer (docs/auth.md)
        "totpEnabled": user.totp,  # ours: two-factor login is on
    }


def _settings(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _language(settings_text: str) -> str:
    language = _settings(settings_text).get("language")
    return language if language in LANGUAGES else DEFAULT_LANGUAGE


async def get_user(request: Request, ctx: Context) -> Response:
    return json_response(user_json(access.user(request)))


async def patch_user(request: Request, ctx: Context) -> Response:
    caller = access.caller(request)
    user = access.user(request)
    body = json_object(request)
    username = optional_string(body, "username", USERNAME_MIN, USERNAME_MAX)
    problem = None if username is None else accounts.new_username_problem(username)
    if problem is not None:
        raise HTTPError(400, f"username: {problem}")
    password = optional_string(body, "password", PASSWORD_MIN, PASSWORD_MAX)
    current = optional_string(body, CURRENT_PASSWORD, 1, PASSWORD_MAX)
    if password is not None and password == meta.DEFAULT_ADMIN_PASSWORD:
        raise HTTPError(400, f"password: {accounts.DEFAULT_PASSWORD_REFUSED}")
    new_settings = _parse_settings(body)
    password_hash = None
    if password is not None:
        await _confirm(request, ctx, user, current, "change the password")
        async with ctx.auth.hashing:
            password_hash = await asyncio.to_thread(passwords.hash_password, password)
    settings_text = None
    if new_settings:
        merged = _settings(user.settings) | new_settings
        settings_text = json.dumps(merged, separators=(",", ":"))
    try:
        updated = await ctx.meta.update_user(
            user.id,
            int(time.time()),
            username=username,
            password_hash=password_hash,
            settings=settings_text,
            keep_session=None if caller.session is None else caller.session.token_hash,
        )
    except meta.AlreadyExists as exc:
        raise HTTPError(409, str(exc)) from None
    if updated is None:
        raise HTTPError(404, "user not found")
    return json_response(user_json(updated))


def _parse_settings(body: dict[str, Any]) -> dict[str, Any]:
    settings = optional_object(body, "settings")
    if settings is None or "language" not in settings:
        return {}
    language = settings["language"]
    if language not in LANGUAGES:
        raise HTTPError(400, f"settings.language: must be one of {', '.join(LANGUAGES)}")
    return {"language": language}


async def _confirm(request: Request, ctx: Context, user: meta.User, current: str | None, action: str) -> None:
    """Check the account's current password (CONTRACT 3): 400 without one, 403 when wrong, 429 while
    throttled like sign-in failures. A stolen session alone cannot take the account over or delete it."""
    if current is None:
        raise HTTPError(400, f"{CURRENT_PASSWORD} is required to {action}")
    network = auth.client_network(request, ctx.config.trustedproxies)
    if not await auth.throttled_verify(ctx.auth, ctx.log, network, user.username, user, current):
        raise HTTPError(403, WRONG_CURRENT_PASSWORD)


async def delete_user(request: Request, ctx: Context) -> Response:
    """Delete the account, its websites and their analytics rows; its sessions go with it.

    The body must hold the current password: `{"currentPassword": "..."}`. The last admin
    cannot go while other accounts remain (409): someone must be able to manage them."""
    user = access.user(request)
    current = optional_string(json_object(request), CURRENT_PASSWORD, 1, PASSWORD_MAX) if request.body else None
    await _confirm(request, ctx, user, current, "delete the account")
    try:
        hostnames = await ctx.meta.remove_account(user, None)
    except accounts.AccountError as exc:
        raise HTTPError(409, str(exc)) from None
    ctx.hostnames.difference_update(hostnames)
    if hostnames:
        await reload_site_settings(ctx)
        await drain_hits(ctx)
        await ctx.analytics.delete_sites(hostnames)
    return Response(204, headers=[("Set-Cookie", auth.expired_cookie(secure=cookie_secure(request, ctx)))])


async def usage_json(ctx: Context) -> dict[str, Any]:
    """The host's CPU, memory and disk (the disk of the SQLite files, or of the working directory when both
    stores are servers), and what each store takes on its engine (`bytes` null: the engine would not say)."""
    sampled = await usage.sample(usage.local_path(ctx.config.appdb, ctx.config.analyticsdb), ctx.cpu)
    body = sampled.as_json()
    meta_bytes, analytics_bytes = await asyncio.gather(ctx.meta.size(), ctx.analytics.size())
    body["databases"] = {
        "meta": {"engine": ctx.meta.engine, "bytes": meta_bytes},
        "analytics": {"engine": ctx.analytics.engine, "bytes": analytics_bytes},
    }
    return body


async def get_user_usage(request: Request, ctx: Context) -> Response:
    return json_response(await usage_json(ctx))
