"""Our openapi.yaml documents exactly the routes app.ROUTES serves, and /openapi.yaml serves it."""

from __future__ import annotations

from importlib import resources
from typing import Any

import pytest

from medama_core.app import API_PREFIX, ROUTES
from tests.helpers import Client

yaml = pytest.importorskip("yaml")

METHODS = ("get", "put", "post", "patch", "delete", "options", "trace")


def load_document() -> dict[str, Any]:
    text = resources.files("medama_core").joinpath("static", "openapi.yaml").read_text(encoding="utf-8")
    document = yaml.safe_load(text)
    assert isinstance(document, dict), "openapi.yaml is empty or not a mapping"
    return document


def documented_operations(document: dict[str, Any]) -> set[tuple[str, str]]:
    base = document["servers"][0]["url"].rstrip("/")
    return {
        (method.upper(), base + path)
        for path, item in (document.get("paths") or {}).items()
        for method in METHODS
        if method in item
    }


def test_every_route_is_documented_and_every_documented_route_exists() -> None:
    served = {(route.method, API_PREFIX + route.path) for route in ROUTES if route.method != "HEAD"}
    documented = documented_operations(load_document())
    undocumented = sorted(served - documented)
    phantom = sorted(documented - served)
    assert not undocumented, f"routes missing from openapi.yaml: {undocumented}"
    assert not phantom, f"openapi.yaml documents routes the server does not have: {phantom}"


def test_every_operation_has_an_id_a_tag_and_error_responses_of_the_one_shape() -> None:
    document = load_document()
    operation_ids: list[str] = []
    for path, item in document["paths"].items():
        for method in METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            where = f"{method.upper()} {path}"
            assert operation.get("operationId"), where
            assert operation.get("tags"), where
            operation_ids.append(operation["operationId"])
            for status, response in operation["responses"].items():
                if int(status) >= 400 and "$ref" not in response:
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/ErrorResponse"}, where
    assert len(operation_ids) == len(set(operation_ids)), "duplicate operationId"


def test_the_document_is_served(client: Client) -> None:
    result = client.get("/openapi.yaml")
    assert result.status == 200
    assert yaml.safe_load(result.body)["openapi"].startswith("3.1")
