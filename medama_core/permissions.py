"""Who may do what: the one access policy every API route is checked against (pure, no I/O).

Each route declares the `Access` it needs in the route table (`app.ROUTES`);
`access.py` finds out who is asking (an `Actor`) once per request and what it
knows about the site or share in the path, then asks `decide` here. Nothing
else decides access: a handler never checks ownership or roles itself.

An actor is a signed-in user (a session cookie), an API key (its owner, held to
the key's scope), or a share link (the one site it shows, nothing else). What
each can reach is data, in the tables below: a role's accesses, a key scope's
accesses, and which sites an actor sees.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Final

__all__ = [
    "READ_METHODS",
    "ROLE_ACCESS",
    "SCOPE_ACCESS",
    "SITE_SCOPED",
    "Access",
    "Actor",
    "Refusal",
    "Role",
    "Scope",
    "Via",
    "decide",
    "sees_site",
    "sees_unregistered",
]


class Access(str, Enum):  # not StrEnum: Python 3.10 has none
    """What a route needs from its caller."""

    PUBLIC = "public"  # anyone, signed in or not: the tracker's routes, health, signing in and out
    ACCOUNT = "account"  # a user acting on their own account, reading their sites list and dropped-hit counts
    CREDENTIALS = "credentials"  # the account's API keys and two-factor login: a signed-in browser only, no key
    SERVER = "server"  # server-wide: settings, the host's resource use, the profiler, accounts, adding sites
    SITE_READ = "site:read"  # one site's record and its stats: the site in the path
    SITE_MANAGE = "site:manage"  # renaming or deleting the site in the path, its share links
    SHARE_READ = "share:read"  # a share link's read-only dashboard: the share in the path


class Role(str, Enum):
    """A user's role. Users of upstream's me_meta.db, which has no roles, are admins."""

    ADMIN = "admin"  # everything
    VIEWER = "viewer"  # reads the stats of the sites granted to them; changes only their own account


class Scope(str, Enum):
    """What an API key may do, within what its owner's role allows."""

    READ = "read"  # GET of stats and of the sites lists the owner sees
    ADMIN = "admin"  # everything the owner may do but manage keys and two-factor login


class Via(Enum):
    """How the caller proved who it is."""

    SESSION = "session"  # the `_me_sess` cookie of a signed-in browser
    KEY = "key"  # `Authorization: Bearer <API key>`
    SHARE = "share"  # a share link (and its password cookie when it has a password)


# Accesses about the site named by the route's `{hostname}` parameter.
SITE_SCOPED: Final = frozenset({Access.SITE_READ, Access.SITE_MANAGE})

# Methods that change nothing (RFC 9110 §9.2.1 "safe"); demo mode and read-only keys allow only these.
READ_METHODS: Final = frozenset({"GET", "HEAD"})

# What each role reaches. A viewer's site accesses are further limited to the sites granted to them.
ROLE_ACCESS: Final[dict[Role, frozenset[Access]]] = {
    Role.ADMIN: frozenset({Access.ACCOUNT, Access.CREDENTIALS, Access.SERVER, Access.SITE_READ, Access.SITE_MANAGE}),
    Role.VIEWER: frozenset({Access.ACCOUNT, Access.CREDENTIALS, Access.SITE_READ}),
}

# What an API key of each scope reaches, on top of its owner's role (a key never does more than either).
# No key reaches CREDENTIALS: a leaked key cannot mint more keys or turn two-factor login off.
SCOPE_ACCESS: Final[dict[Scope, frozenset[Access]]] = {
    Scope.READ: frozenset({Access.ACCOUNT, Access.SITE_READ}),
    Scope.ADMIN: frozenset({Access.ACCOUNT, Access.SERVER, Access.SITE_READ, Access.SITE_MANAGE}),
}

# The share's stats the `panels` of a share cannot switch off: the totals and chart, the share's own
# description and the imported-days note, which every shared dashboard shows.
ALWAYS_SHARED: Final = frozenset({"", "summary", "imported"})


@dataclass(frozen=True, slots=True)
class Actor:
    """The caller as the policy sees it."""

    user_id: str  # the user acting (a key's owner); "" for a share link, which acts for nobody
    role: Role = Role.ADMIN
    via: Via = Via.SESSION
    scope: Scope = Scope.ADMIN  # an API key's; a session has its role's full reach
    sites: frozenset[str] = frozenset()  # a viewer's granted sites; a share's one site
    share_id: str = ""  # a share link's id
    panels: frozenset[str] | None = None  # the stats a share shows besides ALWAYS_SHARED; None: all


class Refusal(Enum):
    """Why a request may not go on; `access.py` turns each into its status and message."""

    SIGN_IN = "sign in"  # no valid session, key or share password: 401
    DEMO = "demo"  # demo mode (-demo) keeps everything but signing in read-only: 403
    NO_SITE = "no site"  # the site in the path does not exist: 404
    HIDDEN = "hidden"  # the site exists but is not the caller's to see (404, or upstream's 401)
    NO_SHARE = "no share"  # the share link in the path does not exist or has expired: 404
    FORBIDDEN = "forbidden"  # a known caller whose role, key scope or share does not reach the route: 403


def sees_site(actor: Actor, hostname: str) -> bool:
    """Whether `actor` may know that the site exists: admins see every site, others their own."""
    if actor.via is Via.SHARE or actor.role is not Role.ADMIN:
        return hostname in actor.sites
    return True


def sees_unregistered(actor: Actor) -> bool:
    """Whether `actor` may see what ingestion dropped for host names no site has: admins only."""
    return actor.via is not Via.SHARE and actor.role is Role.ADMIN


def _reaches(actor: Actor, access: Access, method: str) -> bool:
    if access not in ROLE_ACCESS[actor.role]:
        return False
    if actor.via is Via.KEY:
        if access not in SCOPE_ACCESS[actor.scope]:
            return False
        if actor.scope is Scope.READ and method not in READ_METHODS:
            return False
    return True


def decide(
    access: Access,
    actor: Actor | None,
    *,
    method: str,
    demo: bool,
    site: str | None = None,
    site_exists: bool = False,
    share_id: str = "",
    share_exists: bool = False,
    panel: str = "",
) -> Refusal | None:
    """None when `actor` may make a `method` request to a route that needs `access`, else why not.

    `site` is the route's `{hostname}` (for site-scoped accesses), `share_id` and `panel` the
    share and the stats a share route names. The order is the order of the answers: not signed
    in, then demo mode, then the site (unknown before not yours), then the role and key scope;
    so a stranger learns nothing about sites and a demo visitor gets the same 403 for every write.
    A share route answers an unknown or expired share first: its link is all a visitor has.
    """
    if access is Access.PUBLIC:
        return None
    if access is Access.SHARE_READ and not share_exists:
        return Refusal.NO_SHARE
    if actor is None:
        return Refusal.SIGN_IN
    if access is Access.SHARE_READ or actor.via is Via.SHARE:
        # A share link opens its own read-only routes and nothing else; no account opens a share's.
        if access is not Access.SHARE_READ or actor.via is not Via.SHARE or actor.share_id != share_id:
            return Refusal.SIGN_IN
        if method not in READ_METHODS:
            return Refusal.FORBIDDEN
        if actor.panels is not None and panel not in actor.panels | ALWAYS_SHARED:
            return Refusal.FORBIDDEN
        return None
    if demo and method not in READ_METHODS:
        return Refusal.DEMO
    if access in SITE_SCOPED:
        if not site_exists:
            return Refusal.NO_SITE
        if site is None or not sees_site(actor, site):
            return Refusal.HIDDEN
    if not _reaches(actor, access, method):
        return Refusal.FORBIDDEN
    return None
