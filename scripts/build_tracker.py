"""Build the tracker variants: preprocess tracker.js per feature set, then minify with terser.

Usage:
    python scripts/build_tracker.py           # write medama_core/static/scripts/<variant>.js
    python scripts/build_tracker.py --check   # rebuild in memory; exit 1 if the committed files differ

The outputs are committed, so the server and its tests never need Node. Only this
script does: terser, pinned in tracker-build/package-lock.json, is installed with
`npm ci` on first use and run through npx. Exit status 3 means that toolchain is
not available here (tests skip on it).

Preprocessing: a block `/*@if FLAG*/ ... /*@endif*/` is kept when FLAG is on;
`/*@if A|B*/` when either is. Blocks nest. Anything else in tracker.js passes
through unchanged, and terser drops the comments.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["FLAGS", "VARIANTS", "BuildError", "ToolchainMissing", "build_all", "main", "minify", "preprocess"]

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "tracker.js"
OUT_DIR = ROOT / "medama_core" / "static" / "scripts"
TOOL_DIR = ROOT / "tracker-build"

FLAGS = frozenset({"CLICK_EVENTS", "PAGE_EVENTS"})

# Output name -> features switched on. Names are the features in alphabetical
# order joined by "." (upstream's scheme, which /script.js relies on).
VARIANTS: dict[str, frozenset[str]] = {
    "default": frozenset(),
    "click-events": frozenset({"CLICK_EVENTS"}),
    "page-events": frozenset({"PAGE_EVENTS"}),
    "click-events.page-events": frozenset({"CLICK_EVENTS", "PAGE_EVENTS"}),
}

# terser settings. Chosen for the smallest *gzip* size, which is what a browser
# downloads: two compress passes, "unsafe" rewrites, ES2016 output (arrow
# functions, const/let), and mangling of the tracker's own top-level names.
TERSER_ARGS = (
    "--ecma",
    "2016",
    "--toplevel",
    "--compress",
    "passes=2,unsafe=true",
    "--mangle",
)

# How long one terser run or `npm ci` may take; both are seconds on a laptop.
TERSER_TIMEOUT_S = 60
NPM_CI_TIMEOUT_S = 300

# Exit statuses (2 is argparse's usage error).
EXIT_FAILED = 1  # tracker.js is malformed or terser rejected it
EXIT_DIFFERS = 1  # --check: a committed file is missing or stale
EXIT_TOOLCHAIN = 3  # node/npm/terser cannot be had here; tests skip on this

_DIRECTIVE = re.compile(r"/\*@(?:if ([A-Z_|]+)|endif)\*/")


class BuildError(Exception):
    """The source is malformed or terser failed on it."""


class ToolchainMissing(BuildError):
    """Node, npm or terser cannot be had on this machine."""


def preprocess(source: str, flags: frozenset[str]) -> str:
    """Keep the `/*@if ...*/` blocks whose flags are on, drop the others and all directives.

    >>> preprocess("a/*@if PAGE_EVENTS*/b/*@endif*/c", frozenset({"PAGE_EVENTS"}))
    'abc'
    >>> preprocess("a/*@if CLICK_EVENTS|PAGE_EVENTS*/b/*@endif*/c", frozenset())
    'ac'
    """
    out: list[str] = []
    # One entry per open block: is this block kept (taking its parents into account)?
    stack: list[bool] = []
    pos = 0
    for match in _DIRECTIVE.finditer(source):
        if all(stack):
            out.append(source[pos : match.start()])
        pos = match.end()
        condition = match.group(1)
        line = source.count("\n", 0, match.start()) + 1
        if condition is None:
            if not stack:
                raise BuildError(f"line {line}: /*@endif*/ without /*@if*/")
            stack.pop()
            continue
        names = set(condition.split("|"))
        unknown = names - FLAGS
        if unknown:
            raise BuildError(f"line {line}: unknown flag(s) {', '.join(sorted(unknown))}")
        stack.append(bool(names & flags))
    if stack:
        raise BuildError(f"{len(stack)} /*@if*/ block(s) never closed")
    out.append(source[pos:])
    return "".join(out)


def _npx() -> str:
    """The npx executable, with terser installed from the lock file if it is not yet."""
    npx = shutil.which("npx")
    npm = shutil.which("npm")
    if npx is None or npm is None or shutil.which("node") is None:
        raise ToolchainMissing("node/npm/npx not found on PATH")
    if not (TOOL_DIR / "node_modules" / "terser").is_dir():
        try:
            result = subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund"],
                cwd=TOOL_DIR,
                capture_output=True,
                text=True,
                timeout=NPM_CI_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise ToolchainMissing(f"`npm ci` in {TOOL_DIR.name}/ timed out") from exc
        if result.returncode != 0:
            raise ToolchainMissing(f"`npm ci` in {TOOL_DIR.name}/ failed:\n{result.stderr.strip()}")
    return npx


def minify(source: str) -> str:
    """Run terser over one preprocessed variant and return the minified code."""
    npx = _npx()
    try:
        # --no-install: use the pinned copy in tracker-build/node_modules, never fetch another.
        result = subprocess.run(
            [npx, "--no-install", "terser", *TERSER_ARGS],
            input=source,
            cwd=TOOL_DIR,
            capture_output=True,
            text=True,
            encoding="utf-8",
            timeout=TERSER_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise BuildError("terser timed out") from exc
    if result.returncode != 0:
        raise BuildError(f"terser failed:\n{result.stderr.strip()}")
    return result.stdout.strip()


def build_all(source: str) -> dict[str, str]:
    """Every variant's minified code, by output name."""
    return {name: minify(preprocess(source, flags)) for name, flags in VARIANTS.items()}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--check",
        action="store_true",
        help="rebuild in memory and exit 1 if the committed files differ (for CI)",
    )
    args = parser.parse_args(argv)
    try:
        built = build_all(SOURCE.read_text(encoding="utf-8"))
    except ToolchainMissing as exc:
        print(f"build_tracker: minifier toolchain unavailable: {exc}", file=sys.stderr)
        return EXIT_TOOLCHAIN
    except BuildError as exc:
        print(f"build_tracker: {exc}", file=sys.stderr)
        return EXIT_FAILED

    if args.check:
        stale = [
            name
            for name, code in built.items()
            if not (path := OUT_DIR / f"{name}.js").is_file() or path.read_text(encoding="utf-8") != code
        ]
        for name in stale:
            print(f"build_tracker: {OUT_DIR.relative_to(ROOT)}/{name}.js is out of date", file=sys.stderr)
        if stale:
            print("build_tracker: run `python scripts/build_tracker.py` and commit the result", file=sys.stderr)
            return EXIT_DIFFERS
        return 0

    OUT_DIR.mkdir(parents=True, exist_ok=True)
    for name, code in built.items():
        (OUT_DIR / f"{name}.js").write_text(code, encoding="utf-8", newline="")
        print(f"{OUT_DIR.relative_to(ROOT)}/{name}.js: {len(code.encode())} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
