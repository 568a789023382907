"""The access check every API route passes through: find who is asking once, then ask the policy.

`App` calls `authorize` with the access the route table declares, before the
handler runs; a handler then reads the caller with `caller(request)`,
`user(request)` or `session(request)`. The verdict itself comes from
`permissions.decide`; this module only gathers what it needs and turns a
refusal into its answer. Who is asking is, in this order:

- on a share route (`/share/{share}/...`): the share link itself, opened by its
  password cookie when it has a password. Accounts play no part there.
- an API key, when the request carries `Authorization: Bearer <key>`: its owner,
  held to the key's scope. A bad key is a 401 even if a cookie came along.
- else the session of the `_me_sess` cookie.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Final, NoReturn

from medama_core import apikeys, auth, sharelinks
from medama_core.hostnames import InvalidHostname, normalise
from medama_core.http.errors import HTTPError
from medama_core.http.protocol import Request
from medama_core.permissions import SITE_SCOPED, Access, Actor, Refusal, Role, Scope, Via, decide
from medama_core.store import protocol as meta
from medama_core.store.protocol import MetaStore

__all__ = [
    "BAD_KEY",
    "SHARE_GONE",
    "SHARE_NOT_FOUND",
    "SHARE_PASSWORD",
    "SITE_NOT_FOUND",
    "Caller",
    "authorize",
    "authorize_sites",
    "caller",
    "session",
    "user",
]

SITE_NOT_FOUND: Final = "website not found"  # upstream's message, for an unknown site and another's alike
FORBIDDEN: Final = "not allowed for this account or key"
BAD_KEY: Final = "unknown, expired or revoked API key"
SHARE_NOT_FOUND: Final = "share not found"
SHARE_GONE: Final = "this share link has expired"
SHARE_PASSWORD: Final = "this share needs its password"  # 401: POST /api/share/{id}/auth opens it


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is asking, as found by `authorize`: the policy's Actor and the records behind it."""

    actor: Actor
    user: meta.User | None = None  # None for a share link
    session: auth.Session | None = None  # a signed-in browser's
    key: meta.ApiKey | None = None  # the API key used
    share: meta.Share | None = None  # the share link used


async def authorize(request: Request, access: Access, db: MetaStore, *, demo: bool, hidden_status: int = 404) -> None:
    """Raise the route's refusal (400, 401, 403, 404 or `hidden_status`), or let the request through.

    For a site-scoped access the path's `hostname` is validated (400) and
    replaced by its lower-case form, the form the handler and the database use.
    `hidden_status` answers a site that exists but is not the caller's.
    """
    if access is Access.PUBLIC:
        return
    if access is Access.SHARE_READ:
        await _authorize_share(request, db)
        return
    found = await _account_caller(request, db)
    site: str | None = None
    exists = False
    if access in SITE_SCOPED:
        try:
            site = normalise(request.path_params["hostname"])
        except InvalidHostname as exc:
            raise HTTPError(400, f"hostname: {exc}") from None
        request.path_params["hostname"] = site
        exists = await db.website_owner(site) is not None
    actor = None if found is None else found.actor
    refusal = decide(access, actor, method=request.method, demo=demo, site=site, site_exists=exists)
    if refusal is not None:
        _refuse(refusal, request, hidden_status)
    request.actor = found


async def authorize_sites(request: Request, hostnames: list[str], db: MetaStore, *, demo: bool) -> None:
    """`Access.SITE_READ` for each site a route names in its query rather than its path (a read of several
    sites at once, whose route itself needs `Access.ACCOUNT`): all of them, or `404 website not found`,
    another's site answered as an unknown one. `hostnames` are valid and lower-case (`normalise`)."""
    actor = caller(request).actor
    existing = set(await db.list_hostnames())  # one read for every site named
    for hostname in hostnames:
        refusal = decide(
            Access.SITE_READ, actor, method=request.method, demo=demo, site=hostname, site_exists=hostname in existing
        )
        if refusal is not None:
            _refuse(refusal, request, 404)


async def _account_caller(request: Request, db: MetaStore) -> Caller | None:
    """The API key or session behind the request, or None; 401 for a bearer token that opens nothing."""
    token = apikeys.bearer_token(request.headers.get("authorization"))
    if token is not None:
        return await _key_caller(token, db)
    found = await auth.find_session(request, db)
    if found is None:
        return None
    return Caller(await _actor(found.user, db, Via.SESSION), user=found.user, session=found)


async def _key_caller(token: str, db: MetaStore) -> Caller:
    found = await db.api_key_user(apikeys.key_hash(token)) if apikeys.well_formed(token) else None
    now = int(time.time())
    if found is None or (found[0].date_expires is not None and found[0].date_expires <= now):
        raise HTTPError(401, BAD_KEY)
    key, owner = found
    if key.date_used is None or now - key.date_used >= apikeys.LAST_USED_RESOLUTION_S:
        await db.touch_api_key(key.id, now)
    return Caller(await _actor(owner, db, Via.KEY, Scope(key.scope)), user=owner, key=key)


async def _actor(user: meta.User, db: MetaStore, via: Via, scope: Scope = Scope.ADMIN) -> Actor:
    role = Role(user.role)
    sites = frozenset(await db.list_grants(user.id)) if role is Role.VIEWER else frozenset()
    return Actor(user.id, role, via, scope, sites)


async def _authorize_share(request: Request, db: MetaStore) -> None:
    share_id = request.path_params["share"]
    share = await db.get_share(share_id) if sharelinks.well_formed_id(share_id) else None
    now = time.time()
    if share is not None and share.date_expires is not None and share.date_expires <= now:
        raise HTTPError(404, SHARE_GONE)
    found: Caller | None = None
    if share is not None:
        token = request.cookies.get(sharelinks.COOKIE_NAME)
        if share.password is None or sharelinks.cookie_opens(token, share.id, share.password, now):
            panels = frozenset(share.panels) if share.panels else None
            actor = Actor("", Role.VIEWER, Via.SHARE, Scope.READ, frozenset({share.hostname}), share.id, panels)
            found = Caller(actor, share=share)
    # The stats a share route names: the segment after the share's id ("" for the share itself).
    panel = request.path.rstrip("/").split(f"/share/{share_id}", 1)[-1].strip("/")
    refusal = decide(
        Access.SHARE_READ,
        None if found is None else found.actor,
        method=request.method,
        demo=False,  # a share changes nothing
        share_id=share_id,
        share_exists=share is not None,
        panel=panel,
    )
    if refusal is Refusal.NO_SHARE:
        raise HTTPError(404, SHARE_NOT_FOUND)
    if refusal is Refusal.SIGN_IN:
        raise HTTPError(401, SHARE_PASSWORD)
    if refusal is not None:
        raise HTTPError(403, f"this share does not show {panel}")
    request.actor = found


def _refuse(refusal: Refusal, request: Request, hidden_status: int) -> NoReturn:
    if refusal is Refusal.DEMO:
        raise HTTPError(403, auth.DEMO_MODE)
    if refusal is Refusal.NO_SITE:
        raise HTTPError(404, SITE_NOT_FOUND)
    if refusal is Refusal.HIDDEN:
        raise HTTPError(hidden_status, SITE_NOT_FOUND)
    if refusal is Refusal.FORBIDDEN:
        raise HTTPError(403, FORBIDDEN)
    raise auth.sign_in_error(request)


def caller(request: Request) -> Caller:
    """The caller `authorize` found; 401 on a route that let the request through without one."""
    found = request.actor
    if not isinstance(found, Caller):
        raise auth.sign_in_error(request)
    return found


def user(request: Request) -> meta.User:
    """The account acting (a session's or an API key's owner); 401 if there is none."""
    found = caller(request).user
    if found is None:
        raise auth.sign_in_error(request)
    return found


def session(request: Request) -> auth.Session:
    """The signed-in browser's session; 401 when the caller is not one (an API key, a share)."""
    found = caller(request).session
    if found is None:
        raise auth.sign_in_error(request)
    return found
