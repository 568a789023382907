"""/users: the server's accounts as admins manage them, with their roles and website grants.

Only admins reach these routes (app.ROUTES: server, access.py). The rules an
account change must keep (the last admin stays an admin) are in accounts.py,
shared with `medama user`, and run on the database's writer thread with the
change. An admin changes other accounts here; their own goes through /user,
so an admin cannot lock themselves out from this list by mistake.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Final

from medama_core import access, accounts, passwords
from medama_core.api import Context
from medama_core.hostnames import HOSTNAME_MAX, InvalidHostname, normalise
from medama_core.http.errors import HTTPError
from medama_core.http.jsonbody import json_object, optional_string, optional_string_list, required_string
from medama_core.http.protocol import Request, Response, json_response
from medama_core.store import protocol as meta

USERNAME_MIN, USERNAME_MAX = 3, 48  # as sign-in (api/auth.py)
PASSWORD_MIN, PASSWORD_MAX = accounts.PASSWORD_MIN, accounts.PASSWORD_MAX
MAX_GRANTS: Final = 1000  # sites granted to one viewer in one request; the websites page pages at 24
USER_NOT_FOUND: Final = "user not found"
NOT_YOURSELF: Final = "change your own account under /user; another admin can change your role"


def member_json(user: meta.User, grants: list[str]) -> dict[str, Any]:
    return {
        "username": user.username,
        "role": user.role,
        "websites": grants,
        "totpEnabled": user.totp,
        "dateCreated": user.date_created,
        "dateUpdated": user.date_updated,
    }


async def list_users(request: Request, ctx: Context) -> Response:
    found = await ctx.meta.users_with_grants()
    return json_response([member_json(user, grants) for user, grants in found])


def _role(body: dict[str, Any], default: str | None) -> str | None:
    role = optional_string(body, "role", 1, 16)
    if role is None:
        return default
    if role not in accounts.ROLES:
        raise HTTPError(400, f"role: must be one of {', '.join(accounts.ROLES)}")
    return role


def _websites(body: dict[str, Any]) -> list[str] | None:
    names = optional_string_list(body, "websites", MAX_GRANTS)
    if names is None:
        return None
    hostnames = []
    for name in names:
        if len(name) > HOSTNAME_MAX:
            raise HTTPError(400, f"websites: a hostname is at most {HOSTNAME_MAX} characters")
        try:
            hostnames.append(normalise(name))
        except InvalidHostname as exc:
            raise HTTPError(400, f"websites: {exc}") from None
    return list(dict.fromkeys(hostnames))


async def _hash(ctx: Context, password: str) -> str:
    problem = accounts.new_password_problem(password)
    if problem is not None:
        raise HTTPError(400, f"password: {problem}")
    async with ctx.auth.hashing:
        return await asyncio.to_thread(passwords.hash_password, password)


async def post_user(request: Request, ctx: Context) -> Response:
    """Invite someone: an account with a first password the admin passes on, a role (viewer by default)
    and the sites a viewer may read."""
    body = json_object(request)
    username = required_string(body, "username", USERNAME_MIN, USERNAME_MAX)
    problem = accounts.new_username_problem(username)
    if problem is not None:
        raise HTTPError(400, f"username: {problem}")
    password = required_string(body, "password", PASSWORD_MIN, PASSWORD_MAX)
    role = _role(body, "viewer")
    assert role is not None
    websites = _websites(body) or []
    hashed = await _hash(ctx, password)
    try:
        user = await ctx.meta.add_account(username, hashed, role, int(time.time()), websites)
    except meta.AlreadyExists as exc:
        raise HTTPError(409, str(exc)) from None
    except meta.MissingWebsite as exc:
        raise HTTPError(400, f"websites: {exc}") from None
    return json_response(member_json(user, websites and sorted(websites)), 201)


async def _target(request: Request, ctx: Context) -> meta.User:
    """The account in the path; 404 if none, 409 if it is the caller's own."""
    username = request.path_params["username"]
    user = await ctx.meta.get_user_by_username(username) if len(username) <= USERNAME_MAX else None
    if user is None:
        raise HTTPError(404, USER_NOT_FOUND)
    if user.id == access.user(request).id:
        raise HTTPError(409, NOT_YOURSELF)
    return user


async def patch_user(request: Request, ctx: Context) -> Response:
    """Change another account's role, granted sites or password (a new password signs it out everywhere)."""
    body = json_object(request)
    role = _role(body, None)
    websites = _websites(body)
    password = optional_string(body, "password", PASSWORD_MIN, PASSWORD_MAX)
    user = await _target(request, ctx)
    hashed = None if password is None else await _hash(ctx, password)
    now = int(time.time())
    try:
        if websites is not None:
            await ctx.meta.set_grants(user.id, websites)
        if role is not None and role != user.role:
            await ctx.meta.change_role(user, role, now)
        if hashed is not None:
            await ctx.meta.update_user(user.id, now, password_hash=hashed)
    except meta.MissingWebsite as exc:
        raise HTTPError(400, f"websites: {exc}") from None
    except accounts.AccountError as exc:
        raise HTTPError(409, str(exc)) from None
    fresh = await ctx.meta.get_user(user.id)
    if fresh is None:
        raise HTTPError(404, USER_NOT_FOUND)
    return json_response(member_json(fresh, await ctx.meta.list_grants(user.id)))


async def delete_user(request: Request, ctx: Context) -> Response:
    """Remove another account; the sites it added become the caller's, with their stats."""
    user = await _target(request, ctx)
    try:
        await ctx.meta.remove_account(user, access.user(request).id)
    except accounts.AccountError as exc:
        raise HTTPError(409, str(exc)) from None
    return Response(204)
