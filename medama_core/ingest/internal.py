"""The path of an internal referrer (a page of the same site): what entry and exit pages count from."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Final

from medama_core.ingest.hit import InvalidHit, host_of, page_parts

__all__ = ["NO_PATH", "internal_path", "referrer_page"]

# Stored for a view whose referrer is not a page of its site (none, external, unreadable): an entry.
NO_PATH: Final = ""

# A site's visitors move between its few hundred pages: remembering 4,096 referrer URLs' paths (~1 KB
# each with the URL) spares a URL split (~5 µs) on most internal arrivals.
PATH_CACHE_SIZE: Final = 4096
_page_parts = functools.lru_cache(maxsize=PATH_CACHE_SIZE)(page_parts)


def internal_path(referrer: str, is_site: Callable[[str], bool], *, hash_mode: bool = False) -> str:
    """The stored path of `referrer` when it is a page of the site (`is_site` of its lower-cased host
    is true: the caller's rule, hostnames.site_for), else NO_PATH.

    The path is normalised as page paths are (ingest/hit.py page_parts: decoded, one trailing "/" cut,
    with `hash_mode` the fragment kept), so it equals the `pathname` of the view it came from; an empty
    path is "/", so an internal referrer never stores NO_PATH. Never raises: a referrer that does not
    parse is no internal one.
    """
    host, path = referrer_page(referrer, hash_mode=hash_mode)
    return path if host and is_site(host) else NO_PATH


def referrer_page(referrer: str, *, hash_mode: bool = False) -> tuple[str, str]:
    """`internal_path` without the site: the referrer's lower-cased host ("" for none) and the path it stores
    when that host is the site's (NO_PATH when it does not parse), so a caller may keep both and ask `is_site`
    per hit (ingest/pipeline.py)."""
    if not referrer:
        return "", NO_PATH
    host = host_of(referrer)
    if not host:
        return "", NO_PATH
    try:
        parts = _page_parts(referrer, hash_mode=hash_mode)
    except InvalidHit:
        return host, NO_PATH
    if parts.hostname != host:  # user info or an odd form the cheap host reader took differently
        return host, NO_PATH
    return host, parts.pathname or "/"
