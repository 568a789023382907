"""Shared fixtures: a live server with fresh databases, and a client logged in to it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import Client, LiveServer, live_server


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    with live_server(tmp_path) as running:
        yield running


@pytest.fixture
def client(server: LiveServer) -> Iterator[Client]:
    c = server.client()
    yield c
    c.close()
