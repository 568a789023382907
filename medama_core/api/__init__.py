"""The API layer: the Context every handler receives, wiring store functions to HTTP."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from medama_core.auth import AuthState
from medama_core.config import Config
from medama_core.http.protocol import Request, Response
from medama_core.ingest import ipfilter
from medama_core.ingest.openviews import OpenViews
from medama_core.ingest.unknown_sites import UnknownSites
from medama_core.log import Logger
from medama_core.quota import DailyQuota
from medama_core.ratelimit import RateLimiter
from medama_core.store.protocol import AnalyticsStore, MetaStore, SiteSettings
from medama_core.store.protocol import Op as HitOp
from medama_core.usage import CPUSampler
from medama_core.writer import Batcher


@dataclass(frozen=True)
class BlockSettings:
    """The tenant's IP blocking settings; ingestion builds its IPFilter from them.

    Replaced as a whole (never mutated) whenever they change, so a holder can
    tell it is stale by identity.
    """

    abusive: bool = True  # upstream default: "block_abusive_ips" absent means "true"
    tor: bool = True  # likewise "block_tor_exit_nodes"
    ips: tuple[str, ...] = ()  # normalised addresses and CIDRs (ipfilter.parse_ip_or_cidr)


@dataclass
class Context:
    """Process-wide state handed to every handler. Mutated only on the event loop thread."""

    config: Config
    log: Logger
    meta: MetaStore  # the app store and the analytics store, whichever engines run them (store/protocol.py)
    analytics: AnalyticsStore
    hostnames: set[str] = field(default_factory=set)  # the allow-set ingestion checks, kept in step with `websites`
    script_variant: str = "default"  # tracker file `/script.js` serves, from the `script_type` setting
    # Each site's own settings (sites with none stored are absent), for the tracker `/script.js?site=`
    # serves: loaded at start-up, reloaded after every change (reload_site_settings).
    site_settings: dict[str, SiteSettings] = field(default_factory=dict)
    block_settings: BlockSettings = field(default_factory=BlockSettings)  # loaded at start-up, replaced on PATCH
    auth: AuthState = field(default_factory=AuthState)  # login throttling and the password-hashing gate
    cpu: CPUSampler = field(default_factory=CPUSampler)  # previous CPU sample for /user/usage
    # Ingestion (api/events.py): the group-commit writer of hits, the /event/* rate limiter (None when
    # -ratelimit 0), hits stored and dropped (by reason) since start-up, and the block check last built
    # from block_settings.
    hits: Batcher[HitOp] | None = None
    ratelimiter: RateLimiter | None = None
    hits_stored: int = 0
    drops: Counter[str] = field(default_factory=Counter)
    # Each site's hits today against the tenant's daily quota, and the unregistered names whose drops
    # are counted by name today (the rest under "").
    quota: DailyQuota = field(default_factory=DailyQuota)
    unknown_sites: UnknownSites = field(default_factory=UnknownSites)
    # Drop counts per (day in Unix ms, site, reason) not yet handed to the writer, and the timer that will.
    pending_drops: Counter[tuple[int, str, str]] = field(default_factory=Counter)
    drop_flush: asyncio.TimerHandle | None = None
    ip_filter: tuple[BlockSettings, Callable[[str], bool] | None] | None = None
    started: float = field(default_factory=time.time)
    # Foreign trackers (api/foreign.py): recent views their id-less follow-ups are matched to, and the
    # Umami website ids set on sites (id -> hostname), kept in step with `website_aliases`.
    open_views: OpenViews = field(default_factory=OpenViews)
    umami_ids: dict[str, str] = field(default_factory=dict)
    on_shutdown: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    # Where a stats read sends the store's background work instead of starting it here: set in a -workers
    # child, whose parent runs every background job (workers.py).
    maintain_elsewhere: Callable[[], None] | None = None


# Hits accepted before a site left the allow-set may still wait in the group-commit queue; renaming or
# deleting the site's rows waits at most this long for them to reach the writer first. A batch takes a
# few ms, so only a queue that never empties (sustained overload) reaches the cap.
HIT_DRAIN_TIMEOUT_S = 1.0
HIT_DRAIN_POLL_S = 0.005


async def drain_hits(ctx: Context) -> None:
    """Wait (boundedly) until the hits queued so far are handed to the analytics writer thread.

    The batcher submits a batch to the writer as it takes it off the queue, and the
    writer runs tasks in order, so a write submitted once the queue is empty runs
    after those hits.
    """
    if ctx.hits is None:
        return
    deadline = time.monotonic() + HIT_DRAIN_TIMEOUT_S
    while len(ctx.hits) and time.monotonic() < deadline:
        await asyncio.sleep(HIT_DRAIN_POLL_S)


async def reload_site_settings(ctx: Context) -> None:
    """Load every site's settings again: after a change here (a site's settings, a rename, a delete)
    or in another process or node (app.py's watch of the app store)."""
    ctx.site_settings = await ctx.meta.list_site_settings()


def cookie_secure(request: Request, ctx: Context) -> bool:
    """Whether a session cookie set in answer to `request` gets `Secure` (docs/auth.md).

    Always, except on a plain-HTTP request when the server runs with
    -securecookie=false. A request over our TLS listener, or from a
    -trustedproxies proxy saying `X-Forwarded-Proto: https`, is not plain.
    """
    if ctx.config.securecookie or request.tls:
        return True
    forwarded = request.headers.get("x-forwarded-proto", "")
    if "https" not in (proto.strip().lower() for proto in forwarded.split(",")):
        return False
    return ipfilter.peer_trusted(request.client, ipfilter.trusted_networks(ctx.config.trustedproxies))


Handler = Callable[[Request, Context], Awaitable[Response]]
