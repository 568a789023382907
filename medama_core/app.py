"""Composition root: the route table, the one place errors become responses, and `serve`."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import ipaddress
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from medama_core import COMMIT, __version__, access, assets, backends, sharelinks, workers
from medama_core.accesslog import SUMMARY_INTERVAL_S, AccessLog
from medama_core.api import (
    Context,
    Handler,
    debug,
    drops,
    events,
    export,
    foreign,
    health,
    imported,
    keys,
    members,
    notes,
    reload_site_settings,
    shares,
    sitesettings,
    stats,
    tables,
    twofactor,
    upload,
    users,
    websites,
)
from medama_core.api import auth as auth_api
from medama_core.api import goals as goals_api
from medama_core.api import live as live_api
from medama_core.api import settings as settings_api
from medama_core.config import Config, as_dict
from medama_core.http import cors
from medama_core.http.compress import MIN_COMPRESS_BYTES, maybe_gzip
from medama_core.http.errors import HTTPError
from medama_core.http.protocol import Request, Response, json_response
from medama_core.http.router import Route, Router
from medama_core.http.server import Deferred, HTTPServer, Shared, inherited_listener
from medama_core.ingest import ipfilter
from medama_core.log import Logger
from medama_core.permissions import Access
from medama_core.ratelimit import RateLimiter
from medama_core.store.protocol import (
    DEFAULT_ADMIN_PASSWORD,
    DEFAULT_ADMIN_USERNAME,
    AnalyticsStore,
    InvalidValue,
    MetaStore,
    Op,
    QueryTimeout,
    Unavailable,
    Unsupported,
    is_disk_full,
)
from medama_core.writer import MAX_BATCH_OPS, Batcher

if TYPE_CHECKING:
    import ssl

    from medama_core import https  # imported in serve() only for TLS or a failed listen

PUBLIC, ACCOUNT, CREDENTIALS, SERVER = Access.PUBLIC, Access.ACCOUNT, Access.CREDENTIALS, Access.SERVER
SITE_READ, SITE_MANAGE, SHARE_READ = Access.SITE_READ, Access.SITE_MANAGE, Access.SHARE_READ

API_PREFIX = "/api"
EVENT_BODY_LIMIT = 64 * 1024  # a tracker beacon is < 1 KiB; 64 KiB leaves room for big custom properties
FOREIGN_EVENT_PATHS = ("/api/event", "/api/send")  # Plausible's and Umami's event APIs: beacons too
DEFAULT_BODY_LIMIT = 1024 * 1024  # the largest non-event body (settings with a long IP list) is far below this
QUERY_TIMEOUT_RETRY_S = "5"  # a timed-out stats query freed its reader; a retry soon is fine, at once is not
UNAVAILABLE_RETRY_S = "5"  # a database server that is away (restart, failover) is usually back within seconds
DISK_FULL_RETRY_S = "60"  # freeing disk space takes a person; retrying sooner only adds load
DISK_FULL_MESSAGE = "the server's disk is full; nothing was changed, try again later"

# How often the server looks for websites and settings written by another process or node (`medama import`,
# a second server on the same files or PostgreSQL database): on SQLite a changed `PRAGMA data_version` on
# the meta writer's connection (one pragma, a few µs), on PostgreSQL the change counter its triggers bump
# (store/postgres/changes.py, a one-row read); a site created elsewhere is served within about a second.
META_POLL_INTERVAL_S = 1.0
# How often a node raises each site's daily quota count to the day's hits stored by every node (the store's
# count: SQLite's `site_hits`, on ClickHouse the day's rows; one cheap read). Nodes behind one load balancer
# then share a site's quota, overshooting it by at most what they all take in this many seconds.
QUOTA_SYNC_INTERVAL_S = 10.0

# The event loop's thread and the database threads share the GIL. While the loop runs Python without
# a pause (a client flooding requests it answers from memory), a database call waits about one switch
# interval each time its thread takes the GIL back: when the thread wakes up for it and when it hands
# the result back. CPython's 5 ms made that ~10 ms per call, and /api/health (two calls at once) waited
# 100-400 ms during bench/attack.py's name floods; at 0.5 ms a call waits ~1 ms. The cost is a thread
# switch (a few µs) per 0.5 ms while two threads both want to run Python, about 1%.
GIL_SWITCH_INTERVAL_S: Final = 0.0005

# Security headers (docs/security.md). The dashboard loads only its own files and renders every value as
# text, so it runs under a policy with no inline script or style; strangers' strings cannot become code.
DASHBOARD_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
# On every response: no MIME sniffing (a JSON error is never run as a script), and no full URL sent
# to the external sites the dashboard links to.
COMMON_SECURITY_HEADERS = (("X-Content-Type-Options", "nosniff"), ("Referrer-Policy", "same-origin"))
# Everything but the embeddable routes: no framing (X-Frame-Options for browsers without CSP level 2).
FRAMED_SECURITY_HEADERS = (("Content-Security-Policy", DASHBOARD_CSP), ("X-Frame-Options", "DENY"))


def embeddable(path: str) -> bool:
    """The tracker script and the event routes, which other sites' pages load and call cross-origin."""
    return path.startswith(("/api/event/", "/scripts/")) or path in ("/script.js", *FOREIGN_EVENT_PATHS)


def security_headers(path: str | None) -> list[tuple[str, str]]:
    """The security headers for a response to `path` (None: a request too broken to have one)."""
    if path is not None and embeddable(path):
        return list(COMMON_SECURITY_HEADERS)
    return [*COMMON_SECURITY_HEADERS, *FRAMED_SECURITY_HEADERS]


SHARE_PAGE_PREFIX = "/share/"  # a share link's read-only dashboard: the dashboard's page, framed as its owner allows


def share_page_headers(frame_ancestors: tuple[str, ...]) -> list[tuple[str, str]]:
    """The dashboard's policy with the share's own `frame-ancestors` (docs/auth.md). X-Frame-Options
    cannot name origins, so it is sent (DENY) only when no origin may frame the page."""
    source = sharelinks.frame_ancestors_source(frame_ancestors)
    headers = [*COMMON_SECURITY_HEADERS, ("Content-Security-Policy", DASHBOARD_CSP.replace("'none'", source, 1))]
    return headers if frame_ancestors else [*headers, ("X-Frame-Options", "DENY")]


# Every URL the API answers, relative to /api, in matching order, with the access each needs
# (permissions.py): `App` checks it before the handler runs, and refuses to start on a route without one.
ROUTES: tuple[Route[Handler], ...] = (
    Route("GET", "/health", health.get_health, access=PUBLIC),
    Route("GET", "/event/ping", events.get_ping, access=PUBLIC),
    Route("POST", "/event/hit", events.post_hit, access=PUBLIC),
    Route("POST", "/event", foreign.post_plausible_event, access=PUBLIC),  # Plausible's event API (api/foreign.py)
    Route("POST", "/send", foreign.post_umami_send, access=PUBLIC),  # Umami's
    Route("GET", "/auth/config", auth_api.get_auth_config, access=PUBLIC),
    Route("POST", "/auth/login", auth_api.post_login, access=PUBLIC),
    Route("POST", "/auth/logout", auth_api.post_logout, access=PUBLIC),
    Route("GET", "/user", users.get_user, access=ACCOUNT),
    Route("PATCH", "/user", users.patch_user, access=ACCOUNT),
    Route("DELETE", "/user", users.delete_user, access=ACCOUNT),
    Route("GET", "/user/usage", users.get_user_usage, access=SERVER),
    # Ours (docs/auth.md): API keys and two-factor login, from a signed-in browser; accounts, for admins.
    Route("GET", "/user/keys", keys.list_keys, access=CREDENTIALS),
    Route("POST", "/user/keys", keys.post_key, access=CREDENTIALS),
    Route("DELETE", "/user/keys/{id}", keys.delete_key, access=CREDENTIALS),
    Route("POST", "/user/totp", twofactor.post_totp, access=CREDENTIALS),
    Route("POST", "/user/totp/confirm", twofactor.confirm_totp, access=CREDENTIALS),
    Route("DELETE", "/user/totp", twofactor.delete_totp, access=CREDENTIALS),
    Route("GET", "/users", members.list_users, access=SERVER),
    Route("POST", "/users", members.post_user, access=SERVER),
    Route("PATCH", "/users/{username}", members.patch_user, access=SERVER),
    Route("DELETE", "/users/{username}", members.delete_user, access=SERVER),
    Route("GET", "/settings/usage", settings_api.get_settings_usage, access=SERVER),
    Route("PATCH", "/settings/usage", settings_api.patch_settings_usage, access=SERVER),
    Route("GET", "/tenant/settings", settings_api.get_tenant_settings, access=SERVER),
    Route("PATCH", "/tenant/settings", settings_api.patch_tenant_settings, access=SERVER),
    Route("GET", "/websites", websites.list_websites, access=ACCOUNT),
    Route("POST", "/websites", websites.post_website, access=SERVER),  # adding a site is an admin's
    # Our addition; "sparklines" is no hostname. Each site in its query is checked as SITE_READ (access.py).
    Route("GET", "/websites/sparklines", websites.get_sparklines, access=ACCOUNT),
    Route("GET", "/websites/{hostname}", websites.get_website, access=SITE_READ),
    Route("PATCH", "/websites/{hostname}", websites.patch_website, access=SITE_MANAGE),
    Route("DELETE", "/websites/{hostname}", websites.delete_website, access=SITE_MANAGE),
    Route("POST", "/websites/{hostname}/import", upload.post_import, access=SITE_MANAGE),  # ours: another tool's export
    # Ours: share links to the site's dashboard (api/shares.py), and what they open, with no account.
    Route("GET", "/websites/{hostname}/shares", shares.list_shares, access=SITE_MANAGE),
    Route("POST", "/websites/{hostname}/shares", shares.post_share, access=SITE_MANAGE),
    Route("DELETE", "/websites/{hostname}/shares/{id}", shares.delete_share, access=SITE_MANAGE),
    Route("GET", "/share/{share}", shares.get_share, access=SHARE_READ),
    Route("POST", "/share/{share}/auth", shares.post_share_auth, access=PUBLIC),  # a share's password: its cookie
    *(
        Route("GET", f"/share/{{share}}/{name}", handler, access=SHARE_READ)
        for name, handler in shares.HANDLERS.items()
    ),
    Route("GET", "/drops", drops.get_drops, access=ACCOUNT),
    # Ours (docs/insights.md): a site's own settings, the notes on its chart, its raw data as a download.
    Route("GET", "/websites/{hostname}/settings", sitesettings.get_site_settings, access=SITE_READ),
    Route("PATCH", "/websites/{hostname}/settings", sitesettings.patch_site_settings, access=SITE_MANAGE),
    Route("GET", "/websites/{hostname}/annotations", notes.list_annotations, access=SITE_READ),
    Route("POST", "/websites/{hostname}/annotations", notes.post_annotation, access=SITE_MANAGE),
    Route("DELETE", "/websites/{hostname}/annotations/{id}", notes.delete_annotation, access=SITE_MANAGE),
    Route("GET", "/websites/{hostname}/export", export.get_export, access=SITE_READ),
    # Each answers CSV too when asked (api/tables.py).
    *(
        Route("GET", f"/website/{{hostname}}/{name}", tables.csv_capable(name, handler), access=SITE_READ)
        for name, handler in stats.HANDLERS.items()
    ),
    Route("GET", "/website/{hostname}/imported", imported.get_imported, access=SITE_READ),  # ours: imported days
    Route("GET", "/website/{hostname}/progress", stats.get_progress, access=SITE_READ),  # ours: background work
    Route("GET", "/website/{hostname}/live", live_api.get_live, access=SITE_READ),  # ours: pages open now
    # Ours (docs/insights.md, Goals): a site's goals and their conversions.
    Route("GET", "/websites/{hostname}/goals", goals_api.list_goals, access=SITE_READ),
    Route("POST", "/websites/{hostname}/goals", goals_api.post_goal, access=SITE_MANAGE),
    Route("DELETE", "/websites/{hostname}/goals/{id}", goals_api.delete_goal, access=SITE_MANAGE),
    Route("GET", "/website/{hostname}/goals", tables.csv_capable("goals", goals_api.get_goal_stats), access=SITE_READ),
)

# Distinct ping answers kept for the current second (`App._ping_now`): a tracker sends no If-Modified-Since
# or the Last-Modified of a day's first ping, so a second has a handful; a client sending made-up dates
# gets them made anew past this (a few hundred bytes each).
MAX_PING_ANSWERS: Final = 256

# The tracker's routes, which `App.answer_now` answers without the general machinery: method, path and the
# handler of the route whose steps it runs.
FAST_ROUTES: Final[tuple[tuple[str, str, Handler], ...]] = (
    ("GET", "/api/event/ping", events.get_ping),
    ("POST", "/api/event/hit", events.post_hit),
)

# A site that exists but is not the caller's answers `404 website not found`, as an unknown one does,
# except where upstream answered 401 (with the same message); kept there for upstream's clients.
HIDDEN_SITE_STATUS: dict[tuple[str, str], int] = {
    ("GET", "/websites/{hostname}"): 401,
    ("PATCH", "/websites/{hostname}"): 401,
}


# Profiling pages outside /api, as upstream mounts pprof; they answer 404 unless -profiler is set.
DEBUG_ROUTES: tuple[Route[Handler], ...] = (
    Route("GET", "/debug/profile", debug.get_profile, access=SERVER),
    Route("GET", "/debug/stacks", debug.get_stacks, access=SERVER),
)
DEBUG_PREFIX = "/debug/"


def check_access_declared(routes: tuple[Route[Handler], ...]) -> None:
    """Every route must say who may call it; a route without an `Access` is a bug caught at start-up."""
    for route in routes:
        if not isinstance(route.access, Access):
            raise ValueError(f"route {route.method} {route.path} declares no access (permissions.Access)")


class App:
    """Route requests, turn every exception into the one error shape, decorate and log responses."""

    def __init__(self, ctx: Context, routes: tuple[Route[Handler], ...] = ROUTES) -> None:
        check_access_declared(routes)
        check_access_declared(DEBUG_ROUTES)
        self.ctx = ctx
        self.router: Router[Handler] = Router(routes)
        self.debug_router: Router[Handler] = Router(DEBUG_ROUTES)
        self.assets = assets.Assets()
        self.access = AccessLog(ctx.log)
        # The fast path's routes (`answer_now`): path -> method, each only while the route table sends it
        # to the handler whose steps the fast path runs (a table without them has no fast path).
        self._fast: dict[str, str] = {}
        for method, path, handler in FAST_ROUTES:
            with contextlib.suppress(HTTPError):
                if self.router.lookup(method, path[len(API_PREFIX) :])[0].handler is handler:
                    self._fast[path] = method
        # `_finish_event` decorates them as `_decorate` does only while these hold for their paths.
        if not all(embeddable(path) and not cors.credentialed_route(path) for path in self._fast):
            self._fast.clear()
        # The server parses the tracker's request heads with `http/trackerhead.py` only along with the fast path.
        self.tracker_heads = bool(self._fast)
        # The fast path's answers made once (`_ping_now`, `_no_content`): this second's pings by
        # (If-Modified-Since, Origin or not), and a 204 without and with `Access-Control-Allow-Origin`.
        self._pings: dict[tuple[str | None, bool], Shared] = {}
        self._pings_second = -1
        self._no_contents = (
            Shared(204, headers=[*COMMON_SECURITY_HEADERS]),
            Shared(204, headers=[*COMMON_SECURITY_HEADERS, cors.ANY_ORIGIN]),
        )

    def body_limit(self, path: str) -> int:
        if path.startswith("/api/event/") or path in FOREIGN_EVENT_PATHS:
            return EVENT_BODY_LIMIT
        if path.startswith("/api/websites/") and path.endswith("/import"):
            return upload.IMPORT_BODY_LIMIT
        return DEFAULT_BODY_LIMIT

    async def handle(self, request: Request) -> Response:
        started = time.perf_counter()
        try:
            response = await self._dispatch(request)
        except Exception as exc:
            response = self._response_for(exc, request)
        return self._finish(request, response, started)

    def answer_now(self, request: Request) -> Response | Deferred | None:
        """The tracker's two routes, answered without the general machinery (`http/server.py` asks first).

        `GET /api/event/ping` and `POST /api/event/hit` run the same functions their routes' handlers
        do (`events.ping_now`; `events.hit_op`, `store` and `hit_stored`), and their errors, decoration
        and access log go through the same `_response_for` and `_finish` as `handle`'s; what they skip is
        the coroutines, the router, the access check (both are PUBLIC) and, for a hit that waits for its
        write, a Task and a future: the writer calls the `Deferred` back once the batch is done and the
        server writes the answer. None for every other request (other methods, HEAD, OPTIONS, other
        paths): `handle` answers it.
        """
        fast = self._fast.get(request.path)
        if fast is None or fast != request.method:
            return None
        started = time.perf_counter()
        try:
            if fast == "GET":
                return self._ping_now(request, started)
            op = events.hit_op(request, self.ctx)
            if op is None:
                return self._no_content(request, started)
            deferred = Deferred(self._hit_stored, request, started)
            events.store(self.ctx, op, deferred.done)
            return deferred
        except Exception as exc:
            return self._finish_event(request, self._response_for(exc, request), started)

    def _hit_stored(self, request: Request, started: float, outcome: Exception | None) -> Response:
        """The answer to a fast-path hit once its write is done (`answer_now`)."""
        if outcome is None:  # committed: `events.hit_stored`'s count and `_no_content`, inline (once per stored hit)
            self.ctx.hits_stored += 1
            response = self._no_contents[1 if "origin" in request.headers else 0]
            self.access.record_event(request.method, request.path, 204, time.perf_counter() - started)
            return response
        try:
            events.hit_stored(self.ctx, outcome)
        except Exception as exc:
            return self._finish_event(request, self._response_for(exc, request), started)
        return self._no_content(request, started)

    def _ping_now(self, request: Request, started: float) -> Response:
        """`events.ping_now`, decorated and logged as `_finish_event` does; the answers of one second are made
        once per `If-Modified-Since` and Origin or not (the answer depends on nothing else), and handed out as
        `Shared`, which the server frames once per second too."""
        events.client(request, self.ctx)
        headers = request.headers
        since = headers.get("if-modified-since")
        key = (since, "origin" in headers)
        now = time.time()
        if int(now) != self._pings_second or len(self._pings) >= MAX_PING_ANSWERS:
            self._pings.clear()
            self._pings_second = int(now)
        response = self._pings.get(key)
        if response is None:
            made = events.ping_response(since, now)
            if len(made.body) >= MIN_COMPRESS_BYTES:  # would depend on Accept-Encoding too (never: one digit)
                return self._finish_event(request, made, started)
            response = Shared(made.status, made.body, made.content_type, made.headers)
            self._decorate_event(request, response)
            self._pings[key] = response
        self.access.record_event(request.method, request.path, 200, time.perf_counter() - started)
        return response

    def _no_content(self, request: Request, started: float) -> Response:
        """`_finish_event` of a 204, one `Shared` answer for requests with an Origin and one for the others."""
        response = self._no_contents[1 if "origin" in request.headers else 0]
        self.access.record_event(request.method, request.path, 204, time.perf_counter() - started)
        return response

    def _finish_event(self, request: Request, response: Response, started: float) -> Response:
        """`_finish` for the fast path's answers (`_decorate_event`), logged."""
        self._decorate_event(request, response)
        self.access.record_event(request.method, request.path, response.status, time.perf_counter() - started)
        return response

    def _decorate_event(self, request: Request, response: Response) -> None:
        """`_decorate` for the fast path's answers, with what it makes of their routes worked out once: the
        embeddable routes' security headers (none of these answers brings its own CSP), `*` to a request with
        an Origin (no preflight, no credentialed route, so no X-Api-Commit either), and `maybe_gzip` only for a
        body it could compress (its first test)."""
        headers = response.headers
        headers += COMMON_SECURITY_HEADERS
        request_headers = request.headers
        if "origin" in request_headers:
            headers.append(cors.ANY_ORIGIN)
        if len(response.body) >= MIN_COMPRESS_BYTES:
            maybe_gzip(response, request_headers.get("accept-encoding", ""))

    def _finish(self, request: Request, response: Response, started: float) -> Response:
        """Decorate and log an answer: every response of `handle` and `answer_now` passes here."""
        self._decorate(request, response)
        self.access.record(request.method, request.path, response.status, time.perf_counter() - started)
        return response

    def _response_for(self, exc: Exception, request: Request) -> Response:
        """The answer for an exception a handler raised (the one place they become responses)."""
        if isinstance(exc, HTTPError):
            return self.error_response(exc, request)
        if isinstance(exc, QueryTimeout):
            self.ctx.log.warn("query time limit reached", method=request.method, path=request.path)
            return self.error_response(HTTPError(503, str(exc), [("Retry-After", QUERY_TIMEOUT_RETRY_S)]), request)
        if isinstance(exc, Unavailable):
            self.ctx.log.warn("database unavailable", method=request.method, path=request.path, error=str(exc))
            return self.error_response(HTTPError(503, str(exc), [("Retry-After", UNAVAILABLE_RETRY_S)]), request)
        if isinstance(exc, Unsupported):
            return self.error_response(HTTPError(501, str(exc)), request)
        if isinstance(exc, InvalidValue):
            return self.error_response(HTTPError(400, str(exc)), request)
        if is_disk_full(exc):  # ingestion logs it once per interval (writer.py); other writes are refused alike
            error = HTTPError(503, DISK_FULL_MESSAGE, [("Retry-After", DISK_FULL_RETRY_S)])
        else:
            self.ctx.log.error(
                "unhandled exception",
                method=request.method,
                path=request.path,
                error=repr(exc),
                traceback="".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
            )
            error = HTTPError(500, "internal server error")
        return self.error_response(error, request)

    async def _dispatch(self, request: Request) -> Response:
        path = request.path
        if cors.is_preflight(request):
            return cors.preflight(request, self.ctx.config.corsorigins)
        if path.startswith("/api/") or path == API_PREFIX:
            route, params = self.router.lookup(request.method, path[len(API_PREFIX) :])
            request.path_params = params
            await self._authorize(request, route)
            return await route.handler(request, self.ctx)
        if path.startswith(DEBUG_PREFIX):
            if not self.ctx.config.profiler:
                raise HTTPError(404, "not found")
            route, _ = self.debug_router.lookup(request.method, path)
            await self._authorize(request, route)
            return await route.handler(request, self.ctx)
        if path == "/script.js" and request.query_string:  # a site's own build: /script.js?site=<hostname>
            variant, extensions = sitesettings.script_for(self.ctx, request.query_value("site") or "")
            asset = self.assets.site_tracker(variant, extensions)
        else:
            asset = self.assets.lookup(path, self.ctx.script_variant)
        if asset is None:
            raise HTTPError(404, "file not found")
        response = assets.respond(asset, request)
        if path.startswith(SHARE_PAGE_PREFIX):
            response.headers += share_page_headers(await self._frame_ancestors(path[len(SHARE_PAGE_PREFIX) :]))
        return response

    async def _frame_ancestors(self, share_id: str) -> tuple[str, ...]:
        """The origins that may frame the page of a live share; none for any other path."""
        if not sharelinks.well_formed_id(share_id):
            return ()
        share = await self.ctx.meta.get_share(share_id)
        if share is None or (share.date_expires is not None and share.date_expires <= time.time()):
            return ()
        return share.frame_ancestors

    async def _authorize(self, request: Request, route: Route[Handler]) -> None:
        """The one access check (access.py), with the access the route declares."""
        rule = route.access
        assert isinstance(rule, Access)  # checked for every route in __init__
        if rule is PUBLIC:
            return
        hidden = HIDDEN_SITE_STATUS.get((route.method, route.path), 404)
        await access.authorize(request, rule, self.ctx.meta, demo=self.ctx.config.demo, hidden_status=hidden)

    def _decorate(self, request: Request, response: Response) -> None:
        if response.header("Content-Security-Policy") is None:  # a share's page brings its own (share_page_headers)
            response.headers += security_headers(request.path)
        cors.add_headers(request, response, self.ctx.config.corsorigins)
        if request.method in ("GET", "HEAD") and cors.credentialed_route(request.path):
            response.headers.append(("X-Api-Commit", COMMIT))
        if response.header("Content-Encoding") is None:
            maybe_gzip(response, request.headers.get("accept-encoding", ""))

    def error_response(self, error: HTTPError, request: Request | None) -> Response:
        """The one JSON error shape: `{"error": {"code": int, "message": str}}`."""
        headers = list(error.headers)
        if request is None:  # answered by the server itself, without `_decorate`
            self.ctx.log.debug("protocol error", status=error.status, detail=error.message)
            headers += security_headers(None)
        body = {"error": {"code": error.status, "message": error.message}}
        return json_response(body, error.status, headers)


def peer_network(trustedproxies: tuple[str, ...]) -> Callable[[str], str | None]:
    """The server's per-network key of a TCP peer: its /24 or /48, as ingestion's rate limit
    (`ipfilter.network_key`); None for a -trustedproxies proxy, whose connections carry many clients."""
    trusted = ipfilter.trusted_networks(trustedproxies)

    def network(peer: str) -> str | None:
        try:
            address = ipaddress.ip_address(peer)
        except ValueError:
            return None  # not an IP peer: nothing to group it by
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped  # a dual-stack listener's view of an IPv4 client
        if any(address in net for net in trusted):
            return None
        return ipfilter.network_key(str(address))

    return network


def open_stores(config: Config) -> tuple[MetaStore, AnalyticsStore]:
    """Both stores, by -appdb's and -analyticsdb's scheme (backends/), with migrations run."""
    meta_store = backends.open_meta(config.appdb)
    try:
        analytics_store = backends.open_analytics(config.analyticsdb)
    except BaseException:
        meta_store.close()
        raise
    return meta_store, analytics_store


def hits_batcher(analytics_store: AnalyticsStore, config: Config, log: Logger) -> Batcher[Op]:
    """The group commit of the tracker's hits into `analytics_store`, with its batch size and linger."""
    return Batcher(
        analytics_store.write_hits,
        name=analytics_store.location,
        log=log,
        max_ops=analytics_store.write_batch_ops or MAX_BATCH_OPS,
        linger_s=config.clickhouselinger / 1000 if analytics_store.write_lingers else 0.0,
        weigh=analytics_store.write_weight,
    )


def open_context(config: Config, log: Logger, *, primary: bool = True) -> Context:
    """Open both stores (running migrations), create the default admin, load runtime state; `primary`: start
    the background jobs and give the start-up warnings (not in a -workers child: its parent does)."""
    meta_store, analytics_store = open_stores(config)
    state = meta_store.start()
    if state.created_admin:
        log.info("created the default user", username=DEFAULT_ADMIN_USERNAME)
    for username in state.default_password_users if primary else ():
        log.warn(
            "this account's password is still the default; sign in and change it, or run `medama user password`",
            username=username,
            password=DEFAULT_ADMIN_PASSWORD,
        )
    ctx = Context(config=config, log=log, meta=meta_store, analytics=analytics_store)
    ctx.hostnames.update(state.hostnames)
    ctx.umami_ids = state.umami_ids
    ctx.site_settings = state.site_settings
    today_ms = int(time.time() * 1000) // events.DAY_MS * events.DAY_MS
    ctx.quota.seed(today_ms // events.DAY_MS, analytics_store.site_hits_on(today_ms))
    ctx.hits = hits_batcher(analytics_store, config, log)
    ctx.on_shutdown.append(functools.partial(events.stop, ctx))  # SIGTERM commits the hits still queued
    limit = workers.per_process_limit(config.ratelimit, config.workers)
    ctx.ratelimiter = RateLimiter(limit) if limit else None
    settings_api.apply_tenant(ctx, state.settings)
    settings_api.apply_engine_at_startup(ctx, state.settings)
    try:
        if primary:
            auth_api.start_session_purger(ctx)
    except RuntimeError:  # no running event loop (a caller outside `serve`): expired sessions still fail on read
        pass
    return ctx


async def serve(
    config: Config,
    log: Logger,
    *,
    stop: asyncio.Event | None = None,
    on_ready: Callable[[int], None] | None = None,
    child: workers.ParentLink | None = None,
    freeze_start_up: bool = False,
) -> None:
    """Run the server until `stop` is set (by default: SIGTERM or SIGINT), then shut down gracefully.

    `freeze_start_up` hides what start-up made from the cyclic garbage collector once the ingestion
    tables are loaded (the command line's process sets it; see `_freeze_start_up`).

    With -workers above 1 this process is the parent and starts the others (workers.py); `child` runs
    one of those on the sockets and pipes its parent passed down.
    """
    if child is None:
        log.debug("configuration", **as_dict(config))
    ctx = open_context(config, log, primary=child is None)
    app = App(ctx)
    server = HTTPServer(app, max_connections=config.maxconnections, network_of=peer_network(config.trustedproxies))
    _start_traffic_summary(ctx, app.access)
    await _start_meta_watch(ctx)
    _start_quota_sync(ctx)
    loop = asyncio.get_running_loop()
    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    signals = stop is None
    stop = stop if stop is not None else asyncio.Event()
    if child is not None:
        await child.attach(ctx, stop.set)
    supervisor: workers.Supervisor | None = None
    if signals:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
    try:
        front: https.Front | None = None
        if child is not None:
            # Warm before accepting: other children serve meanwhile, and a cold one would make the
            # connections it takes wait for the tables (~0.5 s) instead.
            await loop.run_in_executor(None, events.warm_up, ctx)
            if freeze_start_up:
                _freeze_start_up()
            context = _worker_tls(config, log, loop, signals)
            for fd in child.listeners:
                port = await server.listen(None, 0, sock=inherited_listener(fd), ssl_context=context)
            url = ""
        elif config.autossl or config.tlscert:
            from medama_core import https  # here: plain HTTP starts without tls, acme and their imports

            front = await https.start(config, log, server, signals=signals)
            port, url = front.https_port, front.url
        else:
            try:
                port = await server.listen(config.host or None, config.port, reuse_port=config.reuseport)
            except OSError as exc:
                from medama_core import https

                raise https.listen_error(exc, config.port, "the dashboard, API and tracker", config.host) from None
            url = f"http://{config.host or 'localhost'}:{port}/"
        if child is not None:
            child.ready()
        elif config.workers > 1:
            supervisor = workers.Supervisor(ctx, server.hand_over())  # the parent serves no requests itself
            supervisor.start()
            if front is not None:  # its plain port and ACME client stay here; the children serve HTTPS
                front.followers.append(supervisor.reload_children)
        if child is None:
            log.info(
                "medama is running",
                version=__version__,
                commit=COMMIT,
                loop=type(loop).__module__.split(".")[0],
                url=url,
                appdb=ctx.meta.location,
                analyticsdb=ctx.analytics.location,
                workers=config.workers,
            )
            stats.start_background(ctx)  # the rollups' catching up after an import, an upgrade or downtime
            warming = loop.run_in_executor(None, events.warm_up, ctx)
            warming.add_done_callback(functools.partial(_warmed_up, log, time.perf_counter(), freeze_start_up))
        if on_ready is not None:
            on_ready(port)
        await stop.wait()
        log.info("shutting down")
        await server.shutdown()  # with -reuseport and children: steers the port first while they still accept
        if supervisor is not None:
            await supervisor.stop()  # the children's last hits are written while they stop
        if front is not None:
            await front.close()
        for hook in ctx.on_shutdown:
            try:
                await hook()
            except Exception as exc:
                log.error("shutdown hook failed", error=repr(exc))
        if child is not None:
            log.info("worker stopped", worker=child.index, pid=os.getpid(), hits_stored=ctx.hits_stored)
            await child.close()
    finally:
        if signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
        await asyncio.to_thread(_close_databases, ctx)
        sys.setswitchinterval(switch_interval)
    log.info("stopped")


def _worker_tls(config: Config, log: Logger, loop: asyncio.AbstractEventLoop, signals: bool) -> ssl.SSLContext | None:
    """A -workers child's TLS context for its inherited HTTPS listener (None without TLS); SIGHUP, which
    its parent sends after a reload or a renewal, loads the files again."""
    if not (config.autossl or config.tlscert):
        return None
    from medama_core import https

    context = https.worker_context(config)
    if signals:
        loop.add_signal_handler(signal.SIGHUP, functools.partial(https.reload_into, context, config, log))
    return context


async def _start_meta_watch(ctx: Context) -> None:
    """Follow the websites (and their Umami ids) and tenant settings that other processes and nodes write."""
    found = await ctx.meta.changes_since(None)
    assert found is not None
    version = found[0]

    async def every_interval() -> None:
        nonlocal version
        while True:
            await asyncio.sleep(META_POLL_INTERVAL_S)
            try:
                changed = await ctx.meta.changes_since(version)
                if changed is not None:
                    await reload_site_settings(ctx)
            except Exception as exc:  # a busy or failing database now is no reason to stop looking
                ctx.log.warn("could not look for changes to the app database", error=repr(exc))
                continue
            if changed is not None:
                version, hostnames, settings = changed
                reload_meta(ctx, hostnames, settings)
                ctx.umami_ids = await ctx.meta.umami_ids()  # a site deleted elsewhere took its id along

    task = asyncio.get_running_loop().create_task(every_interval())

    async def stop() -> None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    ctx.on_shutdown.append(stop)


def _start_quota_sync(ctx: Context) -> None:
    """Catch each site's daily quota count up with the hits every node stored, every QUOTA_SYNC_INTERVAL_S."""

    async def every_interval() -> None:
        while True:
            await asyncio.sleep(QUOTA_SYNC_INTERVAL_S)
            today_ms = int(time.time() * 1000) // events.DAY_MS * events.DAY_MS
            try:
                stored = await ctx.analytics.site_hits(today_ms)
            except Exception as exc:  # the next round tries again; meanwhile the node counts its own hits
                ctx.log.warn("could not read the day's stored hits for the quota", error=repr(exc))
                continue
            ctx.quota.catch_up(today_ms // events.DAY_MS, stored)

    task = asyncio.get_running_loop().create_task(every_interval())

    async def stop() -> None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    ctx.on_shutdown.append(stop)


def reload_meta(ctx: Context, hostnames: list[str], settings: dict[str, str]) -> None:
    """Make the running server follow websites and tenant settings another process changed."""
    new = set(hostnames)
    added, removed = new - ctx.hostnames, ctx.hostnames - new
    ctx.hostnames.difference_update(removed)
    ctx.hostnames.update(added)
    settings_api.apply_tenant(ctx, settings)
    ctx.log.info("followed a change to the app database by another process", added=len(added), removed=len(removed))


def _start_traffic_summary(ctx: Context, access: AccessLog) -> None:
    """Summarise the requests every SUMMARY_INTERVAL_S, and once more at shutdown."""

    async def every_interval() -> None:
        while True:
            await asyncio.sleep(SUMMARY_INTERVAL_S)
            access.summarise(ctx.drops, ctx.hits_stored)

    task = asyncio.get_running_loop().create_task(every_interval())

    async def stop() -> None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        access.summarise(ctx.drops, ctx.hits_stored)

    ctx.on_shutdown.append(stop)


def _warmed_up(log: Logger, started: float, freeze: bool, done: asyncio.Future[None]) -> None:
    """Log the end of the start-up's table loading, and freeze what start-up made when `freeze`."""
    if done.cancelled():
        return
    if done.exception() is not None:
        log.warn("warming up the ingestion tables failed; the first hit loads them", error=repr(done.exception()))
        return
    if freeze:
        _freeze_start_up()
    log.debug(
        "ingestion tables loaded",
        duration_ms=round((time.perf_counter() - started) * 1000),
        frozen_objects=gc.get_freeze_count(),
    )


# Once the ingestion tables are loaded, the objects made so far (the UA rules, block lists, referrer,
# time zone and language tables, the modules: ~26,000-32,000 objects, some of them containers of many
# thousands of entries) are moved out of the cyclic collector's sight (gc.freeze). Left in, each full
# collection walked them all: measured once a second under load, 10-15 ms each with nothing collected,
# a pause of the event loop every time. Only the process's own start does it (`serve(freeze_start_up=
# True)` from the command line), not servers started inside another program such as the tests, whose
# earlier objects it would keep for good.
def _freeze_start_up() -> None:
    """Collect start-up's garbage once, then move every object left to the collector's permanent
    generation, which full collections no longer walk (see the note above)."""
    gc.collect()
    gc.freeze()


def _close_databases(ctx: Context) -> None:
    ctx.meta.close()
    ctx.analytics.close()
