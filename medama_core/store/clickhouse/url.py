"""Parse a ClickHouse backend URL: `clickhouse[s]://[user[:password]@]host[:port]/database`."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import unquote

__all__ = ["DEFAULT_PORTS", "SCHEMES", "ClickHouseURL", "URLError", "parse_url"]

SCHEMES: Final = ("clickhouse", "clickhouses")
# ClickHouse's own defaults for its HTTP interface: 8123, and 8443 over TLS (config.xml `http_port`, `https_port`).
DEFAULT_PORTS: Final = {"clickhouse": 8123, "clickhouses": 8443}
# A database name is used as an identifier in DDL: ClickHouse's plain identifier characters only,
# so it never needs quoting, and at most this long (a file name on the server's disk).
MAX_DATABASE_CHARS: Final = 64
_DATABASE: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# RFC 3986 reg-name characters, or a bracketed IPv6 address.
_HOST: Final = re.compile(r"[A-Za-z0-9._~%!$&'()*+,;=-]+|\[[0-9A-Fa-f:.]+\]")


class URLError(ValueError):
    """A backend URL that cannot be used; the message names the part that is wrong."""


@dataclass(frozen=True)
class ClickHouseURL:
    """Where the analytics live: the HTTP(S) endpoint, the credentials and the database."""

    secure: bool
    host: str  # as written, IPv6 without brackets
    port: int
    database: str
    user: str = "default"
    password: str = field(default="", repr=False)

    def redacted(self) -> str:
        """The URL for logs: the password left out."""
        scheme = "clickhouses" if self.secure else "clickhouse"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{self.user}@{host}:{self.port}/{self.database}"


def parse_url(text: str) -> ClickHouseURL:
    """The parts of a `clickhouse://` or `clickhouses://` URL; `URLError` names what is wrong."""
    scheme, sep, rest = text.partition("://")
    if not sep or scheme.lower() not in SCHEMES:
        raise URLError(f"a ClickHouse URL starts with clickhouse:// or clickhouses://, not {text[:20]!r}")
    scheme = scheme.lower()
    authority, slash, path = rest.partition("/")
    if not slash:
        raise URLError("the ClickHouse URL names no database: add /DATABASE after the host")
    if "?" in path or "#" in path:
        raise URLError("the ClickHouse URL takes no query or fragment after the database")
    database = unquote(path)
    if not _DATABASE.fullmatch(database) or len(database) > MAX_DATABASE_CHARS:
        raise URLError(
            f"the database name {database!r} must be 1-{MAX_DATABASE_CHARS} letters, digits or _, not starting"
            " with a digit"
        )
    credentials, at, hostport = authority.rpartition("@")
    user, password = "default", ""
    if at:
        name, colon, secret = credentials.partition(":")
        user, password = unquote(name), unquote(secret)
        if not user or any(ord(c) < 32 for c in user + password):
            raise URLError("the ClickHouse URL has an empty user name or control characters in its credentials")
        if not colon:
            password = ""
    host, port = _host_port(hostport, DEFAULT_PORTS[scheme])
    return ClickHouseURL(scheme == "clickhouses", host, port, database, user, password)


def _host_port(text: str, default: int) -> tuple[str, int]:
    if text.startswith("["):
        end = text.find("]")
        host, rest = text[: end + 1], text[end + 1 :]
    else:
        host, _, port_text = text.partition(":")
        rest = ":" + port_text if _ else ""
    if not host or not _HOST.fullmatch(host) or (host.startswith("[") and not host.endswith("]")):
        raise URLError(f"the ClickHouse URL's host {text!r} is not a host name or address")
    port = default
    if rest:
        digits = rest[1:]
        if not rest.startswith(":") or not digits.isascii() or not digits.isdigit() or not 0 < int(digits) < 65536:
            raise URLError(f"the ClickHouse URL's port {rest[1:]!r} is not a number from 1 to 65535")
        port = int(digits)
    return unquote(host.strip("[]")), port
