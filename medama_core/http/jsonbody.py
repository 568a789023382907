"""Request bodies as JSON objects: content type, syntax and typed fields, each failure a 4xx `HTTPError`.

Fields the schema does not name are ignored, as upstream's generated decoder
does. Every message names the offending field so a client can fix its request.
"""

from __future__ import annotations

import json
from typing import Any

from medama_core.http.errors import HTTPError
from medama_core.http.protocol import Request

JSON_TYPE = "application/json"


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def json_object(request: Request) -> dict[str, Any]:
    """The body as a JSON object: 415 for another media type, 400 when missing, malformed or not an object."""
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if not request.body and not media_type:
        raise HTTPError(400, "request body is required")
    if media_type != JSON_TYPE:
        shown = media_type or "none"
        raise HTTPError(415, f"unsupported content type {shown!r}; send {JSON_TYPE}")
    try:
        # NaN and Infinity are Python extensions, not JSON (RFC 8259 §6).
        data = json.loads(request.body, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise HTTPError(400, f"invalid JSON body: {exc}") from None
    if not isinstance(data, dict):
        raise HTTPError(400, "request body must be a JSON object")
    if b"\\u" in request.body and has_lone_surrogate(data):
        raise HTTPError(400, "invalid JSON body: a string holds a lone UTF-16 surrogate escape")
    return data


def has_lone_surrogate(value: Any) -> bool:
    """Whether a decoded JSON value holds a string with a lone `\\udXXX` escape.

    JSON allows such escapes (RFC 8259 §8.2 calls them "unpredictable"), but the
    string cannot be written as UTF-8, so SQLite could never store or look it up.
    Only escapes can produce one: callers check for a `\\u` in the body first.
    """
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def optional_string(body: dict[str, Any], name: str, min_len: int, max_len: int) -> str | None:
    """A string field of `min_len`..`max_len` characters; None when absent."""
    value = body.get(name)
    if value is None and name not in body:
        return None
    if not isinstance(value, str):
        raise HTTPError(400, f"{name}: must be a string")
    if not min_len <= len(value) <= max_len:
        raise HTTPError(400, f"{name}: must be {min_len} to {max_len} characters long")
    return value


def required_string(body: dict[str, Any], name: str, min_len: int, max_len: int) -> str:
    value = optional_string(body, name, min_len, max_len)
    if value is None:
        raise HTTPError(400, f"{name}: required field is missing")
    return value


def optional_bool(body: dict[str, Any], name: str) -> bool | None:
    if name not in body:
        return None
    value = body[name]
    if not isinstance(value, bool):
        raise HTTPError(400, f"{name}: must be true or false")
    return value


def optional_int(body: dict[str, Any], name: str, minimum: int, maximum: int) -> int | None:
    if name not in body:
        return None
    value = body[name]
    if isinstance(value, bool) or not isinstance(value, int):
        raise HTTPError(400, f"{name}: must be a whole number")
    if not minimum <= value <= maximum:
        raise HTTPError(400, f"{name}: must be from {minimum} to {maximum}")
    return value


def optional_object(body: dict[str, Any], name: str) -> dict[str, Any] | None:
    if name not in body:
        return None
    value = body[name]
    if not isinstance(value, dict):
        raise HTTPError(400, f"{name}: must be an object")
    return value


def optional_string_list(body: dict[str, Any], name: str, max_items: int) -> list[str] | None:
    """A list of distinct strings (JSON Schema `uniqueItems`); None when absent."""
    if name not in body:
        return None
    value = body[name]
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise HTTPError(400, f"{name}: must be a list of strings")
    if len(value) > max_items:
        raise HTTPError(400, f"{name}: at most {max_items} items")
    if len(set(value)) != len(value):
        raise HTTPError(400, f"{name}: items must be unique")
    return value
