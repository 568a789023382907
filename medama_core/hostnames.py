"""Website host names: what a valid one is, and which registered site a page's host counts for."""

from __future__ import annotations

import re
from collections.abc import Container
from typing import Final

__all__ = ["HOSTNAME_MAX", "WWW", "InvalidHostname", "normalise", "site_for"]

HOSTNAME_MAX: Final = 253  # RFC 1035 §2.3.4: 255 octets on the wire, 253 characters as text
WWW: Final = "www."

# RFC 1123 §2.1 label: letters, digits and inner hyphens, 1 to 63 characters.
_LABEL: Final = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_FQDN: Final = re.compile(rf"{_LABEL}(?:\.{_LABEL})+")


class InvalidHostname(ValueError):
    """Not a host name a website can have; the message says why."""


def normalise(text: str) -> str:
    """`localhost` or a dotted name of RFC 1123 labels, lower-cased; InvalidHostname otherwise."""
    hostname = text.lower()
    if not 1 <= len(hostname) <= HOSTNAME_MAX:
        raise InvalidHostname(f"must be 1 to {HOSTNAME_MAX} characters long")
    if hostname != "localhost" and not _FQDN.fullmatch(hostname):
        raise InvalidHostname(f"{text[:HOSTNAME_MAX]!r} is not a valid hostname")
    return hostname


def site_for(host: str, sites: Container[str]) -> str | None:
    """The registered site a page on `host` counts for, or None (CONTRACT 6, docs/ingestion.md).

    The site named exactly wins; else `www.example.com` counts for a registered
    `example.com` and `example.com` for a registered `www.example.com`. Other
    subdomains stay separate sites. `host` is lower-case, as page host names are.
    """
    if host in sites:
        return host
    twin = host[len(WWW) :] if host.startswith(WWW) else WWW + host
    return twin if twin in sites else None
