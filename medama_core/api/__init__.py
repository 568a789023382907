"""The API layer: the Context every handler receives, wiring store functions to HTTP."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from medama_core.config import Config
from medama_core.http.protocol import Request, Response
from medama_core.log import Logger
from medama_core.store.db import Database


@dataclass
class Context:
    """Process-wide state handed to every handler. Mutated only on the event loop thread."""

    config: Config
    log: Logger
    meta: Database
    analytics: Database
    hostnames: set[str] = field(default_factory=set)  # the allow-set ingestion checks, kept in step with `websites`
    script_variant: str = "default"  # tracker file `/script.js` serves, from the `script_type` setting
    started: float = field(default_factory=time.time)
    on_shutdown: list[Callable[[], Awaitable[None]]] = field(default_factory=list)


Handler = Callable[[Request, Context], Awaitable[Response]]
