#!/usr/bin/env python3
"""Build dist/medama.pyz: one file that runs on a bare python3 with nothing installed.

The archive holds medama.py (as __main__.py), medama_core/ (with the built
tracker variants and openapi.yaml), dashboard_dist/, the licence, and the
pure-Python dependencies (ua-parser and its regex tables) when they are
installed here. Every module is also shipped pre-compiled for the building
interpreter as an unchecked-hash .pyc beside its source, which zipimport
loads directly: start-up then skips compiling ~50 modules. Another Python
version ignores those .pyc files (bad magic number) and compiles from source.

Compiled extensions (uvloop, argon2-cffi) cannot be imported from inside a
zip; the server uses them when they are installed beside the archive.
"""

from __future__ import annotations

import argparse
import compileall
import importlib.util
import py_compile
import shutil
import subprocess
import sys
import tempfile
import zipapp
from pathlib import Path

ROOT = Path(__file__).resolve().parent
INTERPRETER = "/usr/bin/env python3"
BUNDLED_PACKAGES = ("ua_parser", "ua_parser_builtins")  # pure Python; optional at run time
_SKIP = ("__pycache__", ".pyc", ".pyo", ".mypy_cache", ".pytest_cache")


def git_commit() -> str:
    """Short SHA of HEAD, with `-dirty` when the tree has changes; `development` outside git."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short=7", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "development"
    return sha + ("-dirty" if dirty else "")


def _copy_tree(source: Path, target: Path) -> None:
    shutil.copytree(source, target, ignore=lambda _d, names: [n for n in names if n.endswith(_SKIP)])


def _bundle_dependencies(staging: Path) -> list[str]:
    bundled = []
    for name in BUNDLED_PACKAGES:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.submodule_search_locations is None:
            print(f"note: {name} is not installed; the archive falls back to built-in rules", file=sys.stderr)
            continue
        _copy_tree(Path(next(iter(spec.submodule_search_locations))), staging / name)
        bundled.append(name)
    return bundled


def stage(staging: Path, commit: str) -> list[str]:
    """Lay out the archive's files under `staging`; return the bundled dependency names."""
    shutil.copy2(ROOT / "medama.py", staging / "__main__.py")
    _copy_tree(ROOT / "medama_core", staging / "medama_core")
    _copy_tree(ROOT / "dashboard_dist", staging / "dashboard_dist")
    shutil.copy2(ROOT / "LICENSE", staging / "LICENSE")
    init = staging / "medama_core" / "__init__.py"
    text = init.read_text()
    init.write_text(text.replace('COMMIT = "development"', f"COMMIT = {commit!r}"))
    bundled = _bundle_dependencies(staging)
    # Legacy layout (name.pyc beside name.py) is the only one zipimport reads.
    compileall.compile_dir(
        str(staging),
        quiet=1,
        legacy=True,
        optimize=0,
        invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
    )
    return bundled


def build(output: Path, commit: str | None = None) -> Path:
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        staging = Path(tmp) / "medama"
        staging.mkdir()
        bundled = stage(staging, commit if commit is not None else git_commit())
        zipapp.create_archive(staging, output, interpreter=INTERPRETER, compressed=True)
    print(f"built {output} ({output.stat().st_size / 1024:.0f} KiB; bundled: {', '.join(bundled) or 'nothing'})")
    return output


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("-o", "--output", default=str(ROOT / "dist" / "medama.pyz"), help="archive to write")
    parser.add_argument("--commit", default=None, help="build stamp (default: git short SHA)")
    args = parser.parse_args(argv)
    build(Path(args.output), args.commit)
    return 0


if __name__ == "__main__":
    sys.exit(main())
