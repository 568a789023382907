"""Schemathesis against our openapi.yaml and a live server: no 5xx, and every answer matches the document.

Covers the authentication, user, settings and website operations (with the
accounts, API keys, two-factor and share-link ones). Two are left out because
they end the session the run depends on: DELETE /user (tested in
test_users.py) and logout with the run's own cookie (logout gets only the
cookies Schemathesis generates). Each operation runs as the signed-in browser
(the cookie) and as an admin-scope API key (`Authorization: Bearer`), fewer
examples for the key: a key is refused the keys and two-factor operations
(403), as the document says.
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
KEY_EXAMPLES = 8  # the same operations again with an API key: the access check differs, the handlers do not


SCHEMA = load_our_schema()
OPERATIONS = {
    op.label: op
    for result in SCHEMA.get_all_operations()  # type: ignore[attr-defined]
    for op in [result.ok()]
    if set(op.tags or ()) & OUR_TAGS and op.label not in SKIPPED
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, engine: str) -> Iterator[tuple[LiveServer, str, str]]:
    path: Path = tmp_path_factory.mktemp("schemathesis")
    with live_server(path, level="error") as running:
        client = running.client()
        client.login()
        cookie = client.cookies["_me_sess"]
        client.post("/api/websites", json_body={"hostname": "example.com"})
        key = client.post("/api/user/keys", json_body={"name": "schemathesis", "scope": "admin"}).json()["key"]
        client.close()
        yield running, cookie, key


def test_every_operation_of_ours_is_covered() -> None:
    # 17 with POST /websites/{hostname}/import, then the site settings, notes and export; accounts, keys,
    # two-factor, share links, goals (all ours)
    assert len(OPERATIONS) == 39


CASES = [
    pytest.param(label, mode, credential, id=f"{label}-{mode.value}-{credential}")
    for label in sorted(OPERATIONS)
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    for credential in ("cookie", "key")
    if not (mode is GenerationMode.NEGATIVE and label in NOTHING_TO_NEGATE)
    and not (credential == "key" and label in NO_SESSION)
]


@pytest.mark.parametrize(("label", "mode", "credential"), CASES)
def test_operation_conforms(
    server: tuple[LiveServer, str, str], label: str, mode: GenerationMode, credential: str
) -> None:
    running, cookie, key = server
    operation = OPERATIONS[label]
    chosen = checks_for(mode)
    examples = EXAMPLES if credential == "cookie" else KEY_EXAMPLES

    @settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: schemathesis.Case) -> None:
        # Negative cases may drop the credentials on purpose, to see the 401; then we send none either.
        signed_in = label not in NO_SESSION and not SCHEMA.is_security_param_negated(case)  # type: ignore[attr-defined]
        cookies = {"_me_sess": cookie} if signed_in and credential == "cookie" else {}
        headers = {"Authorization": f"Bearer {key}"} if signed_in and credential == "key" else {}
        response = case.call(base_url=running.url + "/api", cookies=cookies, headers=headers, timeout=15)
        case.validate_response(response, checks=chosen)

    run()
