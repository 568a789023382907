"""Exceptions that carry the HTTP status they imply."""

from __future__ import annotations

from collections.abc import Sequence
from http import HTTPStatus


class HTTPError(Exception):
    """An error that becomes a response with `status` and `message`.

    The application turns it into the one JSON error shape in exactly one place
    (`medama_core.app.error_response`); nothing else builds error bodies.
    """

    def __init__(
        self,
        status: int,
        message: str | None = None,
        headers: Sequence[tuple[str, str]] = (),
    ) -> None:
        self.status = status
        self.message = message if message is not None else HTTPStatus(status).phrase.lower()
        self.headers = tuple(headers)
        super().__init__(f"{status}: {self.message}")


class ProtocolError(HTTPError):
    """The peer broke HTTP/1.1 framing; the connection is closed after the answer."""
