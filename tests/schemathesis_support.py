"""What the Schemathesis tests share: the response checks they apply and our own openapi.yaml.

Import it only after `pytest.importorskip("schemathesis")`.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

import schemathesis
from schemathesis import GenerationMode, checks
from schemathesis.checks import CheckFunction

POSITIVE_CHECKS: list[CheckFunction] = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.response_headers_conformance,
]
NEGATIVE_CHECKS: list[CheckFunction] = [*POSITIVE_CHECKS, checks.negative_data_rejection]


def checks_for(mode: GenerationMode) -> list[CheckFunction]:
    """Every response check; generated invalid input must also be refused."""
    return POSITIVE_CHECKS if mode is GenerationMode.POSITIVE else NEGATIVE_CHECKS


def load_our_schema() -> Any:
    """Our /openapi.yaml, read from the package as the server serves it."""
    path = resources.files("medama_core").joinpath("static", "openapi.yaml")
    with resources.as_file(path) as file:
        schema = schemathesis.openapi.from_path(str(file))
    # Invalid input may also be refused for its size: a generated body past the hit endpoint's
    # 64 KiB limit gets 413, which is as much a rejection as the 4xx Schemathesis lists itself.
    rejection = schema.config.checks.negative_data_rejection
    rejection.expected_statuses = [*rejection.expected_statuses, "413"]
    return schema
