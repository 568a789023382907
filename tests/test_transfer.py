"""`medama import` / `medama export`: formats, exact round trips, all-or-nothing imports, upstream's DuckDB file."""

from __future__ import annotations

import gzip
import io
import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medama_core import cli, transfer
from medama_core.store.sqlite import analytics, db, hits, meta
from tests.helpers import live_server

SITES = ("example.com", "blog.example.org")
ROOT = Path(__file__).resolve().parent.parent


def make_meta(path: Path | str, sites: tuple[str, ...] = SITES, users: bool = True) -> sqlite3.Connection:
    conn = db.connect(str(path))
    db.migrate(conn, meta.MIGRATIONS)
    if users:
        meta.insert_user(conn, "user_second", "later", "x", 200)
        meta.insert_user(conn, "user_first", "admin", "x", 100)
    for site in sites:
        meta.insert_website(conn, site, "user_first", 0)
    return conn


def view(bid: str, **fields: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "bid": bid,
        "hostname": "example.com",
        "pathname": "/",
        "is_unique_user": True,
        "is_unique_page": False,
        "referrer_host": "",
        "referrer_group": "",
        "country": "Unknown",
        "language_base": "English",
        "language_dialect": "British English",
        "ua_browser": "Firefox",
        "ua_os": "Linux",
        "ua_device_type": "Desktop",
        "utm_source": "",
        "utm_medium": "",
        "utm_campaign": "",
        "duration_ms": None,
        "date_created": 1_709_649_000_123,
    }
    row.update(fields)
    return row


def event(bid: str, **fields: Any) -> dict[str, Any]:
    row: dict[str, Any] = {"bid": bid, "batch_id": "event_01abc", "group_name": "example.com", "name": "plan",
                           "value": "pro", "date_created": 1_709_649_000_123}  # fmt: skip
    row.update(fields)
    return row


class Dirs:
    """One app + analytics database pair under a directory, driven through the CLI."""

    def __init__(self, root: Path, sites: tuple[str, ...] = SITES, users: bool = True) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.root = root
        self.appdb = root / "me_meta.db"
        self.analyticsdb = root / "me_analytics.db"
        make_meta(self.appdb, sites, users).close()
        conn = db.connect(str(self.analyticsdb))  # both exist, as where a server has run
        db.migrate(conn, analytics.MIGRATIONS)
        conn.close()

    def flags(self) -> list[str]:
        return ["-appdb", str(self.appdb), "-analyticsdb", str(self.analyticsdb)]

    def seed(self, views: list[dict[str, Any]], events: list[dict[str, Any]] = ()) -> None:  # type: ignore[assignment]
        conn = db.connect(str(self.analyticsdb))
        db.migrate(conn, analytics.MIGRATIONS)
        ops: list[hits.Op] = [hits.NewView(hits.view_row(v)) for v in views]
        if events:
            ops.append(hits.NewEvents([hits.event_row(e) for e in events]))
        assert hits.apply_batch(conn, ops) == [None] * len(ops)
        conn.close()

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        conn = sqlite3.connect(self.analyticsdb)
        try:
            return conn.execute(sql).fetchall()
        finally:
            conn.close()

    def websites(self) -> list[tuple[str, str]]:
        conn = sqlite3.connect(self.appdb)
        try:
            return conn.execute("SELECT hostname, user_id FROM websites ORDER BY hostname").fetchall()
        finally:
            conn.close()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


AWKWARD = [
    view("a1", pathname="/a,b\"c", referrer_host="news.ycombinator.com", referrer_group="Hacker News",
         utm_source="x\ny", utm_campaign="ünïcødé ✓", duration_ms=0),
    view("a2", hostname="blog.example.org", is_unique_user=False, is_unique_page=True, duration_ms=12345,
         date_created=0),
    view("a3", pathname="", utm_medium="  spaced  ", date_created=253_402_300_799_999),
    view("a4", pathname="/tab\there\r\nand crlf", date_created=1),
]  # fmt: skip
AWKWARD_EVENTS = [event("a1"), event("", name="n,m", value='"q"', group_name="blog.example.org", date_created=5)]


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
@pytest.mark.parametrize("kind", ["views", "events"])
def test_export_import_export_is_byte_identical(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str, kind: str
) -> None:
    source, target = Dirs(tmp_path / "a"), Dirs(tmp_path / "b")
    source.seed(AWKWARD, AWKWARD_EVENTS)
    first = tmp_path / f"first.{fmt}"
    second = tmp_path / f"second.{fmt}"
    assert run(capsys, "export", "--type", kind, "-o", str(first), *source.flags())[0] == 0
    code, _, err = run(capsys, "import", str(first), *target.flags())
    assert code == 0, err
    assert run(capsys, "export", "--type", kind, "-o", str(second), *target.flags())[0] == 0
    assert first.read_bytes() == second.read_bytes()
    assert len(first.read_text(encoding="utf-8").strip()) > 0


def test_gzip_in_and_out(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source, target = Dirs(tmp_path / "a"), Dirs(tmp_path / "b")
    source.seed(AWKWARD)
    packed = tmp_path / "views.csv.gz"
    assert run(capsys, "export", "-o", str(packed), *source.flags())[0] == 0
    assert packed.read_bytes()[:2] == b"\x1f\x8b"
    assert gzip.decompress(packed.read_bytes()).startswith(b"bid,hostname,pathname,")
    assert run(capsys, "import", str(packed), *target.flags())[0] == 0
    assert target.query("SELECT count(*) FROM views") == [(4,)]


def test_export_to_stdout_as_json_lines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = Dirs(tmp_path)
    source.seed([view("s1", duration_ms=5)])
    code, out, err = run(capsys, "export", *source.flags())
    assert code == 0 and "exported 1 views" in err
    assert json.loads(out) == {**view("s1", duration_ms=5), "date_created": "2024-03-05T14:30:00.123Z"}


def test_export_filters_by_site_and_time(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = Dirs(tmp_path)
    source.seed([
        view("early", date_created=1_000_000),
        view("mid", date_created=2_000_000),
        view("late", date_created=3_000_000),
        view("other", hostname="blog.example.org", date_created=2_000_000),
    ])  # fmt: skip
    code, out, _ = run(capsys, "export", "--hostname", "example.com", "--start", "1970-01-01T00:33:20Z",
                       "--end", "3000", *source.flags())  # fmt: skip
    assert code == 0
    assert [json.loads(line)["bid"] for line in out.splitlines()] == ["mid"], "start inclusive, end exclusive"


# --- import: values as given ---


def write(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_import_stores_rows_exactly_as_given(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = Dirs(tmp_path)
    rows = [
        {**view("iso"), "date_created": "2024-03-05T14:30:00.123+00:00", "country": ""},
        {**view("offset"), "date_created": "2024-03-05T16:30:00.123+02:00"},
        {**view("naive"), "date_created": "2024-03-05T14:30:00.123"},
        {**view("seconds"), "date_created": 1_709_649_000},
        {**view("fraction"), "date_created": 1_709_649_000.123},
        {k: v for k, v in view("no-duration", date_created="2024-03-05T14:30:00.123Z").items() if k != "duration_ms"},
        {
            **view("bool-ints"),
            "is_unique_user": 0,
            "is_unique_page": 1,
            "duration_ms": 7,
            "date_created": "2024-03-05 14:30:00.123",
        },
    ]
    path = write(tmp_path / "in.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n\n")
    code, _, err = run(capsys, "import", path, *target.flags())
    assert code == 0, err
    assert "imported 7 views" in err
    assert target.query(
        "SELECT bid, date_created, country, duration_ms, is_unique_user, is_unique_page FROM views"
    ) == [
        ("iso", 1_709_649_000_123, "", None, 1, 0),
        ("offset", 1_709_649_000_123, "Unknown", None, 1, 0),
        ("naive", 1_709_649_000_123, "Unknown", None, 1, 0),
        ("seconds", 1_709_649_000_000, "Unknown", None, 1, 0),
        ("fraction", 1_709_649_000_123, "Unknown", None, 1, 0),
        ("no-duration", 1_709_649_000_123, "Unknown", None, 1, 0),
        ("bool-ints", 1_709_649_000_123, "Unknown", 7, 0, 1),
    ]


def test_csv_empty_duration_is_null_and_empty_text_stays_empty(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = Dirs(tmp_path)
    header = ",".join(hits.VIEW_COLUMNS)
    lines = [
        header,
        "c1,example.com,/,true,false,,,,English,English,Firefox,Linux,Desktop,,,,,2024-03-05T14:30:00Z",
        "c2,example.com,/x,1,0,t.co,Twitter,France,French,French,Safari,iOS,Mobile,a,b,c,250,1709649000",
    ]
    code, _, err = run(capsys, "import", write(tmp_path / "in.csv", "\n".join(lines) + "\n"), *target.flags())
    assert code == 0, err
    assert target.query("SELECT bid, country, utm_source, duration_ms, date_created, is_unique_user FROM views") == [
        ("c1", "", "", None, 1_709_649_000_000, 1),
        ("c2", "France", "a", 250, 1_709_649_000_000, 1),
    ]


def test_csv_fast_path_leaves_the_unusual_to_the_careful_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Digits only are Unix seconds (fromisoformat would read 20240305 as a date); a negative duration is an error."""
    target = Dirs(tmp_path)
    header = ",".join(hits.VIEW_COLUMNS)
    row = "c{n},example.com,/,true,false,,,,English,English,Firefox,Linux,Desktop,,,,{duration},{date}"
    lines = [header, row.format(n=1, duration="", date="20240305"), row.format(n=2, duration=" 7", date=" 2024-03-05")]
    code, _, err = run(capsys, "import", write(tmp_path / "in.csv", "\n".join(lines) + "\n"), *target.flags())
    assert code == 0, err
    assert target.query("SELECT bid, duration_ms, date_created FROM views ORDER BY bid") == [
        ("c1", None, 20_240_305_000),
        ("c2", 7, 1_709_596_800_000),
    ]
    bad = [header, row.format(n=3, duration="1", date="1"), row.format(n=4, duration="-5", date="1")]
    code, _, err = run(capsys, "import", write(tmp_path / "bad.csv", "\n".join(bad) + "\n"), *target.flags())
    assert code == 1 and "line 3: duration_ms must be a whole number" in err


def test_csv_columns_may_come_in_any_order_without_duration(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = Dirs(tmp_path)
    columns = [c for c in reversed(hits.VIEW_COLUMNS) if c != "duration_ms"]
    values = {**view("rev"), "date_created": "2024-03-05T14:30:00.123Z"}
    record = ",".join(
        "true" if values[c] is True else "false" if values[c] is False else str(values[c]) for c in columns
    )
    code, _, err = run(
        capsys, "import", write(tmp_path / "in.csv", ",".join(columns) + "\n" + record + "\n"), *target.flags()
    )
    assert code == 0, err
    assert target.query("SELECT bid, duration_ms, date_created FROM views") == [("rev", None, 1_709_649_000_123)]


def test_events_are_recognised_by_their_columns(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = Dirs(tmp_path)
    path = write(tmp_path / "events.jsonl", json.dumps({**event("e1"), "date_created": 1}) + "\n")
    code, _, err = run(capsys, "import", path, *target.flags())
    assert code == 0 and "imported 1 events" in err
    assert target.query("SELECT bid, name, value, date_created FROM events") == [("e1", "plan", "pro", 1000)]


# --- import: errors, all or nothing ---

BAD_ROWS = [
    ("not a bool", {"is_unique_user": "maybe"}, "is_unique_user must be true or false"),
    ("number as text", {"pathname": 5}, "pathname must be a string"),
    ("null text", {"country": None}, "country must be a string"),
    ("negative duration", {"duration_ms": -1}, "duration_ms"),
    ("bad date", {"date_created": "yesterday"}, "date_created"),
    ("extra column", {"colour": "red"}, "unknown column(s): colour"),
]


@pytest.mark.parametrize(("change", "message"), [(c, m) for _, c, m in BAD_ROWS], ids=[n for n, _, _ in BAD_ROWS])
def test_a_bad_row_names_its_line_and_nothing_is_stored(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], change: dict[str, Any], message: str
) -> None:
    target = Dirs(tmp_path)
    rows = [view("ok1", date_created=1), view("ok2", date_created=1), {**view("bad", date_created=1), **change}]
    path = write(tmp_path / "in.jsonl", "\n".join(json.dumps(r) for r in [*rows, view("ok3", date_created=1)]) + "\n")
    code, _, err = run(capsys, "import", path, *target.flags())
    assert code == 1
    assert "line 3:" in err and message in err and "nothing was stored" in err
    assert target.query("SELECT count(*) FROM views") == [(0,)]


def test_missing_column_and_broken_json_name_their_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = Dirs(tmp_path)
    good = json.dumps({**view("ok"), "date_created": 1})
    missing = json.dumps({k: v for k, v in view("m").items() if k != "country"})
    assert (
        "line 2: missing column country"
        in run(capsys, "import", write(tmp_path / "a.jsonl", f"{good}\n{missing}\n"), *target.flags())[2]
    )  # noqa: E501
    assert (
        "line 3: invalid JSON"
        in run(capsys, "import", write(tmp_path / "b.jsonl", f"{good}\n\n{{nope\n"), *target.flags())[2]
    )  # noqa: E501
    assert target.query("SELECT count(*) FROM views") == [(0,)]


def test_csv_errors_name_their_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = Dirs(tmp_path)
    header = ",".join(hits.VIEW_COLUMNS)
    good = "c1,example.com,/,true,false,,,,English,English,Firefox,Linux,Desktop,,,,,1"
    short = "c2,example.com,/"
    code, _, err = run(capsys, "import", write(tmp_path / "a.csv", f"{header}\n{good}\n{short}\n"), *target.flags())
    assert code == 1 and "line 3: 3 fields, the header has 18" in err
    bad_bool = good.replace("true", "yes")
    assert (
        "line 2: is_unique_user"
        in run(capsys, "import", write(tmp_path / "b.csv", f"{header}\n{bad_bool}\n"), *target.flags())[2]
    )  # noqa: E501
    assert (
        "line 1: missing column(s): hostname"
        in run(capsys, "import", write(tmp_path / "c.csv", "bid,pathname\n"), *target.flags())[2]
    )


def to_csv(rows: list[dict[str, Any]], columns: tuple[str, ...] = hits.VIEW_COLUMNS) -> str:
    lines = [",".join(columns)]
    for r in rows:
        values = ["true" if r[c] is True else "false" if r[c] is False else "" if r[c] is None else str(r[c])
                  for c in columns]  # fmt: skip
        lines.append(",".join(values))
    return "\r\n".join(lines) + "\r\n"


def as_file(tmp_path: Path, name: str, rows: list[dict[str, Any]], fmt: str, columns: tuple[str, ...]) -> str:
    """Rows (date_created in Unix ms) written as `medama export` would: ISO dates, JSON Lines or CSV."""
    iso = [{**r, "date_created": transfer.format_time(r["date_created"])} for r in rows]
    if fmt == "csv":
        return write(tmp_path / f"{name}.csv", to_csv(iso, columns))
    return write(tmp_path / f"{name}.jsonl", "".join(json.dumps(r) + "\n" for r in iso))


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_repeated_views_are_ignored_in_the_file_and_against_stored_rows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    target = Dirs(tmp_path)
    target.seed([view("old", pathname="/stored", date_created=1_000)])
    rows = [
        view("same", date_created=3_600_000),
        view("other", date_created=3_600_000),
        view("same", pathname="/again", date_created=3_600_000),
        view("old", pathname="/new", date_created=7_200_000),  # an hour no stored row is in
        view("same", hostname="blog.example.org", date_created=3_600_000),  # another site: another view
    ]
    code, _, err = run(capsys, "import", as_file(tmp_path, "in", rows, fmt, hits.VIEW_COLUMNS), *target.flags())
    assert code == 0, err
    assert "imported 3 views" in err and "ignored 2 views already stored" in err
    assert target.query("SELECT bid, hostname, pathname FROM views ORDER BY bid, hostname") == [
        ("old", "example.com", "/stored"),
        ("other", "example.com", "/"),
        ("same", "blog.example.org", "/"),
        ("same", "example.com", "/"),
    ], "the first of each (bid, hostname) stays: the stored one, else the file's first"
    dirty = target.query("SELECT hostname, hour FROM rollup_dirty ORDER BY hostname, hour")
    assert ("example.com", 2) not in dirty, "a view that was not stored marks nothing"
    assert dirty == [("blog.example.org", 1), ("example.com", 0), ("example.com", 1)]


def test_unknown_sites_are_an_error_unless_created(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = Dirs(tmp_path)
    rows = [view("k"), view("n1", hostname="new.example"), view("n2", hostname="newer.example")]
    path = write(tmp_path / "in.jsonl", "\n".join(json.dumps({**r, "date_created": 1}) for r in rows) + "\n")
    code, _, err = run(capsys, "import", path, *target.flags())
    assert code == 1 and "line 2: website 'new.example' is not registered" in err and "--create-websites" in err
    assert target.query("SELECT count(*) FROM views") == [(0,)]
    code, _, err = run(capsys, "import", path, "--create-websites", *target.flags())
    assert code == 0, err
    assert "created websites: new.example, newer.example" in err
    assert ("new.example", "user_first") in target.websites(), "owned by the first user"
    assert target.query("SELECT count(*) FROM views") == [(3,)]


def test_creating_websites_without_a_user_creates_the_default_admin(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = Dirs(tmp_path, sites=(), users=False)
    path = write(tmp_path / "in.jsonl", json.dumps({**view("x"), "date_created": 1}) + "\n")
    code, _, err = run(capsys, "import", path, "--create-websites", *target.flags())
    assert code == 0, err
    assert "created the default user admin (password CHANGE_ME_ON_FIRST_LOGIN" in err
    assert target.query("SELECT count(*) FROM views") == [(1,)]
    conn = sqlite3.connect(target.appdb)
    ((username, is_default, owner),) = conn.execute(
        "SELECT u.username, u.password_is_default, w.hostname FROM users u JOIN websites w ON w.user_id = u.id"
    ).fetchall()
    conn.close()
    assert (username, is_default, owner) == ("admin", 1, "example.com")


def test_type_flag_overrides_the_guess(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = Dirs(tmp_path)
    path = write(tmp_path / "in.jsonl", json.dumps({**view("x"), "date_created": 1}) + "\n")
    code, _, err = run(capsys, "import", path, "--type", "events", *target.flags())
    assert code == 1 and "unknown events column(s)" in err


def test_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "import")
    assert code == 2 and "give either FILE or -from-medama DUCKDB" in err
    code, _, err = run(capsys, "import", str(tmp_path / "missing.jsonl"), *Dirs(tmp_path).flags())
    assert code == 1 and "No such file" in err


def test_progress_is_reported_on_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transfer, "PROGRESS_EVERY_S", 0.0)
    monkeypatch.setattr(transfer, "CHUNK_ROWS", 10)
    target = Dirs(tmp_path)
    path = write(
        tmp_path / "in.jsonl", "".join(json.dumps({**view(f"p{i}"), "date_created": i}) + "\n" for i in range(35))
    )
    code, out, err = run(capsys, "import", path, *target.flags())
    assert code == 0 and out == ""
    assert "imported 10 rows" in err and "imported 30 rows" in err and "imported 35 views" in err
    assert target.query("SELECT count(*) FROM views") == [(35,)]


def test_a_bad_row_after_many_chunks_still_stores_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transfer, "CHUNK_ROWS", 7)
    target = Dirs(tmp_path)
    rows = [json.dumps({**view(f"p{i}"), "date_created": i}) for i in range(100)]
    rows[83] = rows[83].replace('"Firefox"', "null")
    code, _, err = run(capsys, "import", write(tmp_path / "in.jsonl", "\n".join(rows)), *target.flags())
    assert code == 1 and "line 84: ua_browser must be a string" in err
    assert target.query("SELECT count(*) FROM views") == [(0,)]


# --- property: any rows survive export and import unchanged ---

texts = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
view_rows = st.fixed_dictionaries(
    {
        **{c: texts for c in hits.VIEW_COLUMNS if c not in ("hostname", "is_unique_user", "is_unique_page",
                                                           "duration_ms", "date_created")},
        "hostname": st.sampled_from(SITES),
        "is_unique_user": st.booleans(),
        "is_unique_page": st.booleans(),
        "duration_ms": st.none() | st.integers(min_value=0, max_value=2**40),
        "date_created": st.integers(min_value=0, max_value=253_402_300_799_999),
    }
)  # fmt: skip


@settings(max_examples=50, deadline=None)
@given(
    rows=st.lists(view_rows, max_size=8, unique_by=lambda r: (r["bid"], r["hostname"])),
    fmt=st.sampled_from(transfer.FORMATS),
)
def test_round_trip_property(rows: list[dict[str, Any]], fmt: str) -> None:
    source_conn = db.connect(":memory:")
    db.migrate(source_conn, analytics.MIGRATIONS)
    hits.apply_batch(source_conn, [hits.NewView(hits.view_row(r)) for r in rows])
    first = io.StringIO(newline="")
    transfer.export_rows(source_conn, first, fmt=fmt)
    meta_conn = make_meta(":memory:")
    target_conn = db.connect(":memory:")
    db.migrate(target_conn, analytics.MIGRATIONS)
    result = transfer.import_rows(target_conn, meta_conn, io.BytesIO(first.getvalue().encode()))
    assert result.rows == len(rows)
    second = io.StringIO(newline="")
    transfer.export_rows(target_conn, second, fmt=fmt)
    assert first.getvalue() == second.getvalue()
    stored = sorted(target_conn.execute(f"SELECT {', '.join(hits.VIEW_COLUMNS)} FROM views"), key=repr)
    expected = sorted(
        (tuple(int(r[c]) if type(r[c]) is bool else r[c] for c in hits.VIEW_COLUMNS) for r in rows), key=repr
    )
    assert stored == expected
    for conn in (source_conn, meta_conn, target_conn):
        conn.close()


# --- upstream's DuckDB file ---

UPSTREAM_DDL = (
    """CREATE TABLE views (bid TEXT, hostname TEXT NOT NULL, pathname TEXT NOT NULL, is_unique_user BOOLEAN NOT NULL,
       is_unique_page BOOLEAN NOT NULL, referrer_host TEXT, referrer_group TEXT, country TEXT, language_base TEXT,
       language_dialect TEXT, ua_browser TEXT NOT NULL, ua_os TEXT NOT NULL, ua_device_type TEXT NOT NULL,
       utm_source TEXT, utm_medium TEXT, utm_campaign TEXT, duration_ms UINTEGER, date_created TIMESTAMPTZ NOT NULL)""",
    """CREATE TABLE events (batch_id TEXT NOT NULL, group_name TEXT NOT NULL, name TEXT NOT NULL, value TEXT NOT NULL,
       date_created TIMESTAMPTZ NOT NULL, bid TEXT)""",
)


def test_import_from_upstreams_duckdb_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    duckdb = pytest.importorskip("duckdb", reason="the duckdb package is not installed (pip install duckdb)")
    source = tmp_path / "upstream_analytics.db"
    conn = duckdb.connect(str(source))
    for ddl in UPSTREAM_DDL:
        conn.execute(ddl)
    conn.execute(
        "INSERT INTO views VALUES ('b1', 'example.com', '/a', true, false, 'www.google.com', 'Google', 'France',"
        " 'French', 'French', 'Chrome', 'Windows', 'Desktop', 'news', '', '', 1500, '2024-03-05 14:30:00.123+00'),"
        " ('b2', 'legacy.example', '/', false, true, NULL, NULL, NULL, NULL, NULL, 'Safari', 'iOS', 'Mobile',"
        " NULL, NULL, NULL, NULL, '2024-03-05 16:30:00+02')"
    )
    conn.execute(
        "INSERT INTO events VALUES ('event_1', 'example.com', 'plan', 'pro', '2024-03-05 14:30:00.123+00', 'b1'),"
        " ('event_0', 'example.com', 'old', 'row', '2023-01-01 00:00:00+00', NULL)"
    )
    conn.close()
    target = Dirs(tmp_path / "ours")
    code, _, err = run(capsys, "import", "--from-medama", str(source), *target.flags())
    assert code == 1 and "website 'legacy.example' is not registered" in err
    code, _, err = run(capsys, "import", "--from-medama", str(source), "--create-websites", *target.flags())
    assert code == 0, err
    assert "imported 2 views" in err and "imported 2 events" in err
    # The last column, referrer_path: upstream's rows have no internal referrer path.
    assert target.query("SELECT * FROM views ORDER BY bid") == [
        ("b1", "example.com", "/a", 1, 0, "www.google.com", "Google", "France", "French", "French", "Chrome",
         "Windows", "Desktop", "news", "", "", 1500, 1_709_649_000_123, ""),
        ("b2", "legacy.example", "/", 0, 1, "", "", "Unknown", "Unknown", "Unknown", "Safari", "iOS", "Mobile",
         "", "", "", None, 1_709_649_000_000, ""),
    ]  # fmt: skip
    assert target.query("SELECT bid, batch_id, name, date_created FROM events ORDER BY date_created") == [
        ("", "event_0", "old", 1_672_531_200_000),
        ("b1", "event_1", "plan", 1_709_649_000_123),
    ]


def test_from_medama_with_a_file_that_is_not_duckdb(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("duckdb", reason="the duckdb package is not installed (pip install duckdb)")
    target = Dirs(tmp_path / "ours")
    not_duckdb = tmp_path / "plain.txt"
    not_duckdb.write_text("hello")
    code, _, err = run(capsys, "import", "--from-medama", str(not_duckdb), *target.flags())
    assert code == 1 and "cannot open" in err


def test_from_medama_without_duckdb_says_how_to_get_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "duckdb", None)
    target = Dirs(tmp_path)
    code, _, err = run(capsys, "import", "--from-medama", str(tmp_path / "x.db"), *target.flags())
    assert code == 1 and "pip install duckdb" in err


def test_an_empty_file_imports_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = Dirs(tmp_path)
    code, _, err = run(capsys, "import", write(tmp_path / "empty.jsonl", "\n\n"), *target.flags())
    assert code == 0 and "imported 0 views" in err


# --- fast import: indexes and triggers set aside, everything as if they had run ---

HOUR = 3_600_000


def dataset(prefix: str, count: int, start_hour: int = 0) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Views over a few hours and sites, and events for some of their bids (dates in Unix ms)."""
    views = [
        view(f"{prefix}{i}", hostname=SITES[i % 3 % 2], pathname=f"/p{i % 5}", is_unique_user=i % 2 == 0,
             duration_ms=None if i % 4 == 0 else i * 10, date_created=(start_hour + i % 7) * HOUR + i)
        for i in range(count)
    ]  # fmt: skip
    events = [
        event(f"{prefix}{i}", batch_id=f"event_{prefix}{i}", group_name=SITES[i % 2],
              date_created=(start_hour + 20 + i % 5) * HOUR)
        for i in range(0, count, 3)
    ]  # fmt: skip
    return views, events


def row_of(record: dict[str, Any], columns: tuple[str, ...]) -> tuple[Any, ...]:
    return tuple(record[c] for c in columns)


# The insert triggers of analytics migrations 3 and 9 (dropped by 17: writers mark hours themselves), made again as
# temporary triggers (not in the file's schema) for the reference an import is held to.
OLD_INSERT_TRIGGERS = (
    """CREATE TEMP TRIGGER old_views_insert AFTER INSERT ON main.views BEGIN
        INSERT OR IGNORE INTO rollup_dirty VALUES (NEW.hostname, NEW.date_created / 3600000);
        INSERT OR IGNORE INTO rollup_dirty SELECT NEW.hostname, date_created / 3600000 FROM events WHERE bid = NEW.bid;
    END""",
    """CREATE TEMP TRIGGER old_events_insert AFTER INSERT ON main.events BEGIN
        INSERT OR IGNORE INTO rollup_dirty SELECT hostname, NEW.date_created / 3600000 FROM views WHERE bid = NEW.bid
        UNION ALL SELECT hostname, date_created / 3600000 FROM views WHERE bid = NEW.bid;
    END""",
)


def slow_insert(path: Path, kind: str, records: list[dict[str, Any]]) -> None:
    """What an import did with the insert triggers and every index in place: one INSERT per row."""
    conn = db.connect(str(path))
    db.migrate(conn, analytics.MIGRATIONS)
    for trigger in OLD_INSERT_TRIGGERS:
        conn.execute(trigger)
    columns = hits.VIEW_COLUMNS if kind == "views" else hits.EVENT_COLUMNS
    sql = f"INSERT INTO {kind} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
    if kind == "views":
        sql += " ON CONFLICT (bid, hostname) DO NOTHING"  # as ingestion stores a view
    with db.Transaction(conn):
        for record in records:
            conn.execute(sql, row_of(record, columns))
    conn.close()


def state(path: Path) -> dict[str, Any]:
    """Everything an import may change, in comparable form."""
    conn = sqlite3.connect(path)
    try:
        stat1 = conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'").fetchone()
        return {
            "schema": sorted(conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master")),
            "views": sorted(conn.execute(f"SELECT {', '.join(hits.VIEW_COLUMNS)} FROM views"), key=repr),
            "events": sorted(conn.execute(f"SELECT {', '.join(hits.EVENT_COLUMNS)} FROM events")),
            "dirty": sorted(conn.execute("SELECT hostname, hour FROM rollup_dirty")),
            "stat1": sorted(conn.execute("SELECT tbl, idx, stat FROM sqlite_stat1")) if stat1 else None,
            "integrity": conn.execute("PRAGMA integrity_check").fetchall(),
        }
    finally:
        conn.close()


def schema_version(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("PRAGMA schema_version").fetchone()[0])
    finally:
        conn.close()


def prepare_pair(tmp_path: Path, views: list[dict[str, Any]], events: list[dict[str, Any]]) -> tuple[Dirs, Path]:
    """A target for the CLI and a reference database, both holding `views` and `events`, no hour dirty."""
    target = Dirs(tmp_path / "fast")
    reference = tmp_path / "reference.db"
    for path in (target.analyticsdb, reference):
        slow_insert(path, "views", views)
        slow_insert(path, "events", events)
        conn = sqlite3.connect(path)
        conn.execute("DELETE FROM rollup_dirty")
        conn.execute("ANALYZE")  # statistics must survive the indexes being rebuilt
        conn.commit()
        conn.close()
    return target, reference


CASES = {  # name: (views stored first, events stored first, kind imported, rows imported)
    "views into an empty database": lambda: ([], [], "views", dataset("a", 40)[0]),
    "views into a database with their events": lambda: ([], dataset("a", 40)[1], "views", dataset("a", 40)[0]),
    "views with repeats into a non-empty database": lambda: (
        dataset("a", 30)[0], dataset("a", 30)[1], "views",
        dataset("b", 25, start_hour=3)[0] + dataset("a", 40, start_hour=50)[0] + dataset("b", 5)[0],
    ),
    "events into a database with their views": lambda: (dataset("a", 40)[0], [], "events", dataset("a", 40)[1]),
    "events into a non-empty database": lambda: (
        dataset("a", 40)[0] + dataset("b", 30)[0], dataset("b", 30)[1], "events",
        dataset("a", 40)[1] + dataset("a", 9, start_hour=90)[1],
    ),
}  # fmt: skip


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
@pytest.mark.parametrize("ratio", [1000, 0], ids=["rebuilt", "kept"])
@pytest.mark.parametrize("case", list(CASES))
def test_a_fast_import_ends_as_if_every_row_went_through_the_triggers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, case: str, ratio: int, fmt: str
) -> None:
    """Same rows, same rollup_dirty, same schema and statistics as one INSERT per row with the triggers."""
    monkeypatch.setattr(transfer, "CHUNK_ROWS", 7)  # several chunks, so rows go in before and after the decision
    monkeypatch.setattr(transfer, "REBUILD_RATIO", ratio)
    views, events, kind, records = CASES[case]()
    target, reference = prepare_pair(tmp_path, views, events)
    before = state(target.analyticsdb)
    version = schema_version(target.analyticsdb)
    columns = hits.VIEW_COLUMNS if kind == "views" else hits.EVENT_COLUMNS
    code, _, err = run(capsys, "import", as_file(tmp_path, "in", records, fmt, columns), *target.flags())
    assert code == 0, err
    slow_insert(reference, kind, records)
    after, expected = state(target.analyticsdb), state(reference)
    assert after == expected
    assert after["schema"] == before["schema"] and after["stat1"] == before["stat1"]
    assert after["dirty"], "the import marked hours"
    rebuilt = schema_version(target.analyticsdb) != version
    assert rebuilt == (ratio > 0 or not views and kind == "views" or not events and kind == "events")


def test_the_indexes_are_set_aside_partway_once_the_file_looks_big_enough(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transfer, "CHUNK_ROWS", 5)
    views, events = dataset("a", 30)
    target, reference = prepare_pair(tmp_path, views, events)
    records = dataset("b", 60, start_hour=40)[0]
    calls: list[int] = []
    real_suspend = transfer.bulk.suspend

    def suspend(conn: sqlite3.Connection, table: str) -> Any:
        calls.append(conn.execute("SELECT count(*) FROM views").fetchone()[0])
        return real_suspend(conn, table)

    monkeypatch.setattr(transfer.bulk, "suspend", suspend)
    # A stream whose size is unknown: the decision can only use the rows read so far.
    stream = io.BytesIO(
        to_csv([{**r, "date_created": transfer.format_time(r["date_created"])} for r in records]).encode()
    )
    monkeypatch.setattr(transfer, "_share_read", lambda _: lambda: None)
    conn, meta_conn = db.connect(str(target.analyticsdb)), db.connect(str(target.appdb))
    result = transfer.import_rows(conn, meta_conn, stream)
    conn.close()
    meta_conn.close()
    assert result.rows == result.stored == 60
    assert calls == [30 + 10], "rows 1-10 went in with the indexes, then 30 <= 2 * 15"
    slow_insert(reference, "views", records)
    assert state(target.analyticsdb) == state(reference)


def test_a_bad_row_after_the_indexes_were_set_aside_leaves_the_database_as_it_was(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transfer, "CHUNK_ROWS", 4)
    views, events = dataset("a", 10)
    target, _ = prepare_pair(tmp_path, views, events)
    conn = sqlite3.connect(target.analyticsdb)
    dump = list(conn.iterdump())
    conn.close()
    version = schema_version(target.analyticsdb)
    records = [{**r, "date_created": transfer.format_time(r["date_created"])} for r in dataset("b", 40)[0]]
    records[33]["country"] = None
    path = write(tmp_path / "in.jsonl", "".join(json.dumps(r) + "\n" for r in records))
    code, _, err = run(capsys, "import", path, *target.flags())
    assert code == 1 and "line 34: country must be a string" in err
    conn = sqlite3.connect(target.analyticsdb)
    assert list(conn.iterdump()) == dump, "schema, rows, rollup_dirty and statistics as before"
    conn.close()
    assert schema_version(target.analyticsdb) == version


def test_import_while_another_connection_reads_and_a_server_writes(tmp_path: Path) -> None:
    """The import (the real CLI, in its own process) takes the write lock and changes the schema while
    it runs; a reader keeps its snapshot, and a writer connection opened before it keeps working."""
    target = Dirs(tmp_path)
    target.seed([view("old", date_created=5)])
    writer = db.connect(str(target.analyticsdb))  # as the server's writer: its statements are prepared already
    assert hits.apply_batch(writer, [hits.NewView(hits.view_row(view("early", date_created=6)))]) == [None]
    reader = db.connect(str(target.analyticsdb), readonly=True)
    reader.execute("BEGIN")
    count = "SELECT count(*) FROM views WHERE hostname = 'example.com'"
    assert reader.execute(count).fetchone() == (2,)
    records = dataset("b", 50)[0]
    path = as_file(tmp_path, "in", records, "jsonl", hits.VIEW_COLUMNS)
    done = subprocess.run(
        [sys.executable, str(ROOT / "medama.py"), "import", path, *target.flags()],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "imported 50 views" in done.stderr
    assert reader.execute(count).fetchone() == (2,), "the reader's snapshot"
    reader.execute("COMMIT")
    new = sum(r["hostname"] == "example.com" for r in records)
    assert reader.execute(count).fetchone() == (2 + new,)
    reader.close()
    assert hits.apply_batch(writer, [hits.NewView(hits.view_row(view("late", date_created=99 * HOUR)))]) == [None]
    writer.close()
    assert ("example.com", 99) in target.query("SELECT hostname, hour FROM rollup_dirty"), "its trigger is back"


# --- the command line edges a stranger meets ---


def test_export_of_a_missing_database_is_an_error_and_creates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, "export", "-analyticsdb", "./typo.db")
    assert code == 1 and out == ""
    assert err == (
        f"ERROR: no analytics database at {tmp_path / 'typo.db'} (-analyticsdb): give the path of the "
        "me_analytics.db the server uses, or run export in its folder\n"
    )
    assert list(tmp_path.iterdir()) == []


def test_export_into_a_pipe_closed_early_exits_quietly(tmp_path: Path) -> None:
    source = Dirs(tmp_path)
    source.seed([view(f"v{i:05d}", date_created=i) for i in range(3000)])  # ~1 MB of JSON: more than a pipe holds
    medama = f"{sys.executable} {ROOT / 'medama.py'}"
    script = f'{medama} export {" ".join(source.flags())} | head -3; echo "status=${{PIPESTATUS[0]}}" >&2'
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60)
    assert done.stdout.count("\n") == 3 and json.loads(done.stdout.splitlines()[0])["bid"] == "v00000"
    assert done.stderr == "status=0\n", done.stderr  # no traceback, no "Broken pipe", no summary line


def test_import_into_a_new_folder_creates_what_start_would(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    new = tmp_path / "new"
    flags = ["-appdb", str(new / "me_meta.db"), "-analyticsdb", str(new / "me_analytics.db")]
    path = write(tmp_path / "in.jsonl", json.dumps({**view("x"), "date_created": 1}) + "\n")
    code, _, err = run(capsys, "import", path, *flags)
    assert code == 1 and "website 'example.com' is not registered" in err
    assert list(new.iterdir()) == [], "a failed import leaves no empty database behind"
    code, _, err = run(capsys, "import", path, "--create-websites", *flags)
    assert code == 0, err
    assert "created the default user admin" in err and "created websites: example.com" in err
    with live_server(new) as server:  # the server starts on them as if it had made them
        client = server.client()
        client.login()
        assert client.get("/api/websites").json() == [{"hostname": "example.com"}]
        assert client.get("/api/user").json()["passwordChangeRequired"] is True
        client.close()


def test_a_site_imported_while_the_server_runs_is_served_within_seconds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.api.test_events import BROWSER, load

    with live_server(tmp_path) as server:
        client = server.client()
        hit = json.dumps(load(u="https://imported.example/")).encode()
        assert client.post("/api/event/hit", body=hit, headers=BROWSER).status == 404
        flags = ["-appdb", server.config.appdb, "-analyticsdb", server.config.analyticsdb]
        path = write(tmp_path / "in.jsonl", json.dumps({**view("i", hostname="imported.example")}) + "\n")
        code, _, err = run(capsys, "import", path, "--create-websites", *flags)
        assert code == 0, err
        deadline = time.monotonic() + 5  # the server looks every META_POLL_INTERVAL_S (1 s)
        status = 404
        while status == 404 and time.monotonic() < deadline:
            time.sleep(0.1)
            status = client.post("/api/event/hit", body=hit, headers=BROWSER).status
        assert status == 204
        client.login()
        assert {"hostname": "imported.example"} in client.get("/api/websites").json()
        with sqlite3.connect(server.config.appdb) as conn:  # any other writer: here a setting, then a deletion
            conn.execute("INSERT INTO tenant_settings VALUES ('script_type', 'click-events', 0)")
        conn.close()
        click = client.get("/scripts/click-events.js").body
        deadline = time.monotonic() + 5
        while client.get("/script.js").body != click and time.monotonic() < deadline:
            time.sleep(0.1)
        assert client.get("/script.js").body == click
        client.close()
