"""Parse a postgres:// -appdb URL by libpq's rules into the parts the driver connects with (pure: no I/O).

    postgres[ql]://[user[:password]@][host][:port][/database][?name=value&...]

As libpq: every part is percent-decoded (a `%00` or a broken escape is refused);
the host may be a name, an IPv4 address, an IPv6 address in brackets, or a Unix
socket directory, percent-encoded in the host part or given as `?host=/dir`;
query parameters win over the parts before them; `ssl=true` means
`sslmode=require`; without a port, 5432. Unlike libpq we refuse lists of hosts
and parameters outside `PARAMETERS`, so a mistyped URL fails at start with one
line rather than connecting somewhere unexpected. Messages never quote the password.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

from medama_core.store.postgres.errors import BadURL

SCHEMES = ("postgresql://", "postgres://")  # libpq accepts both designators
DEFAULT_PORT = 5432  # PostgreSQL's registered port, libpq's default
SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")  # libpq's sslmode values
# The libpq parameters a URL may carry (libpq "Parameter Key Words"): where to connect, who we are,
# TLS, and session options. Anything else is refused rather than silently ignored.
PARAMETERS = (
    "host",
    "port",
    "dbname",
    "user",
    "password",
    "sslmode",
    "sslrootcert",
    "sslcert",
    "sslkey",
    "connect_timeout",
    "application_name",
    "options",
)
_PARTS = ("host", "port", "dbname", "user", "password")  # parameters that replace a part of the URL
_ESCAPES = re.compile(r"(?:%[0-9A-Fa-f]{2})+")
_HOSTNAME = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_.])?")  # DNS names, plus Docker's underscores
_PORT = re.compile(r"[0-9]{1,5}")
_CONNECT_TIMEOUT = re.compile(r"[0-9]{1,6}")  # seconds; more than 11 days is a typo


@dataclass(frozen=True)
class PostgresURL:
    """Where and how to connect. None means "libpq's default" (host: the local socket; database: the user's name)."""

    host: str | None = None  # a name, an IP address, or a socket directory (an absolute path)
    port: int = DEFAULT_PORT
    database: str | None = None
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    params: tuple[tuple[str, str], ...] = ()  # the other PARAMETERS, in the order given

    @property
    def is_socket(self) -> bool:
        return self.host is None or self.host.startswith("/")

    def param(self, name: str) -> str | None:
        return dict(self.params).get(name)

    def describe(self) -> str:
        """`user@host:port/database` for messages and logs, never with the password."""
        host = self.host or "local socket"
        if ":" in host:
            host = f"[{host}]"
        user = f"{self.user}@" if self.user else ""
        return f"{user}{host}:{self.port}/{self.database or ''}"

    def connect_kwargs(self) -> dict[str, str]:
        """The libpq keywords to connect with (parts left to libpq's defaults are absent)."""
        kwargs = {"port": str(self.port)}
        for name, value in (("host", self.host), ("dbname", self.database), ("user", self.user)):
            if value is not None:
                kwargs[name] = value
        if self.password is not None:
            kwargs["password"] = self.password
        kwargs.update(self.params)
        return kwargs


def is_postgres_url(text: str) -> bool:
    """True if `text` names a PostgreSQL database rather than a SQLite file."""
    return text.startswith(SCHEMES)


def parse_url(text: str) -> PostgresURL:
    """The parts of a postgres:// URL, or BadURL saying what is wrong (never another exception)."""
    scheme = next((s for s in SCHEMES if text.startswith(s)), None)
    if scheme is None:
        raise BadURL("a PostgreSQL URL starts with postgres:// or postgresql://")
    rest = text[len(scheme) :]
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F or 0xD800 <= ord(ch) <= 0xDFFF for ch in rest):
        raise BadURL("the PostgreSQL URL contains a control character or invalid text")
    if "#" in rest:
        raise BadURL("a '#' in a PostgreSQL URL must be percent-encoded as %23")
    head, _, query = rest.partition("?")
    authority, slash, path = head.partition("/")
    userinfo, at, hostport = authority.partition("@")  # libpq splits at the first '@'
    if not at:
        userinfo, hostport = "", authority
    if "@" in hostport:
        raise BadURL("an '@' in the user name or password must be percent-encoded as %40")
    if "@" in path:  # libpq would take it as part of the database name: most likely a password's '/' or '?'
        raise BadURL("an '@' after the host: percent-encode any '/', '?' or '@' in the user name or password")
    user_raw, colon, password_raw = userinfo.partition(":")
    parts: dict[str, str | None] = {
        "user": _decode(user_raw, "user name") or None,
        "password": _decode(password_raw, "password") if colon and password_raw else None,
        "dbname": (_decode(path, "database name") or None) if slash else None,
    }
    parts["host"], parts["port"] = _host_and_port(hostport)
    params: dict[str, str] = {}
    for name, value in _query(query):
        if name in _PARTS:
            parts[name] = value or None
        else:
            params[name] = value
    host = parts["host"]
    if host is not None and not host.startswith("/"):
        _check_hostname(host)
    port = _port(parts["port"]) if parts["port"] is not None else DEFAULT_PORT
    _check_params(params)
    return PostgresURL(host, port, parts["dbname"], parts["user"], parts["password"], tuple(params.items()))


def _host_and_port(hostport: str) -> tuple[str | None, str | None]:
    if "," in hostport:
        raise BadURL("a list of hosts is not supported: give one host")
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            raise BadURL("an IPv6 address in brackets lacks its ']'")
        host, after = _decode(hostport[1:end], "host"), hostport[end + 1 :]
        _check_ipv6(host)
        if after and not after.startswith(":"):
            raise BadURL("after an IPv6 address in brackets only ':port' may follow")
        return host, after[1:] if after else None
    host_raw, colon, port = hostport.partition(":")
    if ":" in port:
        raise BadURL("an IPv6 address must be written in brackets, as [::1]:5432")
    return _decode(host_raw, "host") or None, port if colon else None


def _query(query: str) -> list[tuple[str, str]]:
    """The query's (name, value) pairs, decoded; `ssl=true` becomes `sslmode=require` as in libpq."""
    pairs: list[tuple[str, str]] = []
    seen: set[str] = set()
    for piece in query.split("&"):
        if not piece:
            continue
        raw_name, equals, raw_value = piece.partition("=")
        name = _decode(raw_name, "parameter name")
        if not equals:  # not quoted: it may be the tail of a password whose '?' was not encoded
            raise BadURL("a URL parameter has no '=value' (percent-encode any '?' in the password as %3F)")
        value = _decode(raw_value, "password" if name == "password" else f"parameter {name!r}")
        if name == "ssl":
            if value != "true":
                raise BadURL("the URL parameter 'ssl' may only be 'true' (use sslmode= for the others)")
            name, value = "sslmode", "require"
        if name not in PARAMETERS:
            shown = repr(name) if name.isidentifier() else "(not a name)"
            raise BadURL(f"unsupported URL parameter {shown} (supported: {', '.join(PARAMETERS)})")
        if name in seen:
            raise BadURL(f"the URL parameter {name!r} is given twice")
        seen.add(name)
        pairs.append((name, value))
    return pairs


def _decode(text: str, what: str) -> str:
    """Percent-decode one part: each run of %XX escapes must decode as UTF-8, and %00 is refused (as libpq)."""
    pieces: list[str] = []
    position = 0
    for match in _ESCAPES.finditer(text):
        pieces.append(text[position : match.start()])
        raw = bytes.fromhex(match.group().replace("%", ""))
        if 0 in raw:
            raise BadURL(f"%00 (a NUL character) is not allowed in the {what}")
        try:
            pieces.append(raw.decode("utf-8"))
        except UnicodeDecodeError:
            raise BadURL(f"the percent-encoded bytes in the {what} are not UTF-8") from None
        position = match.end()
    pieces.append(text[position:])
    if any("%" in piece for index, piece in enumerate(pieces) if index % 2 == 0):
        raise BadURL(f"a '%' in the {what} must be followed by two hex digits (write a '%' itself as %25)")
    decoded = "".join(pieces)
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in decoded):
        raise BadURL(f"the {what} contains a control character")
    return decoded


def _check_hostname(host: str) -> None:
    try:
        ipaddress.ip_address(host)
        return
    except ValueError:
        pass
    if _HOSTNAME.fullmatch(host) is None or len(host) > 253:  # RFC 1035's longest name
        raise BadURL(f"{host!r} is not a host name, an IP address or a socket directory (an absolute path)")


def _check_ipv6(host: str) -> None:
    try:
        ipaddress.IPv6Address(host)
    except ValueError:
        raise BadURL(f"{host!r} in brackets is not an IPv6 address") from None


def _port(text: str) -> int:
    if _PORT.fullmatch(text) is None or not 1 <= int(text) <= 65535:
        raise BadURL("the port is not a number from 1 to 65535")  # not quoted: a password's unencoded '/' lands here
    return int(text)


def _check_params(params: dict[str, str]) -> None:
    mode = params.get("sslmode")
    if mode is not None and mode not in SSL_MODES:
        raise BadURL(f"sslmode {mode!r} is not one of {', '.join(SSL_MODES)}")
    timeout = params.get("connect_timeout")
    if timeout is not None and _CONNECT_TIMEOUT.fullmatch(timeout) is None:
        raise BadURL(f"connect_timeout {timeout!r} is not a whole number of seconds")
