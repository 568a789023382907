"""/websites/{hostname}/annotations over real HTTP: add, list by range, delete, bounds and ownership."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from medama_core.access import FORBIDDEN
from medama_core.api import notes
from medama_core.http.errors import HTTPError
from tests.api.test_auth import error
from tests.api.test_users import add_user
from tests.helpers import Client, LiveServer

SITE = "example.com"
URL = f"/api/websites/{SITE}/annotations"
ID = re.compile(r"note_[0-9a-z]{26}")


@pytest.fixture
def admin(client: Client) -> Client:
    client.login()
    assert client.post("/api/websites", json_body={"hostname": SITE}).status == 201
    return client


def add(client: Client, **body: Any) -> dict[str, Any]:
    result = client.post(URL, json_body=body)
    assert result.status == 201, result.body
    return dict(result.json())


def test_add_list_and_delete(admin: Client) -> None:
    assert admin.get(URL).json() == []
    launch = add(admin, start="2024-06-10", text="  Launched the pricing page\n(second line)  ")
    assert ID.fullmatch(launch["id"])
    assert launch["start"] == "2024-06-10" and launch["end"] is None
    assert launch["text"] == "Launched the pricing page\n(second line)"  # spaces around it go
    created = dt.datetime.fromisoformat(launch["created"].replace("Z", "+00:00"))
    assert abs((created - dt.datetime.now(dt.UTC)).total_seconds()) < 60
    sale = add(admin, start="2024-06-01", end="2024-06-14", text="Summer sale")
    same_day = add(admin, start="2024-06-20", end="2024-06-20", text="One day")
    assert same_day["end"] is None  # an end on the start day is one day
    assert [n["id"] for n in admin.get(URL).json()] == [sale["id"], launch["id"], same_day["id"]]  # by start day
    assert admin.get(URL).json()[0] == sale
    # start/end keep the notes that touch the range.
    assert [n["text"] for n in admin.get(URL + "?start=2024-06-11").json()] == ["Summer sale", "One day"]
    assert [n["text"] for n in admin.get(URL + "?start=2024-06-15&end=2024-06-19").json()] == []
    assert [n["text"] for n in admin.get(URL + "?end=2024-06-09").json()] == ["Summer sale"]
    assert admin.delete(f"{URL}/{launch['id']}").status == 204
    assert error(admin.delete(f"{URL}/{launch['id']}")) == (404, "annotation not found")
    assert error(admin.delete(f"{URL}/{'x' * 100}")) == (404, "annotation not found")
    assert [n["id"] for n in admin.get(URL).json()] == [sale["id"], same_day["id"]]


def test_notes_follow_a_rename_and_go_with_a_delete(admin: Client) -> None:
    note = add(admin, start="2024-06-10", text="kept")
    assert admin.patch(f"/api/websites/{SITE}", json_body={"hostname": "renamed.example"}).status == 200
    assert admin.get("/api/websites/renamed.example/annotations").json() == [note]
    assert admin.delete("/api/websites/renamed.example").status == 204
    assert admin.post("/api/websites", json_body={"hostname": "renamed.example"}).status == 201
    assert admin.get("/api/websites/renamed.example/annotations").json() == []


def test_a_site_holds_at_most_its_cap(admin: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(notes, "MAX_PER_SITE", 2)
    add(admin, start="2024-06-01", text="one")
    add(admin, start="2024-06-02", text="two")
    assert error(admin.post(URL, json_body={"start": "2024-06-03", "text": "three"})) == (
        409,
        "this website has 2 notes, the most it may have; delete some first",
    )
    assert len(admin.get(URL).json()) == 2


def test_site_and_role_checks(admin: Client, server: LiveServer) -> None:
    """A viewer reads the notes of the sites granted to them and changes none; any other site is unknown to them
    (404), as a site that does not exist is to anyone (docs/auth.md)."""
    assert admin.post("/api/websites", json_body={"hostname": "bob.example"}).status == 201
    add_user(server, "bob", "bob-password", role="viewer", websites=("bob.example",))
    theirs = admin.post("/api/websites/bob.example/annotations", json_body={"start": "2024-06-01", "text": "bob's"})
    assert theirs.status == 201
    bob = server.client()
    bob.login("bob", "bob-password")
    base = "/api/websites/bob.example/annotations"
    assert [note["text"] for note in bob.get(base).json()] == ["bob's"]
    assert error(bob.post(base, json_body={"start": "2024-06-01", "text": "x"})) == (403, FORBIDDEN)
    assert error(bob.delete(f"{base}/{theirs.json()['id']}")) == (403, FORBIDDEN)
    for host in (SITE, "nowhere.example"):
        other = f"/api/websites/{host}/annotations"
        assert error(bob.get(other)) == (404, "website not found")
        assert error(bob.post(other, json_body={"start": "2024-06-01", "text": "x"})) == (404, "website not found")
        assert error(bob.delete(f"{other}/{theirs.json()['id']}")) == (404, "website not found")
    nowhere = "/api/websites/nowhere.example/annotations"
    assert error(admin.get(nowhere)) == (404, "website not found")
    assert error(admin.post(nowhere, json_body={"start": "2024-06-01", "text": "x"})) == (404, "website not found")
    # A note id of another site is no note of this one.
    assert error(admin.delete(f"{URL}/{theirs.json()['id']}")) == (404, "annotation not found")
    assert len(bob.get(base).json()) == 1
    bob.close()
    anonymous = server.client()
    assert anonymous.get(URL).status == 401
    anonymous.close()


@pytest.mark.parametrize(
    "body, message",
    [
        ({"text": "x"}, "start: required field is missing"),
        ({"start": "2024-6-1", "text": "x"}, "start: must be a date written YYYY-MM-DD"),
        ({"start": 20240601, "text": "x"}, "start: must be a date written YYYY-MM-DD"),
        ({"start": "2024-02-30", "text": "x"}, "start: '2024-02-30' is not a calendar date"),
        ({"start": "1999-12-31", "text": "x"}, "start: must be from 2000 to 2099"),
        ({"start": "2024-06-01", "end": "2024-05-31", "text": "x"}, "end: must not be before start"),
        ({"start": "2024-01-01", "end": "2025-01-01", "text": "x"}, "end: a note covers at most 366 days"),
        ({"start": "2024-06-01", "end": "June", "text": "x"}, "end: must be a date written YYYY-MM-DD"),
        ({"start": "2024-06-01"}, "text: must be a string"),
        (
            {"start": "2024-06-01", "text": "   "},
            "text: must be 1 to 500 characters long (spaces around it not counted)",
        ),
        (
            {"start": "2024-06-01", "text": "x" * 501},
            "text: must be 1 to 500 characters long (spaces around it not counted)",
        ),
        (
            {"start": "2024-06-01", "text": "a\x00b"},
            "text: must not contain control characters other than line breaks and tabs",
        ),
        (
            {"start": "2024-06-01", "text": "a\x1bb"},
            "text: must not contain control characters other than line breaks and tabs",
        ),
    ],
)
def test_bad_notes_are_400_and_store_nothing(admin: Client, body: dict[str, Any], message: str) -> None:
    assert error(admin.post(URL, json_body=body)) == (400, message)
    assert admin.get(URL).json() == []


def test_the_longest_range_and_text_are_fine(admin: Client) -> None:
    note = add(admin, start="2024-01-01", end="2024-12-31", text="y" * 500)  # 366 days of a leap year
    assert (note["end"], len(note["text"])) == ("2024-12-31", 500)


@pytest.mark.parametrize("query", ["start=2024-13-01", "end=soon", "start=1900-01-01"])
def test_bad_list_ranges_are_400(admin: Client, query: str) -> None:
    assert error(admin.get(f"{URL}?{query}"))[0] == 400


DATES = st.one_of(
    st.dates(min_value=dt.date(1990, 1, 1), max_value=dt.date(2110, 12, 31)).map(dt.date.isoformat),
    st.text(alphabet="0123456789-", max_size=12),
    st.integers(),
    st.none(),
)


@given(
    body=st.fixed_dictionaries(
        {},
        optional={"start": DATES, "end": DATES, "text": st.one_of(st.text(max_size=600), st.integers(), st.none())},
    )
)
def test_any_body_gives_a_valid_note_or_a_400(body: dict[str, Any]) -> None:
    """The parser's invariant: dates in order and in bounds, bounded clean text, or a 400 naming a field."""
    try:
        start, end, text = notes.parse_annotation_body(body)
    except HTTPError as exc:
        assert exc.status == 400 and exc.message.split(":")[0] in ("start", "end", "text")
        return
    first = dt.date.fromisoformat(start)
    assert notes.FIRST_YEAR <= first.year <= notes.LAST_YEAR
    if end is not None:
        assert 0 < (dt.date.fromisoformat(end) - first).days < notes.MAX_RANGE_DAYS
    assert 1 <= len(text) <= notes.MAX_TEXT_CHARS and text == text.strip()
    assert not any(ord(c) < 32 and c not in "\n\t" or c == "\x7f" for c in text)
