"""The stats routes through the real server: auth, 404, 400s, answers, and no 5xx for any query string."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests import stores
from tests.helpers import Client, LiveServer, live_server
from tests.store.test_stats import T0, view

ENDPOINTS = (
    "summary pages time referrers sources mediums campaigns browsers os devices countries languages properties"
    " entries exits"
).split()
BASE = "/api/website/example.com"


@pytest.fixture
def stats_client(server: LiveServer) -> Iterator[Client]:
    client = server.client()
    client.login()
    assert client.post("/api/websites", json_body={"hostname": "example.com"}).status == 201
    rows = [view(pathname=f"/p{i % 3}", duration_ms=1000 * i, date_created=T0 + i * 60_000) for i in range(20)]
    stores.insert_views(server.config.analyticsdb, rows)
    yield client
    client.close()


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_every_endpoint_needs_a_session(client: Client, endpoint: str) -> None:
    result = client.get(f"{BASE}/{endpoint}")
    assert result.status == 401
    assert result.json()["error"]["code"] == 401


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_unknown_site_is_404(stats_client: Client, endpoint: str) -> None:
    result = stats_client.get(f"/api/website/unknown.org/{endpoint}")
    assert result.status == 404
    assert result.json() == {"error": {"code": 404, "message": "website not found"}}


def test_summary_with_previous_and_interval(stats_client: Client) -> None:
    start, end = quote("2024-06-01T00:00:00Z"), quote("2024-06-01T02:59:59.999+00:00")
    result = stats_client.get(f"{BASE}/summary?start={start}&end={end}&previous=true&interval=hour")
    assert result.status == 200
    body = result.json()
    assert body["current"] == {"visitors": 20, "pageviews": 20, "bounce_percentage": 0.25, "duration": 9500}
    # The view at exactly `start` belongs to both windows.
    assert body["previous"] == {"visitors": 1, "pageviews": 1, "bounce_percentage": 0, "duration": 0}
    assert [b["date"] for b in body["interval"]] == [
        "2024-06-01 00:00:00+00",
        "2024-06-01 01:00:00+00",
        "2024-06-01 02:00:00+00",
    ]
    assert [b["pageviews"] for b in body["interval"]] == [20, 0, 0]


def test_lists_and_filters(stats_client: Client) -> None:
    pages = stats_client.get(f"{BASE}/pages?summary=true&limit=2").json()
    assert pages == [
        {"path": "/p0", "visitors": 7, "visitors_percentage": 0.35},
        {"path": "/p1", "visitors": 7, "visitors_percentage": 0.35},
    ]
    only = stats_client.get(f"{BASE}/pages?summary=true&path[in]=/p2,/nothing").json()
    assert only == [{"path": "/p2", "visitors": 6, "visitors_percentage": 1.0}]
    assert stats_client.get(f"{BASE}/properties").json() == []


@pytest.mark.parametrize(
    "query",
    [
        "start=yesterday",
        "start=2024-06-01T00:00:00",  # no offset
        "start=2024-13-01T00:00:00Z",
        "end=2024-06-01T00:00:00+02:00",  # `+` decoded as a space
        "limit=0",
        "limit=5001",
        "offset=-1",
        "offset=5001",
        "limit=ten",
        "summary=yes",
        "interval=day",  # no start/end
        "interval=fortnight&start=2024-06-01T00:00:00Z&end=2024-06-02T00:00:00Z",
        "interval=minute&start=2024-06-01T00:00:00Z&end=2024-06-30T00:00:00Z",  # > 10,000 buckets
    ],
)
def test_bad_queries_are_400(stats_client: Client, query: str) -> None:
    endpoint = "summary" if "interval" in query else "pages"
    result = stats_client.get(f"{BASE}/{endpoint}?{query}")
    assert result.status == 400, result.body
    assert result.json()["error"]["code"] == 400


def test_limit_bounds_are_accepted(stats_client: Client) -> None:
    assert stats_client.get(f"{BASE}/browsers?limit=1&offset=0").status == 200
    assert stats_client.get(f"{BASE}/browsers?limit=5000&offset=5000").json() == []


_QUERY_TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)


def test_any_query_string_is_never_a_5xx(tmp_path_factory: pytest.TempPathFactory) -> None:
    with live_server(tmp_path_factory.mktemp("fuzz"), level="error") as server:
        client = server.client()
        client.login()
        client.post("/api/websites", json_body={"hostname": "example.com"})

        @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
        @given(
            endpoint=st.sampled_from(ENDPOINTS),
            pairs=st.lists(
                st.tuples(
                    st.sampled_from(
                        [
                            "start",
                            "end",
                            "limit",
                            "offset",
                            "summary",
                            "previous",
                            "interval",
                            "grouped",
                            "locale",
                            "path[eq]",
                            "referrer[in]",
                            "country[not_in]",
                            "prop_name[contains]",
                            "prop_value[eq]",
                            "language[ends_with]",
                            "path[bogus]",
                        ]
                    ),
                    _QUERY_TEXT,
                ),
                max_size=5,
            ),
        )
        def check(endpoint: str, pairs: list[tuple[str, str]]) -> None:
            query = "&".join(f"{quote(k)}={quote(v)}" for k, v in pairs)
            result = client.get(f"{BASE}/{endpoint}?{query}")
            assert result.status < 500, (query, result.body)

        check()
        client.close()
