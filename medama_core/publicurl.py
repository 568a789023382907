"""The server's public URL, which the tracker snippet points at: checking and normalising what an owner gives."""

from __future__ import annotations

import ipaddress
import re
import urllib.parse
from typing import Final

# Far above any real origin (a 253-character name, a port); bounds the stored setting.
MAX_PUBLIC_URL_CHARS: Final = 2048
_LABEL: Final = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")  # RFC 1123, lower-cased
_FORBIDDEN: Final = re.compile(r"[\x00-\x20\x7f-\x9f\\]")  # controls, spaces and backslashes: never in a URL we keep


class InvalidPublicURL(ValueError):
    """Not a usable public URL; the message says what is wrong."""


def normalise(text: str) -> str:
    """`""` (unset) for blank text, else `http(s)://host[:port]` in lower case; raises InvalidPublicURL.

    The URL must be absolute, with a host name or IP address, an optional port,
    and nothing else: no user info, path, query or fragment. A trailing `/` is
    dropped, so `https://stats.example.com/` and `https://stats.example.com`
    are the same setting.
    """
    text = text.strip()
    if not text:
        return ""
    if len(text) > MAX_PUBLIC_URL_CHARS:
        raise InvalidPublicURL(f"must be at most {MAX_PUBLIC_URL_CHARS} characters")
    if _FORBIDDEN.search(text):
        raise InvalidPublicURL("must not hold spaces, control characters or backslashes")
    try:
        parts = urllib.parse.urlsplit(text)
    except ValueError:  # urlsplit's own checks: an unclosed `[`, a bracketed host that is not IPv6
        raise InvalidPublicURL("has a broken IPv6 address (write it as [2001:db8::1])") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not text[len(scheme) :].startswith("://"):
        raise InvalidPublicURL("must start with http:// or https://, e.g. https://stats.example.com")
    if "@" in parts.netloc:
        raise InvalidPublicURL("must not hold a user name or password")
    if parts.path not in ("", "/"):
        raise InvalidPublicURL("must not have a path: the tracker is served at the server's root (/script.js)")
    if parts.query or parts.fragment or "?" in text or "#" in text:
        raise InvalidPublicURL("must not have a query (?…) or a fragment (#…)")
    host = _host(parts.netloc)
    try:
        port = parts.port
    except ValueError:
        raise InvalidPublicURL("its port must be a number from 1 to 65535") from None
    if port == 0:
        raise InvalidPublicURL("its port must be a number from 1 to 65535")
    return f"{scheme}://{host}" + (f":{port}" if port is not None else "")


def _host(netloc: str) -> str:
    """The host of `netloc` as written back: a lower-case name, an IPv4 address, or `[IPv6]`."""
    if netloc.startswith("["):
        inside, bracket, _ = netloc[1:].partition("]")
        try:
            address = ipaddress.IPv6Address(inside) if bracket else None
        except ValueError:
            address = None
        if address is None:
            raise InvalidPublicURL("has a broken IPv6 address (write it as [2001:db8::1])")
        return f"[{address.compressed}]"
    name = netloc.rpartition(":")[0] if ":" in netloc else netloc
    name = name.lower()
    if not name:
        raise InvalidPublicURL("needs a host name, e.g. https://stats.example.com")
    try:
        return str(ipaddress.IPv4Address(name))
    except ValueError:
        pass
    labels = name.removesuffix(".").split(".")
    if len(name) > 253 or not all(_LABEL.fullmatch(label) for label in labels) or labels[-1].isdigit():
        raise InvalidPublicURL(f"{name[:64]!r} is not a host name (letters, digits, inner hyphens, dots)")
    return ".".join(labels)
