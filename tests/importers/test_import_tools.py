"""`medama import --from goatcounter|umami|plausible`: each tool's sample export loaded, edge cases, re-runs, errors."""

from __future__ import annotations

import gzip
import io
import json
import sqlite3
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medama_core import transfer
from medama_core.config import ConfigError, help_text
from medama_core.importers import goatcounter, plausible, rows, umami
from medama_core.importers.rows import BadRecord, text_lines
from medama_core.store.sqlite import analytics, db, meta
from tests.test_zipapp import SUPPORTED_PYTHONS, interpreters

ROOT = Path(__file__).resolve().parent.parent.parent
SAMPLES = Path(__file__).resolve().parent / "samples"
SITE = "example.com"
UMAMI_ID = "0b8a0f4e-5b43-4c0e-b9a7-3f2d7e0c1a11"
DAY = 86_400_000
MAR_5 = 1_709_596_800_000  # 2024-03-05T00:00:00Z


def databases(tmp_path: Path) -> tuple[str, str]:
    appdb, analyticsdb = str(tmp_path / "me_meta.db"), str(tmp_path / "me_analytics.db")
    conn = db.connect(appdb)
    db.migrate(conn, meta.MIGRATIONS)
    meta.insert_user(conn, "user_first", "admin", "x", 100)
    meta.insert_website(conn, SITE, "user_first", 0)
    conn.close()
    conn = db.connect(analyticsdb)
    db.migrate(conn, analytics.MIGRATIONS)
    conn.close()
    return appdb, analyticsdb


def run(tmp_path: Path, *args: str) -> tuple[int, str]:
    appdb, analyticsdb = str(tmp_path / "me_meta.db"), str(tmp_path / "me_analytics.db")
    err = io.StringIO()
    code = transfer.import_main([*args, "--appdb", appdb, "--analyticsdb", analyticsdb], err, {})
    return code, err.getvalue()


def query(tmp_path: Path, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(tmp_path / "me_analytics.db")
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


VIEW_SQL = (
    "SELECT pathname, is_unique_user, is_unique_page, referrer_host, referrer_group, country, ua_browser, ua_os,"
    " ua_device_type, utm_source, date_created FROM views ORDER BY date_created"
)


def test_goatcounter_export(tmp_path: Path) -> None:
    databases(tmp_path)
    sample = str(SAMPLES / "goatcounter-export.csv")
    code, err = run(tmp_path, "--from", "goatcounter", sample, "--site", SITE)
    assert code == 0, err
    assert "imported 5 views" in err and "imported 1 events" in err  # the bot row is skipped
    hour = 3600_000
    assert query(tmp_path, VIEW_SQL) == [
        (
            "/",
            1,
            1,
            "news.ycombinator.com",
            "Hacker News",
            "United States",
            "Chrome",
            "Windows",
            "Desktop",
            "",
            MAR_5 + 10 * hour,
        ),
        # Same session, same day: not "first view today"; 12:10+02:00 is 10:10 UTC; the title's newline is no row.
        ("/blog", 0, 1, "", "", "Unknown", "Firefox", "Linux", "Desktop", "", MAR_5 + 10 * hour + 600_000),
        ("/pricing", 1, 1, "", "Hacker News", "United Kingdom", "Safari", "iOS", "Mobile", "", MAR_5 + 2 * DAY - 1000),
        # A new UTC day: the session's first view of it is "first view today" again; a campaign is a utm_source.
        ("/pricing", 1, 0, "", "", "United Kingdom", "Safari", "iOS", "Mobile", "spring", MAR_5 + 2 * DAY + 1000),
        # No session, no location, -05:00.
        ("/é", 1, 1, "", "", "Unknown", "Edge", "MacOS", "Desktop", "", MAR_5 + 2 * DAY + 13 * hour),
    ]
    # The event belongs to the session's last view before it (the "/blog" row is 12:10+02:00 = 10:10Z).
    assert query(tmp_path, "SELECT v.pathname, e.name, e.value FROM events e JOIN views v USING (bid)") == [
        ("/blog", "event", "signup-click")
    ]
    code, err = run(tmp_path, "--from", "goatcounter", sample, "--site", SITE)
    assert code == 0 and "imported 0 views" in err and "imported 0 events" in err, err
    assert query(tmp_path, "SELECT count(*) FROM events") == [(1,)]


def test_umami_tables(tmp_path: Path) -> None:
    appdb, _ = databases(tmp_path)
    events, sessions = str(SAMPLES / "umami-website_event.csv"), str(SAMPLES / "umami-session.csv")
    # The website id names no site yet, and no --site was given.
    code, err = run(tmp_path, "--from", "umami", events, "--sessions", sessions)
    assert code == 1 and "line 2: website_id" in err
    conn = db.connect(appdb)
    meta.set_umami_id(conn, SITE, UMAMI_ID)
    conn.close()
    code, err = run(tmp_path, "--from", "umami", events, "--sessions", sessions)
    assert code == 0, err
    rows = query(tmp_path, VIEW_SQL)
    assert [r[:10] for r in rows] == [
        ("/", 1, 1, "www.google.com", "Google", "Germany", "Chrome", "Windows", "Desktop", "news"),
        ("/docs", 0, 1, "", "", "Germany", "Chrome", "Windows", "Desktop", ""),
        ("/", 0, 0, "", "", "Germany", "Chrome", "Windows", "Desktop", ""),
        ("/日本", 1, 1, "t.co", "Twitter", "Japan", "Safari", "iOS", "Mobile", ""),
    ]
    assert rows[0][10] == MAR_5 + 10 * 3600_000 + 123
    assert query(tmp_path, "SELECT v.pathname, e.value FROM events e JOIN views v USING (bid)") == [("/docs", "signup")]
    code, err = run(tmp_path, "--from", "umami", events, "--sessions", sessions)
    assert code == 0 and "imported 0 views" in err and "imported 0 events" in err, err


def test_plausible_aggregates(tmp_path: Path) -> None:
    databases(tmp_path)
    sample = str(SAMPLES / "plausible-export.zip")
    code, err = run(tmp_path, "--from", "plausible", sample, "--site", SITE, "--dry-run")
    assert code == 0 and "would import" in err and query(tmp_path, "SELECT count(*) FROM imported_days") == [(0,)]
    code, err = run(tmp_path, "--from", "plausible", sample, "--site", SITE)
    assert code == 0, err
    site = query(
        tmp_path,
        "SELECT day, visitors, pageviews, visits, bounces, duration_s FROM imported_days"
        " WHERE dimension = '' ORDER BY day",
    )
    mar_1 = MAR_5 - 4 * DAY
    assert site == [(mar_1, 10, 25, 12, 4, 600), (mar_1 + DAY, 5, 7, 5, 3, 100)]
    by = query(
        tmp_path,
        "SELECT dimension, value, sum(visitors) FROM imported_days WHERE dimension != '' GROUP BY 1, 2 ORDER BY 1, 2",
    )
    assert by == [
        ("browser", "Chrome", 7),
        ("browser", "Edge", 3),
        ("browser", "Safari", 5),
        ("country", "Germany", 7),
        ("country", "Japan", 5),
        ("country", "United States", 3),
        ("device", "Desktop", 10),
        ("device", "Mobile", 5),
        ("os", "MacOS", 10),
        ("os", "iOS", 5),
        ("path", "/", 13),
        ("path", "/blog", 3),
        ("referrer", "", 6),
        ("referrer", "Google", 4),
        ("referrer", "Newsletter", 5),
        ("referrer_host", "", 11),
        ("referrer_host", "google.com", 4),
        ("utm_campaign", "", 10),
        ("utm_campaign", "spring", 5),
        ("utm_medium", "", 10),
        ("utm_medium", "email", 5),
        ("utm_source", "", 10),
        ("utm_source", "newsletter", 5),
    ]
    code, err = run(tmp_path, "--from", "plausible", sample, "--site", SITE)
    assert code == 0 and "imported 0 imported daily totals" in err, err


def test_dry_run_stores_nothing_and_errors_name_their_line(tmp_path: Path) -> None:
    databases(tmp_path)
    sample = str(SAMPLES / "goatcounter-export.csv")
    code, err = run(tmp_path, "--from", "goatcounter", sample, "--site", SITE, "--dry-run")
    assert code == 0 and "would import 5 views" in err and "would import 1 events" in err
    assert query(tmp_path, "SELECT count(*) FROM views") == [(0,)]
    bad = tmp_path / "bad.csv"
    text = (SAMPLES / "goatcounter-export.csv").read_text(encoding="utf-8")
    bad.write_text(text.replace("2024-03-06T23:59:59Z", "yesterday"), encoding="utf-8", newline="")
    code, err = run(tmp_path, "--from", "goatcounter", str(bad), "--site", SITE)
    assert code == 1 and "line 8: Date 'yesterday' is not an ISO 8601 date" in err, err
    assert query(tmp_path, "SELECT count(*) FROM views") == [(0,)]
    latin = tmp_path / "latin1.csv"
    latin.write_bytes(text.encode("utf-8").replace("Café".encode(), "Café".encode("latin-1")))
    code, err = run(tmp_path, "--from", "goatcounter", str(latin), "--site", SITE)
    assert code == 1 and "line 10: not UTF-8" in err, err
    code, err = run(tmp_path, "--from", "goatcounter", sample)
    assert code == 1 and "give -site HOSTNAME" in err
    gzipped = tmp_path / "export.csv.gz"
    gzipped.write_bytes(gzip.compress(text.encode("utf-8")))
    code, err = run(tmp_path, "--from", "goatcounter", str(gzipped), "--site", SITE, "--dry-run")
    assert code == 0 and "would import 5 views" in err, err


def test_import_flags_follow_the_one_flag_parser(tmp_path: Path) -> None:
    """-from, -site, -sessions and -dry-run are Go-style flags like every other (either dash count, -flag=value),
    listed by --help with their defaults; misuse is a usage error (exit 2), and a dry run creates no database."""
    sample = str(SAMPLES / "goatcounter-export.csv")
    for argv, message in [
        (["-site", SITE, sample], "-site, -sessions and -dry-run go with -from TOOL"),
        (["-dry-run", sample], "go with -from TOOL"),
        (["-from", "matomo", sample], "'matomo' is not one of goatcounter, umami, plausible"),
        (["-from", "umami", "-from-medama", "upstream.db"], "not -from-medama"),
        (["-from", "umami"], "give either FILE or -from-medama DUCKDB"),
    ]:
        with pytest.raises(ConfigError, match=message):
            transfer.import_main(argv, io.StringIO(), {})
    text = help_text(transfer.IMPORT_SYNOPSIS, transfer.IMPORT_DESCRIPTION, transfer.IMPORT_OPTIONS)
    assert "  -from (default: none: FILE holds medama's own columns)" in text
    assert "  -dry-run (default: false)" in text and "  -from-medama (default: none)" in text
    code, err = run(tmp_path, "-from=goatcounter", sample, "-site=Example.COM", "-dry-run")
    assert code == 0 and "would import 5 views" in err, err
    assert sorted(path.name for path in tmp_path.iterdir()) == []  # nothing stored, so no database left


# Dates as the tools' exports write them (PostgreSQL drops a fraction's trailing zeros; some write nine
# digits), which Python 3.10's fromisoformat alone refuses: read alike on every Python the archive supports.
FRACTIONS = [
    "2024-03-05 10:00:00.1+00",
    "2024-03-05 10:00:00.12+00",
    "2024-03-05T10:00:00.12345Z",
    "2024-03-05T10:00:00.123456789+01:00",
    "2024-03-05 10:00:00.5",
]


@pytest.mark.parametrize("version", SUPPORTED_PYTHONS)
def test_export_dates_with_any_fraction_read_alike_on_every_supported_python(version: str) -> None:
    found = interpreters(version)
    if not found:
        pytest.skip(f"NOT TESTED: no Python {version} on this machine")
    expected = [rows.parse_moment(text, 1) for text in FRACTIONS]
    assert expected[:2] == [MAR_5 + 36_000_100, MAR_5 + 36_000_120]
    script = "import json, sys; from medama_core.importers import rows; "
    script += "print(json.dumps([rows.parse_moment(t, 1) for t in json.loads(sys.argv[1])]))"
    for python in found:
        done = subprocess.run(
            [python, "-c", script, json.dumps(FRACTIONS)], cwd=ROOT, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0 and json.loads(done.stdout) == expected, (python, done.stderr[-500:])


def _drain(records: Any) -> None:
    for _ in records:
        pass


SLOW_OK = settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)
GC_HEADER = (SAMPLES / "goatcounter-export.csv").read_bytes().splitlines(keepends=True)[0]


@SLOW_OK
@given(st.binary(max_size=400), st.booleans())
def test_goatcounter_any_bytes_give_records_or_a_bad_record(data: bytes, with_header: bool) -> None:
    try:
        _drain(goatcounter.records(text_lines(iter(io.BytesIO((GC_HEADER if with_header else b"") + data))), SITE))
    except BadRecord:
        pass


@SLOW_OK
@given(st.binary(max_size=400), st.binary(max_size=200))
def test_umami_any_bytes_give_records_or_a_bad_record(data: bytes, session_data: bytes) -> None:
    header = b"event_id,website_id,session_id,created_at,url_path,event_type\n"
    try:
        by_session = umami.sessions(
            text_lines(iter(io.BytesIO(b"session_id,browser,os,device,language,country\n" + session_data)))
        )
        _drain(umami.records(text_lines(iter(io.BytesIO(header + data))), {"": SITE}, by_session))
    except BadRecord:
        pass


@SLOW_OK
@given(
    st.binary(max_size=400),
    st.sampled_from(["imported_visitors", "imported_sources", "imported_locations"]),
    st.booleans(),
)
def test_plausible_any_bytes_give_totals_or_a_bad_record(data: bytes, table: str, zipped: bool) -> None:
    stream = io.BytesIO(data)
    if zipped:
        stream = io.BytesIO()
        with zipfile.ZipFile(stream, "w") as z:
            z.writestr(f"{table}_20240101_20240102.csv", b"date,visitors,source,country\n" + data)
        stream.seek(0)
    try:
        _drain(plausible.totals(stream, f"{table}.csv"))
    except BadRecord:
        pass


def test_plausible_refuses_what_is_not_its_export(tmp_path: Path) -> None:
    with pytest.raises(BadRecord, match="neither a zip nor a CSV"):
        _drain(plausible.totals(io.BytesIO(b"a,b\n"), "data.csv"))
    empty = io.BytesIO()
    zipfile.ZipFile(empty, "w").close()
    empty.seek(0)
    with pytest.raises(BadRecord, match="no imported_"):
        _drain(plausible.totals(empty, "x.zip"))
