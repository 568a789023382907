"""Start-up imports: what only some requests need (export/import, TLS, profiling) loads on the first such request."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Modules a server over plain HTTP must not load before a request needs them: transfer pulls in every
# importer (csv, zip and JSON readers), https pulls in tls and acme, debug's profile needs cProfile/pstats.
LAZY = (
    "medama_core.transfer",
    "medama_core.importers",
    "medama_core.importers.plausible",
    "medama_core.importers.umami",
    "medama_core.importers.goatcounter",
    "medama_core.https",
    "medama_core.tls",
    "medama_core.acme",
    "cProfile",
    "pstats",
)
EXPORT_NEEDS = ("medama_core.transfer", "medama_core.importers", "medama_core.importers.plausible")
# The SQLite stats layer: not loaded before the server listens (the background work loads its rollup part
# then), and its query part not before the first stats request.
STATS_LAYER = (
    "medama_core.store.sqlite.stats",
    "medama_core.store.sqlite.rollups",
    "medama_core.store.sqlite.columns",
    "medama_core.store.sqlite.scan",
    "medama_core.store.sqlite.entries",
    "medama_core.store.imported_stats",
    "medama_core.store.sqlite.imported_merge",
    "medama_core.store.sqlite.overview",
    "medama_core.store.sqlite.retention",
    "medama_core.store.sqlite.rawruns",
)
STATS_QUERIES = ("medama_core.store.sqlite.stats", "medama_core.store.sqlite.scan", "medama_core.store.sqlite.entries")

# A fresh interpreter, so nothing another test imported counts: the lazy modules loaded after importing the
# app, after the server is listening and has answered a tracker ping, and after a site's export.
SCRIPT = textwrap.dedent(
    """
    import json, sys, tempfile
    from pathlib import Path

    lazy = json.loads(sys.argv[1])
    loaded = lambda: sorted(m for m in lazy if m in sys.modules)
    seen = {}
    import medama_core.app
    seen["import"] = loaded()
    from tests.helpers import live_server

    with tempfile.TemporaryDirectory() as tmp, live_server(Path(tmp)) as server:
        client = server.client()
        assert client.get("/api/event/ping").status == 200
        client.login()
        assert client.post("/api/websites", json_body={"hostname": "lazy.example"}).status == 201
        seen["first requests"] = loaded()
        assert client.get("/api/websites/lazy.example/export").status == 200
        seen["export"] = loaded()
        assert client.get("/api/website/lazy.example/summary").status == 200
        seen["stats"] = loaded()
        client.close()
    print(json.dumps(seen))
    """
)


def _loaded_at_each_step(modules: tuple[str, ...]) -> dict[str, list[str]]:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, json.dumps(modules)], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    seen: dict[str, list[str]] = json.loads(result.stdout.splitlines()[-1])
    return seen


def test_stats_layer_loads_after_listening() -> None:
    seen = _loaded_at_each_step(STATS_LAYER)
    assert seen["import"] == [], seen
    assert not set(STATS_QUERIES) & set(seen["first requests"]), seen
    assert "medama_core.store.sqlite.stats" in seen["stats"], seen


def test_export_and_tls_modules_load_on_first_use() -> None:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, json.dumps(LAZY)], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.splitlines()[-1])
    assert seen["import"] == [], seen
    assert seen["first requests"] == [], seen
    assert set(EXPORT_NEEDS) <= set(seen["export"]), seen
    assert not {"medama_core.https", "medama_core.tls", "medama_core.acme"} & set(seen["export"]), seen
