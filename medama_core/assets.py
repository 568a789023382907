"""Packaged files: the tracker variants, openapi.yaml and the dashboard, read via importlib.resources.

The names of the packaged files are listed once; a requested name is looked
up in that list, so a name that is not there (any stranger can ask for
millions) costs a set lookup and is remembered nowhere. Every file that is
there is read once, then kept with its ETag (CRC-32 of the content, as
upstream) and, when worth it, a gzip copy, so serving a file costs a dict
lookup; that cache is bounded by the package itself. Reading goes through
`importlib.resources`, which works the same from a source checkout and from
inside `medama.pyz`.
"""

from __future__ import annotations

import functools
import importlib.resources
import re
import sys
import zlib
from collections import OrderedDict
from dataclasses import dataclass

if sys.version_info >= (3, 11):
    from importlib.resources.abc import Traversable
else:  # Python 3.10 has it only here (deprecated from 3.12 on)
    from importlib.abc import Traversable

from medama_core.http.compress import accepts_gzip, gzip_body
from medama_core.http.errors import HTTPError
from medama_core.http.protocol import Request, Response

TRACKER_CACHE = "public, max-age=21600, stale-while-revalidate=86400"  # upstream: 6 h, then revalidate for a day
IMMUTABLE_CACHE = "public, max-age=31536000, immutable"  # hashed names change whenever the content does
INDEX_CACHE = "no-cache"  # always revalidate the SPA shell so a new release is picked up at once
MAX_ASSET_PATH = 256  # longest static path we look up; real ones are under 80 characters
_NOT_SERVED = ("__pycache__", ".py", ".pyc")  # the packages' own Python files are not assets
# The tracker's optional features, as named in variant files (`scripts/<features joined by ".">.js`).
TRACKER_FEATURES = ("click-events", "file-downloads", "not-found-pages", "outbound-links", "page-events")
DOWNLOADS_FEATURE = "file-downloads"
# The file extensions a download build counts, as written in tracker.js (a test checks they are the same).
# A site's own list replaces this exact text in the build served as /script.js?site=.
DEFAULT_DOWNLOAD_EXTENSIONS = (
    *("pdf", "zip", "gz", "tgz", "bz2", "xz", "7z", "rar", "dmg", "exe", "msi", "pkg", "deb", "rpm", "apk", "iso"),
    *("csv", "xls", "xlsx", "doc", "docx", "ppt", "pptx", "odt", "ods", "odp", "rtf", "txt", "epub"),
    *("mp3", "wav", "flac", "mp4", "mov", "avi", "mkv", "webm"),
)
_DOWNLOADS_TEXT = "|".join(DEFAULT_DOWNLOAD_EXTENSIONS).encode()
# Builds with a site's own download list, kept once made: a few KB each (plain and gzip); one per
# distinct (variant, list) asked for, so a few per site, and the oldest go first past this many.
SITE_TRACKER_CACHE = 256

_CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "application/javascript; charset=utf-8",
    ".mjs": "application/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".map": "application/json",
    ".webmanifest": "application/manifest+json",
    ".yaml": "application/yaml; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".woff2": "font/woff2",
    ".txt": "text/plain; charset=utf-8",
}
_SAFE_PATH = re.compile(r"(?:/[A-Za-z0-9_\-][A-Za-z0-9_.\-]*)+")


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    etag: str
    content_type: str
    cache_control: str
    gzipped: bytes | None


def script_variant(script_types: list[str]) -> str:
    """Tracker file for a `script_type` setting: features sorted, `default` dropped, joined by dots."""
    features = sorted({t for t in script_types if t in TRACKER_FEATURES})
    return ".".join(features) if features else "default"


@functools.cache
def _static_root() -> Traversable:
    return importlib.resources.files("medama_core").joinpath("static")


@functools.cache
def _dashboard_root() -> Traversable:
    return importlib.resources.files("dashboard_dist")


def _root(package: str) -> Traversable:
    return _static_root() if package == "static" else _dashboard_root()


@functools.cache
def _names(package: str) -> frozenset[str]:
    """Every file of "static" or "dashboard", as a relative path ("scripts/default.js"); listed once."""
    names: set[str] = set()
    pending = [(_root(package), "")]
    while pending:
        folder, prefix = pending.pop()
        for child in folder.iterdir():
            if child.name.endswith(_NOT_SERVED):
                continue
            if child.is_dir():
                pending.append((child, prefix + child.name + "/"))
            else:
                names.add(prefix + child.name)
    return frozenset(names)


def _content_type(name: str) -> str:
    dot = name.rfind(".")
    return _CONTENT_TYPES.get(name[dot:].lower() if dot >= 0 else "", "application/octet-stream")


def _make(body: bytes, name: str, cache_control: str) -> Asset:
    content_type = _content_type(name)
    gzipped = None
    compressible = content_type.startswith(("text/", "application/j", "application/yaml", "application/m", "image/svg"))
    if len(body) >= 1024 and compressible:
        gzipped = gzip_body(body)
    etag = '"%08x"' % (zlib.crc32(body) & 0xFFFFFFFF)
    return Asset(body, etag, content_type, cache_control, gzipped)


class Assets:
    """Lookup and caching of packaged files."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, str], Asset] = {}  # packaged files only: bounded by the package
        self._site_trackers: OrderedDict[tuple[str, tuple[str, ...]], Asset] = OrderedDict()

    def _load(self, package: str, relative: str, cache_control: str) -> Asset | None:
        relative = relative.strip("/")
        asset = self._cache.get((package, relative))
        if asset is not None:
            return asset
        if relative not in _names(package):
            return None
        node = _root(package)
        for part in relative.split("/"):
            node = node.joinpath(part)
        try:
            asset = _make(node.read_bytes(), relative, cache_control)
        except (OSError, ValueError):
            return None
        self._cache[(package, relative)] = asset
        return asset

    def tracker(self, variant: str) -> Asset | None:
        return self._load("static", f"scripts/{variant}.js", TRACKER_CACHE)

    def site_tracker(self, variant: str, extensions: tuple[str, ...] | None) -> Asset | None:
        """A tracker variant counting downloads of these extensions (None: the default list).

        The extensions must be checked by the caller (letters and digits only): they are
        written into the script's download pattern as they are.
        """
        base = self.tracker(variant)
        if base is None or not extensions or DOWNLOADS_FEATURE not in variant.split("."):
            return base  # no list of its own (an empty one, written by hand, would match "file."): the default
        key = (variant, extensions)
        asset = self._site_trackers.get(key)
        if asset is not None:
            self._site_trackers.move_to_end(key)
            return asset
        if base.body.count(_DOWNLOADS_TEXT) != 1:  # a build that does not match this module: serve it as is
            return base
        body = base.body.replace(_DOWNLOADS_TEXT, "|".join(extensions).encode())
        asset = _make(body, f"scripts/{variant}.js", TRACKER_CACHE)
        self._site_trackers[key] = asset
        if len(self._site_trackers) > SITE_TRACKER_CACHE:
            self._site_trackers.popitem(last=False)
        return asset

    def openapi(self) -> Asset | None:
        return self._load("static", "openapi.yaml", INDEX_CACHE)

    def dashboard(self, path: str) -> Asset | None:
        """A dashboard file, or `index.html` for any other path (SPA deep links)."""
        if len(path) <= MAX_ASSET_PATH and _SAFE_PATH.fullmatch(path) and ".." not in path:
            cache = IMMUTABLE_CACHE if path.startswith("/assets/") else TRACKER_CACHE
            found = self._load("dashboard", path, cache)
            if found is not None and not path.endswith(".html"):
                return found
        return self._load("dashboard", "index.html", INDEX_CACHE)

    def lookup(self, path: str, variant: str) -> Asset | None:
        if path == "/script.js":
            return self.tracker(variant)
        if path.startswith("/scripts/"):
            name = path[len("/scripts/") :]
            if len(name) > MAX_ASSET_PATH:
                return None
            if name.endswith(".js") and _SAFE_PATH.fullmatch("/" + name[:-3]):
                return self.tracker(name[:-3])
            return None
        if path == "/openapi.yaml":
            return self.openapi()
        return self.dashboard(path)


def respond(asset: Asset, request: Request) -> Response:
    """Serve an asset with ETag revalidation and a pre-compressed body when accepted."""
    if request.method not in ("GET", "HEAD"):
        raise HTTPError(405, f"method {request.method} not allowed", headers=[("Allow", "GET, HEAD")])
    headers = [("ETag", asset.etag), ("Cache-Control", asset.cache_control)]
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None and _etag_matches(if_none_match, asset.etag):
        return Response(304, headers=headers)
    body = asset.body
    if asset.gzipped is not None:
        headers.append(("Vary", "Accept-Encoding"))
        if accepts_gzip(request.headers.get("accept-encoding", "")):
            body = asset.gzipped
            headers.append(("Content-Encoding", "gzip"))
    return Response(200, body, asset.content_type, headers)


def _etag_matches(header: str, etag: str) -> bool:
    """RFC 9110 §13.1.2: weak comparison; also accept the bare value upstream sends."""
    bare = etag.strip('"')
    for candidate in header.split(","):
        candidate = candidate.strip()
        if candidate == "*":
            return True
        if candidate.startswith("W/"):
            candidate = candidate[2:]
        if candidate.strip('"') == bare:
            return True
    return False
