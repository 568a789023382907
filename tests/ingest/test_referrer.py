"""Referrer classification: self-referrals, IPs, spam, groups and bad URLs (spec §3.2 step 7)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from medama_core.ingest.referrer import DIRECT, MAX_HOST_BYTES, InvalidReferrer, Referrer, Spam, classify

PAGE = "example.com"

CASES = [
    ("empty", "", DIRECT),
    ("self", "https://example.com/blog", DIRECT),
    ("self-any-case", "https://EXAMPLE.com/", DIRECT),
    ("subdomain-is-external", "https://blog.example.com/x", Referrer("blog.example.com", "", "")),
    ("www-of-self-is-external", "https://www.example.com/", Referrer("www.example.com", "", "")),
    ("ipv4", "http://203.0.113.7/page", DIRECT),
    ("ipv6", "http://[2001:db8::1]:8080/", DIRECT),
    ("scheme-less", "google.com/search?q=x", DIRECT),
    ("protocol-relative", "//t.co/abc", Referrer("t.co", "Twitter", "social")),
    ("group", "https://www.google.com/search?q=x", Referrer("www.google.com", "Google", "search")),
    ("group-country", "https://google.co.uk/", Referrer("google.co.uk", "Google", "search")),
    (
        "group-upper-case",
        "https://NEWS.ycombinator.com/item",
        Referrer("news.ycombinator.com", "Hacker News", "social"),
    ),
    ("group-email", "https://mail.google.com/mail/u/0/", Referrer("mail.google.com", "Gmail", "email")),
    ("group-android-app", "android-app://com.google.android.gm", Referrer("com.google.android.gm", "Gmail", "email")),
    ("unknown-host", "https://someblog.net/post", Referrer("someblog.net", "", "")),
    ("spam", "https://0-0.fr/", Spam("0-0.fr")),
    ("spam-www", "http://www.0-0.fr/x", Spam("www.0-0.fr")),
    ("spam-upper-case-in-list", "https://qiwi.xyz/", Spam("qiwi.xyz")),
]


@pytest.mark.parametrize(("referrer", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_classify(referrer: str, expected: Referrer | Spam) -> None:
    assert classify(referrer, PAGE) == expected


@pytest.mark.parametrize(
    "referrer",
    ["http://[::1", "http://example.org:port/", "https://a.org/%zz", "https://a.org/\x00", "http://a.org:99999/"],
    ids=["open-bracket", "bad-port", "bad-escape", "control-char", "port-out-of-range"],
)
def test_unparseable(referrer: str) -> None:
    with pytest.raises(InvalidReferrer, match="invalid referrer URL"):
        classify(referrer, PAGE)


def test_a_made_up_host_of_thousands_of_characters_is_cut_to_a_dns_names_length() -> None:
    result = classify("https://" + "a" * 5000 + ".com/", PAGE)
    assert isinstance(result, Referrer) and result.host == "a" * MAX_HOST_BYTES
    wide = classify("https://" + "é" * 500 + ".com/", PAGE)
    assert isinstance(wide, Referrer) and wide.host == "é" * (MAX_HOST_BYTES // 2)  # bytes, whole characters


def test_invalid_referrer_is_a_value_error() -> None:
    assert issubclass(InvalidReferrer, ValueError)


@given(st.text(max_size=300), st.sampled_from(["example.com", "", "www.google.com"]))
def test_any_text_is_classified_or_rejected(referrer: str, page: str) -> None:
    try:
        result = classify(referrer, page)
    except InvalidReferrer:
        return
    assert isinstance(result, Referrer | Spam)
    if isinstance(result, Referrer):
        assert result.host == result.host.lower() and len(result.host.encode()) <= MAX_HOST_BYTES
        assert result.host == "" or result.host != page
        assert (result.group == "") or result.category in {"search", "social", "email", "paid", "unknown"}
