"""`medama import`, `export` and `backup` with -appdb postgres://… and -analyticsdb clickhouse://… (issue 17), as a
user runs them: real processes, the real servers of tests/engines.py."""

from __future__ import annotations

import io
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from medama_core import transfer
from medama_core.store.clickhouse import imported
from medama_core.store.rows import EVENT_COLUMNS, VIEW_COLUMNS
from tests import stores
from tests.engines import Stack, running_stack

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "tests" / "importers" / "samples"
T = 1_717_200_000_000  # 2024-06-01T00:00:00Z


@pytest.fixture(scope="module")
def servers() -> Iterator[Stack]:
    yield from running_stack()


def medama(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, str(ROOT / "medama.py"), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def jsonl(columns: tuple[str, ...], rows: list[tuple[object, ...]]) -> str:
    out = io.StringIO()
    write = transfer._jsonl_writer(out, columns)
    for row in rows:
        write(row)
    return out.getvalue()


def views(count: int, site: str = "example.com") -> list[tuple[object, ...]]:
    values = ("/", True, False, "", "", "Germany", "German", "German", "Firefox", "Linux", "Desktop", "", "", "")
    return [(f"v{i:03d}", site, *values, i * 10 if i % 2 else None, T + i * 1000) for i in range(count)]


def test_import_then_export_gives_the_same_bytes(tmp_path: Path, servers: Stack) -> None:
    app, analytics = servers.urls()
    flags = ["-appdb", app, "-analyticsdb", analytics]
    source = tmp_path / "views.jsonl"
    source.write_text(jsonl(VIEW_COLUMNS, views(250)))
    done = medama("import", str(source), "-create-websites", *flags)
    assert done.returncode == 0, done.stderr
    assert "imported 250 views" in done.stderr and "created websites: example.com" in done.stderr
    with stores.app_store(app) as (conn, m):
        assert m.list_hostnames(conn) == ["example.com"]  # registered in PostgreSQL, owned by the new admin
    again = medama("import", str(source), *flags)
    assert again.returncode == 0 and "ignored 250 views already stored" in again.stderr, again.stderr
    events = tmp_path / "events.jsonl"
    events.write_text(jsonl(EVENT_COLUMNS, [("v001", f"e{i}", "example.com", "plan", "pro", T + i) for i in range(3)]))
    assert medama("import", str(events), *flags).returncode == 0
    exported = tmp_path / "out.jsonl"
    done = medama("export", "-analyticsdb", analytics, "-output", str(exported))
    assert done.returncode == 0 and "exported 250 views" in done.stderr, done.stderr
    assert exported.read_bytes() == source.read_bytes()
    done = medama("export", "-analyticsdb", analytics, "-type", "events", "-format", "jsonl")
    assert done.stdout == events.read_text(), done.stderr


def test_a_bad_row_stores_nothing(tmp_path: Path, servers: Stack) -> None:
    app, analytics = servers.urls()
    lines = jsonl(VIEW_COLUMNS, views(30)).splitlines()
    lines[20] = lines[20].replace('"Firefox"', "42")
    source = tmp_path / "bad.jsonl"
    source.write_text("\n".join(lines) + "\n")
    done = medama("import", str(source), "-create-websites", "-appdb", app, "-analyticsdb", analytics)
    assert done.returncode == 1 and "nothing was stored" in done.stderr and "line 21" in done.stderr, done.stderr
    assert stores.analytics_rows(analytics, "SELECT count(*) FROM views") == [(0,)]
    unknown = tmp_path / "unknown.jsonl"
    unknown.write_text(jsonl(VIEW_COLUMNS, views(3, site="nobody.example")))
    done = medama("import", str(unknown), "-appdb", app, "-analyticsdb", analytics)
    assert done.returncode == 1 and "'nobody.example' is not registered" in done.stderr, done.stderr
    assert stores.analytics_rows(analytics, "SELECT count(*) FROM views") == [(0,)]


def test_other_tools_exports_into_clickhouse(tmp_path: Path, servers: Stack) -> None:
    _, analytics = servers.urls()
    appdb = str(tmp_path / "me_meta.db")  # a mix: SQLite app data, ClickHouse analytics
    flags = ["-site", "example.com", "-create-websites", "-appdb", appdb, "-analyticsdb", analytics]
    goatcounter = str(SAMPLES / "goatcounter-export.csv")
    dry = medama("import", "-from", "goatcounter", goatcounter, "-dry-run", *flags)
    assert dry.returncode == 0 and "would import 5 views" in dry.stderr, dry.stderr
    assert stores.analytics_rows(analytics, "SELECT count(*) FROM views") == [(0,)]
    done = medama("import", "-from", "goatcounter", goatcounter, *flags)
    assert done.returncode == 0 and "imported 5 views" in done.stderr and "imported 1 events" in done.stderr
    again = medama("import", "-from", "goatcounter", goatcounter, *flags)
    assert "imported 0 events" in again.stderr, again.stderr  # its batch id is stored already
    assert stores.analytics_rows(analytics, "SELECT count(*) FROM events") == [(1,)]
    done = medama("import", "-from", "plausible", str(SAMPLES / "plausible-export.zip"), *flags)
    assert done.returncode == 0 and "imported daily totals" in done.stderr, done.stderr
    with stores.clickhouse(analytics) as client:
        assert [tool for tool, _, _ in imported.periods(client, "example.com")] == ["plausible"]


def test_what_cannot_apply_is_one_line_and_exit_2(tmp_path: Path, servers: Stack) -> None:
    app, analytics = servers.urls()
    for args, said in (
        (["backup", str(tmp_path / "copy"), "-appdb", app], "-appdb is a postgres:// URL: backup copies SQLite"),
        (["backup", str(tmp_path / "copy"), "-analyticsdb", analytics], "-analyticsdb is a clickhouse:// URL"),
        (["import", "-from-medama", "x.duckdb", "-analyticsdb", analytics], "medama migrate"),
        (["export", "-analyticsdb", "postgres://x@127.0.0.1/y"], "postgres:// is not an analytics store"),
        (["export", "-analyticsdb", analytics.replace("/t_", "/no_such_")], "-analyticsdb: ClickHouse has no database"),
    ):
        done = medama(*args)
        assert done.returncode == 2 and done.stderr.startswith("ERROR: ") and said in done.stderr, (args, done.stderr)
        assert len(done.stderr.splitlines()) == 1, done.stderr
    assert not (tmp_path / "copy").exists()
