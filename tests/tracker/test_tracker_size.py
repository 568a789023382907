"""The committed tracker builds: present, minified, within their gzip budgets, fresh and storage-free."""

from __future__ import annotations

import gzip
import importlib.util
import itertools
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from medama_core import assets
from medama_core.api import sitesettings

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "tracker.js"
SCRIPTS = ROOT / "medama_core" / "static" / "scripts"
BUILD_SCRIPT = ROOT / "scripts" / "build_tracker.py"

# gzip -9 budgets in bytes, header included. Upstream's builds measure 777, 993,
# 906 and 1,045 bytes: the default build must stay under 800, the three others
# upstream has must not be worse than upstream, and every other variant (the
# features upstream lacks) stays under the budget of the build with everything on.
ALL_FEATURES_BUDGET = 1_400
UPSTREAM_BUDGETS = {
    "default": 800,
    "click-events": 993,
    "page-events": 906,
    "click-events.page-events": 1_100,
}
FULL_BUILD = "click-events.file-downloads.not-found-pages.outbound-links.page-events"

# Which markers show that a feature was compiled in.
MARKERS = {
    "page-events": "data-m:load",
    "click-events": "data-m:click",
    "outbound-links": "outbound-host",
    "file-downloads": "file-download",
    "not-found-pages": "responseStatus",
}

# Storage the tracker promises never to touch (cookie-free, no client state).
FORBIDDEN = ("cookie", "localstorage", "sessionstorage", "indexeddb")

# Exit status of build_tracker.py when node/npm/terser cannot be had.
EXIT_TOOLCHAIN = 3
BUILD_TIMEOUT_S = 240  # a cold `npm ci` plus one Node process minifying the 32 variants


def _load_build_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_tracker", BUILD_SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build_tracker = _load_build_script()
VARIANTS: list[str] = sorted(build_tracker.VARIANTS)
GZIP_BUDGETS = {name: UPSTREAM_BUDGETS.get(name, ALL_FEATURES_BUDGET) for name in VARIANTS}


def _read(name: str) -> str:
    return (SCRIPTS / f"{name}.js").read_text(encoding="utf-8")


def _features(name: str) -> set[str]:
    return set() if name == "default" else set(name.split("."))


def test_every_subset_of_the_features_is_a_variant() -> None:
    """32 builds, named as the server names them (assets.script_variant), all committed and nothing else."""
    assert set(MARKERS) == set(assets.TRACKER_FEATURES)
    subsets = [frozenset(combo) for size in range(len(MARKERS) + 1) for combo in itertools.combinations(MARKERS, size)]
    assert sorted(assets.script_variant(list(subset)) for subset in subsets) == VARIANTS
    assert len(VARIANTS) == 32 and FULL_BUILD in VARIANTS
    assert sorted(path.stem for path in SCRIPTS.glob("*.js")) == VARIANTS


@pytest.mark.parametrize("name", VARIANTS)
def test_variant_is_minified(name: str) -> None:
    code = _read(name)
    assert code.startswith("(()=>{")
    # One line, no indentation and no comments left.
    assert "\n" not in code.strip()
    assert "\t" not in code and "  " not in code
    assert "/*" not in code
    assert len(code) < len(SOURCE.read_text(encoding="utf-8")) / 3


def _gzip_size(code: bytes) -> int:
    return len(gzip.compress(code, compresslevel=9, mtime=0))


@pytest.mark.parametrize("name, budget", GZIP_BUDGETS.items())
def test_variant_gzip_size_within_budget(name: str, budget: int) -> None:
    size = _gzip_size((SCRIPTS / f"{name}.js").read_bytes())
    assert size <= budget, f"{name}.js is {size} bytes gzipped; budget {budget}"


def test_the_budgets_of_the_issue() -> None:
    """Issue 15: the default build at most 800 bytes gzipped, the build with every feature at most 1,400."""
    assert GZIP_BUDGETS["default"] == 800 and GZIP_BUDGETS[FULL_BUILD] == 1_400
    assert max(GZIP_BUDGETS.values()) == 1_400


@pytest.mark.parametrize("name", [n for n in VARIANTS if "file-downloads" in _features(n)])
def test_download_builds_hold_the_default_list_once(name: str) -> None:
    """The server swaps a site's own list in for exactly this text (assets.Assets.site_tracker)."""
    code = _read(name)
    assert code.count("|".join(assets.DEFAULT_DOWNLOAD_EXTENSIONS)) == 1
    assert "(" + "|".join(assets.DEFAULT_DOWNLOAD_EXTENSIONS) + ")$/i" in code  # the whole pattern, nothing more


def test_a_site_list_as_long_as_the_api_allows_keeps_the_full_build_parsable() -> None:
    """The longest list a site may set (api/sitesettings.py) still gives a script that parses."""
    longest = tuple(f"e{i:08d}"[: sitesettings.MAX_EXTENSION_CHARS] for i in range(sitesettings.MAX_EXTENSIONS))
    asset = assets.Assets().site_tracker(FULL_BUILD, longest)
    assert asset is not None and "|".join(longest).encode() in asset.body
    if shutil.which("node") is not None:
        result = subprocess.run(["node", "--check", "-"], input=asset.body, capture_output=True, check=False)
        assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("name", VARIANTS)
def test_variant_uses_no_client_storage(name: str) -> None:
    code = _read(name).lower()
    assert [word for word in FORBIDDEN if word in code] == []


def test_source_uses_no_client_storage() -> None:
    code = SOURCE.read_text(encoding="utf-8").lower()
    # The header comment says "No cookies"; only code matters.
    code = "\n".join(line for line in code.splitlines() if not line.lstrip().startswith("//"))
    assert [word for word in FORBIDDEN if word in code] == []


@pytest.mark.parametrize("name", VARIANTS)
def test_variant_has_exactly_its_features(name: str) -> None:
    code = _read(name)
    features = _features(name)
    for feature, marker in MARKERS.items():
        assert (marker in code) == (feature in features), marker
    assert ("auxclick" in code) == bool(features & {"click-events", "outbound-links", "file-downloads"})
    assert ("data-m\\\\:404" in code) == ("not-found-pages" in features)
    # What every build does.
    for word in ("event/ping", "event/hit", "sendBeacon", "pushState", "hashchange", "visibilitychange"):
        assert word in code


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
@pytest.mark.parametrize("name", VARIANTS)
def test_variant_parses(name: str) -> None:
    result = subprocess.run(
        ["node", "--check", str(SCRIPTS / f"{name}.js")], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


def test_committed_files_equal_fresh_build() -> None:
    result = subprocess.run(
        [sys.executable, str(BUILD_SCRIPT), "--check"],
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_S,
        check=False,
    )
    if result.returncode == EXIT_TOOLCHAIN:
        pytest.skip(f"tracker minifier toolchain unavailable: {result.stderr.strip()}")
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    "source, flags, expected",
    [
        ("a/*@if PAGE_EVENTS*/b/*@endif*/c", set(), "ac"),
        ("a/*@if PAGE_EVENTS*/b/*@endif*/c", {"PAGE_EVENTS"}, "abc"),
        ("a/*@if CLICK_EVENTS|PAGE_EVENTS*/b/*@endif*/c", {"CLICK_EVENTS"}, "abc"),
        ("a/*@if CLICK_EVENTS|PAGE_EVENTS*/b/*@endif*/c", set(), "ac"),
        (
            "0/*@if CLICK_EVENTS*/1/*@if PAGE_EVENTS*/2/*@endif*/3/*@endif*/4",
            {"PAGE_EVENTS"},
            "04",
        ),
        (
            "0/*@if CLICK_EVENTS*/1/*@if PAGE_EVENTS*/2/*@endif*/3/*@endif*/4",
            {"CLICK_EVENTS"},
            "0134",
        ),
        ("no directives", set(), "no directives"),
    ],
)
def test_preprocess(source: str, flags: set[str], expected: str) -> None:
    assert build_tracker.preprocess(source, frozenset(flags)) == expected


@pytest.mark.parametrize(
    "source",
    ["/*@endif*/", "/*@if PAGE_EVENTS*/x", "/*@if NOT_A_FLAG*/x/*@endif*/"],
)
def test_preprocess_rejects_malformed(source: str) -> None:
    with pytest.raises(build_tracker.BuildError):
        build_tracker.preprocess(source, frozenset())


@pytest.mark.parametrize("name", VARIANTS)
def test_tracker_source_preprocesses_cleanly(name: str) -> None:
    out = build_tracker.preprocess(SOURCE.read_text(encoding="utf-8"), build_tracker.VARIANTS[name])
    assert "/*@" not in out
