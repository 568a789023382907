"""Login throttling: the pure back-off table, then the 429 over HTTP per (network, username) and per network."""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from medama_core import throttle
from medama_core.throttle import LoginThrottle, login_keys
from tests.helpers import Client, live_server

WRONG = {"username": "admin", "password": "wrong-password"}
RIGHT = {"username": "admin", "password": "CHANGE_ME_ON_FIRST_LOGIN"}
NET = "203.0.113.0/24"


def test_free_attempts_then_doubling_waits_up_to_the_cap() -> None:
    table = LoginThrottle()
    keys = login_keys(NET, "admin")
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


def test_a_network_trying_many_usernames_waits_after_its_own_allowance() -> None:
    table = LoginThrottle()
    for i in range(throttle.NETWORK_FREE_ATTEMPTS):
        keys = login_keys(NET, f"user{i}")
        assert table.retry_after(keys, 0.0) == 0
        table.attempt(keys, 0.0)
    assert table.retry_after(login_keys(NET, "anyone"), 0.0) == 1
    assert table.retry_after(login_keys("198.51.100.0/24", "anyone"), 0.0) == 0


def test_success_clears_the_accounts_failures_not_the_networks_and_idle_keys_are_forgotten() -> None:
    table = LoginThrottle()
    for _ in range(throttle.FREE_ATTEMPTS):
        table.attempt(login_keys(NET, "admin"), 0.0)
    assert table.retry_after(login_keys(NET, "admin"), 0.0) == 1
    table.succeeded(login_keys(NET, "admin"))
    assert table.retry_after(login_keys(NET, "admin"), 0.0) == 0
    assert len(table) == 1  # the network's own count stays: signing in to one's own account must not reset it
    assert table.retry_after(login_keys(NET, "admin"), throttle.FORGET_AFTER_S + 1) == 0
    assert len(table) == 0


def test_a_flood_of_other_keys_never_evicts_an_active_lock() -> None:
    """Upstream's table and ours before this change dropped the least recently failed key, so 5,000
    failures with fresh usernames and addresses erased the owner's lock on a guesser."""
    table = LoginThrottle(max_keys=100)
    guesser = login_keys(NET, "admin")
    for _ in range(throttle.FREE_ATTEMPTS):
        table.attempt(guesser, 0.0)
    for i in range(5000):
        table.attempt(login_keys(f"10.{i // 256}.{i % 256}.0/24", f"user{i}"), 1.0 + i / 1000)
    assert len(table) <= 100
    assert table.retry_after(guesser, 0.5) == 1, "the guesser's lock was evicted"
    assert table.locks() == 1


def test_a_table_full_of_locks_leaves_new_keys_untracked_and_lets_them_try() -> None:
    table = LoginThrottle(max_keys=10)
    for i in range(5):  # 5 networks x (pair + network key) = 10 records, all locks once each failed enough
        for _ in range(throttle.NETWORK_FREE_ATTEMPTS):
            table.attempt(login_keys(f"192.0.2.{i}/32", "admin"), 0.0)
    assert len(table) == table.locks() == 10
    newcomer = login_keys("198.51.100.0/24", "owner")
    assert table.retry_after(newcomer, 0.0) == 0  # a network that has not failed may try
    assert not table.full_warning(0.0)
    table.attempt(newcomer, 0.0)
    assert len(table) == 10 and table.untracked == 2
    assert table.full_warning(0.0) and not table.full_warning(1.0)  # one log line per interval
    assert table.full_warning(throttle.FULL_WARNING_INTERVAL_S)
    for i in range(5):
        assert table.retry_after(login_keys(f"192.0.2.{i}/32", "admin"), 0.0) > 0, "a lock was dropped"
    # Forgotten locks make room again.
    table.attempt(newcomer, throttle.FORGET_AFTER_S + 1)
    assert len(table) == 2 and table.locks() == 0


def test_sixth_failure_gets_429_with_retry_after_and_waiting_works(client: Client) -> None:
    for _ in range(throttle.FREE_ATTEMPTS):
        assert client.post("/api/auth/login", json_body=WRONG).status == 401
    blocked = client.post("/api/auth/login", json_body=RIGHT)  # from the same network even the right password waits
    assert blocked.status == 429
    assert blocked.json()["error"]["code"] == 429
    assert blocked.headers["retry-after"] == "1"
    time.sleep(1.1)
    assert client.post("/api/auth/login", json_body=RIGHT).status == 200
    # Success cleared the account's counter on this network: five more free tries.
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


def test_a_stranger_cannot_lock_the_owner_out_from_another_network(proxied: Client) -> None:
    for _ in range(throttle.FREE_ATTEMPTS):
        assert login_from(proxied, "203.0.113.7", WRONG) == 401
    assert login_from(proxied, "203.0.113.7", WRONG) == 429  # the guesser waits
    assert login_from(proxied, "198.51.100.7", RIGHT) == 200  # the owner, elsewhere, does not
    assert login_from(proxied, "2001:db8:1::5", RIGHT) == 200


def test_addresses_of_one_network_share_its_count(proxied: Client) -> None:
    """6 addresses of one /24 x 5 tries with fresh usernames gave 30 x 401 when the key was the exact address."""
    statuses = [
        login_from(proxied, f"203.0.113.{i // 5}", {"username": f"user{i}", "password": "guess"}) for i in range(30)
    ]
    free = throttle.NETWORK_FREE_ATTEMPTS
    assert statuses == [401] * free + [429] * (30 - free), statuses
    # One account from many addresses of one network: its own, smaller allowance. IPv6: one /48.
    statuses = [login_from(proxied, f"2001:db8:7:{i}::1", WRONG) for i in range(6)]
    assert statuses == [401] * throttle.FREE_ATTEMPTS + [429]


def test_one_network_is_throttled_across_usernames(proxied: Client) -> None:
    for i in range(throttle.NETWORK_FREE_ATTEMPTS):
        assert login_from(proxied, f"203.0.113.{i}", {"username": f"user{i}", "password": "secret"}) == 401
    assert login_from(proxied, "203.0.113.99", {"username": "other", "password": "secret"}) == 429
    assert login_from(proxied, "198.51.100.10", RIGHT) == 200


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


def test_the_wait_runs_from_the_answer_to_the_last_failure() -> None:
    """A check slowed down by a busy machine does not eat into the wait that follows it."""
    table = LoginThrottle()
    keys = login_keys(NET, "admin")
    for _ in range(throttle.FREE_ATTEMPTS):
        table.attempt(keys, 0.0)
    table.failed(keys, 3.0)  # the fifth check took 3 s
    assert table.retry_after(keys, 3.5) == 1
    assert table.retry_after(keys, 4.0) == 0
