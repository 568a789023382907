"""Property: whatever is posted to /api/event/hit, the answer is 204 or a 4xx, never a 5xx."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.api.test_events import BROWSER, SITE, prepare
from tests.helpers import Client, live_server

ALLOWED = {204, 400, 404, 415}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
urls = st.sampled_from(
    [
        f"https://{SITE}/",
        f"https://{SITE}/a/b/?utm_source=x#frag",
        "https://other.example/",
        "not a url",
        "",
        "http://[::1",
    ]
) | st.text(max_size=40)
hits = st.fixed_dictionaries(
    {"e": st.sampled_from(["load", "unload", "custom", "LOAD", ""])},
    optional={
        "b": st.text(max_size=20) | st.integers(),
        "u": urls,
        "r": urls,
        "p": st.booleans() | st.none() | st.integers(),
        "q": st.booleans(),
        "t": st.sampled_from(["Europe/London", "UTC", "", "Mars/Olympus"]) | st.text(max_size=10),
        "h": st.booleans() | st.text(max_size=3),
        "m": st.integers(min_value=-(2**70), max_value=2**70) | st.floats(allow_nan=False),
        "g": st.sampled_from([SITE, SITE.upper(), "other.example", ""]),
        "d": st.dictionaries(st.text(max_size=10), json_values, max_size=5) | json_values,
    },
)
bodies = st.one_of(
    st.binary(max_size=300),
    json_values.map(lambda v: json.dumps(v).encode()),
    hits.map(lambda v: json.dumps(v).encode()),
)
headers = st.fixed_dictionaries(
    {
        "Content-Type": st.sampled_from(["text/plain;charset=UTF-8", "application/json", "text/html", 'x/y; q="']),
        "User-Agent": st.sampled_from([BROWSER["User-Agent"], "", "curl/8.0", "Mozilla/5.0"]) | st.text(max_size=30),
        "Accept-Language": st.sampled_from(["en-GB", "", "*", "x-klingon;q=2"]) | st.text(max_size=20),
    }
).map(
    lambda h: {
        k: v.encode("latin-1", "replace").decode("latin-1").replace("\r", "").replace("\n", "") for k, v in h.items()
    }
)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, engine: str) -> Iterator[Client]:
    tmp: Path = tmp_path_factory.mktemp("fuzz")
    prepare(tmp)
    with live_server(tmp, level="warn") as server:
        c = server.client()
        yield c
        c.close()


@settings(max_examples=400, deadline=None)
@given(body=bodies, request_headers=headers)
def test_hit_never_answers_5xx(client: Client, body: bytes, request_headers: dict[str, Any]) -> None:
    result = client.post("/api/event/hit", body=body, headers=request_headers)
    assert result.status in ALLOWED, (result.status, result.body)
    if result.status != 204:
        assert json.loads(result.body)["error"]["code"] == result.status
