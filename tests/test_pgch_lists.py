"""tests/pgch.py names only modules and tests that exist: a renamed test must not leave the engine run silently."""

from __future__ import annotations

import ast
from pathlib import Path

from tests import pgch

API = Path(__file__).resolve().parent / "api"


def test_every_listed_module_and_test_exists() -> None:
    missing = [name for name in pgch.SQLITE_ONLY_MODULES if not (API / name).is_file()]
    for key in [*pgch.SQLITE_ONLY_TESTS, *pgch.XFAIL]:
        module, _, test = key.partition("::")
        path = API / module
        functions = (
            {node.name for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.FunctionDef)}
            if path.is_file()
            else set()
        )
        if test.split("[", 1)[0] not in functions:
            missing.append(key)
    assert not missing
