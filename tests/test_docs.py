"""The README documents every flag and command the program has."""

from __future__ import annotations

from pathlib import Path

from medama_core.cli import COMMANDS
from medama_core.config import OPTIONS

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def test_every_flag_is_in_the_readme() -> None:
    missing = [option.name for option in OPTIONS if f"`-{option.name}`" not in README]
    assert not missing, f"flags missing from README.md: {missing}"


def test_every_environment_variable_is_in_the_readme() -> None:
    missing = [option.env for option in OPTIONS if option.env and f"`{option.env}`" not in README]
    assert not missing, f"environment variables missing from README.md: {missing}"


def test_every_command_is_in_the_readme() -> None:
    missing = [name for name in COMMANDS if f"  {name} " not in README]
    assert not missing, f"commands missing from README.md: {missing}"


def test_readme_starts_with_the_two_commands() -> None:
    blocks = [block.removeprefix("sh").strip() for block in README.split("```")]
    assert blocks[1] == "python3 build_zipapp.py && python3 dist/medama.pyz start -port 8080"
    assert blocks[3] == "scripts/test"
