"""The analytics writer's ops: what one hit (or a drop count) asks every engine's writer to store.

A layer-0 module of the standard library alone, so that the ingest pipeline
(ingest/pipeline.py), which makes a hit's op, and the stores (store/), which
write batches of them, share one type without either importing the other
(shared/style.md, "Which way imports may go"); store/rows.py re-exports them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["DropCount", "Duration", "NewEvents", "NewView", "Op", "Row"]

Row = tuple[object, ...]  # values in store/rows.py VIEW_COLUMNS or EVENT_COLUMNS order


@dataclass(slots=True)
class NewView:
    """A page view: one `views` row and the `events` rows of its custom properties."""

    view: Row
    events: Sequence[Row] = ()
    # The path of the view's internal referrer ('' for none: an entry); see ingest/internal.py.
    referrer_path: str = ""


@dataclass(slots=True)
class Duration:
    """An unload: how long the page of beacon `bid` was visible."""

    bid: str
    duration_ms: int


@dataclass(slots=True)
class NewEvents:
    """A custom event: `events` rows sharing one batch id."""

    events: Sequence[Row]


@dataclass(slots=True)
class DropCount:
    """`count` hits dropped for `reason` on `day` (Unix ms of 00:00 UTC); hostname '' when unknown."""

    day: int
    hostname: str
    reason: str
    count: int = 1


Op = NewView | Duration | NewEvents | DropCount
