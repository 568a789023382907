"""Start-up configuration: one table of options, parsed from argv and (with -env) the environment."""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from medama_core import publicurl
from medama_core.log import LEVELS

LETSENCRYPT_DIRECTORY = "https://acme-v02.api.letsencrypt.org/directory"  # production; staging for trials


class ConfigError(ValueError):
    """A flag or environment value that cannot be used; the CLI prints it on one line and exits 2."""


class StartupError(Exception):
    """The command was understood but cannot be carried out here (a port, a folder, a database file, a
    certificate); the message names the cause and the fix. The CLI prints it on one line and exits 1."""


def _port(text: str) -> int:
    value = _int(text)
    if not 0 <= value <= 65535:
        raise ConfigError("must be a port number from 0 to 65535")
    return value


def _int(text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise ConfigError(f"{text!r} is not a whole number") from None


def _non_negative(text: str) -> int:
    value = _int(text)
    if value < 0:
        raise ConfigError("must be 0 or more")
    return value


def _positive(text: str) -> int:
    value = _int(text)
    if value < 1:
        raise ConfigError("must be 1 or more")
    return value


# -workers' upper bound. Each worker is a whole server process (~40 MiB resident, its own SQLite reader
# connections and caches) and gains nothing past one per core; 64 covers the largest common VM while a
# typo (-workers 1000) cannot start a thousand processes and exhaust memory or descriptors.
MAX_WORKERS: Final = 64


def _workers(text: str) -> int:
    value = _int(text)
    if not 1 <= value <= MAX_WORKERS:
        raise ConfigError(f"must be from 1 to {MAX_WORKERS} (MAX_WORKERS: one process per core is the most that helps)")
    return value


def _bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "t", "true", "yes", "on"):
        return True
    if lowered in ("0", "f", "false", "no", "off", ""):
        return False
    raise ConfigError(f"{text!r} is not true or false")


def _choice(*allowed: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text not in allowed:
            raise ConfigError(f"{text!r} is not one of {', '.join(allowed)}")
        return text

    return parse


def _text(text: str) -> str:
    return text


def _list(text: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in text.split(",") if item.strip())


def _public_url(text: str) -> str:
    try:
        return publicurl.normalise(text)
    except publicurl.InvalidPublicURL as exc:
        raise ConfigError(str(exc)) from None


# For the other commands' option tables.
parse_bool, parse_text, parse_choice = _bool, _text, _choice


def _networks(text: str) -> tuple[str, ...]:
    items = _list(text)
    for item in items:
        if item == "loopback":
            continue
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise ConfigError(f"{item!r} is not an IP address or CIDR network") from None
    return items


# On ClickHouse a node writes a batch of hits short of full at most once per this many ms: each batch's
# INSERTs cost the server ~30 ms of CPU whatever their size (docs/scale.md, "Durability"), and ClickHouse
# advises about one INSERT per table per second. A hit after a quiet spell is written at once; under load
# a hit's 204 waits up to this (a tracker's beacon does not wait for it).
DEFAULT_CLICKHOUSE_LINGER_MS: Final = 1000


@dataclass(frozen=True)
class Option:
    name: str
    env: str | None
    default: Any
    parse: Callable[[str], Any]
    help: str
    is_flag: bool = False  # a boolean that may stand alone: `-demo` means `-demo=true`
    aliases: tuple[str, ...] = ()  # other names, e.g. `o` for `output`
    shown_default: str | None = None  # what --help says the default is, when the value alone would not tell


OPTIONS: tuple[Option, ...] = (
    Option("port", "PORT", 8080, _port, "port to listen on (ignored with -autossl)"),
    Option("host", "HOST", "", _text, "address to listen on", shown_default="every interface"),
    Option("logger", "LOGGER", "json", _choice("json", "pretty"), "log format: json or pretty"),
    Option("level", "LEVEL", "info", _choice(*LEVELS), "log level: debug, info, warn or error"),
    Option("appdb", "APP_DATABASE_HOST", "./me_meta.db", _text, "SQLite file, or postgres:// URL, for app data"),
    Option(
        "analyticsdb",
        "ANALYTICS_DATABASE_HOST",
        "./me_analytics.db",
        _text,
        "SQLite file, or clickhouse:// URL, for analytics",
    ),
    Option("autossl", "AUTO_SSL", "", _text, "domain to obtain an ACME certificate for; serves :443 and :80"),
    Option("autosslemail", "AUTO_SSL_EMAIL", "", _text, "contact email for the ACME account"),
    Option("acmedirectory", "ACME_DIRECTORY", LETSENCRYPT_DIRECTORY, _text, "ACME directory URL used by -autossl"),
    Option("acmeca", "ACME_CA", "", _text, "PEM file of CAs to trust for the ACME server (private or test CAs)"),
    Option("httpport", "HTTP_PORT", 80, _port, "with TLS: port for ACME challenges and redirects (0: none, -tlscert)"),
    Option("httpsport", "HTTPS_PORT", 443, _port, "with -autossl or -tlscert: the HTTPS port"),
    Option("tlscert", "TLS_CERT", "", _text, "serve HTTPS with this PEM certificate chain; SIGHUP reloads it"),
    Option("tlskey", "TLS_KEY", "", _text, "private key for -tlscert (omit when the chain file holds it)"),
    Option("datadir", "DATA_DIR", "", _text, "where certificates and the ACME key live", shown_default="-appdb's dir"),
    Option(
        "reuseport",
        "REUSE_PORT",
        False,
        _bool,
        "listen with SO_REUSEPORT so a new process can take over the port during an upgrade",
        is_flag=True,
    ),
    Option(
        "workers",
        "WORKERS",
        1,
        _workers,
        "processes answering on the port, one per core at most; above 1 a parent supervises them and keeps "
        "the one SQLite writer (docs/ingestion.md)",
    ),
    Option("corsorigins", "CORS_ALLOWED_ORIGINS", (), _list, "comma-separated origins allowed credentialed API calls"),
    Option(
        "trustedproxies",
        "TRUSTED_PROXIES",
        (),
        _networks,
        "comma-separated proxy addresses/CIDRs whose X-Forwarded-For is believed ('loopback' for a local proxy)",
    ),
    Option(
        "ratelimit",
        "RATE_LIMIT",
        150,
        _non_negative,
        "event requests per minute per /24 (IPv4) or /48 (IPv6) network; 0 disables",
    ),
    Option("maxconnections", "MAX_CONNECTIONS", 4096, _positive, "open connections accepted at once; more get 503"),
    Option(
        "clickhouselinger",
        "CLICKHOUSE_LINGER",
        DEFAULT_CLICKHOUSE_LINGER_MS,
        _non_negative,
        "with a clickhouse:// -analyticsdb: ms a batch of hits short of full waits after the previous batch "
        "before it is written (each costs the server ~30 ms of CPU); a hit's answer may wait this long",
    ),
    Option(
        "securecookie",
        "SECURE_COOKIE",
        True,
        _bool,
        "mark the login cookie Secure; =false lets browsers keep it over plain HTTP (an unencrypted LAN)",
        is_flag=True,
    ),
    Option(
        "publicurl",
        "PUBLIC_URL",
        "",
        _public_url,
        "the address visitors reach this server at (https://stats.example.com), for the tracker snippet; "
        "the dashboard's public_url setting wins over it",
        shown_default="none: the address the dashboard is opened at",
    ),
    Option("demo", "DEMO_MODE", False, _bool, "demo mode: writes answer 403", is_flag=True),
    Option("profiler", "PROFILER", False, _bool, "serve /debug/ profiling pages to logged-in users", is_flag=True),
    Option("env", None, False, _bool, "read settings from environment variables (flags still win)", is_flag=True),
)
_BY_NAME = {option.name: option for option in OPTIONS}


@dataclass(frozen=True)
class Config:
    port: int = 8080
    host: str = ""
    logger: str = "json"
    level: str = "info"
    appdb: str = "./me_meta.db"
    analyticsdb: str = "./me_analytics.db"
    autossl: str = ""
    autosslemail: str = ""
    acmedirectory: str = LETSENCRYPT_DIRECTORY
    acmeca: str = ""
    httpport: int = 80
    httpsport: int = 443
    tlscert: str = ""
    tlskey: str = ""
    datadir: str = ""
    reuseport: bool = False
    workers: int = 1
    corsorigins: tuple[str, ...] = ()
    trustedproxies: tuple[str, ...] = ()
    ratelimit: int = 150
    maxconnections: int = 4096
    clickhouselinger: int = DEFAULT_CLICKHOUSE_LINGER_MS
    securecookie: bool = True
    publicurl: str = ""
    demo: bool = False
    profiler: bool = False
    env: bool = False


def parse_args(argv: Sequence[str], environ: Mapping[str, str]) -> Config:
    """The `start` flags over the defaults (see `parse_flags`); any other argument is an error."""
    values, extra = parse_flags(OPTIONS, argv, environ)
    if extra:
        raise ConfigError(f"unexpected argument {extra[0]!r}")
    return Config(**values)


def parse_flags(
    options: Sequence[Option], argv: Sequence[str], environ: Mapping[str, str]
) -> tuple[dict[str, Any], list[str]]:
    """Parse Go-style flags (`-port 80`, `-port=80`, `--port 80`, `-demo`) over the options' defaults.

    Returns the value of every option by name, and the arguments that are not
    flags, in order (flags and such arguments may be mixed; after `--` every
    argument is one of them). The environment is read only when an `-env`
    option is given, as upstream does; flags on the command line override it.
    """
    by_name = {alias: option for option in options for alias in (option.name, *option.aliases)}
    values: dict[str, Any] = {option.name: option.default for option in options}
    given, extra = _split_flags(by_name, argv)
    if "env" in given and _apply(by_name["env"], given["env"], "-env"):
        for option in options:
            if option.env is not None and option.env in environ:
                values[option.name] = _apply(option, environ[option.env], f"${option.env}")
    for name, text in given.items():
        values[name] = _apply(by_name[name], text, f"-{name}")
    return values, extra


def _split_flags(by_name: Mapping[str, Option], argv: Sequence[str]) -> tuple[dict[str, str], list[str]]:
    """The text of each flag given (by option name; the last one wins) and the other arguments."""
    given: dict[str, str] = {}
    extra: list[str] = []
    args = list(argv)
    while args:
        arg = args.pop(0)
        if arg == "--":
            extra += args
            break
        if not arg.startswith("-") or arg == "-":
            extra.append(arg)
            continue
        name, has_value, value = arg.lstrip("-").partition("=")
        option = by_name.get(name)
        if option is None:
            raise ConfigError(f"flag provided but not defined: -{name}")
        if not has_value:
            if option.is_flag:
                value = "true"
            elif args:
                value = args.pop(0)
            else:
                raise ConfigError(f"flag needs an argument: -{name}")
        given[option.name] = value
    return given, extra


def _apply(option: Option, text: str, where: str) -> Any:
    try:
        return option.parse(text)
    except ConfigError as exc:
        raise ConfigError(f"invalid value {text!r} for {where}: {exc}") from None


def option(name: str) -> Option:
    """One of `start`'s options, for commands that share it (-appdb, -analyticsdb, -env)."""
    return _BY_NAME[name]


def _shown_default(option: Option) -> str:
    if option.shown_default is not None:
        return option.shown_default
    default = option.default
    if isinstance(default, bool):
        return "true" if default else "false"
    if isinstance(default, tuple):
        return ",".join(default) or "none"
    return str(default) if default != "" else "none"


def help_text(synopsis: str, description: str, options: Sequence[Option]) -> str:
    """Every command's --help, in one style: usage, what it does, then each flag with its default."""
    lines = [f"Usage: {synopsis}", "", description]
    if options:
        lines += ["", "Flags:"]
    for item in options:
        names = ", ".join(f"-{name}" for name in (item.name, *item.aliases))
        env = f"; env {item.env}" if item.env else ""
        lines.append(f"  {names} (default: {_shown_default(item)}{env})")
        lines.append(f"        {item.help}")
    return "\n".join(lines)


START_DESCRIPTION = (
    "Run the analytics server. Flags may also be written -flag=value or --flag value; with -env, the\n"
    "environment variables named below are read too (flags on the command line win)."
)


def usage() -> str:
    return help_text("medama start [flags]", START_DESCRIPTION, OPTIONS)


def as_dict(config: Config) -> dict[str, Any]:
    return dataclasses.asdict(config)
