"""/tenant/settings and /settings/usage: tracker and IP-blocking choices, and the engine's resource limits.

Both are stored in `tenant_settings` and applied to the running server at once
and again at every start-up (upstream forgot the IP filter at start-up, spec
§10.3). Keys and value formats are upstream's (spec §9.1), so a database moves
between the two servers unchanged.
"""

from __future__ import annotations

import re
import time
from typing import Any

from medama_core import assets, publicurl, quota
from medama_core.api import BlockSettings, Context, users
from medama_core.http.errors import HTTPError
from medama_core.http.jsonbody import json_object, optional_bool, optional_int, optional_string, optional_string_list
from medama_core.http.protocol import Request, Response, json_response
from medama_core.ingest import ipfilter
from medama_core.log import Logger
from medama_core.store import protocol as store

# Upstream's TenantSettings enum, and ours: the tracker features upstream lacks (docs/tracker.md).
SCRIPT_TYPES = ("default", "click-events", "page-events", "outbound-links", "file-downloads", "not-found-pages")
MAX_BLOCKED_IPS = 10_000  # a hand-kept list; the presets cover bulk lists. Bounds the row and the filter build
# Stored keys and their defaults when absent (upstream core/db/sqlite/settings.go).
KEY_SCRIPT_TYPE = "script_type"
KEY_ABUSIVE = "block_abusive_ips"
KEY_TOR = "block_tor_exit_nodes"
KEY_BLOCKED = "blocked_ips"
KEY_QUOTA = "site_daily_hit_quota"  # ours: hits per site per UTC day, 0 = no limit (medama_core/quota.py)
DEFAULTS = {
    KEY_SCRIPT_TYPE: "default",
    KEY_ABUSIVE: "true",
    KEY_TOR: "true",
    KEY_BLOCKED: "",
    KEY_QUOTA: str(quota.DEFAULT_SITE_DAILY_HIT_QUOTA),
}
# Ours: the address the tracker snippet uses ("" = unset: the -publicurl flag, else the dashboard's own address).
KEY_PUBLIC_URL = "public_url"

# Engine settings (ours): stored beside the tenant settings.
KEY_THREADS, KEY_MEMORY_LIMIT = "threads", "memory_limit"
MAX_READER_THREADS = 64  # SQLite readers of one file stop scaling long before this; more is only contention
MIN_MEMORY_LIMIT = 16 * 1024 * 1024  # below this the page caches cannot hold the stats indexes of a small site
MAX_MEMORY_LIMIT = 1024**4  # 1 TiB: anything above is a typo, not a limit
MEMORY_LIMIT_CHARS = 32  # longest sensible size text ("1023.5 GiB" is 10)
MIN_CACHE_KIB = 256  # the smallest page cache per connection worth having; SQLite's own default is 2 MiB
CACHE_SHARE = 2  # page caches get 1/CACHE_SHARE of the limit; the rest is left for sorting and temp b-trees
_UNITS = {"b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3, "tb": 1000**4}
_UNITS |= {"kib": 1024, "mib": 1024**2, "gib": 1024**3, "tib": 1024**4}
_SIZE = re.compile(r"(\d{1,15}(?:\.\d{1,6})?)\s*([a-z]{1,3})")


def _split(text: str) -> list[str]:
    return [item for item in text.split(",") if item]


def script_types(settings: dict[str, str]) -> list[str]:
    """The stored tracker features; an empty value means the default script (upstream bug §10.12)."""
    found = [t for t in _split(settings.get(KEY_SCRIPT_TYPE, DEFAULTS[KEY_SCRIPT_TYPE])) if t in SCRIPT_TYPES]
    return found or ["default"]


def block_settings(settings: dict[str, str], log: Logger | None = None) -> BlockSettings:
    ips: list[str] = []
    for entry in _split(settings.get(KEY_BLOCKED, DEFAULTS[KEY_BLOCKED])):
        try:
            ips.append(ipfilter.parse_ip_or_cidr(entry))
        except ValueError as exc:  # written by hand or by an older server; skip rather than refuse to start
            if log is not None:
                log.warn("ignoring stored blocked IP", error=str(exc))
    return BlockSettings(
        abusive=settings.get(KEY_ABUSIVE, DEFAULTS[KEY_ABUSIVE]) == "true",
        tor=settings.get(KEY_TOR, DEFAULTS[KEY_TOR]) == "true",
        ips=tuple(dict.fromkeys(ips)),
    )


def site_daily_hit_quota(settings: dict[str, str]) -> int:
    """The stored quota; the default when absent or unreadable (written by hand, or by a newer server)."""
    text = settings.get(KEY_QUOTA, "")
    if text.isdigit() and int(text) <= quota.MAX_SITE_DAILY_HIT_QUOTA:
        return int(text)
    return quota.DEFAULT_SITE_DAILY_HIT_QUOTA


def public_url(settings: dict[str, str], flag: str) -> str:
    """The effective public URL: the stored setting, else -publicurl; a stored value that no longer
    passes the check (written by hand) counts as unset."""
    try:
        return publicurl.normalise(settings.get(KEY_PUBLIC_URL, "")) or flag
    except publicurl.InvalidPublicURL:
        return flag


def tenant_json(settings: dict[str, str], public_url_flag: str = "") -> dict[str, Any]:
    blocks = block_settings(settings)
    return {
        "script_type": script_types(settings),
        "blockAbusiveIPs": blocks.abusive,
        "blockTorExitNodes": blocks.tor,
        "blockedIPs": list(blocks.ips),
        KEY_QUOTA: site_daily_hit_quota(settings),
        "public_url": public_url(settings, public_url_flag),
    }


def apply_tenant(ctx: Context, settings: dict[str, str]) -> None:
    """Make the running server follow stored tenant settings (tracker file, IP filter, hit quota)."""
    ctx.script_variant = assets.script_variant(script_types(settings))
    ctx.block_settings = block_settings(settings, ctx.log)
    ctx.quota.limit = site_daily_hit_quota(settings)


async def get_tenant_settings(request: Request, ctx: Context) -> Response:
    return json_response(tenant_json(await ctx.meta.get_settings(), ctx.config.publicurl))


async def patch_tenant_settings(request: Request, ctx: Context) -> Response:
    """Partial update; answers with every setting as now stored."""
    changes = _tenant_changes(json_object(request))
    settings = await ctx.meta.set_settings(changes, int(time.time()))
    apply_tenant(ctx, settings)
    return json_response(tenant_json(settings, ctx.config.publicurl))


def _tenant_changes(body: dict[str, Any]) -> dict[str, str]:
    changes: dict[str, str] = {}
    types = optional_string_list(body, "script_type", len(SCRIPT_TYPES))
    if types is not None:
        for value in types:
            if value not in SCRIPT_TYPES:
                raise HTTPError(400, f"script_type: unknown value {value[:40]!r}; use {', '.join(SCRIPT_TYPES)}")
        changes[KEY_SCRIPT_TYPE] = ",".join(types) or "default"
    for name, key in (("blockAbusiveIPs", KEY_ABUSIVE), ("blockTorExitNodes", KEY_TOR)):
        flag = optional_bool(body, name)
        if flag is not None:
            changes[key] = "true" if flag else "false"
    entries = optional_string_list(body, "blockedIPs", MAX_BLOCKED_IPS)
    if entries is not None:
        try:
            normalised = [ipfilter.parse_ip_or_cidr(entry) for entry in entries]
        except ValueError as exc:
            raise HTTPError(400, f"blockedIPs: {exc}") from None
        changes[KEY_BLOCKED] = ",".join(dict.fromkeys(normalised))
    limit = optional_int(body, KEY_QUOTA, 0, quota.MAX_SITE_DAILY_HIT_QUOTA)
    if limit is not None:
        changes[KEY_QUOTA] = str(limit)
    url = optional_string(body, "public_url", 0, publicurl.MAX_PUBLIC_URL_CHARS)
    if url is not None:
        try:
            changes[KEY_PUBLIC_URL] = publicurl.normalise(url)
        except publicurl.InvalidPublicURL as exc:
            raise HTTPError(400, f"public_url: {exc}") from None
    return changes


# Engine settings: reader threads of the analytics database and a memory limit for SQLite.


def parse_size(text: str) -> int:
    """'512MiB', '1.5 GB', '64mb' → bytes (KB = 1000, KiB = 1024, as DuckDB's memory_limit reads them)."""
    match = _SIZE.fullmatch(text.strip().lower())
    if match is None or match.group(2) not in _UNITS:
        raise ValueError(text)
    return int(float(match.group(1)) * _UNITS[match.group(2)])


def cache_kib(limit_bytes: int, connections: int) -> int:
    """Page cache per connection under a memory limit (0 = none: the built-in default)."""
    if limit_bytes == 0:
        return store.CACHE_SIZE_KIB
    share = limit_bytes // 1024 // CACHE_SHARE // max(1, connections)
    return max(MIN_CACHE_KIB, min(store.CACHE_SIZE_KIB, share))


def _engine(settings: dict[str, str]) -> tuple[int | None, str]:
    """Stored (threads, memory_limit); threads None when unset or unusable."""
    text = settings.get(KEY_THREADS, "")
    threads = int(text) if text.isdigit() and 1 <= int(text) <= MAX_READER_THREADS else None
    return threads, settings.get(KEY_MEMORY_LIMIT, "")


def _configure(ctx: Context, threads: int | None, memory_limit: str) -> None:
    """Apply engine settings to both stores: reader threads of the analytics store; SQLite's page cache per
    connection and process-wide soft heap limit (the engines with a server of their own ignore them)."""
    if threads is not None:
        ctx.analytics.tune(readers=threads)
    try:
        limit = parse_size(memory_limit) if memory_limit else 0
    except ValueError:
        ctx.log.warn("ignoring stored memory_limit", value=memory_limit)
        limit = 0
    connections = 2 + ctx.meta.readers + ctx.analytics.readers  # one writer and the readers of each database
    ctx.meta.tune(cache_kib=cache_kib(limit, connections), heap_limit=limit)
    ctx.analytics.tune(cache_kib=cache_kib(limit, connections), heap_limit=limit)


def apply_engine_at_startup(ctx: Context, settings: dict[str, str]) -> None:
    """Start-up only, before serving."""
    _configure(ctx, *_engine(settings))


async def get_settings_usage(request: Request, ctx: Context) -> Response:
    body = await users.usage_json(ctx)
    settings = await ctx.meta.get_settings()
    body["metadata"] = {"threads": ctx.analytics.readers, "memory_limit": settings.get(KEY_MEMORY_LIMIT, "")}
    return json_response(body)


async def patch_settings_usage(request: Request, ctx: Context) -> Response:
    """Set `threads` and/or `memory_limit` ("" removes the limit); 201 with no body, as upstream did."""
    body = json_object(request)
    threads = optional_int(body, "threads", 1, MAX_READER_THREADS)
    memory_limit = optional_string(body, "memory_limit", 0, MEMORY_LIMIT_CHARS)
    if memory_limit is not None:
        memory_limit = _check_memory_limit(memory_limit)
    changes: dict[str, str] = {}
    if threads is not None:
        changes[KEY_THREADS] = str(threads)
    if memory_limit is not None:
        changes[KEY_MEMORY_LIMIT] = memory_limit
    settings = await ctx.meta.set_settings(changes, int(time.time()))
    _configure(ctx, *_engine(settings))
    ctx.log.info("engine settings changed", threads=ctx.analytics.readers, memory_limit=memory_limit)
    return Response(201)


def _check_memory_limit(text: str) -> str:
    """Validate a memory limit and return it without spaces; "" means no limit."""
    if not text.strip():
        return ""
    try:
        size = parse_size(text)
    except ValueError:
        raise HTTPError(400, f"memory_limit: {text!r} is not a size such as '256MiB' or '1GB'") from None
    if not MIN_MEMORY_LIMIT <= size <= MAX_MEMORY_LIMIT:
        raise HTTPError(400, "memory_limit: must be from 16MiB to 1TiB")
    return text.replace(" ", "")
