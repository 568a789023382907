"""Goals: what a site counts as a conversion, read from a request body and matched against pages, without I/O.

A page goal names a path pattern: `*` stands for any run of characters (`/`
included), the rest matches as the `path[eq]` filter does, ASCII case-insensitive.
An event goal names a custom property, and optionally the value it must have.
How the numbers are counted is in docs/insights.md ("Goals"); `api/goals.py`
fetches them from the analytics store's `goal_counts`, given the filters made here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from medama_core.store.aggregate import round4
from medama_core.store.filters import Filter, ascii_lower
from medama_core.store.meta_rows import Goal

__all__ = ["MAX_GOALS_PER_SITE", "GoalSpec", "InvalidGoal", "Pattern", "goal_filters", "narrowing", "parse_goal"]

# Goals a site may have: each adds a filter per day to the /goals request's one pass (store/sqlite/goal_counts.py);
# Plausible's UI shows about this many.
MAX_GOALS_PER_SITE: Final = 50
# A goal's name is a label on a dashboard row.
MAX_NAME_CHARS: Final = 100
# A page pattern is a path: the tracker keeps at most 1,024 characters of one (ingest/hit.py MAX_URL_CHARS
# allows more, but a goal longer than a path names nothing).
MAX_PATTERN_CHARS: Final = 1024
# A property name and value as custom events send them (ingest's property limits: 1,024 bytes a hit).
MAX_PROPERTY_CHARS: Final = 256
# Ids are "goal_" and 26 characters; anything longer names no goal.
MAX_ID_CHARS: Final = 64

_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]")


class InvalidGoal(ValueError):
    """A goal body or a goal request that cannot be answered; the message is for the client (400)."""


@dataclass(frozen=True, slots=True)
class GoalSpec:
    """A goal as a request asked for it, before it has an id."""

    name: str
    page: str | None
    prop_name: str | None
    prop_value: str | None


def _text(body: Mapping[str, Any], key: str, limit: int) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidGoal(f"{key}: must be a string")
    value = value.strip()
    if not value:
        raise InvalidGoal(f"{key}: must not be empty")
    if len(value) > limit:
        raise InvalidGoal(f"{key}: must be at most {limit} characters long")
    if _CONTROL.search(value):
        raise InvalidGoal(f"{key}: must not contain control characters")
    return value


def normal_pattern(page: str) -> str:
    """A page pattern as stored paths are: starting with `/`, without a trailing `/` (but `/` itself)."""
    if not page.startswith(("/", "*")):
        raise InvalidGoal("page: must start with / (a path such as /signup/*/done)")
    if not exact_form(page):
        raise InvalidGoal("page: may hold one * (/signup/*/done), or start and end with one (*checkout*)")
    return (page.rstrip("/") or "/") if page.endswith("/") else page


def parse_goal(body: Mapping[str, Any]) -> GoalSpec:
    """A goal from a POST body: `page`, or `property` and optionally `value`; `name` optional."""
    page = _text(body, "page", MAX_PATTERN_CHARS)
    prop_name = _text(body, "property", MAX_PROPERTY_CHARS)
    prop_value = _text(body, "value", MAX_PROPERTY_CHARS)
    if (page is None) == (prop_name is None):
        raise InvalidGoal("a goal has either page (a path pattern) or property (a custom property name)")
    if prop_value is not None and prop_name is None:
        raise InvalidGoal("value: only an event goal (property) has a value")
    name = _text(body, "name", MAX_NAME_CHARS)
    if page is not None:
        page = normal_pattern(page)
    if name is None:
        name = (page if page is not None else f"{prop_name}={prop_value}" if prop_value else prop_name) or ""
        name = name[:MAX_NAME_CHARS]
    return GoalSpec(name, page, prop_name, prop_value)


@dataclass(frozen=True, slots=True)
class Pattern:
    """A page pattern split at its stars: literal parts, lower-cased as the filters compare them."""

    parts: tuple[str, ...]

    @classmethod
    def of(cls, page: str) -> Pattern:
        return cls(tuple(ascii_lower(page).split("*")))

    def matches(self, path: str) -> bool:
        """Whether `path` matches: the first part leads, the last ends it, the others come in order between.
        Each part is found by `str.find`, leftmost first, which is exact for patterns of `*` alone."""
        text = ascii_lower(path)
        if len(self.parts) == 1:
            return text == self.parts[0]
        first, *middle, last = self.parts
        if len(text) < len(first) + len(last) or not text.startswith(first) or not text.endswith(last):
            return False
        at, end = len(first), len(text) - len(last)
        for part in middle:
            found = text.find(part, at, end)
            if found < 0:
                return False
            at = found + len(part)
        return True

    def filters(self) -> tuple[Filter, ...]:
        """Path filters that keep every matching path and, but for `overlaps()`, no other (parse_goal only
        lets through the patterns for which that holds: one star, or `*text*`)."""
        if len(self.parts) == 1:
            return (Filter("path", "eq", self.parts[0]),)
        first, *middle, last = self.parts
        found = []
        if first:
            found.append(Filter("path", "starts_with", first))
        found += [Filter("path", "contains", part) for part in middle if part]
        if last:
            found.append(Filter("path", "ends_with", last))
        return tuple(found)

    def overlaps(self) -> tuple[str, ...]:
        """The paths the filters keep that do not match: shorter than the first and last parts together, the
        last part overlapping the first (`/signup/*/done` and `/signup/done`). Lower-cased; none without both."""
        if len(self.parts) != 2 or not self.parts[0] or not self.parts[1]:
            return ()
        first, last = self.parts
        # A path of n < len(first) + len(last) characters holding both: the last part begins `shared`
        # characters before the first one ends, so the path is first + last[shared:].
        found = {
            first + last[shared:]
            for shared in range(1, min(len(first), len(last)) + 1)
            if first.endswith(last[:shared])
        }
        return tuple(sorted(found))


def exact_form(page: str) -> bool:
    """Whether the pattern's stars allow an exact count through filters: none or one, or `*text*`."""
    stars = page.count("*")
    return stars <= 1 or (stars == 2 and page.startswith("*") and page.endswith("*"))


def narrowing(goal: Goal, filters: Iterable[Filter]) -> tuple[Filter, ...]:
    """The request's filters plus the goal's own: exactly the views that converted, but for `Pattern.overlaps`.

    A page goal adds path filters (ANDed with any of the request's); an event goal adds `prop_name` (and
    `prop_value`) filters, which cannot be joined to a request's own property filters (a view counts when
    one of its events matches all of them): InvalidGoal then.
    """
    given = tuple(filters)
    if goal.page is not None:
        return (*given, *Pattern.of(goal.page).filters())
    if any(f.field in ("prop_name", "prop_value") for f in given):
        raise InvalidGoal("event goals cannot be counted under prop_name or prop_value filters; remove them")
    assert goal.prop_name is not None
    extra: tuple[Filter, ...] = (Filter("prop_name", "eq", goal.prop_name),)
    if goal.prop_value is not None:
        extra += (Filter("prop_value", "eq", goal.prop_value),)
    return (*given, *extra)


def goal_filters(goal: Goal, filters: Iterable[Filter]) -> tuple[Filter, ...]:
    """Filters that keep exactly the goal's views (`goal[eq]` on any stats endpoint): the narrowing, less
    the overlapping paths it would keep."""
    overlaps = () if goal.page is None else Pattern.of(goal.page).overlaps()
    return (*narrowing(goal, filters), *(Filter("path", "neq", path) for path in overlaps))


def goal_row(goal: Goal, conversions: int, visitors: int, site_visitors: int) -> dict[str, Any]:
    """One row of `GET /website/{hostname}/goals`; the rate is capped at 1 (see docs/insights.md)."""
    rate = 0.0 if site_visitors <= 0 else min(1.0, round4(visitors / site_visitors))
    return {"id": goal.id, "name": goal.name, "conversions": conversions, "visitors": visitors, "rate": rate}


def definition(goal: Goal) -> dict[str, Any]:
    """A goal as `GET /websites/{hostname}/goals` lists it."""
    return {
        "id": goal.id,
        "name": goal.name,
        "page": goal.page,
        "property": goal.prop_name,
        "value": goal.prop_value,
    }
