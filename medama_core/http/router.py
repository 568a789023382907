"""Route table matching: a path and method to a handler and its path parameters.

Static paths are looked up in a dict first; paths with `{name}` segments are
tried in table order. A path that matches with another method gives 405 and
the `Allow` header; `HEAD` is served by every `GET` route (RFC 9110 §9.3.2).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from medama_core.http.errors import HTTPError

H = TypeVar("H", bound=Callable[..., Awaitable[Any]])

# A path parameter matches one segment: no slashes, at least one character.
_PARAM = re.compile(r"\{([a-zA-Z_][a-zA-Z0-9_]*)\}")


@dataclass(frozen=True, slots=True)
class Route(Generic[H]):
    method: str
    path: str
    handler: H
    # Who may call it: the application's rule (medama_core.permissions.Access), never read here.
    access: object = None


@dataclass(frozen=True, slots=True)
class _Pattern(Generic[H]):
    regex: re.Pattern[str]
    methods: dict[str, Route[H]]


def compile_path(path: str) -> re.Pattern[str]:
    """`/website/{hostname}/pages` → `^/website/(?P<hostname>[^/]+)/pages$`."""
    pattern = ""
    last = 0
    for match in _PARAM.finditer(path):
        pattern += re.escape(path[last : match.start()]) + f"(?P<{match.group(1)}>[^/]+)"
        last = match.end()
    return re.compile("^" + pattern + re.escape(path[last:]) + "$")


class Router(Generic[H]):
    """Match requests against a fixed table of routes."""

    def __init__(self, routes: Iterable[Route[H]]) -> None:
        self.routes = tuple(routes)
        self._static: dict[str, dict[str, Route[H]]] = {}
        self._patterns: list[_Pattern[H]] = []
        by_path: dict[str, dict[str, Route[H]]] = {}
        for route in self.routes:
            methods = by_path.setdefault(route.path, {})
            if route.method in methods:
                raise ValueError(f"duplicate route {route.method} {route.path}")
            methods[route.method] = route
        for path, methods in by_path.items():
            if "GET" in methods and "HEAD" not in methods:
                methods["HEAD"] = methods["GET"]
            if _PARAM.search(path):
                self._patterns.append(_Pattern(compile_path(path), methods))
            else:
                self._static[path] = methods

    def match(self, method: str, path: str) -> tuple[H, dict[str, str]]:
        """Return the handler and path parameters, or raise 404 / 405 with `Allow`."""
        route, params = self.lookup(method, path)
        return route.handler, params

    def lookup(self, method: str, path: str) -> tuple[Route[H], dict[str, str]]:
        """Return the route (HEAD finds the GET one) and path parameters, or raise 404 / 405 with `Allow`."""
        methods = self._static.get(path)
        params: dict[str, str] = {}
        if methods is None:
            for pattern in self._patterns:
                found = pattern.regex.match(path)
                if found is not None:
                    methods, params = pattern.methods, found.groupdict()
                    break
        if methods is None:
            raise HTTPError(404, "api path not found")
        route = methods.get(method)
        if route is None:
            allow = ", ".join(sorted(methods))
            raise HTTPError(405, f"method {method} not allowed", headers=[("Allow", allow)])
        return route, params
