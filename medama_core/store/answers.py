"""Answers both analytics engines shape alike from their own counts: /entries and /exits rows, /live's lists."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any, Final

from medama_core.store.aggregate import Group, fraction

__all__ = ["LIVE_ROWS", "OPEN_MS", "answer", "entry_rows", "exit_rows"]


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


# /live (docs/live.md; the rule is store/sqlite/live.py's docstring).
# A page loaded this long ago and never reported left is taken as abandoned (a crash, a phone that
# killed the tab, a tracker that never reports leaving, as Umami's): Plausible and Umami use 5 and 30 minutes.
OPEN_MS: Final = 30 * 60_000
# Rows per list: the dashboard's live panel shows the top ones of pages, referrers and countries.
LIVE_ROWS: Final = 10


def answer(groups: Iterable[tuple[str, str, str, int]], rows: int = LIVE_ROWS) -> dict[str, Any]:
    """The /live answer from (page, referrer, country, open views) groups: totals and each list's top `rows`."""
    pages: Counter[str] = Counter()
    referrers: Counter[str] = Counter()
    countries: Counter[str] = Counter()
    total = 0
    for page, referrer, country, count in groups:
        total += count
        pages[page] += count
        referrers[referrer] += count
        countries[country] += count

    def top(counter: Counter[str], key: str) -> list[dict[str, Any]]:
        ranked = sorted(counter.items(), key=lambda item: (-item[1], item[0]))[:rows]
        return [{key: label, "visitors": count} for label, count in ranked]

    return {
        "visitors": total,
        "pages": top(pages, "path"),
        "referrers": top(referrers, "referrer"),
        "countries": top(countries, "country"),
    }
