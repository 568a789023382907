"""Composition root: the route table, the one place errors become responses, and `serve`."""

from __future__ import annotations

import asyncio
import functools
import signal
import time
import traceback
from collections.abc import Callable

from medama_core import COMMIT, __version__, assets, https, passwords
from medama_core.api import Context, Handler, debug, events, foreign, health, imported, stats, upload, users, websites
from medama_core.api import auth as auth_api
from medama_core.api import settings as settings_api
from medama_core.config import Config, as_dict
from medama_core.http import cors
from medama_core.http.compress import maybe_gzip
from medama_core.http.errors import HTTPError
from medama_core.http.protocol import Request, Response, json_response
from medama_core.http.router import Route, Router
from medama_core.http.server import HTTPServer
from medama_core.log import Logger
from medama_core.ratelimit import RateLimiter
from medama_core.store import analytics, hits, meta
from medama_core.store.db import Database, QueryTimeout, is_disk_full
from medama_core.writer import Batcher

API_PREFIX = "/api"
EVENT_BODY_LIMIT = 64 * 1024  # a tracker beacon is < 1 KiB; 64 KiB leaves room for big custom properties
FOREIGN_EVENT_PATHS = ("/api/event", "/api/send")  # Plausible's and Umami's event APIs: beacons too
DEFAULT_BODY_LIMIT = 1024 * 1024  # the largest non-event body (settings with a long IP list) is far below this
QUERY_TIMEOUT_RETRY_S = "5"  # a timed-out stats query freed its reader; a retry soon is fine, at once is not
DISK_FULL_RETRY_S = "60"  # freeing disk space takes a person; retrying sooner only adds load
DISK_FULL_MESSAGE = "the server's disk is full; nothing was changed, try again later"

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


# Every URL the API answers, relative to /api, in matching order.
ROUTES: tuple[Route[Handler], ...] = (
    Route("GET", "/health", health.get_health),
    Route("GET", "/event/ping", events.get_ping),
    Route("POST", "/event/hit", events.post_hit),
    Route("POST", "/event", foreign.post_plausible_event),  # Plausible's event API (api/foreign.py)
    Route("POST", "/send", foreign.post_umami_send),  # Umami's
    Route("POST", "/auth/login", auth_api.post_login),
    Route("POST", "/auth/logout", auth_api.post_logout),
    Route("GET", "/user", users.get_user),
    Route("PATCH", "/user", users.patch_user),
    Route("DELETE", "/user", users.delete_user),
    Route("GET", "/user/usage", users.get_user_usage),
    Route("GET", "/settings/usage", settings_api.get_settings_usage),
    Route("PATCH", "/settings/usage", settings_api.patch_settings_usage),
    Route("GET", "/tenant/settings", settings_api.get_tenant_settings),
    Route("PATCH", "/tenant/settings", settings_api.patch_tenant_settings),
    Route("GET", "/websites", websites.list_websites),
    Route("POST", "/websites", websites.post_website),
    Route("GET", "/websites/{hostname}", websites.get_website),
    Route("PATCH", "/websites/{hostname}", websites.patch_website),
    Route("DELETE", "/websites/{hostname}", websites.delete_website),
    Route("POST", "/websites/{hostname}/import", upload.post_import),  # ours: another tool's export
    *(Route("GET", f"/website/{{hostname}}/{name}", handler) for name, handler in stats.HANDLERS.items()),
    Route("GET", "/website/{hostname}/imported", imported.get_imported),  # ours: days of imported totals
)


# Profiling pages outside /api, as upstream mounts pprof; they answer 404 unless -profiler is set.
DEBUG_ROUTES: tuple[Route[Handler], ...] = (
    Route("GET", "/debug/profile", debug.get_profile),
    Route("GET", "/debug/stacks", debug.get_stacks),
)


class App:
    """Route requests, turn every exception into the one error shape, decorate and log responses."""

    def __init__(self, ctx: Context, routes: tuple[Route[Handler], ...] = ROUTES) -> None:
        self.ctx = ctx
        self.router: Router[Handler] = Router(routes)
        self.debug_router: Router[Handler] = Router(DEBUG_ROUTES)
        self.assets = assets.Assets()

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
        except HTTPError as exc:
            response = self.error_response(exc, request)
        except QueryTimeout as exc:
            self.ctx.log.warn("query time limit reached", method=request.method, path=request.path)
            response = self.error_response(HTTPError(503, str(exc), [("Retry-After", QUERY_TIMEOUT_RETRY_S)]), request)
        except Exception as exc:
            if is_disk_full(exc):  # ingestion logs it once per interval (writer.py); other writes are refused alike
                error = HTTPError(503, DISK_FULL_MESSAGE, [("Retry-After", DISK_FULL_RETRY_S)])
            else:
                self.ctx.log.error(
                    "unhandled exception",
                    method=request.method,
                    path=request.path,
                    error=repr(exc),
                    traceback=traceback.format_exc(),
                )
                error = HTTPError(500, "internal server error")
            response = self.error_response(error, request)
        self._decorate(request, response)
        log = self.ctx.log
        if log.threshold <= 20:
            log.info(
                "request",
                method=request.method,
                path=request.path,
                status=response.status,
                duration_ms=round((time.perf_counter() - started) * 1000, 3),
            )
        return response

    async def _dispatch(self, request: Request) -> Response:
        path = request.path
        if cors.is_preflight(request):
            return cors.preflight(request, self.ctx.config.corsorigins)
        if path.startswith("/api/") or path == API_PREFIX:
            handler, params = self.router.match(request.method, path[len(API_PREFIX) :])
            request.path_params = params
            return await handler(request, self.ctx)
        if path.startswith("/debug/"):
            handler, _ = self.debug_router.match(request.method, path)
            return await handler(request, self.ctx)
        asset = self.assets.lookup(path, self.ctx.script_variant)
        if asset is None:
            raise HTTPError(404, "file not found")
        return assets.respond(asset, request)

    def _decorate(self, request: Request, response: Response) -> None:
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


def open_context(config: Config, log: Logger) -> Context:
    """Open both databases (running migrations), create the default admin, load runtime state."""
    meta_db = Database(config.appdb, meta.MIGRATIONS)
    analytics_db = Database(config.analyticsdb, analytics.MIGRATIONS)
    conn = meta_db.writer_conn
    if meta.count_users(conn) == 0:
        hashed = passwords.hash_password(meta.DEFAULT_ADMIN_PASSWORD)
        meta.insert_user(conn, meta.new_user_id(), meta.DEFAULT_ADMIN_USERNAME, hashed, int(time.time()))
        log.warn("created default user", username=meta.DEFAULT_ADMIN_USERNAME, hint="change its password after login")
    settings = meta.get_settings(conn)
    ctx = Context(config=config, log=log, meta=meta_db, analytics=analytics_db)
    ctx.hostnames.update(meta.list_hostnames(conn))
    ctx.umami_ids = meta.umami_ids(conn)
    ctx.hits = Batcher(analytics_db, hits.apply_batch, log=log)
    ctx.on_shutdown.append(functools.partial(events.stop, ctx))  # SIGTERM commits the hits still queued
    ctx.ratelimiter = RateLimiter(config.ratelimit) if config.ratelimit else None
    settings_api.apply_tenant(ctx, settings)
    settings_api.apply_engine_at_startup(ctx, settings)
    try:
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
) -> None:
    """Run the server until `stop` is set (by default: SIGTERM or SIGINT), then shut down gracefully."""
    log.debug("configuration", **as_dict(config))
    ctx = open_context(config, log)
    server = HTTPServer(App(ctx), max_connections=config.maxconnections)
    loop = asyncio.get_running_loop()
    signals = stop is None
    stop = stop if stop is not None else asyncio.Event()
    if signals:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
    try:
        front: https.Front | None = None
        if config.autossl or config.tlscert:
            front = await https.start(config, log, server, signals=signals)
            port, url = front.https_port, front.url
        else:
            port = await server.listen(config.host or None, config.port, reuse_port=config.reuseport)
            url = f"http://{config.host or 'localhost'}:{port}/"
        log.info(
            "medama is running",
            version=__version__,
            commit=COMMIT,
            loop=type(loop).__module__.split(".")[0],
            url=url,
        )
        warming = loop.run_in_executor(None, events.warm_up, ctx)
        warming.add_done_callback(functools.partial(_log_warm_up, log, time.perf_counter()))
        if on_ready is not None:
            on_ready(port)
        await stop.wait()
        log.info("shutting down")
        await server.shutdown()
        if front is not None:
            await front.close()
        for hook in ctx.on_shutdown:
            try:
                await hook()
            except Exception as exc:
                log.error("shutdown hook failed", error=repr(exc))
    finally:
        if signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
        await asyncio.to_thread(_close_databases, ctx)
    log.info("stopped")


def _log_warm_up(log: Logger, started: float, done: asyncio.Future[None]) -> None:
    if done.cancelled():
        return
    if done.exception() is not None:
        log.warn("warming up the ingestion tables failed; the first hit loads them", error=repr(done.exception()))
    else:
        log.debug("ingestion tables loaded", duration_ms=round((time.perf_counter() - started) * 1000))


def _close_databases(ctx: Context) -> None:
    ctx.meta.close()
    ctx.analytics.close()
