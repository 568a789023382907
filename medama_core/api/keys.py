"""/user/keys: the signed-in account's API keys: list, create (the key is shown once) and revoke.

Reached from a signed-in browser only (app.ROUTES: credentials): a leaked key
cannot make more keys. A revoked key stops working at its next request, since
every request looks its key up (access.py).
"""

from __future__ import annotations

import time
from typing import Any, Final

from medama_core import access, apikeys
from medama_core.api import Context
from medama_core.http.errors import HTTPError
from medama_core.http.jsonbody import json_object, optional_int, optional_string, required_string
from medama_core.http.protocol import Request, Response, json_response
from medama_core.permissions import Scope
from medama_core.store import protocol as meta

# Expiry dates a key may have: from now until the year 9999 (what JavaScript's Date and RFC 3339 show).
MAX_EXPIRY_S: Final = 253_402_300_799
KEY_NOT_FOUND: Final = "API key not found"


def key_json(key: meta.ApiKey) -> dict[str, Any]:
    """What is shown of a key after its creation: never the key itself (only its hash is stored)."""
    return {
        "id": key.id,
        "name": key.name,
        "scope": key.scope,
        "dateCreated": key.date_created,
        "dateExpires": key.date_expires,
        "lastUsed": key.date_used,
    }


async def list_keys(request: Request, ctx: Context) -> Response:
    keys = await ctx.meta.list_api_keys(access.user(request).id)
    return json_response([key_json(key) for key in keys])


async def post_key(request: Request, ctx: Context) -> Response:
    """A new key with a name, a scope (read by default) and an optional expiry (Unix seconds)."""
    body = json_object(request)
    name = required_string(body, "name", 1, apikeys.NAME_MAX)
    scope = optional_string(body, "scope", 1, 16) or Scope.READ.value
    if scope not in {s.value for s in Scope}:
        raise HTTPError(400, f"scope: must be one of {', '.join(s.value for s in Scope)}")
    now = int(time.time())
    expires = optional_int(body, "dateExpires", 0, MAX_EXPIRY_S) if body.get("dateExpires") is not None else None
    if expires is not None and expires <= now:
        raise HTTPError(400, "dateExpires: must be in the future")
    user = access.user(request)
    if len(await ctx.meta.list_api_keys(user.id)) >= apikeys.MAX_KEYS_PER_USER:
        raise HTTPError(409, f"an account may hold at most {apikeys.MAX_KEYS_PER_USER} API keys; revoke one first")
    secret = apikeys.new_key()
    key = meta.ApiKey(meta.new_key_id(), user.id, name, scope, now, expires)
    await ctx.meta.insert_api_key(key, apikeys.key_hash(secret))
    return json_response({**key_json(key), "key": secret}, 201)


async def delete_key(request: Request, ctx: Context) -> Response:
    if not await ctx.meta.delete_api_key(access.user(request).id, request.path_params["id"]):
        raise HTTPError(404, KEY_NOT_FOUND)
    return Response(204)
