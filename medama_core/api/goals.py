"""/websites/{hostname}/goals (a site's goals) and /website/{hostname}/goals (their conversions): ours.

The numbers come from one call of the analytics store (`goal_counts`), given
each goal as its own filters (goals.goal_filters): the request's visitors, and
per goal its views and their page visitors. Unfiltered page goals are summed
from the pages rollup; the rest take one pass over the period for all goals
(store/sqlite/goal_counts.py).
"""

from __future__ import annotations

import time

from medama_core import goals
from medama_core.api import Context, retention
from medama_core.api.stats import parse_query
from medama_core.api.websites import NOT_FOUND
from medama_core.http.errors import HTTPError
from medama_core.http.jsonbody import json_object
from medama_core.http.protocol import Request, Response, json_response
from medama_core.store import protocol as meta


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


async def get_goal_stats(request: Request, ctx: Context) -> Response:
    """Each goal's conversions, converted visitors and rate over the period and filters, in the goals' order."""
    query = parse_query(request)
    found = await ctx.meta.list_goals(query.hostname)
    try:
        for goal in found:
            goals.narrowing(goal, query.filters)  # refuses an event goal under prop filters
    except goals.InvalidGoal as exc:
        raise HTTPError(400, str(exc)) from None
    counts: list[tuple[int, int]]
    site_visitors, counts = 0, []
    if found:
        site_visitors, counts = await ctx.analytics.goal_counts(query, [goals.goal_filters(goal, ()) for goal in found])
    rows = [
        goals.goal_row(goal, conversions, visitors, site_visitors)
        for goal, (conversions, visitors) in zip(found, counts, strict=True)
    ]
    response = json_response(rows)
    if query.filters or any(goal.page is None for goal in found):
        # Read from raw rows (or their column copies): only unfiltered page goals come from the rollups.
        await retention.mark_partial(ctx, response, query.hostname, [query.start])
    return response
