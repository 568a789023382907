"""Imports point one way (shared/style.md, "Which way imports may go"), checked with ast."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "medama_core"

# What each part of medama_core may import from medama_core. Anything not listed is forbidden.
ALLOWED: dict[str, set[str]] = {
    "http": {"http"},
    "ingest": {"ingest", "data", "hostnames", "ops"},
    "store": {"store", "ops"},
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
    # The writer's ops (NewView, Duration, ...): made by ingest/pipeline.py, written by store/.
    "ops": set(),
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
    # The engines' adapters and the URL scheme -> engine table: the one place above store/ that knows them.
    "backends": {"accounts", "backends", "config", "store", "transfer"},
    "app": {
        "accesslog",
        "accounts",
        "api",
        "backends",
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
        "workers",
    },
    # -workers: the parent's supervisor and a child's pipes (started by cli.worker_main).
    "workers": {"api", "backends", "config", "http", "store", "writer"},
    "usercli": {"accounts", "config", "hostnames", "passwords", "store"},
    "migrate": {"config", "meta_copy", "store"},
    "meta_copy": {"store"},
    "cli": {"app", "backup", "config", "log", "migrate", "passwords", "store", "transfer", "usercli", "workers"},
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


# The server's layers reach storage only through the protocols (store/protocol.py) and the pure filter
# whitelist; they import no engine module (SQLite's store modules, store/postgres/, store/clickhouse/),
# nor sqlite3 or a driver, so none of them knows which engine runs. `backends/` chooses and adapts the
# engines. Still outside the rule, and so listed by name: the command-line tools that work on SQLite
# files themselves (backup copies the files; import/export and `medama user` open them; issue 17).
SERVER_PARTS = ("api", "app", "access", "auth", "writer")
STORE_SEAM = {"medama_core.store.protocol", "medama_core.store.filters"}
ENGINE_LIBRARIES = {"sqlite3", "psycopg", "chdb"}


def imported_modules(path: Path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "medama_core.store":
                modules.update(f"medama_core.store.{alias.name}" for alias in node.names)
            else:
                modules.add(node.module)
    return modules


def test_the_server_knows_no_storage_engine() -> None:
    problems = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if part_of(path) not in SERVER_PARTS:
            continue
        for module in sorted(imported_modules(path)):
            engine_library = module.split(".")[0] in ENGINE_LIBRARIES
            if engine_library or (module.startswith("medama_core.store") and module not in STORE_SEAM):
                problems.append(f"{path.relative_to(PACKAGE)} imports {module}")
    assert not problems, "\n".join(problems)


# Issue 17: SQLite is one engine beside PostgreSQL and ClickHouse, in store/sqlite/. Outside that package only
# its adapter and the tools that work on SQLite files by nature import it, each listed here with the reason;
# store/'s own modules (the protocols, value types and helpers every engine shares) import no engine at all,
# and no engine imports another.
SQLITE = "medama_core.store.sqlite"
ENGINES = (SQLITE, "medama_core.store.postgres", "medama_core.store.clickhouse")
SQLITE_USERS = {
    "backends/sqlite.py": "the SQLite adapters: MetaStore over me_meta.db, AnalyticsStore over me_analytics.db",
    "migrate.py": "`medama migrate` copies an install between SQLite files and PostgreSQL + ClickHouse",
    "meta_copy.py": "`medama migrate`'s app-data copy between a me_meta.db and PostgreSQL",
    "transfer.py": "import and export read and write the SQLite files themselves (bulk loads, imported days)",
    "usercli.py": "`medama user` opens me_meta.db itself, whether the server runs or not",
}


def _engine_of(module: str) -> str | None:
    return next((engine for engine in ENGINES if module == engine or module.startswith(engine + ".")), None)


def test_only_sqlite_code_and_its_named_users_import_the_sqlite_engine() -> None:
    problems = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        if relative.startswith("store/sqlite/") or relative in SQLITE_USERS:
            continue
        problems += [f"{relative} imports {m}" for m in sorted(imported_modules(path)) if _engine_of(m) == SQLITE]
    assert not problems, "\n".join(problems)
    assert not [name for name in SQLITE_USERS if name.startswith("store/")], "no other engine may use SQLite's"


def test_store_modules_import_no_engine_but_their_own() -> None:
    problems = []
    for path in sorted((PACKAGE / "store").rglob("*.py")):
        own = _engine_of("medama_core." + ".".join(path.relative_to(PACKAGE).with_suffix("").parts))
        for module in sorted(imported_modules(path)):
            engine = _engine_of(module)
            if engine is not None and engine != own:
                problems.append(f"{path.relative_to(PACKAGE)} imports {module}")
    assert not problems, "\n".join(problems)


def test_only_the_server_module_touches_sockets() -> None:
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text()
        if ("import socket" in text or "create_server" in text or "start_server" in text) and path.name != "server.py":
            offenders.append(str(path.relative_to(PACKAGE)))
    assert not offenders
