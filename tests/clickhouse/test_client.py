"""The ClickHouse client: values bound safely on both engines, rows round-trip, errors are one clear line."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medama_core.store.clickhouse.client import (
    AuthenticationFailed,
    Client,
    HTTPTransport,
    QueryFailed,
    UnknownDatabase,
    Unreachable,
)
from medama_core.store.clickhouse.sql import (
    MAX_ID_SET_BYTES,
    BindError,
    bind,
    id_chunks,
    literal,
    tsv_fields,
    tsv_line,
    tsv_rows,
)
from medama_core.store.clickhouse.url import ClickHouseURL, parse_url
from tests.engines import TEST_PASSWORD, TEST_USER, Server, free_port

SHARED = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
# Text that has broken SQL escaping somewhere: quotes, backslashes, control bytes, comment and statement ends.
NASTY = st.text(
    alphabet=st.sampled_from(list("'\"\\`\n\r\t\0;-/*{}:%_ aZé\x01\x7f😀"))
    | st.characters(blacklist_categories=("Cs",)),
    max_size=40,
)


@pytest.fixture(params=["params", "literals"])
def bound(request: pytest.FixtureRequest, ch: Client) -> Iterator[Client]:
    """The engine's client, with server parameters when it has them, then with literals forced."""
    if request.param == "params" and not ch.server_params:
        pytest.skip("this server takes no query parameters (18.16): its literals are the case below")
    if request.param == "literals":
        ch._server_params = False
    yield ch


@SHARED
@given(value=NASTY, number=st.integers(-(2**63), 2**63 - 1))
def test_any_value_round_trips_and_never_changes_the_statement(bound: Client, value: str, number: int) -> None:
    rows = bound.rows("SELECT {v:String} AS v, {n:Int64} AS n, 'end' AS sentinel", {"v": value, "n": number})
    assert rows == [[value, number, "end"]]


@SHARED
@given(values=st.lists(NASTY, min_size=1, max_size=5))
def test_values_in_a_where_clause_select_exactly_themselves(bound: Client, values: list[str]) -> None:
    bound.insert("drops", ("day", "hostname", "reason", "count"), [(1, v, "x", 1) for v in values])
    for value in values:
        rows = bound.rows("SELECT sum(count) FROM drops WHERE hostname = {h:String}", {"h": value})
        assert rows == [[values.count(value)]]
    bound.command("TRUNCATE TABLE drops")


@SHARED
@given(rows=st.lists(st.tuples(NASTY, st.integers(0, 2**40), st.none() | st.integers(0, 2**40)), max_size=8))
def test_rows_round_trip_through_insert_and_both_readers(ch: Client, rows: list[tuple[str, int, int | None]]) -> None:
    ch.command("CREATE TABLE IF NOT EXISTS rt (s String, n Int64, m Nullable(Int64), i UInt32) ENGINE = Memory")
    ch.command("TRUNCATE TABLE rt")
    ch.insert("rt", ("s", "n", "m", "i"), [(*row, i) for i, row in enumerate(rows)])
    expected = [[s, n, m] for s, n, m in rows]
    assert ch.rows("SELECT s, n, m FROM rt ORDER BY i") == expected
    streamed = [
        [s, None if n is None else int(n), None if m is None else int(m)]
        for s, n, m in ch.stream("SELECT s, n, m FROM rt ORDER BY i")
    ]
    assert streamed == expected


@given(value=st.text(), number=st.integers())
def test_literals_are_quoted_escaped_text_or_digits(value: str, number: int) -> None:
    text = literal(value)
    assert text.startswith("'") and text.endswith("'")
    inner = text[1:-1]
    # No quote ends the literal early: every quote inside is escaped, and so is every backslash.
    assert inner.replace("\\\\", "").replace("\\'", "").count("'") == 0
    assert not any(ord(c) < 32 or ord(c) == 127 for c in inner)
    assert literal(number) == str(number)


@given(st.text())
def test_tsv_fields_read_back_what_tsv_line_wrote(value: str) -> None:
    assert tsv_fields(tsv_line([value, None, 5, True])[:-1]) == [value, None, "5", "1"]


FIELD = NASTY | st.text() | st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1)


@given(rows=st.lists(st.lists(FIELD, min_size=1, max_size=6), max_size=6))
def test_a_body_of_rows_is_their_lines_joined_and_reads_back(rows: list[list[object]]) -> None:
    body = tsv_rows(rows)
    assert body == "".join(tsv_line(row) for row in rows).encode()
    lines = body.decode().split("\n")
    assert lines.pop() == ""
    expected = [[None if v is None else str(int(v)) if isinstance(v, int) else v for v in row] for row in rows]
    assert [tsv_fields(line) for line in lines] == expected


@given(lengths=st.lists(st.integers(1, MAX_ID_SET_BYTES // 3), max_size=12), most=st.integers(1, 5))
def test_id_chunks_are_as_long_as_both_limits_let_them(lengths: list[int], most: int) -> None:
    values = ["é" * (n // 2) + "x" * (n % 2) for n in lengths]  # n bytes each, multi-byte characters too
    chunks = [list(chunk) for chunk in id_chunks(values, most)]
    assert [value for chunk in chunks for value in chunk] == values

    def size(chunk: list[str]) -> int:
        return sum(2 * len(value.encode()) + 1 for value in chunk)

    for i, chunk in enumerate(chunks):
        assert len(chunk) <= most and (len(chunk) == 1 or size(chunk) <= MAX_ID_SET_BYTES)
        if i + 1 < len(chunks):  # the next id did not fit
            assert len(chunk) == most or size([*chunk, chunks[i + 1][0]]) > MAX_ID_SET_BYTES


def test_id_chunks_split_at_the_byte_limit_exactly() -> None:
    # Two ids whose hex and commas take exactly MAX_ID_SET_BYTES go together; a byte more and they part.
    first = "a" * 1000
    second = "b" * ((MAX_ID_SET_BYTES - 2 - 2 * len(first)) // 2)
    assert 2 * (len(first) + len(second)) + 2 == MAX_ID_SET_BYTES
    assert [len(chunk) for chunk in id_chunks([first, second], 10)] == [2]
    assert [len(chunk) for chunk in id_chunks([first, second + "c"], 10)] == [1, 1]
    assert [len(chunk) for chunk in id_chunks(["a", "b", "c"], 2)] == [2, 1]


def test_a_body_refuses_what_it_cannot_write() -> None:
    with pytest.raises(TypeError):
        tsv_rows([("a", 1.5)])
    with pytest.raises(UnicodeEncodeError):
        tsv_rows([("\ud800",)])


def test_binding_refuses_missing_and_mistyped_values() -> None:
    with pytest.raises(BindError, match="no value"):
        bind("SELECT {a:String}", {}, False)
    with pytest.raises(BindError, match="is a String"):
        bind("SELECT {a:String}", {"a": 1}, False)
    with pytest.raises(BindError, match="out of the range"):
        bind("SELECT {a:UInt8}", {"a": 256}, True)
    with pytest.raises(BindError, match="is an Int64"):
        bind("SELECT {a:Int64}", {"a": True}, False)
    assert bind("SELECT {a:String}, {b:Int64}", {"a": "x\ty", "b": -3}, True) == (
        "SELECT {a:String}, {b:Int64}",
        {"a": "x\\ty", "b": "-3"},
    )


def test_errors_are_one_clear_line_each(ch_server: Server | None) -> None:
    if ch_server is None:
        pytest.skip("SKIPPED LOUDLY: clickhouse-server is not installed (apt-get install clickhouse-server)")
    database = "default"
    cases = [
        (ClickHouseURL(False, "127.0.0.1", free_port(), database), Unreachable, "cannot reach ClickHouse"),
        (ch_server.url(database, TEST_USER, "wrong"), AuthenticationFailed, "user name or password"),
        (ch_server.url("nowhere"), UnknownDatabase, "CREATE DATABASE nowhere"),
    ]
    for url, error, words in cases:
        client = Client(HTTPTransport(url))
        with pytest.raises(error, match=words) as caught:
            client.rows("SELECT 1")
        assert "\n" not in str(caught.value) and TEST_PASSWORD not in str(caught.value)
        client.close()
    client = Client(HTTPTransport(ch_server.url(database)))
    with pytest.raises(QueryFailed, match="ClickHouse error: .*no_such_table") as failed:
        client.rows("SELECT * FROM no_such_table")
    assert failed.value.code == 60  # UNKNOWN_TABLE
    assert client.rows("SELECT 1") == [[1]]  # the connection is still usable after an error
    client.close()


def test_one_keep_alive_connection_serves_many_statements(ch_server: Server | None) -> None:
    if ch_server is None:
        pytest.skip("SKIPPED LOUDLY: clickhouse-server is not installed (apt-get install clickhouse-server)")
    transport = HTTPTransport(ch_server.url("default"))
    client = Client(transport)
    for i in range(20):
        assert client.rows("SELECT {i:UInt8}", {"i": i}) == [[i]]
    assert len(transport._all) == 1
    client.close()


def test_a_stream_read_in_part_leaves_the_client_usable(ch: Client) -> None:
    rows = ch.stream("SELECT number FROM system.numbers LIMIT 1000000")
    assert next(rows) == ["0"]
    rows.close()  # the rest of the answer is never read: its connection is dropped, not reused
    assert ch.rows("SELECT 1") == [[1]]


@pytest.mark.parametrize("body", [b"", b"SELECT 1", b"x\tb\n" * 20_000])
def test_a_request_leaves_in_one_write(body: bytes) -> None:
    # A SEQPACKET pair keeps each write a record of its own: the head and the body apart would read as two.
    mine, peer = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    peer.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    mine.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
    transport = HTTPTransport(parse_url("clickhouse://u:p@127.0.0.1:9/db"))
    conn = transport._connection()
    conn.sock = mine
    conn.request_in_one("/?query=x", body, {"Authorization": "Basic dTpw"})
    peer.setblocking(False)
    record = peer.recv(1 << 21)
    head, _, rest = record.partition(b"\r\n\r\n")
    assert head.startswith(b"POST /?query=x HTTP/1.1\r\n")
    assert f"Content-Length: {len(body)}".encode() in head
    assert rest == body
    with pytest.raises(BlockingIOError):
        peer.recv(1)  # nothing left: one record held all of it
    transport.close()
    peer.close()


def test_both_runs_two_reads_and_raises_the_callers_error_first(ch: Client) -> None:
    """Client.both gives both answers (the side one from a helper thread), and when a statement fails raises
    it only once the other is done, the caller's own first."""
    threads: list[int] = []

    def side() -> list[list[object]]:
        threads.append(threading.get_ident())
        return ch.rows("SELECT {n:UInt8} + 1", {"n": 1})

    assert ch.both(side, lambda: ch.rows("SELECT 5")) == ([[2]], [[5]])
    assert threads and threads[0] != threading.get_ident()
    finished: list[str] = []

    def slow_side() -> None:
        ch.rows("SELECT count() FROM numbers(100000)")
        finished.append("side")
        raise QueryFailed("side")

    with pytest.raises(QueryFailed) as caught:
        ch.both(slow_side, lambda: ch.rows("SELECT no_such_column"))
    assert "side" not in str(caught.value) and finished == ["side"]
    with pytest.raises(QueryFailed, match="side"):
        ch.both(slow_side, lambda: ch.rows("SELECT 1"))
