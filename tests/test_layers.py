"""Imports point one way (shared/style.md, "Which way imports may go"), checked with ast."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "medama_core"

# What each part of medama_core may import from medama_core. Anything not listed is forbidden.
ALLOWED: dict[str, set[str]] = {
    "http": {"http"},
    "ingest": {"ingest", "data"},
    "store": {"store"},
    "log": set(),
    "accesslog": {"log"},
    "publicurl": set(),
    "csvtable": set(),
    "config": {"log", "publicurl"},
    "passwords": set(),
    "accounts": {"passwords", "store"},
    "usage": set(),
    "ratelimit": set(),
    "throttle": set(),
    "permissions": set(),
    "totp": set(),
    "apikeys": set(),
    "sharelinks": set(),
    "kfloor": {"store"},
    "hostnames": set(),
    "quota": set(),
    "goals": {"store"},
    "data": set(),
    "assets": {"http"},
    "auth": {"http", "ingest", "store", "config", "passwords", "log", "throttle", "totp"},
    "access": {"apikeys", "auth", "hostnames", "http", "permissions", "sharelinks", "store"},
    "api": {
        "accounts",
        "api",
        "publicurl",
        "http",
        "ingest",
        "store",
        "auth",
        "config",
        "log",
        "passwords",
        "usage",
        "ratelimit",
        "assets",
        "writer",
        "throttle",
        "transfer",
        "access",
        "hostnames",
        "permissions",
        "quota",
        "goals",
        "apikeys",
        "totp",
        "sharelinks",
        "kfloor",
        "csvtable",
    },
    "acme": set(),  # imports cryptography; only https.py imports it, lazily, for -autossl
    "tls": set(),
    "https": {"acme", "tls", "http", "config", "log"},
    "backup": {"config", "store"},
    "writer": {"store", "log", "http"},
    "importers": {"importers", "ingest"},
    "transfer": {"store", "ingest", "importers", "accounts", "config", "csvtable"},
    "app": {
        "accesslog",
        "accounts",
        "api",
        "https",
        "http",
        "ingest",
        "store",
        "auth",
        "config",
        "log",
        "passwords",
        "assets",
        "writer",
        "usage",
        "ratelimit",
        "access",
        "permissions",
        "quota",
        "sharelinks",
    },
    "usercli": {"accounts", "config", "hostnames", "passwords", "store"},
    "cli": {"app", "backup", "config", "log", "passwords", "store", "transfer", "usercli"},
}


def part_of(path: Path) -> str:
    relative = path.relative_to(PACKAGE)
    return relative.parts[0].removesuffix(".py")


def imported_parts(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    parts = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
            if node.module == "medama_core":
                names = [f"medama_core.{alias.name}" for alias in node.names]
        for name in names:
            if name.startswith("medama_core."):
                parts.add(name.split(".")[1])
    return parts


def test_imports_follow_the_layers() -> None:
    problems = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "__init__.py" and path.parent == PACKAGE:
            continue
        part = part_of(path)
        allowed = ALLOWED.get(part)
        if allowed is None:
            problems.append(f"{path.relative_to(PACKAGE)}: module part {part!r} has no row in ALLOWED")
            continue
        for target in imported_parts(path) - {"__version__", "COMMIT"}:
            if target not in allowed and target != part:
                problems.append(f"{path.relative_to(PACKAGE)} imports medama_core.{target}")
    assert not problems, "\n".join(problems)


def test_only_the_server_module_touches_sockets() -> None:
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text()
        if ("import socket" in text or "create_server" in text or "start_server" in text) and path.name != "server.py":
            offenders.append(str(path.relative_to(PACKAGE)))
    assert not offenders
