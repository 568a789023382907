"""Flag and environment parsing for `start`."""

from __future__ import annotations

import pytest

from medama_core.config import OPTIONS, Config, ConfigError, parse_args, usage


def test_defaults() -> None:
    assert parse_args([], {}) == Config()


@pytest.mark.parametrize(
    ("argv", "field", "value"),
    [
        (["-port", "9000"], "port", 9000),
        (["-port=9001"], "port", 9001),
        (["--port", "9002"], "port", 9002),
        (["-demo"], "demo", True),
        (["-demo=false"], "demo", False),
        (["-logger", "pretty"], "logger", "pretty"),
        (
            ["-corsorigins", "https://a.example, https://b.example"],
            "corsorigins",
            ("https://a.example", "https://b.example"),
        ),
        (["-trustedproxies", "loopback,10.0.0.0/8"], "trustedproxies", ("loopback", "10.0.0.0/8")),
        (["-ratelimit", "0"], "ratelimit", 0),
    ],
)
def test_flags(argv: list[str], field: str, value: object) -> None:
    assert getattr(parse_args(argv, {}), field) == value


@pytest.mark.parametrize(
    "argv",
    [
        ["-port", "x"],
        ["-port", "70000"],
        ["-logger", "xml"],
        ["-level", "loud"],
        ["-nope"],
        ["-port"],
        ["stray"],
        ["-trustedproxies", "not-an-ip"],
        ["-ratelimit", "-1"],
        ["-demo=maybe"],
    ],
)
def test_bad_flags_raise_config_error(argv: list[str]) -> None:
    with pytest.raises(ConfigError):
        parse_args(argv, {})


def test_environment_only_with_env_flag_and_flags_win() -> None:
    environ = {"PORT": "7000", "LOGGER": "pretty", "DEMO_MODE": "true", "CORS_ALLOWED_ORIGINS": "https://x.example"}
    assert parse_args([], environ).port == 8080
    config = parse_args(["-env"], environ)
    assert (config.port, config.logger, config.demo, config.corsorigins) == (
        7000,
        "pretty",
        True,
        ("https://x.example",),
    )
    assert parse_args(["--env", "-port", "7001"], environ).port == 7001
    with pytest.raises(ConfigError, match=r"\$PORT"):
        parse_args(["-env"], {"PORT": "eighty"})


def test_every_option_is_a_config_field_and_documented() -> None:
    fields = set(Config.__dataclass_fields__)
    text = usage()
    for option in OPTIONS:
        assert option.name in fields
        assert f"-{option.name}" in text and option.help
