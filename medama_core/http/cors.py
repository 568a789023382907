"""Cross-origin rules: permissive on public routes, credentialed only for configured origins."""

from __future__ import annotations

from collections.abc import Collection
from typing import Final

from medama_core.http.protocol import Request, Response

# rs/cors defaults, which upstream uses for everything but the credentialed API.
PUBLIC_METHODS = "GET, POST, HEAD"
# Plus X-Umami-Cache: Umami's script 2.10 echoes the previous answer's body in it (api/foreign.py).
PUBLIC_HEADERS = "Origin, Accept, Content-Type, X-Requested-With, X-Umami-Cache"
CREDENTIALED_METHODS = "GET, POST, PATCH, DELETE"
PREFLIGHT_MAX_AGE_S = "600"  # browsers cap it anyway (Chromium: 2 h); 10 min keeps setting changes visible


# The CORS header of an answer to any origin (every public route's), one tuple for every response.
ANY_ORIGIN: Final = ("Access-Control-Allow-Origin", "*")


def credentialed_route(path: str) -> bool:
    """The API routes that carry a session cookie: all of /api/ except the public event routes
    (ours, Plausible's /api/event and Umami's /api/send)."""
    return path.startswith("/api/") and not path.startswith("/api/event") and path != "/api/send"


def is_preflight(request: Request) -> bool:
    return (
        request.method == "OPTIONS"
        and "origin" in request.headers
        and "access-control-request-method" in request.headers
    )


def preflight(request: Request, allowed_origins: Collection[str]) -> Response:
    """Answer an OPTIONS preflight (204), granting only what the route's policy allows."""
    response = Response(204)
    origin = request.headers["origin"]
    if allowed_origins and credentialed_route(request.path):
        if origin in allowed_origins:
            requested = request.headers.get("access-control-request-headers", "")
            response.headers += [
                ("Access-Control-Allow-Origin", origin),
                ("Access-Control-Allow-Credentials", "true"),
                ("Access-Control-Allow-Methods", CREDENTIALED_METHODS),
                ("Access-Control-Max-Age", PREFLIGHT_MAX_AGE_S),
            ]
            if requested:
                response.headers.append(("Access-Control-Allow-Headers", requested))
        response.headers.append(("Vary", "Origin"))
        return response
    response.headers += [
        ("Access-Control-Allow-Origin", "*"),
        ("Access-Control-Allow-Methods", PUBLIC_METHODS),
        ("Access-Control-Allow-Headers", PUBLIC_HEADERS),
        ("Access-Control-Max-Age", PREFLIGHT_MAX_AGE_S),
    ]
    return response


def add_headers(request: Request, response: Response, allowed_origins: Collection[str]) -> None:
    """Add CORS headers to an actual response; a preflight's come from `preflight` alone.

    Each header is sent once: a browser refuses a preflight answer that repeats
    `Access-Control-Allow-Origin` ("*, *" is not a valid value).
    """
    origin = request.headers.get("origin")
    if origin is None or is_preflight(request):
        return
    if allowed_origins and credentialed_route(request.path):
        response.headers.append(("Vary", "Origin"))
        if origin in allowed_origins:
            exposed = "Set-Cookie, X-Api-Commit" if request.path == "/api/auth/login" else "X-Api-Commit"
            response.headers += [
                ("Access-Control-Allow-Origin", origin),
                ("Access-Control-Allow-Credentials", "true"),
                ("Access-Control-Expose-Headers", exposed),
            ]
        return
    response.headers.append(ANY_ORIGIN)
