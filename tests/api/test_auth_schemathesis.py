"""Schemathesis against our openapi.yaml and a live server: no 5xx, and every answer matches the document.

Covers the authentication, user, settings and website operations. Two are
left out because they end the session the run depends on: DELETE /user
(tested in test_users.py) and logout with the run's own cookie (logout gets
only the cookies Schemathesis generates).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402

from tests.helpers import LiveServer, live_server  # noqa: E402
from tests.schemathesis_support import checks_for, load_our_schema  # noqa: E402

OUR_TAGS = {"Authentication", "User", "Settings", "Website"}
SKIPPED = {"DELETE /user"}
NO_SESSION = {"POST /auth/logout", "GET /auth/config", "POST /auth/login"}
# No parameters, body or security to get wrong: a negative case cannot exist.
NOTHING_TO_NEGATE = {"GET /auth/config"}
EXAMPLES = 25  # per operation and mode: about 30 s for the whole file on a 2-core machine


SCHEMA = load_our_schema()
OPERATIONS = {
    op.label: op
    for result in SCHEMA.get_all_operations()  # type: ignore[attr-defined]
    for op in [result.ok()]
    if set(op.tags or ()) & OUR_TAGS and op.label not in SKIPPED
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, str]]:
    path: Path = tmp_path_factory.mktemp("schemathesis")
    with live_server(path, level="error") as running:
        client = running.client()
        client.login()
        cookie = client.cookies["_me_sess"]
        client.post("/api/websites", json_body={"hostname": "example.com"})
        client.close()
        yield running, cookie


def test_every_operation_of_ours_is_covered() -> None:
    assert len(OPERATIONS) == 23  # with POST /websites/{hostname}/import, the site settings, notes and export (ours)


CASES = [
    pytest.param(label, mode, id=f"{label}-{mode.value}")
    for label in sorted(OPERATIONS)
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    if not (mode is GenerationMode.NEGATIVE and label in NOTHING_TO_NEGATE)
]


@pytest.mark.parametrize(("label", "mode"), CASES)
def test_operation_conforms(server: tuple[LiveServer, str], label: str, mode: GenerationMode) -> None:
    running, cookie = server
    operation = OPERATIONS[label]
    chosen = checks_for(mode)

    @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: schemathesis.Case) -> None:
        # Negative cases may drop the session on purpose, to see the 401; then we send none either.
        signed_in = label not in NO_SESSION and not SCHEMA.is_security_param_negated(case)  # type: ignore[attr-defined]
        cookies = {"_me_sess": cookie} if signed_in else {}
        response = case.call(base_url=running.url + "/api", cookies=cookies, timeout=15)
        case.validate_response(response, checks=chosen)

    run()
