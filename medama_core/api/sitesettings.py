"""/websites/{hostname}/settings: a site's tracker features and download list, retention and time zone.

A site's tracker features default to the tenant's (`script_type`, api/settings.py);
each one set here wins for that site. The build a site gets is served as
`/script.js?site=<hostname>` (`script_for`): the packaged variant with its features
and, when the site has its own list, its download extensions written in
(assets.Assets.site_tracker). `retentionDays` is read by the background work
(api/retention.py); `timezone` is checked and stored, and changes nothing yet.
"""

from __future__ import annotations

import functools
import re
import time
import zoneinfo
from typing import Any, Final

from medama_core import assets
from medama_core.api import Context
from medama_core.api.websites import NOT_FOUND
from medama_core.http.errors import HTTPError
from medama_core.http.jsonbody import json_object
from medama_core.http.protocol import Request, Response, json_response
from medama_core.ingest import geo
from medama_core.store import protocol as store

# API field -> (stored field, tracker feature) for the five optional tracker features.
FEATURE_FIELDS: Final = {
    "clickEvents": ("click_events", "click-events"),
    "pageEvents": ("page_events", "page-events"),
    "outboundLinks": ("outbound_links", "outbound-links"),
    "fileDownloads": ("file_downloads", "file-downloads"),
    "notFoundPages": ("not_found_pages", "not-found-pages"),
}
# The default list has 37 extensions; a site's own list of up to 100 covers any site's files, and keeps
# the script small (at most ~1.1 KB more before gzip).
MAX_EXTENSIONS: Final = 100
# The longest extensions in common use have 4 or 5 letters (xlsx, woff2); 10 leaves room without
# letting one entry grow the script.
MAX_EXTENSION_CHARS: Final = 10
# Letters and digits only: the list is written into the script's download pattern as it is.
_EXTENSION: Final = re.compile(r"[a-z0-9]+")
# Retention (not applied yet): at least the 30 days of the dashboard's longest short range, so a typo
# cannot empty a site's history; at most a century (null keeps everything).
MIN_RETENTION_DAYS: Final = 30
MAX_RETENTION_DAYS: Final = 36_525
MAX_TIMEZONE_CHARS: Final = geo.MAX_ZONE_CHARS
SCRIPT_PATH: Final = "/script.js?site="


@functools.cache
def known_timezones() -> frozenset[str]:
    """IANA zone names: the system's tz database (when Python finds one), the zones ingestion knows, UTC."""
    try:
        system = zoneinfo.available_timezones()
    except (OSError, ValueError):  # no readable tz database here: the names ingestion knows still count
        system = set()
    return frozenset(system) | frozenset(geo.zone_names()) | {"UTC"}


def parse_settings_body(body: dict[str, Any]) -> dict[str, object]:
    """The changes a PATCH body asks for, as store fields (store.SITE_SETTING_FIELDS); 400 for a bad value.

    Every field may be null: "as the tenant's" for the features and the download list, "not set" for
    the others. Fields not named here are ignored, as everywhere in this API.
    """
    changes: dict[str, object] = {}
    for name, (field, _) in FEATURE_FIELDS.items():
        if name in body:
            value = body[name]
            if value is not None and not isinstance(value, bool):
                raise HTTPError(400, f"{name}: must be true, false or null")
            changes[field] = value
    if "downloadExtensions" in body:
        changes["download_extensions"] = _extensions(body["downloadExtensions"])
    if "retentionDays" in body:
        days = body["retentionDays"]
        if days is not None and (isinstance(days, bool) or not isinstance(days, int)):
            raise HTTPError(400, "retentionDays: must be a whole number of days or null")
        if days is not None and not MIN_RETENTION_DAYS <= days <= MAX_RETENTION_DAYS:
            raise HTTPError(400, f"retentionDays: must be from {MIN_RETENTION_DAYS} to {MAX_RETENTION_DAYS}, or null")
        changes["retention_days"] = days
    if "timezone" in body:
        changes["timezone"] = _timezone(body["timezone"])
    return changes


def _extensions(value: object) -> tuple[str, ...] | None:
    """A list of file extensions, lower-cased, without a leading dot, in the order given; null for the default."""
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise HTTPError(400, "downloadExtensions: must be a list of file extensions or null")
    if not 1 <= len(value) <= MAX_EXTENSIONS:
        raise HTTPError(400, f"downloadExtensions: 1 to {MAX_EXTENSIONS} extensions (null for the default list)")
    found: dict[str, None] = {}
    for item in value:
        extension = item.strip().removeprefix(".").lower()
        if not (len(extension) <= MAX_EXTENSION_CHARS and _EXTENSION.fullmatch(extension) and extension.isascii()):
            shown = item[: MAX_EXTENSION_CHARS * 2]
            raise HTTPError(
                400, f"downloadExtensions: {shown!r} is not an extension (1 to {MAX_EXTENSION_CHARS} letters or digits)"
            )
        found[extension] = None
    return tuple(found)


def _timezone(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_TIMEZONE_CHARS:
        raise HTTPError(400, "timezone: must be an IANA time zone name such as Europe/Paris, or null")
    if value not in known_timezones():
        raise HTTPError(400, f"timezone: {value!r} is not an IANA time zone name (such as Europe/Paris)")
    return value


def features(tenant_variant: str, site: store.SiteSettings | None) -> list[str]:
    """The tracker features a site gets: the tenant's (its `/script.js` variant), each overridden by the site's own."""
    chosen = set() if tenant_variant == "default" else set(tenant_variant.split("."))
    if site is not None:
        for field, feature in FEATURE_FIELDS.values():
            value = getattr(site, field)
            if value is True:
                chosen.add(feature)
            elif value is False:
                chosen.discard(feature)
    return [feature for feature in assets.TRACKER_FEATURES if feature in chosen]


def script_for(ctx: Context, hostname: str) -> tuple[str, tuple[str, ...] | None]:
    """The tracker variant and download list (None: the default) `/script.js?site=hostname` serves.

    An unknown site gets what `/script.js` serves; such a script's hits are dropped anyway.
    """
    site = ctx.site_settings.get(hostname.lower()) if hostname.lower() in ctx.hostnames else None
    if site is None:
        return ctx.script_variant, None
    return assets.script_variant(features(ctx.script_variant, site)), site.download_extensions


def settings_json(ctx: Context, hostname: str, site: store.SiteSettings) -> dict[str, Any]:
    """A site's settings as the API shows them, with the tracker it gets (`tracker`, read-only)."""
    body: dict[str, Any] = {name: getattr(site, field) for name, (field, _) in FEATURE_FIELDS.items()}
    extensions = site.download_extensions
    chosen = features(ctx.script_variant, site)
    body.update(
        downloadExtensions=None if extensions is None else list(extensions),
        retentionDays=site.retention_days,
        timezone=site.timezone,
        tracker={
            "features": chosen,
            "variant": assets.script_variant(chosen),
            "downloadExtensions": list(assets.DEFAULT_DOWNLOAD_EXTENSIONS if extensions is None else extensions),
            "script": SCRIPT_PATH + hostname,
        },
    )
    return body


async def get_site_settings(request: Request, ctx: Context) -> Response:
    hostname = request.path_params["hostname"]  # checked, lower-cased and owned: the route's access
    site = await ctx.meta.get_site_settings(hostname)
    return json_response(settings_json(ctx, hostname, site))


async def patch_site_settings(request: Request, ctx: Context) -> Response:
    """Partial update; answers with all the site's settings as now stored."""
    hostname = request.path_params["hostname"]  # checked, lower-cased and owned: the route's access
    changes = parse_settings_body(json_object(request))
    site = await ctx.meta.update_site_settings(hostname, changes, int(time.time()))
    if site is None:  # deleted since the owner check
        raise HTTPError(404, NOT_FOUND)
    ctx.site_settings[hostname] = site
    return json_response(settings_json(ctx, hostname, site))
