"""The access check every API route passes through: find who is asking once, then ask the policy.

`App` calls `authorize` with the access the route table declares, before the
handler runs; a handler then reads the caller with `session(request)`. The
verdict itself comes from `permissions.decide`; this module only gathers what
it needs (the session, the site's owner) and turns a refusal into its answer.
"""

from __future__ import annotations

from typing import Final, NoReturn

from medama_core import auth
from medama_core.hostnames import InvalidHostname, normalise
from medama_core.http.errors import HTTPError
from medama_core.http.protocol import Request
from medama_core.permissions import SITE_SCOPED, Access, Actor, Refusal, decide
from medama_core.store import meta
from medama_core.store.db import Database

__all__ = ["SITE_NOT_FOUND", "authorize", "authorize_sites", "session"]

SITE_NOT_FOUND: Final = "website not found"  # upstream's message, for an unknown site and another's alike


async def authorize(request: Request, access: Access, db: Database, *, demo: bool, hidden_status: int = 404) -> None:
    """Raise the route's refusal (401, 403, 400, 404 or `hidden_status`), or let the request through.

    For a site-scoped access the path's `hostname` is validated (400) and
    replaced by its lower-case form, the form the handler and the database use.
    `hidden_status` answers a site that exists but is not the caller's.
    """
    if access is Access.PUBLIC:
        return
    found = await auth.find_session(request, db)
    if found is None:
        raise auth.sign_in_error(request)
    request.actor = found
    actor = Actor(found.user.id)
    owner: str | None = None
    if access in SITE_SCOPED:
        try:
            hostname = normalise(request.path_params["hostname"])
        except InvalidHostname as exc:
            raise HTTPError(400, f"hostname: {exc}") from None
        request.path_params["hostname"] = hostname
        owner = await db.read(meta.website_owner, hostname)
    refusal = decide(access, actor, method=request.method, demo=demo, site_exists=owner is not None, site_owner=owner)
    if refusal is not None:
        _refuse(refusal, request, hidden_status)


async def authorize_sites(request: Request, hostnames: list[str], db: Database, *, demo: bool) -> None:
    """`Access.SITE_READ` for each site a route names in its query rather than its path (a read of several
    sites at once, whose route itself needs `Access.ACCOUNT`): all of them, or `404 website not found`,
    another's site answered as an unknown one. `hostnames` are valid and lower-case (`normalise`)."""
    user_id = session(request).user.id
    actor = Actor(user_id)
    own = set(await db.read(meta.list_user_hostnames, user_id))  # one read for the common case: all the caller's
    for hostname in hostnames:
        owner = user_id if hostname in own else await db.read(meta.website_owner, hostname)
        refusal = decide(
            Access.SITE_READ, actor, method=request.method, demo=demo, site_exists=owner is not None, site_owner=owner
        )
        if refusal is not None:
            _refuse(refusal, request, 404)


def _refuse(refusal: Refusal, request: Request, hidden_status: int) -> NoReturn:
    if refusal is Refusal.DEMO:
        raise HTTPError(403, auth.DEMO_MODE)
    if refusal is Refusal.NO_SITE:
        raise HTTPError(404, SITE_NOT_FOUND)
    if refusal is Refusal.HIDDEN:
        raise HTTPError(hidden_status, SITE_NOT_FOUND)
    raise auth.sign_in_error(request)


def session(request: Request) -> auth.Session:
    """The caller `authorize` found; 401 on a route that let the request through without one."""
    found = request.actor
    if not isinstance(found, auth.Session):
        raise auth.sign_in_error(request)
    return found
