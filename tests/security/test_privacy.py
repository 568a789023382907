"""No IP address or User-Agent string reaches the disk: not the databases, their WAL and SHM files, nor the log.

Visitors come through a trusted local proxy (`-trustedproxies loopback`) with
distinctive addresses in X-Forwarded-For and a User-Agent carrying a canary
token. They do everything a visitor or an attacker can: pings, page views,
unloads, custom events, bot and unknown-site hits, malformed hits, rate-limited
bursts, failed and successful logins, stats reads. The server logs at debug
level. Then every file in its directory is searched, once after kill -9 (so
the WAL still holds the latest pages) and once after a clean restart and
shutdown. The hits must have been stored: the search would prove nothing if
they had all been dropped.
"""

from __future__ import annotations

import ipaddress
import json
import signal
import sqlite3
from pathlib import Path

import pytest

from tests.faults.process import ADMIN, ServerProcess
from tests.helpers import Client

SITE = "example.com"
CANARY = "PrivacyCanary-7d3f9a"
UA = f"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 {CANARY}"
BOT_UA = f"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html) {CANARY}bot"
ADDRESSES = ("203.0.113.197", "2001:db8:dead:beef::1337", "198.51.100.73")
RATE_LIMIT = 40  # per minute per network: low enough that the burst below is refused in part


def needles() -> list[bytes]:
    found = [CANARY.encode(), b"Googlebot"]
    for text in ADDRESSES:
        address = ipaddress.ip_address(text)
        found += [text.encode(), address.exploded.encode(), address.packed]
        if address.version == 4:
            found.append(text.rsplit(".", 1)[0].encode() + b".")  # its /24, the rate limiter's key
        else:
            found.append(":".join(address.exploded.split(":")[:3]).encode())  # its /48
    return found


def visit(port: int) -> int:
    """Act as every visitor; returns how many page views should have been stored."""
    client = Client(port)
    stored = 0
    try:
        client.login(*ADMIN)
        assert client.post("/api/websites", json_body={"hostname": SITE}).status == 201
        # The documentation ranges used here are bogons, which the abusive-IP preset blocks.
        presets_off = {"blockAbusiveIPs": False, "blockTorExitNodes": False}
        assert client.patch("/api/tenant/settings", json_body=presets_off).status == 200
        cookie = client.cookies["_me_sess"]
        for n, address in enumerate(ADDRESSES):
            base = {"User-Agent": UA, "Accept-Language": "en-GB", "X-Forwarded-For": address,
                    "Content-Type": "text/plain"}  # fmt: skip
            first = client.get("/api/event/ping", headers=base)
            client.get(
                "/api/event/ping?u=example.com%2F",
                headers={**base, "If-Modified-Since": first.headers["last-modified"]},
            )
            for i in range(3):
                bid = f"privacy{n}x{i}"
                load = {"e": "load", "b": bid, "u": f"https://{SITE}/p{i}", "r": "https://news.example/", "p": True,
                        "q": True, "t": "Europe/Paris", "d": {"plan": "pro"}}  # fmt: skip
                assert client.post("/api/event/hit", body=json.dumps(load).encode(), headers=base).status == 204
                stored += 1
                unload = {"e": "unload", "b": bid, "m": 4000}
                assert client.post("/api/event/hit", body=json.dumps(unload).encode(), headers=base).status == 204
            custom = {"e": "custom", "g": SITE, "b": f"privacy{n}x0", "d": {"button": "buy"}}
            assert client.post("/api/event/hit", body=json.dumps(custom).encode(), headers=base).status == 204
            bot = {**base, "User-Agent": BOT_UA}
            client.post("/api/event/hit", body=json.dumps({**load, "b": "bot"}).encode(), headers=bot)
            unknown = {**load, "u": "https://not-registered.example/"}
            assert client.post("/api/event/hit", body=json.dumps(unknown).encode(), headers=base).status == 404
            assert client.post("/api/event/hit", body=b"{not json", headers=base).status == 400
            for header in ("X-Real-IP", "CF-Connecting-IP"):
                client.get("/api/event/ping", headers={"User-Agent": UA, header: address})
            person = {name: value for name, value in base.items() if name != "Content-Type"}
            wrong = client.post("/api/auth/login", json_body={"username": ADMIN[0], "password": "wrong-password"},
                                headers=person)  # fmt: skip
            assert wrong.status in (401, 429)
            client.post("/api/auth/login", json_body={"username": f"{CANARY}-user", "password": "wrong-password"},
                        headers=person)  # fmt: skip
            signed = {**base, "Cookie": f"_me_sess={cookie}"}
            assert client.get(f"/api/website/{SITE}/summary", headers=signed).status == 200
            assert client.get(f"/api/website/{SITE}/browsers", headers=signed).status == 200
            client.get("/api/website/unknown.example/pages", headers=signed)
            client.get("/no/such/page", headers=base)
            statuses = [client.get("/api/event/ping", headers=base).status for _ in range(RATE_LIMIT + 5)]
            assert 429 in statuses, "the rate limiter must have seen this address"
    finally:
        client.close()
    return stored


def search(directory: Path) -> list[str]:
    found = []
    for path in (path for path in directory.iterdir() if path.is_file()):
        data = path.read_bytes()
        for needle in needles():
            if needle in data:
                found.append(f"{path.name}: {needle!r}")
    return found


@pytest.mark.slow
def test_no_ip_or_user_agent_reaches_the_disk(tmp_path: Path) -> None:
    args = ("-trustedproxies", "loopback", "-ratelimit", str(RATE_LIMIT))
    server = ServerProcess(tmp_path, *args, level="debug")
    with server:
        stored = visit(server.port)
        assert server.kill(signal.SIGKILL) == -signal.SIGKILL
    names = {path.name for path in tmp_path.iterdir()}
    assert "me_analytics.db-wal" in names and "server.log" in names, names
    assert not search(tmp_path), search(tmp_path)

    conn = sqlite3.connect(server.analyticsdb)
    try:
        views = conn.execute("SELECT count(*), min(ua_browser), max(ua_browser) FROM views").fetchone()
    finally:
        conn.close()
    assert views == (stored, "Chrome", "Chrome"), (
        "the hits must have been stored, as Chrome, for this to prove anything"
    )

    with server:  # restart on the same files, then a clean shutdown that checkpoints the WAL
        Client(server.port).close()
    assert not search(tmp_path), search(tmp_path)
    log = server.log_text()
    assert '"level": "debug"' in log and "request" in log, "the log must have been written at debug level"


@pytest.mark.parametrize("planted", needles())
def test_the_search_finds_each_form_it_looks_for(tmp_path: Path, planted: bytes) -> None:
    (tmp_path / "me_analytics.db-wal").write_bytes(b"\x00" * 100 + planted + b"\x00" * 100)
    assert f"me_analytics.db-wal: {planted!r}" in search(tmp_path)
