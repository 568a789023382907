"""/websites/{hostname}/goals (a site's goals) and /website/{hostname}/goals (their conversions): ours.

The numbers come from the usual stats, over the request's period and filters
narrowed to the goal's views (goals.narrowing): per goal a summary for its page
views (less the few paths the narrowing keeps that do not match,
goals.Pattern.overlaps), the `/pages` rows whose page visitors goals.visitors
sums, and one summary for the site's visitors.
"""

from __future__ import annotations

import time
from typing import Any

from medama_core import goals
from medama_core.api import Context, retention
from medama_core.api.stats import parse_query
from medama_core.api.websites import NOT_FOUND
from medama_core.http.errors import HTTPError
from medama_core.http.jsonbody import json_object
from medama_core.http.protocol import Request, Response, json_response
from medama_core.store import protocol as meta
from medama_core.store import protocol as stats
from medama_core.store.filters import Filter


async def list_goals(request: Request, ctx: Context) -> Response:
    hostname = request.path_params["hostname"]  # checked, lower-cased and readable: the route's access
    found = await ctx.meta.list_goals(hostname)
    return json_response([goals.definition(goal) for goal in found])


async def post_goal(request: Request, ctx: Context) -> Response:
    hostname = request.path_params["hostname"]  # checked, lower-cased and manageable: the route's access
    try:
        spec = goals.parse_goal(json_object(request))
    except goals.InvalidGoal as exc:
        raise HTTPError(400, str(exc)) from None
    goal = meta.Goal(
        meta.new_goal_id(), hostname, spec.name, spec.page, spec.prop_name, spec.prop_value, int(time.time())
    )
    try:
        stored = await ctx.meta.insert_goal(goal, goals.MAX_GOALS_PER_SITE)
    except meta.AlreadyExists:  # the site was deleted since the access check (ids are random)
        raise HTTPError(404, NOT_FOUND) from None
    if not stored:
        message = f"this website has {goals.MAX_GOALS_PER_SITE} goals, the most it may have; delete some first"
        raise HTTPError(409, message)
    return json_response(goals.definition(goal), 201)


async def delete_goal(request: Request, ctx: Context) -> Response:
    hostname = request.path_params["hostname"]
    goal_id = request.path_params["id"]
    if len(goal_id) > goals.MAX_ID_CHARS or not await ctx.meta.delete_goal(hostname, goal_id):
        raise HTTPError(404, "goal not found")
    return Response(204)


async def _pages(ctx: Context, query: stats.Query) -> list[dict[str, Any]]:
    """Every `/pages` row of the query, summary shape (imported days included, as the dashboard's pages show).

    Only each path's visitors are read: the full rows' medians cost 4-8x more (bench/stats.py --goals)."""
    rows: list[dict[str, Any]] = await ctx.analytics.list_stats(query, "pages", True, stats.Page(), False)
    return rows


async def _totals(ctx: Context, query: stats.Query) -> dict[str, Any]:
    """The query's `/summary` totals (visitors, pageviews, ...)."""
    answer: dict[str, Any] = await ctx.analytics.summary(query, False, None)
    current: dict[str, Any] = answer["current"]
    return current


async def get_goal_stats(request: Request, ctx: Context) -> Response:
    """Each goal's conversions, converted visitors and rate over the period and filters, in the goals' order."""
    query = parse_query(request)
    found = await ctx.meta.list_goals(query.hostname)
    try:
        narrowed = [goals.narrowing(goal, query.filters) for goal in found]
    except goals.InvalidGoal as exc:
        raise HTTPError(400, str(exc)) from None
    site_visitors = int((await _totals(ctx, query))["visitors"]) if found else 0
    rows = []
    for goal, filters in zip(found, narrowed, strict=True):
        views = stats.Query(query.hostname, query.start_us, query.end_us, filters)
        conversions = int((await _totals(ctx, views))["pageviews"])
        for path in () if goal.page is None else goals.Pattern.of(goal.page).overlaps():
            kept = stats.Query(query.hostname, query.start_us, query.end_us, (*filters, Filter("path", "eq", path)))
            conversions -= int((await _totals(ctx, kept))["pageviews"])
        visitors = goals.visitors(goal, await _pages(ctx, views))
        rows.append(goals.goal_row(goal, conversions, visitors, site_visitors))
    response = json_response(rows)
    if found:  # every goal narrows the filters: its numbers are read from raw rows
        await retention.mark_partial(ctx, response, query.hostname, [query.start])
    return response
