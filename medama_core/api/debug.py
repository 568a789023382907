"""/debug/profile and /debug/stacks: look inside the running server (-profiler, logged-in users only).

Upstream mounts Go's pprof with no authentication (spec §10); here the pages
answer 404 unless -profiler is set, and 401 without a valid session (both
checked by `app.App` before these handlers run).
"""

from __future__ import annotations

import asyncio
import io
import sys
import threading
import traceback

from medama_core.api import Context
from medama_core.http.errors import HTTPError
from medama_core.http.protocol import Request, Response

DEFAULT_PROFILE_S = 10.0  # long enough to catch a steady load, short enough to wait for in a browser
MAX_PROFILE_S = 60.0  # a profile slows the loop down; bound how long one request can keep it on
PROFILE_LINES = 80  # functions listed, by cumulative time: the rest is noise for a first look
_NO_STORE = [("Cache-Control", "no-store")]


class _Profiling:
    """Only one cProfile can run in a thread at a time."""

    running = False


def profile_seconds(value: str | None) -> float:
    """The `seconds` query parameter: a number in (0, MAX_PROFILE_S]; 400 otherwise."""
    if value is None:
        return DEFAULT_PROFILE_S
    try:
        seconds = float(value)
    except ValueError:
        raise HTTPError(400, "seconds must be a number") from None
    if not 0 < seconds <= MAX_PROFILE_S:
        raise HTTPError(400, f"seconds must be above 0 and at most {MAX_PROFILE_S:g}")
    return seconds


async def get_profile(request: Request, ctx: Context) -> Response:
    """cProfile of the event-loop thread for `seconds`, as text sorted by cumulative time."""
    import cProfile  # here, not at start-up: only -profiler uses them
    import pstats

    seconds = profile_seconds(request.query_value("seconds"))
    if _Profiling.running:
        raise HTTPError(409, "a profile is already being taken")
    _Profiling.running = True
    profiler = cProfile.Profile()
    try:
        profiler.enable()
        try:
            await asyncio.sleep(seconds)
        finally:
            profiler.disable()
    finally:
        _Profiling.running = False
    out = io.StringIO()
    out.write(
        f"# cProfile of the event-loop thread for {seconds:g} s; database work runs on worker threads "
        "(see /debug/stacks)\n"
    )
    pstats.Stats(profiler, stream=out).sort_stats(pstats.SortKey.CUMULATIVE).print_stats(PROFILE_LINES)
    return Response(200, out.getvalue().encode(), "text/plain; charset=utf-8", list(_NO_STORE))


def stacks_text() -> str:
    """Every asyncio task of the running loop, then every thread, with their stacks."""
    out = io.StringIO()
    tasks = sorted(asyncio.all_tasks(), key=lambda task: task.get_name())
    out.write(f"# {len(tasks)} asyncio tasks\n\n")
    for task in tasks:
        task.print_stack(file=out)
        out.write("\n")
    frames = sys._current_frames()
    threads = threading.enumerate()
    out.write(f"# {len(threads)} threads\n\n")
    for thread in threads:
        out.write(f"Thread {thread.name} (ident {thread.ident}, daemon={thread.daemon}):\n")
        frame = frames.get(thread.ident or -1)
        out.write("".join(traceback.format_stack(frame)) if frame is not None else "  (no Python frame)\n")
        out.write("\n")
    return out.getvalue()


async def get_stacks(request: Request, ctx: Context) -> Response:
    return Response(200, stacks_text().encode(), "text/plain; charset=utf-8", list(_NO_STORE))
