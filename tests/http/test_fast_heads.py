"""The fast path's framed heads (`server._Heads`) give the bytes `render_response` gives, whatever the answer."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from medama_core.http.protocol import Response, render_response
from medama_core.http.server import MAX_FAST_HEADS, Shared, _Heads

HEADER = st.tuples(st.sampled_from(["Cache-Control", "Last-Modified", "Access-Control-Allow-Origin", "X-A"]), st.text())
RESPONSE = st.builds(
    Response,
    status=st.sampled_from([200, 204, 304, 400, 404, 413, 415, 429, 500, 503]) | st.integers(100, 599),
    body=st.binary(max_size=64),
    content_type=st.none() | st.sampled_from(["text/plain; charset=utf-8", "application/json"]),
    headers=st.lists(HEADER, max_size=6),
)


@given(st.lists(st.tuples(RESPONSE, st.booleans(), st.booleans(), st.binary(max_size=40)), min_size=1, max_size=8))
@settings(max_examples=400, deadline=None)
def test_heads_frame_as_render_response(answers: list[tuple[Response, bool, bool, bytes]]) -> None:
    # One `_Heads` for the whole list: an answer framed from a kept head must match as a fresh one does.
    heads = _Heads()
    for response, keep_alive, http10, date in answers * 2:
        expected = render_response(response, keep_alive=keep_alive, head_only=False, date=date, http10=http10)
        assert heads.render(response, keep_alive, http10, date) == expected


def test_heads_stay_bounded() -> None:
    heads = _Heads()
    for age in range(MAX_FAST_HEADS * 2 + 1):
        response = Response(200, b"1", "text/plain; charset=utf-8", [("Cache-Control", f"max-age={age}")])
        assert heads.render(response, True, False, b"D").endswith(b"max-age=%d\r\n\r\n1" % age)
        assert len(heads._heads) <= MAX_FAST_HEADS


SHARED = st.builds(
    Shared,
    status=st.sampled_from([200, 204]),
    body=st.binary(max_size=4),
    content_type=st.none() | st.just("text/plain; charset=utf-8"),
    headers=st.lists(HEADER, max_size=4),
)


@given(
    st.lists(SHARED, min_size=1, max_size=4),
    st.lists(st.tuples(st.integers(0, 3), st.booleans(), st.integers(0, 2)), min_size=1, max_size=24),
)
@settings(max_examples=300, deadline=None)
def test_shared_answers_frame_as_render_response(shared: list[Shared], uses: list[tuple[int, bool, int]]) -> None:
    # The same few answers handed out again and again, with keep-alive or not, over a few Date seconds (each
    # second one bytes object, as `_DateCache` gives): every answer is the one `render_response` makes.
    heads = _Heads()
    dates = [b"Mon, 07 Dec 2026 05:00:0%d GMT" % second for second in range(3)]
    for index, keep_alive, second in uses:
        response = shared[index % len(shared)]
        expected = render_response(response, keep_alive=keep_alive, head_only=False, date=dates[second])
        assert heads.shared(response, keep_alive, dates[second]) == expected


def test_shared_answers_stay_bounded() -> None:
    heads = _Heads()
    for age in range(MAX_FAST_HEADS * 2 + 1):
        response = Shared(200, b"1", "text/plain; charset=utf-8", [("Cache-Control", f"max-age={age}")])
        assert heads.shared(response, True, b"D").endswith(b"max-age=%d\r\n\r\n1" % age)
        assert len(heads._shared) <= MAX_FAST_HEADS
