"""Several nodes, one database: a change made through one connection is seen through another."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest

from medama_core.store.postgres import open_meta
from medama_core.store.postgres.url import parse_url

psycopg = pytest.importorskip("psycopg")

from medama_core.store.postgres import changes, db, meta  # noqa: E402


@pytest.fixture
def two_nodes(pg_url: str) -> Iterator[tuple[Any, Any]]:
    first = db.connect(parse_url(pg_url))
    db.migrate(first, meta.MIGRATIONS, meta.COMPONENT)
    second = db.connect(parse_url(pg_url))
    yield first, second
    first.close()
    second.close()


def test_the_token_moves_with_every_committed_change_to_cached_tables(two_nodes: tuple[Any, Any]) -> None:
    a, b = two_nodes
    seen = [changes.change_token(a)]

    def changed_by(write: Any) -> bool:
        write(b)
        seen.append(changes.change_token(a))
        return seen[-1] != seen[-2]

    assert changed_by(lambda c: meta.insert_user(c, "user_a", "alice", "h", 1))
    assert changed_by(lambda c: meta.insert_website(c, "a.example", "user_a", 1))
    assert changed_by(lambda c: meta.rename_website(c, "a.example", "b.example", 2))
    assert changed_by(lambda c: meta.set_setting(c, "blocked_ips", "10.0.0.1", 3))
    assert changed_by(lambda c: meta.set_settings(c, {"script_type": "default"}, 4))
    assert changed_by(lambda c: meta.set_umami_id(c, "b.example", "id-1"))
    assert changed_by(lambda c: meta.set_umami_id(c, "b.example", None))
    assert changed_by(lambda c: meta.delete_website(c, "b.example"))
    assert changed_by(lambda c: meta.update_user(c, "user_a", 5, settings='{"language":"de"}'))
    # Sessions are read from the database on every request, never cached: they do not move the token.
    assert not changed_by(lambda c: meta.insert_session(c, b"t" * 32, "user_a", 1, 2))
    assert not changed_by(lambda c: meta.purge_expired_sessions(c, 10))
    assert not changed_by(lambda c: meta.get_settings(c))


def test_changes_since_answers_the_cached_tables_once_per_change(two_nodes: tuple[Any, Any]) -> None:
    """What the server's meta watch reads (store/sqlite/meta.py changes_since on SQLite): None while nothing changed."""
    a, b = two_nodes
    first = meta.changes_since(a, None)
    assert first is not None and first[1:] == ([], {})
    assert meta.changes_since(a, first[0]) is None
    meta.insert_user(b, "user_a", "alice", "h", 1)
    meta.insert_website(b, "a.example", "user_a", 1)
    meta.set_setting(b, "script_type", "default", 2)
    later = meta.changes_since(a, first[0])
    assert later is not None and later[1:] == (["a.example"], {"script_type": "default"})
    assert meta.changes_since(a, later[0]) is None


def test_an_uncommitted_change_does_not_move_the_token_until_it_commits(two_nodes: tuple[Any, Any]) -> None:
    """The counter is bumped in the writer's transaction: whoever sees the new value sees the change too."""
    a, b = two_nodes
    before = changes.change_token(a)
    with b.transaction():
        meta.set_setting(b, "k", "v", 1)
        assert changes.change_token(a) == before
        assert meta.get_settings(a) == {}
    after = changes.change_token(a)
    assert after != before and meta.get_settings(a) == {"k": "v"}


def test_writers_on_two_nodes_queue_on_the_counter_and_only_commits_count(two_nodes: tuple[Any, Any]) -> None:
    a, b = two_nodes
    before = changes.change_token(a)
    with a.transaction():
        meta.set_setting(a, "x", "1", 1)
        # The other node's write to a different row still waits for the counter's row lock (at most
        # LOCK_TIMEOUT_S in service; 50 ms here), then rolls back whole.
        with pytest.raises(psycopg.errors.LockNotAvailable), b.transaction():
            b.execute("SET LOCAL lock_timeout = 50")
            meta.set_setting(b, "y", "1", 1)
    assert changes.change_token(a) != before and meta.get_settings(b) == {"x": "1"}


def test_watch_changes_reaches_another_node_within_its_interval(pg_url: str) -> None:
    """Two nodes (two Databases): a website added on one is reported to the other's watcher."""
    interval = 0.05

    async def scenario() -> tuple[list[int], float]:
        node_a, node_b = open_meta(pg_url), open_meta(pg_url)
        try:
            since = await node_a.read(changes.change_token)
            seen: list[int] = []
            arrived = asyncio.Event()

            async def on_change(token: int) -> None:
                seen.append(token)
                arrived.set()

            watcher = asyncio.create_task(changes.watch_changes(node_a, on_change, since=since, interval=interval))
            await asyncio.sleep(3 * interval)
            assert seen == []  # nothing changed, nothing reported
            started = time.monotonic()
            await node_b.write(meta.insert_user, "user_a", "alice", "h", 1)
            await asyncio.wait_for(arrived.wait(), timeout=5)
            took = time.monotonic() - started
            assert await node_a.read(meta.get_user, "user_a") is not None  # the change is visible with its token
            watcher.cancel()
            return seen, took
        finally:
            node_a.close()
            node_b.close()

    seen, took = asyncio.run(scenario())
    assert len(seen) == 1 and took < 5


def test_watch_changes_rides_out_an_unreachable_database(pg_url: str, pg_server: Any) -> None:
    """A poll that cannot reach the database is skipped; the change made meanwhile is reported once it can."""
    interval = 0.05

    async def scenario() -> list[int]:
        node = open_meta(pg_url)
        other = db.connect(parse_url(pg_url))
        seen: list[int] = []
        try:
            since = await node.read(changes.change_token)

            async def on_change(token: int) -> None:
                seen.append(token)

            watcher = asyncio.create_task(changes.watch_changes(node, on_change, since=since, interval=interval))
            name = parse_url(pg_url).database
            pg_server.psql(f"ALTER DATABASE {name} ALLOW_CONNECTIONS false")
            pg_server.psql(
                f"SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity"
                f" WHERE datname = '{name}' AND pid <> {other.info.backend_pid}"
            )
            meta.set_setting(other, "k", "v", 1)  # a change while the watcher cannot connect
            await asyncio.sleep(4 * interval)
            assert seen == [] and not watcher.done()
            pg_server.psql(f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")
            deadline = time.monotonic() + 5
            while not seen and time.monotonic() < deadline:
                await asyncio.sleep(interval)
            watcher.cancel()
            return seen
        finally:
            other.close()
            node.close()

    assert len(asyncio.run(scenario())) == 1
