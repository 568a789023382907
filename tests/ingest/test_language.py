"""Accept-Language to English display names (spec §3.2 step 6)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from medama_core.ingest.language import UNKNOWN_LANGUAGE, Language, parse_accept_language

CASES = [
    ("empty", "", UNKNOWN_LANGUAGE),
    ("blank", "  ", UNKNOWN_LANGUAGE),
    ("only-star", "*", UNKNOWN_LANGUAGE),
    ("all-q0", "en;q=0, de;q=0", UNKNOWN_LANGUAGE),
    ("en-GB", "en-GB,en;q=0.9", Language("English", "British English")),
    ("en-US", "en-US,en;q=0.5", Language("English", "American English")),
    ("en-AU", "en-AU", Language("English", "Australian English")),
    ("en-CA", "en-CA", Language("English", "Canadian English")),
    ("en-IN", "en-IN", Language("English", "English (India)")),
    ("ja", "ja", Language("Japanese", "Japanese")),
    ("es-MX", "es-MX", Language("Spanish", "Mexican Spanish")),
    ("es-419", "es-419,es;q=0.9", Language("Spanish", "Latin American Spanish")),
    ("es-ES", "es-ES", Language("Spanish", "European Spanish")),
    ("fr-CA", "fr-CA", Language("French", "Canadian French")),
    ("fr-CH", "fr-CH, fr;q=0.9, en;q=0.8, de;q=0.7, *;q=0.5", Language("French", "Swiss French")),
    ("de-AT", "de-AT", Language("German", "Austrian German")),
    ("de-CH", "de-CH", Language("German", "Swiss High German")),
    ("pt-BR", "pt-BR", Language("Portuguese", "Brazilian Portuguese")),
    ("pt-PT", "pt-PT", Language("Portuguese", "European Portuguese")),
    ("zh-CN", "zh-CN,zh;q=0.9", Language("Chinese", "Simplified Chinese")),
    ("zh-Hans", "zh-Hans", Language("Chinese", "Simplified Chinese")),
    ("zh-TW", "zh-TW", Language("Chinese", "Traditional Chinese")),
    ("zh-Hant", "zh-hant", Language("Chinese", "Traditional Chinese")),
    ("zh-Hant-HK", "zh-Hant-HK", Language("Chinese", "Traditional Chinese (Hong Kong SAR China)")),
    ("sr-Latn", "sr-Latn", Language("Serbian", "Serbian (Latin)")),
    ("nl-BE", "nl-BE", Language("Dutch", "Flemish")),
    ("fil", "fil", Language("Filipino", "Filipino")),
    ("haw", "haw", Language("Hawaiian", "Hawaiian")),
    ("yue", "yue", Language("Cantonese", "Cantonese")),
    ("gsw", "gsw", Language("Swiss German", "Swiss German")),
    ("lower-case-region", "en-gb", Language("English", "British English")),
    ("underscore", "en_GB", Language("English", "British English")),
    ("deprecated-code", "iw-IL", Language("Hebrew", "Hebrew (Israel)")),
    ("extension-ignored", "en-US-u-ca-gregory", Language("English", "American English")),
    ("highest-q-wins", "de;q=0.3, fr;q=0.8, en;q=0.5", Language("French", "French")),
    ("ties-keep-order", "en;q=0.5, de;q=0.5", Language("English", "English")),
    ("star-skipped", "*, de;q=0.1", Language("German", "German")),
    ("q0-skipped", "en;q=0, de;q=0.1", Language("German", "German")),
    ("spaces-around-q", "en ; q = 0.5, fr;q=0.4", Language("English", "English")),
    ("empty-entries", ",,en-GB,,", Language("English", "British English")),
    ("name-fallback", "english", Language("English", "English")),
]


@pytest.mark.parametrize(("header", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_parse(header: str, expected: Language) -> None:
    assert parse_accept_language(header) == expected


@pytest.mark.parametrize(
    "header",
    [
        "en;q=abc",
        "en;q=0.8;level=1",
        "xx",
        "en-XY",
        "en--US",
        "x-klingon",
        "en-Abcd",
        "toolongsubtag",
        "en-US, qq-ZZ;q=0.1",
        "en;" + "x" * 3000,
    ],
    ids=["bad-q", "extra-param", "unknown-language", "unknown-region", "empty-subtag", "private-use",
         "unknown-script", "long-subtag", "one-bad-entry", "too-long"],
)  # fmt: skip
def test_unparseable(header: str) -> None:
    assert parse_accept_language(header) is None


@given(st.text(max_size=300))
def test_any_text_gives_a_language_or_none(header: str) -> None:
    result = parse_accept_language(header)
    assert result is None or (isinstance(result, Language) and result.base and result.dialect)


@given(
    st.lists(
        st.tuples(st.sampled_from(["en", "de-AT", "fr-CA", "ja", "pt-BR"]), st.integers(0, 1000)),
        min_size=1,
        max_size=6,
    )
)
def test_first_highest_weight_is_chosen(entries: list[tuple[str, int]]) -> None:
    header = ", ".join(f"{tag};q={weight / 1000:.3f}" for tag, weight in entries)
    positive = [(tag, weight) for tag, weight in entries if weight > 0]
    result = parse_accept_language(header)
    if not positive:
        assert result == UNKNOWN_LANGUAGE
        return
    best = max(weight for _, weight in positive)
    expected = parse_accept_language(next(tag for tag, weight in positive if weight == best))
    assert result == expected
