"""Build the tracker variants: preprocess tracker.js per feature set, then minify with terser.

Usage:
    python scripts/build_tracker.py           # write medama_core/static/scripts/<variant>.js
    python scripts/build_tracker.py --check   # rebuild in memory; exit 1 if the committed files differ

The outputs are committed, so the server and its tests never need Node. Only this
script does: terser, pinned in tracker-build/package-lock.json, is installed with
`npm ci` on first use, and tracker-build/minify.mjs runs it over every variant in
one Node process. Exit status 3 means that toolchain is not available here (tests
skip on it).

Variants: one per subset of the feature flags (32), named by their features in
alphabetical order joined by "." ("default" for none): upstream's scheme, which
/script.js relies on, extended to the three features it lacked.

Preprocessing: a block `/*@if FLAG*/ ... /*@endif*/` is kept when FLAG is on;
`/*@if A|B*/` when either is. Blocks nest. Anything else in tracker.js passes
through unchanged, and terser drops the comments.
"""

from __future__ import annotations

import argparse
import itertools
import json
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

# Flag in tracker.js -> the feature's name in variant file names and `script_type`.
FEATURE_NAMES: dict[str, str] = {
    "CLICK_EVENTS": "click-events",
    "FILE_DOWNLOADS": "file-downloads",
    "NOT_FOUND_PAGES": "not-found-pages",
    "OUTBOUND_LINKS": "outbound-links",
    "PAGE_EVENTS": "page-events",
}
FLAGS = frozenset(FEATURE_NAMES)


def variant_name(flags: frozenset[str]) -> str:
    """The output name of the build with these flags: features sorted, joined by ".", or "default"."""
    return ".".join(sorted(FEATURE_NAMES[flag] for flag in flags)) or "default"


# Output name -> features switched on: every subset of FLAGS.
VARIANTS: dict[str, frozenset[str]] = {
    variant_name(frozenset(subset)): frozenset(subset)
    for size in range(len(FLAGS) + 1)
    for subset in itertools.combinations(sorted(FLAGS), size)
}

# terser's settings (in tracker-build/minify.mjs), chosen for the smallest *gzip* size, which
# is what a browser downloads: two compress passes, "unsafe" rewrites, ES2016 output (arrow
# functions, const/let), and mangling of the tracker's own top-level names.
MINIFIER = TOOL_DIR / "minify.mjs"

# How long the minifier (all variants, one Node process) or `npm ci` may take; seconds on a laptop.
TERSER_TIMEOUT_S = 120
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


def _node() -> str:
    """The node executable, with terser installed from the lock file if it is not yet."""
    node = shutil.which("node")
    npm = shutil.which("npm")
    if node is None or npm is None:
        raise ToolchainMissing("node/npm not found on PATH")
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
    return node


def minify(sources: dict[str, str]) -> dict[str, str]:
    """Run terser over preprocessed variants (by name) and return the minified code of each."""
    node = _node()
    try:
        # The pinned copy in tracker-build/node_modules, resolved from minify.mjs's folder.
        result = subprocess.run(
            [node, str(MINIFIER)],
            input=json.dumps(sources),
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
    built: dict[str, str] = json.loads(result.stdout)
    return {name: code.strip() for name, code in built.items()}


def build_all(source: str) -> dict[str, str]:
    """Every variant's minified code, by output name."""
    return minify({name: preprocess(source, flags) for name, flags in VARIANTS.items()})


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
        extra = sorted(path.name for path in OUT_DIR.glob("*.js") if path.stem not in built)
        for name in extra:
            print(f"build_tracker: {OUT_DIR.relative_to(ROOT)}/{name} is no variant; delete it", file=sys.stderr)
        if stale or extra:
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
