"""Repeated kill -9 under load: after each restart the databases open, and every acknowledged hit is stored whole.

One round: start the server on the same databases, let sender threads post
hits over keep-alive connections, SIGKILL the process at a random moment, then
look at the files. Senders post three kinds of hit, each with something that
must never be half-written:

  load    a page view with PROPERTIES custom properties: one `views` row and
          len(PROPERTIES) `events` rows, written in one transaction;
  custom  a custom event with two properties: two `events` rows, one batch id;
  unload  the duration of an earlier acknowledged load.

Checks per round: `PRAGMA integrity_check` is "ok" for both files; every load,
custom event and unload answered 204 is on disk; no page view or custom event
is there only in part.
"""

from __future__ import annotations

import http.client
import json
import random
import signal
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from medama_core.store.sqlite import db, meta
from tests.faults.process import ServerProcess

SITE = "example.com"
PROPERTIES = {"plan": "pro", "ab": "b", "step": "3"}
CUSTOM = {"action": "signup", "button": "top"}
CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
HEADERS = {"User-Agent": CHROME, "Accept-Language": "en-GB", "Content-Type": "text/plain;charset=UTF-8"}
SEND_TIMEOUT_S = 10.0
MIN_RUN_S, MAX_RUN_S = 1.0, 2.5  # the kill lands at a random moment in this window (the first hit warms up ~0.5 s)


def prepare(directory: Path) -> None:
    """An app database with one user and the site, and IP blocking off (loopback clients)."""
    conn = db.connect(str(directory / "me_meta.db"))
    db.migrate(conn, meta.MIGRATIONS)
    meta.insert_user(conn, "user_crash", "admin", "not-a-hash", 0)
    meta.insert_website(conn, SITE, "user_crash", 0)
    meta.set_setting(conn, "block_abusive_ips", "false", 0)
    meta.set_setting(conn, "block_tor_exit_nodes", "false", 0)
    conn.close()


@dataclass
class Acked:
    """What the server acknowledged (204), by kind; appended to from several threads (list.append is atomic)."""

    loads: list[str] = field(default_factory=list)
    customs: list[str] = field(default_factory=list)  # the custom event's bid (unique per event)
    unloads: list[tuple[str, int]] = field(default_factory=list)
    sent: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count_sent(self, n: int) -> None:
        with self.lock:
            self.sent += n

    def total(self) -> int:
        return len(self.loads) + len(self.customs) + len(self.unloads)


@dataclass
class RoundResult:
    round: int
    acked: int
    acked_loads: int
    sent: int
    stored_views: int
    lost: list[str]
    partial: list[str]
    integrity: tuple[str, str]
    exit_code: int | None
    run_s: float


def _sender(port: int, name: str, acked: Acked, stop: threading.Event, rng: random.Random) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=SEND_TIMEOUT_S)
    mine: list[str] = []
    i = 0
    try:
        while not stop.is_set():
            i += 1
            bid = f"{name}x{i}"
            pick = rng.random()
            body: dict[str, object]
            if pick < 0.6 or not mine:
                body = {"e": "load", "b": bid, "u": f"https://{SITE}/p{i % 40}", "r": "", "p": True, "q": True,
                        "t": "Europe/Paris", "d": PROPERTIES}  # fmt: skip
            elif pick < 0.8:
                body = {"e": "custom", "g": SITE, "b": bid, "d": CUSTOM}
            else:
                target = rng.choice(mine)
                body = {"e": "unload", "b": target, "m": 1000 + i}
            conn.request("POST", "/api/event/hit", body=json.dumps(body), headers=HEADERS)
            response = conn.getresponse()
            response.read()
            if response.status != 204:
                continue
            if body["e"] == "load":
                acked.loads.append(bid)
                mine.append(bid)
            elif body["e"] == "custom":
                acked.customs.append(bid)
            else:
                acked.unloads.append((str(body["b"]), int(str(body["m"]))))
    except (OSError, http.client.HTTPException):
        return  # the server is gone
    finally:
        acked.count_sent(i)
        conn.close()


def _check_files(server: ServerProcess, acked: Acked) -> tuple[int, list[str], list[str], tuple[str, str]]:
    integrity = []
    for path in (server.appdb, server.analyticsdb):
        conn = sqlite3.connect(path)
        try:
            integrity.append(conn.execute("PRAGMA integrity_check").fetchone()[0])
        finally:
            conn.close()
    conn = sqlite3.connect(server.analyticsdb)
    try:
        views = {bid: duration for bid, duration in conn.execute("SELECT bid, duration_ms FROM views")}
        events: dict[str, list[tuple[str, str, str]]] = {}
        for bid, batch, name, value in conn.execute("SELECT bid, batch_id, name, value FROM events"):
            events.setdefault(bid, []).append((batch, name, value))
    finally:
        conn.close()
    lost = [bid for bid in acked.loads if bid not in views]
    lost += [bid for bid in acked.customs if bid not in events]
    last_unload: dict[str, int] = {}
    for bid, duration in acked.unloads:
        last_unload[bid] = duration
    # An unload is stored if its view has a duration; a later unload of the same page may have won.
    lost += [f"unload:{bid}" for bid in last_unload if bid in views and views[bid] is None]
    partial = []
    for bid in views:
        rows = events.get(bid, [])
        if sorted((name, value) for _, name, value in rows) != sorted(PROPERTIES.items()):
            partial.append(f"view {bid}: {len(rows)} of {len(PROPERTIES)} properties")
    for bid, rows in events.items():
        if bid in views:
            continue
        if len({batch for batch, _, _ in rows}) != 1 or sorted((n, v) for _, n, v in rows) != sorted(CUSTOM.items()):
            partial.append(f"custom {bid}: {rows}")
    return len(views), lost, partial, (integrity[0], integrity[1])


def run_round(server: ServerProcess, number: int, senders: int, rng: random.Random) -> RoundResult:
    """Start, load, kill -9 at a random moment, check the files."""
    server.start()
    acked = Acked()
    stop = threading.Event()
    threads = [
        threading.Thread(target=_sender, args=(server.port, f"r{number}s{n}", acked, stop, random.Random(rng.random())))
        for n in range(senders)
    ]
    run_s = rng.uniform(MIN_RUN_S, MAX_RUN_S)
    try:
        for thread in threads:
            thread.start()
        time.sleep(run_s)
        code = server.kill(signal.SIGKILL)
    finally:
        stop.set()
        if server.alive():
            server.kill(signal.SIGKILL)
        for thread in threads:
            thread.join(SEND_TIMEOUT_S * 2)
    stored, lost, partial, integrity = _check_files(server, acked)
    return RoundResult(
        number, acked.total(), len(acked.loads), acked.sent, stored, lost, partial, integrity, code, run_s
    )


def run_rounds(directory: Path, rounds: int, *, senders: int = 8, seed: int = 1) -> list[RoundResult]:
    prepare(directory)
    server = ServerProcess(directory, "-ratelimit", "0")
    rng = random.Random(seed)
    return [run_round(server, number, senders, rng) for number in range(rounds)]
