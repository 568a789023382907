"""The network fuzzer against a real server process: 6,000 malformed and random requests, then it must still serve.

bench/fuzz.py runs 100,000 cases (`python bench/fuzz.py --cases 100000`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.faults.process import ADMIN, ServerProcess
from tests.helpers import Client
from tests.security import fuzzer

CASES = 6000
SEED = 20260613  # fixed, so a CI failure can be replayed: Fuzzer(SEED, cookie).cases(CASES)


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, str]]:
    with ServerProcess(tmp_path_factory.mktemp("fuzz"), "-ratelimit", "0") as server:
        client = Client(server.port)
        client.login(*ADMIN)
        assert client.post("/api/websites", json_body={"hostname": fuzzer.SITE}).status == 201
        cookie = client.cookies["_me_sess"]
        client.close()
        yield server, cookie


@pytest.mark.slow
def test_fuzzed_requests_get_proper_answers_and_the_server_keeps_serving(target: tuple[ServerProcess, str]) -> None:
    server, cookie = target
    report = fuzzer.run(server.port, fuzzer.Fuzzer(SEED, cookie).cases(CASES))
    print(report.summary())
    assert report.requests == CASES
    assert server.alive(), "the server crashed"
    assert report.server_errors == 0, report.summary()
    assert report.problem_count == 0, report.summary()
    assert set(report.kinds) == set(fuzzer.GENERATOR_WEIGHTS), "every generator must have run"
    for status in (200, 204, 400, 401, 404, 405, 413, 415, 431):
        assert report.statuses[status], f"no {status} seen: the fuzzer has lost a kind of input"
    # Most requests carry the session; if it were lost mid-run (a logout), 401s would swamp the rest.
    assert report.statuses[401] < CASES * 0.2, report.summary()
    log = server.log_text()
    assert "unhandled exception" not in log and "Traceback" not in log, log[-3000:]

    # Still serving: health, a hit stored and counted, stats for the session from before the run.
    client = Client(server.port)
    try:
        assert client.get("/api/health").status == 200
        body = {"e": "load", "b": "after-fuzz", "u": f"https://{fuzzer.SITE}/after-fuzz", "r": "", "p": True,
                "q": True, "t": "Europe/Paris"}  # fmt: skip
        headers = {"User-Agent": fuzzer.CHROME, "Accept-Language": "en", "Content-Type": "application/json"}
        assert client.post("/api/event/hit", body=json.dumps(body).encode(), headers=headers).status == 204
        pages = client.get(
            f"/api/website/{fuzzer.SITE}/pages?path[eq]=/after-fuzz", headers={"Cookie": f"_me_sess={cookie}"}
        )
        assert pages.status == 200
        assert [row["path"] for row in pages.json()] == ["/after-fuzz"]
    finally:
        client.close()


# The judge itself must be able to fail: each of these answers breaks one rule.
GOOD = b"HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nX-Content-Type-Options: nosniff\r\n"
ERROR_BODY = b'{"error":{"code":400,"message":"x"}}'


def framed(head: bytes, body: bytes) -> bytes:
    return head + b"Content-Length: %d\r\n\r\n" % len(body) + body


@pytest.mark.parametrize(
    ("answer", "complete", "problem"),
    [
        (framed(GOOD, ERROR_BODY), True, None),
        (b"", False, None),
        (b"", True, "no answer"),
        (framed(GOOD.replace(b"400 Bad Request", b"500 Internal Server Error"), ERROR_BODY), True, "server error"),
        (framed(GOOD.replace(b"X-Content-Type-Options: nosniff\r\n", b""), ERROR_BODY), True, "nosniff"),
        (framed(GOOD, b'{"error":{"code":404,"message":"x"}}'), True, "does not match"),
        (framed(GOOD, b"<html>oops</html>"), True, "error shape"),
        (framed(GOOD.replace(b"application/json", b"text/html"), ERROR_BODY), True, "content type"),
        (framed(GOOD, ERROR_BODY)[:-5], True, "cut off"),
        (
            b"HTTP/1.1 200 OK\r\nX-Content-Type-Options: nosniff\r\nContent-Length: 20\r\n\r\nfrom __future__ impo",
            True,
            "leaks",
        ),
        (b"HTTP/1.0 200 OK\r\n\r\n", True, "status line"),
    ],
)
def test_the_judge_flags_each_broken_answer(answer: bytes, complete: bool, problem: str | None) -> None:
    _, found = fuzzer.judge(fuzzer.Case("test", b"", complete), answer)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found
