"""Answers both analytics engines shape alike from their own counts: the rows of /entries and /exits."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from medama_core.store.aggregate import Group, fraction

__all__ = ["entry_rows", "exit_rows"]


def entry_rows(chosen: list[tuple[str, Group, int, int]], summary: bool) -> list[dict[str, Any]]:
    """/entries rows from (path, its entries' group, all entries, all entries' visitors) (either engine)."""
    answer = []
    for path, group, total, total_visitors in chosen:
        row: dict[str, Any] = {
            "path": path,
            "entries": group.pageviews,
            "entries_percentage": fraction(group.pageviews, total),
            "visitors": group.page_visitors,
            "visitors_percentage": fraction(group.page_visitors, total_visitors),
        }
        if not summary:
            row["bounce_percentage"] = group.bounce_rate()
        answer.append(row)
    return answer


def exit_rows(chosen: Sequence[Sequence[Any]], summary: bool) -> list[dict[str, Any]]:
    """/exits rows from (path, page visitors, views, exits, all exits, all listed page visitors) (either engine)."""
    answer = []
    for path, page_visitors, pageviews, n, total, total_visitors in chosen:
        row: dict[str, Any] = {
            "path": path,
            "exits": n,
            "exits_percentage": fraction(n, total),
            "visitors": page_visitors,
            "visitors_percentage": fraction(page_visitors, total_visitors),
        }
        if not summary:
            row["pageviews"] = pageviews
            row["exit_percentage"] = fraction(n, pageviews)
        answer.append(row)
    return answer
