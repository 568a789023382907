"""Structured logging: one JSON object per line, or a readable line for humans."""

from __future__ import annotations

import json
import sys
import time
from typing import Any, TextIO

LEVELS = {"debug": 10, "info": 20, "warn": 30, "error": 40}


class Logger:
    """A small, fast logger: a level check, then one formatted write per event."""

    def __init__(self, fmt: str = "json", level: str = "info", stream: TextIO | None = None) -> None:
        if fmt not in ("json", "pretty"):
            raise ValueError(f"unknown log format {fmt!r}")
        self.threshold = LEVELS[level]
        self.pretty = fmt == "pretty"
        self.stream = stream if stream is not None else sys.stderr

    def enabled(self, level: str) -> bool:
        return LEVELS[level] >= self.threshold

    def log(self, level: str, message: str, /, **fields: Any) -> None:
        number = LEVELS[level]
        if number < self.threshold:
            return
        now = time.time()
        if self.pretty:
            stamp = time.strftime("%H:%M:%S", time.localtime(now))
            extra = " ".join(f"{key}={value}" for key, value in fields.items())
            line = f"{stamp} {level.upper():5} {message} {extra}".rstrip() + "\n"
        else:
            record: dict[str, Any] = {"time": int(now), "level": level, "message": message}
            record.update(fields)
            line = json.dumps(record, default=str, ensure_ascii=False) + "\n"
        try:
            self.stream.write(line)
            self.stream.flush()
        except (OSError, ValueError):
            pass  # a closed or full log stream must never take a request down with it

    def debug(self, message: str, /, **fields: Any) -> None:
        if self.threshold <= 10:
            self.log("debug", message, **fields)

    def info(self, message: str, /, **fields: Any) -> None:
        if self.threshold <= 20:
            self.log("info", message, **fields)

    def warn(self, message: str, /, **fields: Any) -> None:
        self.log("warn", message, **fields)

    def error(self, message: str, /, **fields: Any) -> None:
        self.log("error", message, **fields)
