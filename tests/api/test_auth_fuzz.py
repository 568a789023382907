"""Property: whatever body reaches login, websites, user PATCH or tenant PATCH, the answer is 2xx or 4xx."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import Client, live_server

FIELDS = ["username", "password", "hostname", "settings", "language", "script_type", "blockAbusiveIPs",
          "blockTorExitNodes", "blockedIPs", "threads", "memory_limit"]  # fmt: skip
# Lone surrogates (category Cs) become `\udXXX` escapes in json.dumps: valid JSON, but not storable UTF-8.
surrogate_text = st.text(st.characters(categories=["Cs", "Ll"]), min_size=3, max_size=8)
scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=80) | surrogate_text
json_values = st.recursive(
    scalars | st.sampled_from(["default", "click-events", "10.0.0.0/8", "example.com", "admin", "en"]),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=10), inner),
    max_leaves=12,
)
objects = st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=5)
bodies = (
    objects.map(lambda o: json.dumps(o).encode())
    | json_values.map(lambda v: json.dumps(v).encode())
    | st.binary(max_size=200)
    | st.text(max_size=200).map(str.encode)
)
content_types = st.sampled_from(["application/json", "application/json; charset=utf-8", "text/plain", ""])
ENDPOINTS = [
    ("POST", "/api/auth/login"),
    ("POST", "/api/websites"),
    ("PATCH", "/api/user"),
    ("PATCH", "/api/tenant/settings"),
    ("PATCH", "/api/websites/example.com"),
    ("PATCH", "/api/settings/usage"),
]


@pytest.fixture(scope="module")
def admin(tmp_path_factory: pytest.TempPathFactory, engine: str) -> Iterator[Client]:
    path: Path = tmp_path_factory.mktemp("fuzz")
    with live_server(path, level="error") as server:
        client = server.client()
        client.login()
        yield client
        client.close()


@pytest.mark.parametrize("method, path", ENDPOINTS)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=bodies, content_type=content_types)
def test_never_a_server_error(admin: Client, method: str, path: str, body: bytes, content_type: str) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    result = admin.request(method, path, body=body, headers=headers)
    assert 200 <= result.status < 500, (result.status, result.body)
    if result.status >= 400:
        error = result.json()["error"]
        assert error["code"] == result.status and isinstance(error["message"], str)
