"""Who may do what: the one access policy every API route is checked against (pure, no I/O).

Each route declares the `Access` it needs in the route table (`app.ROUTES`);
`access.py` finds out who is asking (an `Actor`) once per request and what it
knows about the site in the path, then asks `decide` here. Nothing else
decides access: a handler never checks ownership itself.

Later kinds of caller slot in as data: a role is a field of `Actor` read by a
rule in `RULES`; an API key or a share link is another way `access.py` builds
an `Actor` (with the sites and accesses it was granted), not another check.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Final

__all__ = ["READ_METHODS", "RULES", "SITE_SCOPED", "Access", "Actor", "Refusal", "decide"]


class Access(str, Enum):  # not StrEnum: Python 3.10 has none
    """What a route needs from its caller."""

    PUBLIC = "public"  # anyone, signed in or not: the tracker's routes, health, signing in and out
    ACCOUNT = "account"  # a signed-in user, acting on their own account, sites list and dropped-hit counts
    SERVER = "server"  # server-wide settings, the host's resource use, the profiler
    SITE_READ = "site:read"  # one site's record and its stats: the site in the path
    SITE_MANAGE = "site:manage"  # renaming or deleting the site in the path


# Accesses about the site named by the route's `{hostname}` parameter.
SITE_SCOPED: Final = frozenset({Access.SITE_READ, Access.SITE_MANAGE})

# Methods that change nothing (RFC 9110 §9.2.1 "safe"); demo mode allows only these.
READ_METHODS: Final = frozenset({"GET", "HEAD"})


@dataclass(frozen=True, slots=True)
class Actor:
    """The caller as the policy sees it: today always a signed-in user of this server."""

    user_id: str


class Refusal(Enum):
    """Why a request may not go on; `access.py` turns each into its status and message."""

    SIGN_IN = "sign in"  # no valid session: 401
    DEMO = "demo"  # demo mode (-demo) keeps everything but signing in read-only: 403
    NO_SITE = "no site"  # the site in the path does not exist: 404
    HIDDEN = "hidden"  # the site exists but is not the caller's to see or change (404, or upstream's 401)


def _signed_in(actor: Actor, site_owner: str | None) -> bool:
    return True


def _owner(actor: Actor, site_owner: str | None) -> bool:
    return site_owner == actor.user_id


# Access -> whether a signed-in actor has it, given the owner of the site in the path (None when
# the route names no site). Upstream has one kind of user, so every user may use the server-wide
# routes (as upstream's only user could) and each site belongs to the user who added it.
RULES: Final[dict[Access, Callable[[Actor, str | None], bool]]] = {
    Access.ACCOUNT: _signed_in,
    Access.SERVER: _signed_in,
    Access.SITE_READ: _owner,
    Access.SITE_MANAGE: _owner,
}


def decide(
    access: Access,
    actor: Actor | None,
    *,
    method: str,
    demo: bool,
    site_exists: bool = False,
    site_owner: str | None = None,
) -> Refusal | None:
    """None when `actor` may make a `method` request to a route that needs `access`, else why not.

    The order is the order of the answers: not signed in, then demo mode, then
    the site (unknown before not yours), so a stranger learns nothing about
    sites and a demo visitor gets the same 403 for every write.
    """
    if access is Access.PUBLIC:
        return None
    if actor is None:
        return Refusal.SIGN_IN
    if demo and method not in READ_METHODS:
        return Refusal.DEMO
    if access in SITE_SCOPED and not site_exists:
        return Refusal.NO_SITE
    if not RULES[access](actor, site_owner):
        return Refusal.HIDDEN
    return None
