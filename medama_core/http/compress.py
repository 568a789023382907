"""Response compression: gzip when the client accepts it and it is worth it."""

from __future__ import annotations

import gzip

from medama_core.http.protocol import Response

MIN_COMPRESS_BYTES = 1024  # below ~1 KiB the gzip header and a lost TCP segment saving make it a wash
GZIP_LEVEL = 5  # zlib's speed/size knee: level 9 costs ~3x the CPU for ~2% smaller JSON
_COMPRESSIBLE = (
    "text/",
    "application/json",
    "application/javascript",
    "application/yaml",
    "application/xml",
    "application/manifest+json",
    "image/svg+xml",
)


def accepts_gzip(accept_encoding: str) -> bool:
    """RFC 9110 §12.5.3: gzip is acceptable if listed (or `*`) with a non-zero q."""
    star = False
    for item in accept_encoding.split(","):
        coding, _, params = item.partition(";")
        coding = coding.strip().lower()
        if coding not in ("gzip", "x-gzip", "*"):
            continue
        q = 1.0
        for param in params.split(";"):
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if coding == "*":
            star = q > 0
        else:
            return q > 0
    return star


def compressible(response: Response) -> bool:
    content_type = response.content_type or ""
    return (
        response.stream is None  # a streamed body is compressed, if at all, by whoever makes it
        and len(response.body) >= MIN_COMPRESS_BYTES
        and content_type.startswith(_COMPRESSIBLE)
        and response.header("Content-Encoding") is None
        and response.status not in (204, 304)
    )


def gzip_body(body: bytes) -> bytes:
    return gzip.compress(body, compresslevel=GZIP_LEVEL, mtime=0)


def maybe_gzip(response: Response, accept_encoding: str) -> Response:
    """Compress in place when allowed; always say the answer varies by Accept-Encoding."""
    if not compressible(response):
        return response
    response.headers.append(("Vary", "Accept-Encoding"))
    if accepts_gzip(accept_encoding):
        response.body = gzip_body(response.body)
        response.headers.append(("Content-Encoding", "gzip"))
    return response
