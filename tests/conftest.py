"""Shared fixtures: a live server with fresh databases, and a client logged in to it; the engines under test.

A test module under tests/api, or marked `pytest.mark.engines("sqlite", "pgch")`, runs each test twice: on
SQLite files, and with -appdb on PostgreSQL and -analyticsdb on ClickHouse (both servers started once per
session by tests/engines.Stack). `live_server` picks the engine up from the `engine` fixture. Which tests of
tests/api do not run on PostgreSQL + ClickHouse, and which are expected to fail there (a strict xfail: the
entry goes when the engine learns the feature), is listed with the reasons in tests/pgch.py.
MEDAMA_TEST_ENGINES=sqlite runs SQLite only, =pgch the other.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import helpers, pgch
from tests.helpers import Client, LiveServer, live_server

ENGINES = tuple(os.environ.get("MEDAMA_TEST_ENGINES", "sqlite,pgch").split(","))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "engines(*names): run the module's tests on each engine: sqlite, pgch")


def _listed_name(item: pytest.Item) -> str:
    """`module.py::test_name`, with the test's parameters but not the engine's: tests/pgch.py's keys."""
    name = item.name.replace("[pgch-", "[").replace("[pgch]", "").replace("[sqlite-", "[").replace("[sqlite]", "")
    return f"{Path(str(item.fspath)).name}::{name}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    kept, deselected = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        engine = callspec.params.get("engine") if callspec is not None else None
        if engine == "pgch":
            name = _listed_name(item)
            base = name.split("[", 1)[0]
            if name in pgch.SQLITE_ONLY_TESTS or base in pgch.SQLITE_ONLY_TESTS:
                deselected.append(item)
                continue
            reason = pgch.XFAIL.get(name) or pgch.XFAIL.get(base)
            if reason is not None:
                item.add_marker(pytest.mark.xfail(strict=True, reason=reason))
        kept.append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = kept


API_TESTS = Path(__file__).resolve().parent / "api"  # every module here runs on both, unless it says otherwise


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    marker = metafunc.definition.get_closest_marker("engines")
    if marker is not None:
        wanted: tuple[str, ...] = marker.args
    elif Path(str(metafunc.definition.fspath)).parent == API_TESTS:
        module = Path(str(metafunc.definition.fspath)).name
        wanted = ("sqlite",) if module in pgch.SQLITE_ONLY_MODULES else ("sqlite", "pgch")
    else:
        return
    if "engine" in metafunc.fixturenames:
        metafunc.parametrize("engine", [name for name in wanted if name in ENGINES], indirect=True, scope="module")


@pytest.fixture(scope="session")
def stack() -> Iterator[object]:
    from tests.engines import Stack
    from tests.pg_harness import Unavailable

    try:
        running = Stack()
    except (FileNotFoundError, Unavailable) as exc:
        pytest.skip(f"NOT RUN ON POSTGRESQL + CLICKHOUSE: {exc}")
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module", autouse=True)
def engine(request: pytest.FixtureRequest) -> Iterator[str]:
    """The engines `live_server` runs the app on: "sqlite" (files under tmp_path) or "pgch".

    A module-scoped fixture that starts a server must name `engine` among its arguments: otherwise pytest
    keeps the server it made for the first engine and runs the second engine's tests on it.
    """
    name: str = getattr(request, "param", "sqlite")
    if name == "pgch":
        helpers.ENGINE_URLS = request.getfixturevalue("stack").urls
    try:
        yield name
    finally:
        helpers.ENGINE_URLS = None


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    with live_server(tmp_path) as running:
        yield running


@pytest.fixture
def client(server: LiveServer) -> Iterator[Client]:
    c = server.client()
    yield c
    c.close()
