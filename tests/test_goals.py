"""Goals without I/O: bodies read or refused, page patterns matched, and the narrowing filters never lose a match."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from medama_core import goals
from medama_core.goals import InvalidGoal, Pattern, parse_goal
from medama_core.store.filters import Filter, ascii_lower
from medama_core.store.meta_rows import Goal


def goal(page: str | None = None, prop: str | None = None, value: str | None = None) -> Goal:
    return Goal("goal_x", "a.example", "g", page, prop, value, 0)


def test_bodies_give_a_page_or_an_event_goal_with_a_name() -> None:
    assert parse_goal({"page": " /signup/*/done/ "}) == goals.GoalSpec("/signup/*/done", "/signup/*/done", None, None)
    assert parse_goal({"page": "/"}).page == "/"
    assert parse_goal({"page": "/a\n"}).page == "/a"  # spaces and line breaks around a text are not part of it
    assert parse_goal({"page": "*/pricing", "name": "Pricing"}) == goals.GoalSpec("Pricing", "*/pricing", None, None)
    assert parse_goal({"property": "plan", "value": "pro"}) == goals.GoalSpec("plan=pro", None, "plan", "pro")
    assert parse_goal({"property": "file-download"}).name == "file-download"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "either page"),
        ({"page": "/a", "property": "x"}, "either page"),
        ({"page": "pricing"}, "must start with /"),
        ({"page": "/a/*/b/*/c"}, "may hold one"),
        ({"page": "*a*b"}, "may hold one"),
        ({"page": "/a\tb"}, "control characters"),
        ({"page": 5}, "must be a string"),
        ({"page": "  "}, "must not be empty"),
        ({"value": "pro"}, "either page"),
        ({"page": "/a", "value": "pro"}, "only an event goal"),
        ({"property": "x", "name": "n" * 101}, "at most 100"),
        ({"property": "p" * 257}, "at most 256"),
    ],
)
def test_bad_bodies_say_why(body: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidGoal, match=message):
        parse_goal(body)


@given(st.dictionaries(st.sampled_from(["name", "page", "property", "value", "other"]), st.from_type(object)))
def test_any_body_gives_a_goal_or_invalid_goal(body: dict[str, Any]) -> None:
    try:
        spec = parse_goal(body)
    except InvalidGoal:
        return
    assert (spec.page is None) != (spec.prop_name is None)
    assert 1 <= len(spec.name) <= goals.MAX_NAME_CHARS


def reference(pattern: str, path: str) -> bool:
    """fnmatch with only `*` special, on ASCII-lowered text: what a page goal means."""
    regex = "".join(".*" if part == "*" else re.escape(part) for part in re.split(r"(\*)", ascii_lower(pattern)))
    return re.fullmatch(regex, ascii_lower(path), re.DOTALL) is not None


@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [
        ("/signup/*/done", "/signup/pro/done", True),
        ("/signup/*/done", "/signup/done", False),  # the star's slashes are the pattern's own
        ("/signup/*/done", "/SIGNUP/x/y/Done", True),  # ASCII case-insensitive, and * crosses slashes
        ("/a*a", "/a", False),  # the two ends may not overlap
        ("/a*a", "/aa", True),
        ("*", "/anything", True),
        ("/blog/*", "/blog", False),
        ("/blog*", "/blog", True),
        ("/x*y*z", "/xzy", False),
        ("/ü*", "/Ü", False),  # only A-Z fold, as SQLite's lower()
    ],
)
def test_patterns_by_hand(pattern: str, path: str, expected: bool) -> None:
    assert Pattern.of(pattern).matches(path) is expected
    assert reference(pattern, path) is expected


_TEXT = st.text(alphabet="/aAbB*.-", max_size=12).filter(goals.exact_form)


def passes(flt: Filter, path: str) -> bool:
    """The store's meaning of the operators a goal adds (store/filters.py), ASCII case-insensitive."""
    text, value = ascii_lower(path), flt.values()[0]
    return {
        "eq": text == value,
        "starts_with": text.startswith(value),
        "ends_with": text.endswith(value),
        "contains": value in text,
    }[flt.op]


@given(_TEXT, st.text(alphabet="/aAbB.-", max_size=14))
def test_the_filters_keep_exactly_the_matches_and_the_overlaps(pattern: str, path: str) -> None:
    """What makes a goal's page views exact: filters + overlaps name the same paths as the pattern."""
    compiled = Pattern.of(pattern)
    assert compiled.matches(path) is reference(pattern, path)
    kept = all(passes(flt, path) for flt in compiled.filters())
    assert kept == (compiled.matches(path) or ascii_lower(path) in compiled.overlaps()), compiled.filters()
    assert not any(compiled.matches(overlap) for overlap in compiled.overlaps())


def test_narrowing_adds_the_goal_to_the_request_filters() -> None:
    browser = Filter("browser", "eq", "Firefox")
    assert goals.narrowing(goal(page="/pricing"), (browser,)) == (browser, Filter("path", "eq", "/pricing"))
    assert goals.narrowing(goal(page="/docs/*"), ()) == (Filter("path", "starts_with", "/docs/"),)
    assert goals.narrowing(goal(page="*/done"), ()) == (Filter("path", "ends_with", "/done"),)
    assert goals.narrowing(goal(page="*Buy*"), ()) == (Filter("path", "contains", "buy"),)
    assert goals.narrowing(goal(page="*"), ()) == ()
    own_path = Filter("path", "contains", "x")
    assert goals.narrowing(goal(page="/a/*/b"), (own_path,)) == (
        own_path,
        Filter("path", "starts_with", "/a/"),
        Filter("path", "ends_with", "/b"),
    )
    assert Pattern.of("/signup/*/done").overlaps() == ("/signup/done",)
    assert Pattern.of("/a*a").overlaps() == ("/a",)
    assert Pattern.of("/docs/*").overlaps() == ()
    assert goals.narrowing(goal(prop="plan", value="pro"), (browser,)) == (
        browser,
        Filter("prop_name", "eq", "plan"),
        Filter("prop_value", "eq", "pro"),
    )
    assert goals.narrowing(goal(prop="plan"), ()) == (Filter("prop_name", "eq", "plan"),)
    with pytest.raises(InvalidGoal, match="prop_name or prop_value"):
        goals.narrowing(goal(prop="plan"), (Filter("prop_value", "eq", "x"),))


def test_rows() -> None:
    assert goals.goal_row(goal(page="/x"), 7, 5, 15)["rate"] == 0.3333
    assert goals.goal_row(goal(page="/x"), 7, 5, 0)["rate"] == 0.0
    assert goals.goal_row(goal(page="/x"), 7, 5, 4)["rate"] == 1.0  # capped


def test_ids_made_in_one_millisecond_sort_in_the_order_made() -> None:
    """Goals (and notes) list by creation second, then id: ids must not shuffle within a second."""
    from medama_core.store.sqlite import meta

    made = [meta.new_goal_id() for _ in range(2000)]
    assert made == sorted(made) and len(set(made)) == len(made)
