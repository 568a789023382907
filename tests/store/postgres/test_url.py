"""The -appdb URL parser: libpq's rules case by case, and under hypothesis (parsed, or BadURL; never another error)."""

from __future__ import annotations

import urllib.parse

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medama_core.store.postgres.errors import BadURL, StartupError
from medama_core.store.postgres.url import PostgresURL, is_postgres_url, parse_url

PARSED = [
    ("postgres://db.example/medama", PostgresURL("db.example", 5432, "medama")),
    ("postgresql://db.example/medama", PostgresURL("db.example", 5432, "medama")),
    ("postgres://u:p@db.example:6432/medama", PostgresURL("db.example", 6432, "medama", "u", "p")),
    # Percent-decoding in every part; '+' is not a space (libpq decodes only %XX).
    ("postgres://us%40er:p%3Aw%2Fd%25@h/m%C3%A9dama", PostgresURL("h", 5432, "médama", "us@er", "p:w/d%")),
    ("postgres://u:a+b@h/d", PostgresURL("h", 5432, "d", "u", "a+b")),
    ("postgres://u:pa:ss@h/d", PostgresURL("h", 5432, "d", "u", "pa:ss")),  # the first ':' splits
    # Unix sockets: a percent-encoded path as the host, or ?host=; no host at all is libpq's default socket.
    ("postgres://%2Fvar%2Frun%2Fpostgresql/medama", PostgresURL("/var/run/postgresql", 5432, "medama")),
    ("postgres:///medama?host=/var/run/postgresql", PostgresURL("/var/run/postgresql", 5432, "medama")),
    ("postgres://u@:5433/medama?host=%2Ftmp", PostgresURL("/tmp", 5433, "medama", "u")),
    ("postgresql://", PostgresURL()),
    ("postgres:///medama", PostgresURL(None, 5432, "medama")),
    # IPv4, IPv6 in brackets (with a zone), Docker service names.
    ("postgres://127.0.0.1:5433/x", PostgresURL("127.0.0.1", 5433, "x")),
    ("postgres://[::1]:5433/x", PostgresURL("::1", 5433, "x")),
    ("postgres://[fe80::1%25eth0]/x", PostgresURL("fe80::1%eth0", 5432, "x")),
    ("postgres://medama_db/x", PostgresURL("medama_db", 5432, "x")),
    # Query parameters win over the parts; ssl=true is sslmode=require; empty pieces are skipped.
    ("postgres://h:1/a?port=2&dbname=b&user=c&password=d", PostgresURL("h", 2, "b", "c", "d")),
    ("postgres://h/d?ssl=true", PostgresURL("h", 5432, "d", params=(("sslmode", "require"),))),
    (
        "postgres://h/d?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem&&application_name=a%20b",
        PostgresURL(
            "h",
            5432,
            "d",
            params=(("sslmode", "verify-full"), ("sslrootcert", "/etc/ca.pem"), ("application_name", "a b")),
        ),
    ),
    (
        "postgres://h/d?connect_timeout=10&options=-c%20search_path%3Dmedama",
        PostgresURL("h", 5432, "d", params=(("connect_timeout", "10"), ("options", "-c search_path=medama"))),
    ),
    ("postgres://u:@h/d", PostgresURL("h", 5432, "d", "u")),  # an empty password is no password
]


@pytest.mark.parametrize(("text", "expected"), PARSED, ids=[text for text, _ in PARSED])
def test_parses_by_libpq_rules(text: str, expected: PostgresURL) -> None:
    assert parse_url(text) == expected  # the password too: it is left out of repr, not out of ==


REFUSED = [
    ("mysql://h/d", "starts with postgres://"),
    ("postgres:/h/d", "starts with postgres://"),
    ("postgres://h:0/d", "port"),
    ("postgres://h:65536/d", "port"),
    ("postgres://h:x/d", "port"),
    ("postgres://h:/d", "port"),
    ("postgres://h:５４３２/d", "port"),  # fullwidth digits: int() would take them, libpq would not
    ("postgres://h/d?port=99999999999999999999999", "port"),
    ("postgres://a,b/d", "list of hosts"),
    ("postgres://::1/d", "brackets"),
    ("postgres://[::1/d", "']'"),
    ("postgres://[nope]/d", "IPv6"),
    ("postgres://[::1]x/d", "only ':port'"),
    ("postgres://ho st/d", "not a host name"),
    ("postgres://-h/d", "not a host name"),
    ("postgres://h/d?x=1", "unsupported URL parameter 'x'"),
    ("postgres://h/d?sslmode=sometimes", "sslmode"),
    ("postgres://h/d?ssl=false", "'ssl' may only be 'true'"),
    ("postgres://h/d?connect_timeout=soon", "connect_timeout"),
    ("postgres://h/d?dbname=a&dbname=b", "given twice"),
    ("postgres://h/d?sslmode", "no '=value'"),
    ("postgres://h/%zz", "two hex digits"),
    ("postgres://h/%4", "two hex digits"),
    ("postgres://h/a%00b", "%00"),
    ("postgres://h/%ff", "not UTF-8"),
    ("postgres://h/%0a", "control character"),
    ("postgres://h/d\n", "control character"),
    ("postgres://h/d#frag", "'#'"),
    ("postgres://u:p@ss@h/d", "'@'"),
]


@pytest.mark.parametrize(("text", "message"), REFUSED, ids=[text for text, _ in REFUSED])
def test_refuses_with_a_clear_one_line_message(text: str, message: str) -> None:
    with pytest.raises(BadURL) as caught:
        parse_url(text)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)
    assert isinstance(caught.value, StartupError) and isinstance(caught.value, ValueError)


@pytest.mark.parametrize(
    "text",
    [
        "postgres://admin:s3cr%zzet@h/d",  # bad escape in the password
        "postgres://admin:s3cr%ffet@h/d",  # not UTF-8
        "postgres://admin:s3cr/et@h/d",  # an unencoded '/' makes the password look like a port and a path
        "postgres://admin:12345/et@h/d",
        "postgres://admin:s3cr?et@h/d",  # an unencoded '?' makes its tail a parameter
        "postgres://admin:s3cr?et=1@h/d",
        "postgres://h/d?password=s3cr%zzet",
    ],
)
def test_messages_never_quote_the_password(text: str) -> None:
    with pytest.raises(BadURL) as caught:
        parse_url(text)
    assert "s3cr" not in str(caught.value) and "et@h" not in str(caught.value) and "12345" not in str(caught.value)


def test_describe_and_connect_keywords() -> None:
    url = parse_url("postgres://u:secret@[::1]:6432/medama?sslmode=require")
    assert url.describe() == "u@[::1]:6432/medama"
    assert "secret" not in url.describe() and "secret" not in repr(url)
    assert url.connect_kwargs() == {
        "host": "::1",
        "port": "6432",
        "dbname": "medama",
        "user": "u",
        "password": "secret",
        "sslmode": "require",
    }
    assert not url.is_socket and parse_url("postgres:///d").is_socket and parse_url("postgres://%2Ftmp/d").is_socket
    assert parse_url("postgres:///d").connect_kwargs() == {"port": "5432", "dbname": "d"}  # the rest: libpq's defaults


def test_is_postgres_url() -> None:
    assert is_postgres_url("postgres://h/d") and is_postgres_url("postgresql:///d")
    assert not is_postgres_url("./me_meta.db") and not is_postgres_url("/data/postgres://x")


@settings(max_examples=1000, deadline=None)
@given(st.text())
def test_any_text_after_the_scheme_parses_or_raises_bad_url(tail: str) -> None:
    for scheme in ("postgres://", "postgresql://", ""):
        try:
            parsed = parse_url(scheme + tail)
        except BadURL as exc:
            assert "\n" not in str(exc)
            continue
        assert 1 <= parsed.port <= 65535
        assert all("\x00" not in value for value in parsed.connect_kwargs().values())


URL_CHARS = st.characters(codec="utf-8", exclude_characters="\x00")
ALPHABET = st.sampled_from(list(":/?@#%&=[],+ ") + ["a", "é", "%41", "%", "%2F", "[::1]", "5432"])


@settings(max_examples=500, deadline=None)
@given(st.lists(ALPHABET, max_size=20).map("".join))
def test_url_shaped_noise_parses_or_raises_bad_url(tail: str) -> None:
    try:
        parse_url("postgres://" + tail)
    except BadURL:
        pass


@settings(max_examples=300, deadline=None)
@given(
    user=st.text(URL_CHARS, max_size=12).filter(lambda s: all(ord(c) >= 0x20 and ord(c) != 0x7F for c in s)),
    password=st.text(URL_CHARS, max_size=12).filter(lambda s: all(ord(c) >= 0x20 and ord(c) != 0x7F for c in s)),
    host=st.sampled_from(["db.example", "127.0.0.1", "::1", "/var/run/postgresql", "medama_db"]),
    port=st.integers(1, 65535),
    database=st.text(URL_CHARS, min_size=1, max_size=12).filter(
        lambda s: all(ord(c) >= 0x20 and ord(c) != 0x7F for c in s)
    ),
)
def test_percent_encoded_parts_round_trip(user: str, password: str, host: str, port: int, database: str) -> None:
    quote = lambda text: urllib.parse.quote(text, safe="")  # noqa: E731
    hostpart = f"[{host}]" if ":" in host else quote(host)
    text = f"postgres://{quote(user)}:{quote(password)}@{hostpart}:{port}/{quote(database)}"
    assert parse_url(text) == PostgresURL(host, port, database, user or None, password or None)
