"""The committed build in dashboard_dist/: within budget, CSP-ready, hashed names, built from the sources."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
DIST = ROOT / "dashboard_dist"
SOURCE = ROOT / "dashboard" / "src"


def build_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_dashboard", ROOT / "scripts" / "build_dashboard.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("build_dashboard", module)
    spec.loader.exec_module(module)
    return module


def index_html() -> str:
    return (DIST / "index.html").read_text(encoding="utf-8")


def test_package_marker_is_kept() -> None:
    assert (DIST / "__init__.py").is_file()


def test_first_load_within_budget() -> None:
    script = build_script()
    assert script.first_load_gzip(DIST) <= script.FIRST_LOAD_BUDGET_GZIP


def test_index_html_has_no_inline_code() -> None:
    """Ready for `Content-Security-Policy: default-src 'self'`: no inline script, style or handler."""
    html = index_html()
    assert "<style" not in html
    assert "style=" not in html
    assert not re.search(r"\son[a-z]+=", html)
    for tag in re.findall(r"<script\b[^>]*>", html):
        assert 'src="/assets/' in tag, tag
    assert re.findall(r"<script\b[^>]*>\s*</script>", html) == re.findall(r"<script\b[^>]*>.*?</script>", html, re.S)


def test_assets_are_hashed_and_local() -> None:
    html = index_html()
    referenced = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert referenced, html
    for url in referenced:
        assert url.startswith("/") and not url.startswith("//"), url  # same origin only
        assert (DIST / url.lstrip("/")).is_file(), url
    assets = sorted(p.name for p in (DIST / "assets").iterdir())
    assert assets and all(re.fullmatch(r"app-[A-Z0-9]{8}\.(js|css)", name) for name in assets), assets
    assert all(f"/assets/{name}" in html for name in assets)  # nothing stale is left behind
    css = "".join(p.read_text(encoding="utf-8") for p in (DIST / "assets").glob("*.css"))
    assert "@import" not in css and "url(http" not in css and "@font-face" not in css


def test_source_never_writes_html() -> None:
    """Values from the API (paths, referrers, UTM tags, property names) are only ever rendered as text."""
    pattern = re.compile(r"innerHTML|outerHTML|insertAdjacentHTML|dangerouslySetInnerHTML|document\.write")
    for path in SOURCE.rglob("*.js*"):
        assert not pattern.search(path.read_text(encoding="utf-8")), path


@pytest.mark.slow
def test_dist_matches_the_sources() -> None:
    if shutil.which("node") is None or not (ROOT / "dashboard" / "node_modules" / ".package-lock.json").is_file():
        pytest.skip("needs node and `npm ci` in dashboard/ (scripts/build_dashboard.py --ci installs it)")
    assert build_script().main(["--check"]) == 0


@pytest.mark.parametrize("timezone", ["UTC", "Europe/Berlin", "America/Los_Angeles"])
def test_javascript_units(timezone: str) -> None:
    """The pure modules (formats, periods, filters, flags) under Node's own test runner, in several zones."""
    if shutil.which("node") is None:
        pytest.skip("node is not installed")
    env = {**os.environ, "TZ": timezone}
    result = subprocess.run(
        ["node", "--test", "test/"], cwd=ROOT / "dashboard", env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
