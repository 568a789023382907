"""The internal referrer's path: only for the site's own pages, normalised as page paths are, never an error."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from medama_core.hostnames import site_for
from medama_core.ingest.hit import InvalidHit, page_parts
from medama_core.ingest.internal import NO_PATH, internal_path

SITES = frozenset({"example.com", "shop.example"})


def is_site(host: str) -> bool:
    """The rule ingestion gives: the host counts for example.com among SITES (itself, or its www. twin)."""
    return site_for(host, SITES) == "example.com"


@pytest.mark.parametrize(
    ("referrer", "hash_mode", "expected"),
    [
        ("", False, NO_PATH),  # no referrer: an entry
        ("https://www.google.com/search?q=x", False, NO_PATH),  # external: an entry, never its path
        ("https://example.com/", False, "/"),
        ("https://example.com", False, "/"),  # an empty path is the home page, never NO_PATH
        ("https://example.com/blog/?utm_source=x#top", False, "/blog"),  # as page paths: query, fragment, slash
        ("https://example.com/caf%C3%A9", False, "/café"),
        ("https://www.example.com/a", False, "/a"),  # the www. twin counts for the site
        ("https://EXAMPLE.com:8443/a", False, "/a"),
        ("https://shop.example/a", False, NO_PATH),  # another registered site is external
        ("https://sub.example.com/a", False, NO_PATH),  # other subdomains are other sites
        ("https://example.com/#/cart", True, "/#/cart"),  # hash mode keeps the route
        ("https://example.com/#/cart", False, "/"),
        ("not a url", False, NO_PATH),
        ("https://example.com/%zz", False, NO_PATH),  # unreadable: no internal path (classify refuses it anyway)
        ("https://user@example.com/a", False, "/a"),
    ],
)
def test_internal_paths(referrer: str, hash_mode: bool, expected: str) -> None:
    assert internal_path(referrer, is_site, hash_mode=hash_mode) == expected


@given(st.text(max_size=200), st.booleans())
def test_any_text_gives_a_path_of_the_site_or_none(referrer: str, hash_mode: bool) -> None:
    """Never raises; a path only for a URL on the site (or its twin), and then exactly the page path it names."""
    path = internal_path(referrer, is_site, hash_mode=hash_mode)
    if path == NO_PATH:
        return
    assert path
    parts = page_parts(referrer, hash_mode=hash_mode)
    assert parts.hostname in ("example.com", "www.example.com")
    assert path == (parts.pathname or "/")


@given(
    st.sampled_from(["https://example.com", "http://www.example.com", "https://t.co", "https://example.com.evil"]),
    st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs")), max_size=60),
)
def test_site_urls_keep_their_page_path(origin: str, tail: str) -> None:
    url = f"{origin}/{tail}"
    try:
        expected = page_parts(url).pathname or "/"
        host = page_parts(url).hostname
    except InvalidHit:
        assert internal_path(url, is_site) == NO_PATH
        return
    internal = host in ("example.com", "www.example.com")
    assert internal_path(url, is_site) == (expected if internal else NO_PATH)
