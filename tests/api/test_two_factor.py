"""Two-factor login: turned on with a confirmed code, asked for at sign-in, off with a code; codes throttled."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from medama_core import totp
from tests.helpers import Client, LiveServer, Result, live_server

PASSWORD = "CHANGE_ME_ON_FIRST_LOGIN"


def error(result: Result) -> tuple[int, str]:
    return result.status, result.json()["error"]["message"]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    with live_server(tmp_path, level="warn", trustedproxies=("loopback",)) as running:
        yield running


def turn_on(client: Client) -> tuple[str, list[str]]:
    setup = client.post("/api/user/totp")
    assert setup.status == 200
    secret, uri = setup.json()["secret"], setup.json()["uri"]
    assert uri.startswith("otpauth://totp/Medama:admin?") and f"secret={secret}" in uri
    confirmed = client.post("/api/user/totp/confirm", json_body={"code": totp.code_at(secret, time.time())})
    assert confirmed.status == 200, confirmed.body
    return secret, confirmed.json()["recoveryCodes"]


def login(client: Client, code: str | None = None, network: str = "198.51.100.1") -> Result:
    body = {"username": "admin", "password": PASSWORD} | ({} if code is None else {"code": code})
    return client.post("/api/auth/login", json_body=body, headers={"X-Forwarded-For": network})


def login_once(server: LiveServer, code: str | None = None, network: str = "198.51.100.1") -> Result:
    """A sign-in from a browser of its own."""
    client = server.client()
    try:
        return login(client, code, network)
    finally:
        client.close()


def test_sign_in_needs_a_code_once_it_is_on(server: LiveServer) -> None:
    client = server.client()
    client.login()
    assert client.get("/api/user").json()["totpEnabled"] is False
    secret, codes = turn_on(client)
    assert len(codes) == len(set(codes)) == 10
    assert client.get("/api/user").json()["totpEnabled"] is True
    assert error(client.post("/api/user/totp")) == (409, "two-factor login is already on; turn it off first")
    fresh = server.client()
    try:
        assert error(login(fresh)) == (401, "two-factor code required")
        assert "_me_sess" not in fresh.cookies
        assert error(login(fresh, "000000" if totp.code_at(secret, time.time()) != "000000" else "111111")) == (
            401, "two-factor code is wrong")  # fmt: skip
        assert error(login(fresh, "12"))[0] == 401
        # A wrong password with a right code is still a wrong password: the code never helps a guesser.
        wrong = fresh.post("/api/auth/login", json_body={"username": "admin", "password": "wrong-pw", "code": codes[0]})
        assert error(wrong) == (401, "user not found")
        # The code of the step after the one used to confirm: it works once, a replay is refused.
        later = totp.code_at(secret, time.time() + totp.STEP_S)
        assert login(fresh, later).status == 200
        assert error(login_once(server, later)) == (401, "two-factor code is wrong")
        # A recovery code signs in once, however it is typed.
        assert login_once(server, codes[1].upper().replace("-", " ")).status == 200
        assert error(login_once(server, codes[1])) == (401, "two-factor code is wrong")
    finally:
        fresh.close()
        client.close()


def test_turning_it_off_needs_a_code(server: LiveServer) -> None:
    client = server.client()
    client.login()
    secret, codes = turn_on(client)
    assert error(client.request("DELETE", "/api/user/totp", json_body={"code": "999999"}))[0] == 403
    assert client.request("DELETE", "/api/user/totp", json_body={"code": codes[0]}).status == 204
    assert client.get("/api/user").json()["totpEnabled"] is False
    assert login_once(server).status == 200  # the password alone again
    assert error(client.request("DELETE", "/api/user/totp", json_body={"code": codes[1]}))[0] == 409
    client.close()


def test_confirming_needs_the_apps_code(server: LiveServer) -> None:
    client = server.client()
    client.login()
    assert error(client.post("/api/user/totp/confirm", json_body={"code": "123456"}))[0] == 409  # nothing to confirm
    secret = client.post("/api/user/totp").json()["secret"]
    wrong = "000000" if totp.code_at(secret, time.time()) != "000000" else "111111"
    assert error(client.post("/api/user/totp/confirm", json_body={"code": wrong})) == (403, "two-factor code is wrong")
    assert login_once(server).status == 200  # still off
    client.close()


def test_codes_are_throttled_like_passwords(server: LiveServer) -> None:
    """With the right password, wrong codes from one network stop after the same free attempts as passwords,
    and a correct password without its code neither clears nor resets the count."""
    client = server.client()
    client.login()
    secret, _ = turn_on(client)
    guesser = server.client()
    statuses = []
    for i in range(8):
        step = login(guesser, network="203.0.113.5")  # the code step: counts, never clears
        guess = login(guesser, f"{(i * 7919) % 1_000_000:06d}", network="203.0.113.5")
        statuses += [step.status, guess.status]
    assert statuses[:4] == [401, 401, 401, 401]
    assert 429 in statuses[4:8]
    right = login(guesser, totp.code_at(secret, time.time() + totp.STEP_S), network="203.0.113.5")
    assert right.status == 429 and int(right.headers["retry-after"]) >= 1
    assert login_once(server, totp.code_at(secret, time.time() + totp.STEP_S), network="192.0.2.9").status == 200
    guesser.close()
    client.close()
