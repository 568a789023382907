"""Schemathesis over the whole /openapi.yaml against a live server, logged in: no 5xx, no schema violation.

tests/api/test_auth_schemathesis.py covers the authentication, user, settings
and website operations; this file covers the rest (events, stats, share links,
health), DELETE /user on a server of its own, and checks that the two files
together leave no operation of the document out. Stats calls name the
registered site half of the time (a random hostname would only ever get the
404), share-link calls one of its two links (one with a k-anonymity floor of 5)
half of the time, and the site has data, so the answers have rows to check
against the schemas. The signed-in operations run with the session cookie and,
with fewer examples, with an admin-scope API key.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402

from tests.api.test_auth_schemathesis import OUR_TAGS as ACCOUNT_TAGS  # noqa: E402
from tests.api.test_auth_schemathesis import SKIPPED as ACCOUNT_SKIPPED  # noqa: E402
from tests.dashboard.seed import seed_views  # noqa: E402
from tests.helpers import LiveServer, live_server  # noqa: E402
from tests.schemathesis_support import POSITIVE_CHECKS, checks_for, load_our_schema  # noqa: E402

SITE = "example.com"
EXAMPLES = 30  # per operation and mode; the whole file takes about a minute on a 2-core machine
KEY_EXAMPLES = 10  # the signed-in operations again with an API key instead of the cookie
PUBLIC = {"GET /event/ping", "POST /event/hit", "POST /event", "POST /send", "GET /health"}


SCHEMA = load_our_schema()
ALL_OPERATIONS = {op.label: op for result in SCHEMA.get_all_operations() for op in [result.ok()]}  # type: ignore[attr-defined]
OPERATIONS = {
    label: op
    for label, op in ALL_OPERATIONS.items()
    if not set(op.tags or ()) & ACCOUNT_TAGS and label not in ACCOUNT_SKIPPED
}


@dataclass(frozen=True)
class Credentials:
    cookie: str
    key: str  # an admin-scope API key of the same account
    shares: tuple[str, ...]  # share links of SITE: no floor, and a floor of 5


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, Credentials]]:
    path: Path = tmp_path_factory.mktemp("schemathesis-all")
    with live_server(path, level="error") as running:
        client = running.client()
        client.login()
        assert client.post("/api/websites", json_body={"hostname": SITE}).status == 201
        seed_views(Path(running.config.analyticsdb), SITE, days=10, per_day=8)
        key = client.post("/api/user/keys", json_body={"name": "schemathesis", "scope": "admin"}).json()["key"]
        shares = tuple(client.post(f"/api/websites/{SITE}/shares", json_body={"k": k}).json()["id"] for k in (0, 5))
        credentials = Credentials(client.cookies["_me_sess"], key, shares)
        client.close()
        yield running, credentials


def test_the_two_files_cover_every_operation() -> None:
    covered = set(OPERATIONS) | {
        label
        for label, op in ALL_OPERATIONS.items()
        if set(op.tags or ()) & ACCOUNT_TAGS and label not in ACCOUNT_SKIPPED
    }
    assert covered | {"DELETE /user"} == set(ALL_OPERATIONS)
    # 15 stats (13, and entry and exit pages), /imported, /progress, /live, /goals, the sparklines of many sites,
    # ping, hit, Plausible's event, Umami's send, health; a share link's 15 stats, /imported, itself and its
    # password (ours)
    assert len(OPERATIONS) == 43


def _shared(label: str) -> bool:
    """A share link's operation: it answers to the link, never to the cookie or a key."""
    return label.startswith(("GET /share/", "POST /share/"))


def _call(
    running: LiveServer, creds: Credentials, case: schemathesis.Case, label: str, mode: GenerationMode, credential: str
) -> None:
    # Negative cases may drop the credentials on purpose, to see the 401; then we send none either.
    negated = SCHEMA.is_security_param_negated(case)  # type: ignore[attr-defined]
    signed_in = label not in PUBLIC and not _shared(label) and not negated
    cookies = {"_me_sess": creds.cookie} if signed_in and credential == "cookie" else {}
    headers = {"Authorization": f"Bearer {creds.key}"} if signed_in and credential == "key" else {}
    if label.startswith("GET /website/") and mode is GenerationMode.POSITIVE and random.random() < 0.5:
        case.path_parameters = {**(case.path_parameters or {}), "hostname": SITE}
    if label == "GET /websites/sparklines" and mode is GenerationMode.POSITIVE and random.random() < 0.5:
        case.query = {**(case.query or {}), "hostnames": SITE}
    if _shared(label) and mode is GenerationMode.POSITIVE and random.random() < 0.5:
        case.path_parameters = {**(case.path_parameters or {}), "share": random.choice(creds.shares)}
    response = case.call(base_url=running.url + "/api", cookies=cookies, headers=headers, timeout=15)
    case.validate_response(response, checks=checks_for(mode))


def _has_inputs(label: str) -> bool:
    """Whether negative cases can be made: an operation with no parameter and no body has none."""
    op = ALL_OPERATIONS[label]
    return any(len(group) for group in (op.query, op.headers, op.path_parameters, op.body, op.cookies))


CASES = [
    (label, mode, credential)
    for label in sorted(OPERATIONS)
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    for credential in ("cookie", "key")
    if (mode is GenerationMode.POSITIVE or _has_inputs(label))
    and not (credential == "key" and (label in PUBLIC or _shared(label)))
]


@pytest.mark.parametrize(
    ("label", "mode", "credential"), CASES, ids=[f"{label}-{mode.value}-{cred}" for label, mode, cred in CASES]
)
def test_operation_conforms(
    server: tuple[LiveServer, Credentials], label: str, mode: GenerationMode, credential: str
) -> None:
    running, creds = server
    _check_operation(running, creds, label, mode, EXAMPLES if credential == "cookie" else KEY_EXAMPLES, credential)


def _check_operation(
    running: LiveServer, creds: Credentials, label: str, mode: GenerationMode, examples: int, credential: str
) -> None:
    @settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(case=ALL_OPERATIONS[label].as_strategy(generation_mode=mode))
    def run(case: schemathesis.Case) -> None:
        _call(running, creds, case, label, mode, credential)

    run()


def test_delete_user_conforms(tmp_path: Path) -> None:
    """On a server of its own, as a case could end the session: generated current passwords are wrong
    (403, then 429 once the account's failures from this network are throttled), or missing (400)."""
    with live_server(tmp_path, level="error") as running:
        creds = Credentials(running.session_cookie(), "", ())
        _check_operation(running, creds, "DELETE /user", GenerationMode.NEGATIVE, 10, "cookie")
        _check_operation(running, creds, "DELETE /user", GenerationMode.POSITIVE, 10, "cookie")


STATEFUL_SCENARIOS = 40  # each a short chain: add a site, then read, rename, query or delete it
STATEFUL_STEPS = 6


def test_stateful_website_workflows(tmp_path: Path) -> None:
    """Follow the document's links: a site made by POST /websites is read, renamed, queried and deleted."""
    schema = SCHEMA.exclude(operation_id=["delete-user", "post-auth-logout"])  # type: ignore[attr-defined]
    with live_server(tmp_path, level="error") as running:
        client = running.client()
        try:
            client.login()
            cookie = client.cookies["_me_sess"]

            class Workflow(schema.as_state_machine()):  # type: ignore[misc]
                def get_call_kwargs(self, case: schemathesis.Case) -> dict[str, object]:
                    signed_in = not schema.is_security_param_negated(case)
                    cookies = {"_me_sess": cookie} if signed_in else {}
                    return {"base_url": running.url + "/api", "cookies": cookies, "timeout": 15}

                def teardown(self) -> None:
                    # Each scenario must start from the same server state, or Hypothesis cannot replay
                    # one (a POST /websites that answered 201 would answer 409 the second time).
                    for site in client.get("/api/websites").json():
                        assert client.delete(f"/api/websites/{site['hostname']}").status == 204
                    # The same for the accounts and keys a scenario made (a site's share links go with it).
                    me = client.get("/api/user").json()["username"]
                    for user in client.get("/api/users").json():
                        if user["username"] != me:
                            assert client.delete(f"/api/users/{quote(user['username'], safe='')}").status == 204
                    for key in client.get("/api/user/keys").json():
                        assert client.delete(f"/api/user/keys/{key['id']}").status == 204

                def validate_response(
                    self, response: object, case: schemathesis.Case, additional_checks: object = None, **kwargs: object
                ) -> None:
                    # The default set adds "schema-valid data is accepted", which cannot hold where
                    # parameters depend on each other (interval needs start and end): OpenAPI cannot
                    # say so, and upstream answers 500 there where we answer 400. The stateless test
                    # makes the same choice.
                    case.validate_response(
                        response, checks=POSITIVE_CHECKS, transport_kwargs=kwargs or None, recorder=self.recorder
                    )

            Workflow.run(
                settings=settings(
                    max_examples=STATEFUL_SCENARIOS,
                    stateful_step_count=STATEFUL_STEPS,
                    deadline=None,
                    database=None,
                    suppress_health_check=list(HealthCheck),
                )
            )
            assert client.get("/api/user").status == 200, "the workflow must not have ended the session"
        finally:
            client.close()
