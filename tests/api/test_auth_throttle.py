"""Login throttling: the pure back-off table, then the 429 over HTTP per address and per username."""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from medama_core import throttle
from medama_core.throttle import LoginThrottle
from tests.helpers import Client, live_server

WRONG = {"username": "admin", "password": "wrong-password"}
RIGHT = {"username": "admin", "password": "CHANGE_ME_ON_FIRST_LOGIN"}


def test_free_attempts_then_doubling_waits_up_to_the_cap() -> None:
    table = LoginThrottle()
    keys = ["k"]
    for _ in range(throttle.FREE_ATTEMPTS):
        assert table.retry_after(keys, 100.0) == 0
        table.attempt(keys, 100.0)
    waits = []
    now = 100.0
    for _ in range(15):
        wait = table.retry_after(keys, now)
        waits.append(wait)
        now += wait
        assert table.retry_after(keys, now) == 0
        table.attempt(keys, now)
    assert waits[:5] == [1, 2, 4, 8, 16]
    assert max(waits) == throttle.MAX_DELAY_S


def test_success_clears_and_idle_keys_are_forgotten() -> None:
    table = LoginThrottle()
    for _ in range(throttle.FREE_ATTEMPTS):
        table.attempt(["a", "b"], 0.0)
    assert table.retry_after(["a"], 0.0) == 1
    table.succeeded(["a"])
    assert table.retry_after(["a"], 0.0) == 0
    assert table.retry_after(["b"], 0.0) == 1
    assert table.retry_after(["b"], throttle.FORGET_AFTER_S + 1) == 0
    assert len(table) == 0


def test_the_table_is_bounded() -> None:
    table = LoginThrottle(max_keys=100)
    for i in range(1000):
        table.attempt([f"addr:{i}"], float(i))
    assert len(table) == 100
    assert table.retry_after(["addr:999"], 999.0) == 0  # newest kept (one failure only)


def test_sixth_failure_gets_429_with_retry_after_and_waiting_works(client: Client) -> None:
    for _ in range(throttle.FREE_ATTEMPTS):
        assert client.post("/api/auth/login", json_body=WRONG).status == 401
    blocked = client.post("/api/auth/login", json_body=RIGHT)  # even the right password waits
    assert blocked.status == 429
    assert blocked.json()["error"]["code"] == 429
    assert blocked.headers["retry-after"] == "1"
    time.sleep(1.1)
    assert client.post("/api/auth/login", json_body=RIGHT).status == 200
    # Success cleared the counters: five more free tries.
    for _ in range(throttle.FREE_ATTEMPTS):
        assert client.post("/api/auth/login", json_body=WRONG).status == 401


@pytest.fixture
def proxied(tmp_path: Path) -> Iterator[Client]:
    """A server behind a trusted local proxy, so each request can claim its own client address."""
    with live_server(tmp_path, trustedproxies=("loopback",)) as server:
        client = server.client()
        yield client
        client.close()


def login_from(client: Client, address: str, body: dict[str, str]) -> int:
    return client.post("/api/auth/login", json_body=body, headers={"X-Forwarded-For": address}).status


def test_one_username_is_throttled_across_addresses(proxied: Client) -> None:
    for i in range(throttle.FREE_ATTEMPTS):
        assert login_from(proxied, f"203.0.113.{i}", WRONG) == 401
    assert login_from(proxied, "198.51.100.7", RIGHT) == 429
    # Another username from a fresh address is not affected.
    assert login_from(proxied, "198.51.100.8", {"username": "someone", "password": "secret"}) == 401


def test_one_address_is_throttled_across_usernames(proxied: Client) -> None:
    for i in range(throttle.FREE_ATTEMPTS):
        assert login_from(proxied, "203.0.113.9", {"username": f"user{i}", "password": "secret"}) == 401
    assert login_from(proxied, "203.0.113.9", {"username": "other", "password": "secret"}) == 429
    assert login_from(proxied, "203.0.113.10", RIGHT) == 200


def test_parallel_guesses_cannot_slip_past_the_limit(client: Client) -> None:
    """Attempts count when they start, so a burst is cut at the limit even while hashes are still running."""

    def attempt(_: int) -> int:
        other = Client(client.port)
        try:
            return other.post("/api/auth/login", json_body=WRONG).status
        finally:
            other.close()

    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        statuses = list(pool.map(attempt, range(12)))
    assert statuses.count(401) == throttle.FREE_ATTEMPTS
    assert statuses.count(429) == 12 - throttle.FREE_ATTEMPTS
