"""/event/ping and /event/hit: the public ingestion endpoints (spec §3), from request to durable row.

A hit runs, in upstream's order: rate limit (429), content type (415), body
(400, or 413 past a size limit of its custom properties), client IP and block
lists (204), then per kind the site check (404; `www.` and the bare name count
as one site, hostnames.site_for) and the enrichment whose drops are silent
204s: bot, two or more unknown enrichments, spam referrer — both in the pure
ingest pipeline (ingest/pipeline.py), which this module only wires; last the
site's daily quota (204). What survives becomes one op for the group-commit writer,
and the answer waits until that op has committed. Every drop is counted by
reason and site, in memory and per day in the analytics database; a dropped
hit costs less than a stored one (no enrichment it does not need, no wait).

Other tools' trackers (api/foreign.py) parse their own bodies and hand their
hits to `ingest`, the same pipeline after the body check, with `client`,
`refuse_payload` and `unknown_site` for the steps before it.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections import Counter
from collections.abc import Callable
from typing import Final, cast

from medama_core.api import BlockSettings, Context
from medama_core.hostnames import InvalidHostname, normalise, site_for
from medama_core.http.errors import HTTPError
from medama_core.http.protocol import Request, Response
from medama_core.ingest import geo, ipfilter, pipeline
from medama_core.ingest.hit import CustomHit, Hit, InvalidHit, LoadHit, UnloadHit, host_of, parse_hit, sniff_host
from medama_core.ingest.ping import DAY_S, InvalidDate
from medama_core.ingest.ping import answer as ping_answer
from medama_core.ingest.pipeline import BOT, SPAM_REFERRER, TOO_MANY_UNKNOWNS
from medama_core.store import protocol as hits
from medama_core.writer import Batcher, Closed, Done, Overloaded, StorageFull

# The tracker posts with `sendBeacon(string)` and `fetch(no-cors)`, both of which send
# text/plain;charset=UTF-8; API clients send application/json (spec §3.1, §10.1).
ACCEPTED_MEDIA_TYPES: Final = frozenset({"application/json", "text/plain"})

# Seconds a client is told to wait when the writer queue is full.
OVERLOADED_RETRY_S: Final = "1"

# Drop counts wait in memory at most this long before going to the writer, one op per (day, site,
# reason): a kill -9 loses at most this much of them (counts, never hits).
DROP_FLUSH_S: Final = 1.0

# Drop reasons, as stored in `drops.reason` and counted in `Context.drops` (BOT, SPAM_REFERRER and
# TOO_MANY_UNKNOWNS are decided by the pipeline, ingest/pipeline.py).
BLOCKED_IP: Final = "blocked_ip"
RATE_LIMITED: Final = "rate_limited"
UNKNOWN_SITE: Final = "unknown_site"
BAD_PAYLOAD: Final = "bad_payload"  # 400, 413 or 415: a body we could not take
QUOTA: Final = "quota"  # the site's daily hit quota was used up (medama_core/quota.py)
DROP_REASONS: Final = (
    BOT,
    SPAM_REFERRER,
    BLOCKED_IP,
    RATE_LIMITED,
    UNKNOWN_SITE,
    TOO_MANY_UNKNOWNS,
    BAD_PAYLOAD,
    QUOTA,
)
DAY_MS: Final = DAY_S * 1000

# Distinct peer addresses whose normalised form is remembered; ~150 bytes each.
PEER_CACHE_SIZE: Final = 4096

# Distinct raw Content-Type values whose media type is remembered: a tracker sends one or two (text/plain with
# its charset, application/json); at most 64 values of at most a head's size (16 KiB), 1 MB at worst.
MEDIA_TYPE_CACHE_SIZE: Final = 64

# Reads the site a raw body names, cheaply and without validating it (ingest/hit.py sniff_host for ours).
Sniff = Callable[[bytes], str]


async def get_ping(request: Request, ctx: Context) -> Response:
    """`GET /event/ping`: "0" for the first request today, "1" after (spec §3.7)."""
    return ping_now(request, ctx)


def ping_now(request: Request, ctx: Context) -> Response:
    """The ping's answer, without awaiting anything: `get_ping` and the server's fast path (app.py) share it."""
    client(request, ctx)
    return ping_response(request.headers.get("if-modified-since"), time.time())


def ping_response(if_modified_since: str | None, now: float) -> Response:
    """The ping's answer at `now` to a client already let through (`client`); 400 for a bad date."""
    try:
        ping = ping_answer(if_modified_since, now)
    except InvalidDate as exc:
        raise HTTPError(400, str(exc)) from None
    headers = [("Last-Modified", ping.last_modified), ("Cache-Control", ping.cache_control)]
    return Response(200, ping.body.encode(), "text/plain; charset=utf-8", headers)


async def post_hit(request: Request, ctx: Context) -> Response:
    """`POST /event/hit`: a load, unload or custom beacon; 204 once stored or dropped (spec §3.8)."""
    op = hit_op(request, ctx)
    if op is not None:
        await _stored(ctx, op)
    return Response(204)


def hit_op(request: Request, ctx: Context) -> hits.Op | None:
    """Every step of a hit up to the writer, without awaiting anything: the op to write, or None when it
    was dropped (204 at once). `post_hit` and the server's fast path (app.py) share it, and `store` and
    `hit_stored` after it. Raises `HTTPError` as `post_hit` answers."""
    ip = client(request, ctx, sniff_host)
    media_type = request_media_type(request)
    if media_type not in ACCEPTED_MEDIA_TYPES:
        message = f"unsupported content type {media_type or 'none'!r}; send application/json"
        raise refuse_payload(ctx, 415, message, sniffed_site(ctx, request.body, sniff_host))
    try:
        hit = parse_hit(request.body)
    except InvalidHit as exc:
        raise refuse_payload(ctx, exc.status, str(exc), sniffed_site(ctx, request.body, sniff_host)) from None
    return ingest_op(hit, request, ctx, ip)


def store(ctx: Context, op: hits.Op, done: Done | None = None) -> asyncio.Future[None] | None:
    """Hand `op` to the writer: the future of its write, or with `done` no future (`done(outcome)` is
    called once its batch is done, writer.Batcher.write_then). Then `hit_stored` says the answer.
    Raises `HTTPError` 503 when the writer cannot take it."""
    writer = ctx.hits
    if writer is None:  # `_writer`, inline: once per stored hit
        raise HTTPError(503, "ingestion is not running")
    try:
        if done is None:
            return writer.write(op)
        writer.write_then(op, done)
        return None
    except (Overloaded, Closed) as exc:
        raise HTTPError(503, str(exc), headers=[("Retry-After", OVERLOADED_RETRY_S)]) from None


def hit_stored(ctx: Context, outcome: Exception | None) -> None:
    """A write's outcome (None: committed) made the answer's: counted when committed, else the error to
    answer (503 when the writer could not take it; a database error is raised as it is, app.py answers it)."""
    if outcome is None:
        ctx.hits_stored += 1
        return
    if isinstance(outcome, (Overloaded, Closed, StorageFull)):
        raise HTTPError(503, str(outcome), headers=[("Retry-After", OVERLOADED_RETRY_S)])
    raise outcome


async def _stored(ctx: Context, op: hits.Op) -> None:
    """Write `op` and wait for its commit (`store`, then `hit_stored`)."""
    outcome: Exception | None = None
    try:
        await cast("asyncio.Future[None]", store(ctx, op))
    except Exception as exc:
        outcome = exc
    hit_stored(ctx, outcome)


async def ingest(hit: Hit, request: Request, ctx: Context, ip: str | None) -> bool:
    """Run a parsed hit from the client at `ip` (`client`) through the pipeline: block lists, the site
    check, enrichment and its drops, the quota, the writer. True once stored, False when dropped (and
    counted). Used by other trackers' endpoints (api/foreign.py); ours runs the same `ingest_op`.

    Raises `HTTPError`: 400 without a client IP, or for an invalid page URL or referrer (a `bad_payload`
    drop); 404 for an unknown site (an `unknown_site` drop); 503 when the writer cannot take it.
    """
    op = ingest_op(hit, request, ctx, ip)
    if op is None:
        return False
    await _stored(ctx, op)
    return True


def ingest_op(hit: Hit, request: Request, ctx: Context, ip: str | None) -> hits.Op | None:
    """`ingest` up to the writer: the op to write, or None when the hit was dropped (and counted).
    Raises `HTTPError` as `ingest` does."""
    try:
        if ip is None:
            raise HTTPError(400, "could not determine the client IP address")
        if _blocked(ctx, ip):
            raise pipeline.Dropped(BLOCKED_IP, _site_of(ctx, hit))
        headers = request.headers
        now_ms = int(time.time() * 1000)
        site, op = pipeline.rows_for(
            hit, headers.get("user-agent", ""), headers.get("accept-language", ""), ctx.hostnames, now_ms
        )
        if site and not ctx.quota.take(site, now_ms // DAY_MS):
            raise pipeline.Dropped(QUOTA, site)
        return op
    except InvalidHit as exc:
        raise refuse_payload(ctx, exc.status, str(exc), _site_of(ctx, hit)) from None
    except pipeline.UnknownSite as unknown:
        raise unknown_site(ctx, unknown.host) from None
    except pipeline.Dropped as drop:
        _count_drop(ctx, drop.reason, drop.hostname)
        return None


def request_media_type(request: Request) -> str:
    """The request's media type, lower-cased, without parameters ("" when it sends none)."""
    return _media_type(request.headers.get("content-type", ""))


@functools.lru_cache(maxsize=MEDIA_TYPE_CACHE_SIZE)
def _media_type(content_type: str) -> str:
    """`request_media_type` of a raw Content-Type value (browsers send a handful: cached)."""
    return content_type.partition(";")[0].strip().lower()


def refuse_payload(ctx: Context, status: int, message: str, site: str) -> HTTPError:
    """Count a body that could not be taken (400, 413, 415) as a `bad_payload` drop for `site` (a registered
    site, or ""), and return the error to raise."""
    _count_drop(ctx, BAD_PAYLOAD, site)
    return HTTPError(status, message)


def _site_of(ctx: Context, hit: LoadHit | UnloadHit | CustomHit) -> str:
    """The registered site a parsed hit is for, cheaply (no URL parse), or "" (unloads name none)."""
    if type(hit) is LoadHit:
        return site_for(host_of(hit.url), ctx.hostnames) or ""
    if type(hit) is CustomHit:
        return site_for(hit.group, ctx.hostnames) or ""
    return ""


def sniffed_site(ctx: Context, body: bytes, sniff: Sniff) -> str:
    """The registered site a body that was not (or could not be) parsed names near its start, or ""."""
    return site_for(sniff(body), ctx.hostnames) or ""


def unknown_site(ctx: Context, hostname: str) -> HTTPError:
    """Count a hit for a site nobody registered under its name (while today's allowance of names
    lasts, and only a valid host name) and return the 404 to raise."""
    try:
        name = ctx.unknown_sites.name(normalise(hostname), int(time.time() // DAY_S))
    except InvalidHostname:
        name = ""
    _count_drop(ctx, UNKNOWN_SITE, name)
    return HTTPError(404, "website not found")


def client(request: Request, ctx: Context, sniff: Sniff | None = None) -> str | None:
    """The client IP behind trusted proxies, after charging its network's rate limit (429). With `sniff`
    the request is a hit, and one refused is counted as a `rate_limited` drop for the site it names."""
    trusted = ipfilter.trusted_networks(ctx.config.trustedproxies)
    ip = _peer_ip(request.client) if not trusted else ipfilter.client_ip(request.client, request.headers, trusted)
    limiter = ctx.ratelimiter
    if limiter is None or ip is None:
        return ip
    key = ipfilter.network_key(ip)
    now = time.monotonic()
    if limiter.allow(key, now):
        return ip
    if sniff is not None:
        _count_drop(ctx, RATE_LIMITED, sniffed_site(ctx, request.body, sniff))
    raise HTTPError(429, "too many requests", headers=[("Retry-After", str(limiter.retry_after(key, now)))])


@functools.lru_cache(maxsize=PEER_CACHE_SIZE)
def _peer_ip(peer: str) -> str | None:
    """The client IP when no proxy is trusted: the TCP peer, normalised (IPv4-mapped IPv6 to IPv4)."""
    return ipfilter.client_ip(peer, {}, ())


def _blocked(ctx: Context, ip: str) -> bool:
    settings = ctx.block_settings
    cached = ctx.ip_filter
    if cached is None or cached[0] is not settings:
        cached = (settings, _build_filter(settings))
        ctx.ip_filter = cached
    check = cached[1]
    return check is not None and check(ip)


def _build_filter(settings: BlockSettings) -> Callable[[str], bool] | None:
    """The block check for `settings`, or None when nothing is blocked.

    Each visitor sends several requests per page view (two pings, a load, an
    unload), so the answer for an address is remembered rather than parsed again.
    """
    if not (settings.abusive or settings.tor or settings.ips):
        return None
    active = ipfilter.IPFilter(settings.ips, abusive=settings.abusive, tor=settings.tor)
    return functools.lru_cache(maxsize=PEER_CACHE_SIZE)(active.blocked)


def _count_drop(ctx: Context, reason: str, hostname: str) -> None:
    """Count a dropped hit in memory, and for the disk per day, site and reason: the counts gather for
    up to DROP_FLUSH_S and then go to the writer as one op per key, so a flood of dropped hits costs
    the writer thread a few rows a second, not an op each."""
    ctx.drops[reason] += 1
    if ctx.hits is None:
        return
    day_ms = int(time.time() // DAY_S) * DAY_MS
    ctx.pending_drops[(day_ms, hostname, reason)] += 1
    if ctx.drop_flush is None:
        ctx.drop_flush = asyncio.get_running_loop().call_later(DROP_FLUSH_S, flush_drops, ctx)


def flush_drops(ctx: Context) -> None:
    """Hand the drop counts gathered so far to the writer, without waiting for them."""
    if ctx.drop_flush is not None:
        ctx.drop_flush.cancel()
        ctx.drop_flush = None
    pending, ctx.pending_drops = ctx.pending_drops, Counter()
    writer = ctx.hits
    if writer is None:
        return
    for (day_ms, hostname, reason), count in pending.items():
        try:
            writer.post(hits.DropCount(day_ms, hostname, reason, count))
        except (Overloaded, Closed):
            return  # the in-memory totals still have them; a full queue is no reason to fail


# A common browser's User-Agent: parsing it loads the UA tables a first real hit would wait for.
WARM_UP_USER_AGENT: Final = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
)


def warm_up(ctx: Context) -> None:
    """Load what the first hit would otherwise load itself: the UA parser and the block lists
    switched on (~0.5 s here), the referrer, time zone and language tables. Run on a worker
    thread at start-up; every table is behind a thread-safe cache, so a hit that comes first
    at worst loads one twice."""
    pipeline.agent_of(WARM_UP_USER_AGENT)
    pipeline.classify_referrer("https://www.google.com/", "example.com")
    geo.country_for("Europe/London")
    pipeline.language("en-GB,en;q=0.9")
    settings = ctx.block_settings
    if settings.abusive or settings.tor:
        ipfilter.IPFilter((), abusive=settings.abusive, tor=settings.tor)


async def stop(ctx: Context) -> None:
    """Shutdown hook: commit every hit still queued, then log what ingestion did since start-up."""
    if ctx.hits is None:
        return
    flush_drops(ctx)
    await ctx.hits.close()
    ctx.log.info("ingestion stopped", writes=ctx.hits.ops, batches=ctx.hits.batches, dropped=dict(ctx.drops))


def _writer(ctx: Context) -> Batcher[hits.Op]:
    if ctx.hits is None:
        raise HTTPError(503, "ingestion is not running")
    return ctx.hits
