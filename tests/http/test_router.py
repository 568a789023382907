"""Route matching: static and parameterised paths, 404, 405 with Allow, HEAD from GET."""

from __future__ import annotations

import pytest

from medama_core.http.errors import HTTPError
from medama_core.http.router import Route, Router, compile_path


async def a() -> None: ...
async def b() -> None: ...
async def c() -> None: ...


ROUTER = Router(
    [
        Route("GET", "/websites", a),
        Route("POST", "/websites", b),
        Route("GET", "/website/{hostname}/pages", c),
        Route("DELETE", "/websites/{hostname}", b),
    ]
)


def test_compile_path() -> None:
    assert compile_path("/website/{hostname}/pages").pattern == "^/website/(?P<hostname>[^/]+)/pages$"


@pytest.mark.parametrize(
    ("method", "path", "handler", "params"),
    [
        ("GET", "/websites", a, {}),
        ("HEAD", "/websites", a, {}),
        ("POST", "/websites", b, {}),
        ("GET", "/website/example.com/pages", c, {"hostname": "example.com"}),
        ("DELETE", "/websites/a.b", b, {"hostname": "a.b"}),
    ],
)
def test_matches(method: str, path: str, handler: object, params: dict[str, str]) -> None:
    assert ROUTER.match(method, path) == (handler, params)


@pytest.mark.parametrize("path", ["/nope", "/website//pages", "/website/a/b/pages", "/websites/"])
def test_not_found(path: str) -> None:
    with pytest.raises(HTTPError) as info:
        ROUTER.match("GET", path)
    assert (info.value.status, info.value.message) == (404, "api path not found")


def test_method_not_allowed_lists_allow() -> None:
    with pytest.raises(HTTPError) as info:
        ROUTER.match("PUT", "/websites")
    assert info.value.status == 405
    assert info.value.headers == (("Allow", "GET, HEAD, POST"),)


def test_duplicate_routes_are_refused() -> None:
    with pytest.raises(ValueError):
        Router([Route("GET", "/x", a), Route("GET", "/x", b)])
