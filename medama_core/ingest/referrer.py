"""Turn a Referer URL into Referrer(host, group, category), or Spam for a spam domain."""

from __future__ import annotations

import csv
import functools
import io
import ipaddress
import re
import urllib.parse
from dataclasses import dataclass
from importlib import resources
from typing import Final

__all__ = ["DIRECT", "InvalidReferrer", "Referrer", "Spam", "classify"]

# Chrome and Firefox cut a Referer longer than 4,096 characters down to its
# origin, so a real one never exceeds that; the host is always near the start,
# and parsing stops reading after twice that much.
MAX_REFERRER_CHARS: Final = 8192

# DNS caps a host name at 253 characters (of ASCII: IDNs travel as punycode); the stored referrer
# host is cut to that many UTF-8 bytes, so a made-up "host" of thousands of characters cannot bloat
# every view and stats row it lands in.
MAX_HOST_BYTES: Final = 253

# Snowplow referer-parser data set as packaged by medama-io/go-referrer-parser
# (`category,name,domain` rows), and Matomo's referrer-spam list; see data/README.md.
GROUPS_FILE: Final = "referers.csv"
SPAM_FILE: Final = "referrer-spammers.txt"

# Go's url.Parse refuses ASCII control characters and malformed percent
# escapes; urllib.parse accepts both, so they are checked here.
_CONTROL_RE: Final = re.compile(r"[\x00-\x1f\x7f]")
_BAD_ESCAPE_RE: Final = re.compile(r"%(?![0-9A-Fa-f]{2})")


class InvalidReferrer(ValueError):
    """The referrer does not parse as a URL (the API answers 400)."""


@dataclass(frozen=True, slots=True)
class Referrer:
    host: str
    group: str
    # search, social, email, paid or unknown, from the data set; "" when the
    # host is not in it. Not stored (upstream drops it), kept for callers.
    category: str = ""


@dataclass(frozen=True, slots=True)
class Spam:
    """The referrer host is on the spam list: the hit is dropped (204)."""

    host: str


# No referrer, a self-referral or an IP literal: stored as a direct visit.
DIRECT: Final = Referrer(host="", group="", category="")


@functools.cache
def _groups() -> dict[str, tuple[str, str]]:
    """Domain -> (category, group name); the first row for a domain wins."""
    text = resources.files("medama_core.data").joinpath(GROUPS_FILE).read_text(encoding="utf-8")
    groups: dict[str, tuple[str, str]] = {}
    for category, name, domain in csv.reader(io.StringIO(text)):
        # A few rows name a domain plus path (bing.com/images/search); the
        # lookup is by host alone, as upstream's, so they could never match.
        if "/" not in domain:
            groups.setdefault(domain.strip().lower(), (category, name))
    return groups


@functools.cache
def _spammers() -> frozenset[str]:
    text = resources.files("medama_core.data").joinpath(SPAM_FILE).read_text(encoding="utf-8")
    return frozenset(line.strip().lower() for line in text.splitlines() if line.strip())


def _without_www(host: str) -> str:
    return host.removeprefix("www.")


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _hostname(referrer: str) -> str:
    if _CONTROL_RE.search(referrer) or _BAD_ESCAPE_RE.search(referrer):
        raise InvalidReferrer(f"invalid referrer URL: {referrer[:100]!r}")
    try:
        parts = urllib.parse.urlsplit(referrer)
        _ = parts.port  # a malformed port raises ValueError, as Go's url.Parse fails on it
    except ValueError as exc:
        raise InvalidReferrer(f"invalid referrer URL: {referrer[:100]!r}") from exc
    # urllib lower-cases the host; a scheme-less "example.com/x" has no host.
    host = (parts.hostname or "").strip()
    if len(host) > MAX_HOST_BYTES // 4 and len(host.encode("utf-8", "surrogatepass")) > MAX_HOST_BYTES:
        host = host.encode("utf-8", "surrogatepass")[:MAX_HOST_BYTES].decode("utf-8", "ignore")
    return host


def classify(referrer: str, page_host: str) -> Referrer | Spam:
    """Classify the tracker's `r` field for a page on `page_host` (spec §3.2 step 7).

    Subdomains of the page host count as external referrers, as upstream has it.

    Raises:
        InvalidReferrer: `referrer` is not empty and does not parse as a URL.
    """
    if not referrer:
        return DIRECT
    host = _hostname(referrer[:MAX_REFERRER_CHARS])
    if not host or host == page_host.lower() or _is_ip(host):
        return DIRECT
    spammers = _spammers()
    if host in spammers or _without_www(host) in spammers:
        return Spam(host=host)
    groups = _groups()
    category, group = groups.get(host) or groups.get(_without_www(host)) or ("", "")
    return Referrer(host=host, group=group, category=category)
