#!/usr/bin/env python3
"""Build the dashboard (dashboard/ → dashboard_dist/) with the pinned npm packages, or check the committed build.

    python scripts/build_dashboard.py            # npm ci if needed, then build into dashboard_dist/
    python scripts/build_dashboard.py --check    # build into a temporary folder; exit 1 if dashboard_dist/ differs

The server never needs Node: the build output is committed. CI runs `--check` so the committed
files cannot drift from the sources. The build is deterministic (esbuild, content-hashed names).
"""

from __future__ import annotations

import argparse
import filecmp
import gzip
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "dashboard"
DIST = ROOT / "dashboard_dist"
KEEP = {"__init__.py", "__pycache__"}  # dashboard_dist is a Python package; the build leaves these alone
FIRST_LOAD_BUDGET_GZIP = 150 * 1024  # index.html + its CSS and JS, gzip -9; the budget


def run(command: list[str]) -> None:
    print("+", " ".join(command), flush=True)
    subprocess.run(command, cwd=SOURCE, check=True)


def install(force: bool) -> None:
    """`npm ci` from the lockfile when node_modules is missing (or when asked)."""
    if force or not (SOURCE / "node_modules" / ".package-lock.json").is_file():
        run(["npm", "ci", "--no-audit", "--no-fund"])


def build(outdir: Path) -> None:
    run(["node", "build.mjs", "--outdir", str(outdir)])


def files(folder: Path) -> set[str]:
    return {
        str(p.relative_to(folder))
        for p in folder.rglob("*")
        if p.is_file() and not (set(p.relative_to(folder).parts) & KEEP)
    }


def differences(expected: Path, actual: Path) -> list[str]:
    """Paths that are missing, extra or different in `actual` compared with `expected`."""
    want, have = files(expected), files(actual)
    problems = [f"missing: {name}" for name in sorted(want - have)]
    problems += [f"not built from source: {name}" for name in sorted(have - want)]
    problems += [
        f"differs: {name}"
        for name in sorted(want & have)
        if not filecmp.cmp(expected / name, actual / name, shallow=False)
    ]
    return problems


def first_load_gzip(folder: Path) -> int:
    """gzip size of what the first page load fetches: index.html and every /assets/ file it names."""
    html = (folder / "index.html").read_bytes()
    total = len(gzip.compress(html, 9))
    for asset in sorted((folder / "assets").iterdir()):
        if f"/assets/{asset.name}".encode() in html:
            total += len(gzip.compress(asset.read_bytes(), 9))
    return total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="fail if dashboard_dist/ differs from a fresh build")
    parser.add_argument("--ci", action="store_true", help="always run `npm ci` first")
    args = parser.parse_args(argv)
    if shutil.which("node") is None or shutil.which("npm") is None:
        print("error: node and npm are needed to build the dashboard", file=sys.stderr)
        return 2
    install(args.ci)
    if not args.check:
        build(DIST)
        print(f"first load: {first_load_gzip(DIST)} bytes gzip (budget {FIRST_LOAD_BUDGET_GZIP})")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp) / "dashboard_dist"
        build(fresh)
        problems = differences(fresh, DIST)
        size = first_load_gzip(fresh)
    for problem in problems:
        print(f"dashboard_dist/{problem.split(': ', 1)[1]}: {problem.split(': ', 1)[0]}", file=sys.stderr)
    if problems:
        print("dashboard_dist/ is out of date: run `python scripts/build_dashboard.py` and commit it", file=sys.stderr)
        return 1
    if size > FIRST_LOAD_BUDGET_GZIP:
        print(f"first load is {size} bytes gzip, over the {FIRST_LOAD_BUDGET_GZIP} budget", file=sys.stderr)
        return 1
    print(f"dashboard_dist/ matches the sources; first load {size} bytes gzip")
    return 0


if __name__ == "__main__":
    sys.exit(main())
