"""The public URL parser: any text gives a normalised URL or InvalidPublicURL, never another error."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from medama_core.config import ConfigError, parse_args
from medama_core.publicurl import InvalidPublicURL, normalise

NORMALISED = re.compile(r"https?://(\[[0-9a-f:.]+\]|[a-z0-9.-]+)(:[1-9][0-9]{0,4})?")


@given(st.text(max_size=80) | st.from_regex(r"https?://[A-Za-z0-9.:\[\]/@?#_-]{0,40}", fullmatch=True))
def test_any_text_is_a_normalised_url_or_invalid(text: str) -> None:
    try:
        url = normalise(text)
    except InvalidPublicURL as exc:
        assert str(exc)
        return
    assert url == "" or NORMALISED.fullmatch(url), url
    assert normalise(url) == url  # normalising twice changes nothing


def test_the_flag_is_checked_like_the_setting() -> None:
    assert parse_args(["-publicurl", "HTTPS://Stats.Example.com/"], {}).publicurl == "https://stats.example.com"
    assert parse_args(["-env"], {"PUBLIC_URL": "http://10.0.0.5:8080"}).publicurl == "http://10.0.0.5:8080"
    with pytest.raises(ConfigError, match="invalid value 'stats.example.com' for -publicurl: must start with http"):
        parse_args(["-publicurl", "stats.example.com"], {})
