"""HTTPS listeners: -autossl (ACME over port 80, background renewal) and -tlscert (reloaded on SIGHUP).

With either flag the app is served over TLS on -httpsport, and a small plain
HTTP app on -httpport answers ACME HTTP-01 challenges and sends everything
else to HTTPS with a 301. A renewed or reloaded certificate is loaded into
the live SSLContext: connections already open keep their session, new ones
get the new chain, and the process never restarts. With -workers the parent
keeps the plain port and the ACME client; each child serves HTTPS from the
same files (`worker_context`) and reloads them when the parent, after a
reload or a renewal, sends it SIGHUP (`Front.followers`).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import secrets
import signal
import ssl
import threading
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from medama_core import tls
from medama_core.config import Config, ConfigError, StartupError
from medama_core.http.errors import HTTPError
from medama_core.http.protocol import Request, Response, text_response
from medama_core.http.server import HTTPServer
from medama_core.log import Logger

CHALLENGE_PATH = "/.well-known/acme-challenge/"  # RFC 8555 §8.3
PLAIN_BODY_LIMIT = 64 * 1024  # bodies sent to port 80 are dropped; a tracker beacon (< 1 KiB) still gets its 301
RECHECK_S = 12 * 3600.0  # a waiting renewal task wakes at least this often (clock jumps, suspended VMs)
RETRY_MIN_S = 60.0  # after a failed renewal, never ask faster than this (even once the certificate expired)
RETRY_MAX_S = 3600.0  # nor wait longer: Let's Encrypt allows 5 failed validations per name per hour
RETRY_FRACTION = 0.1  # between those bounds, retry after a tenth of the time the current certificate has left
SELF_CHECK_TIMEOUT_S = 5.0  # the reachability probe is advice only; do not hold start-up for long
PLAIN_SHUTDOWN_GRACE_S = 1.0  # port 80 only answers redirects and challenges: nothing long to drain

HEALTH_PATH = "/api/health"  # answered on the plain port too, for container and load-balancer probes
_SAFE_PATH = "/:@!$&'()*+,;=-._~"  # RFC 3986 pchar and "/" stay as they are in the redirect target


Handle = Callable[[Request], Awaitable[Response]]


def redirect_location(host: str, https_port: int, path: str, query: str) -> str:
    """`https://host[:port]/path?query` for a request that arrived over plain HTTP."""
    authority = host if https_port == 443 else f"{host}:{https_port}"
    target = urllib.parse.quote(path, safe=_SAFE_PATH)
    return f"https://{authority}{target}" + (f"?{query}" if query else "")


def host_only(header: str) -> str:
    """The host part of a Host header (`a.com:80` → `a.com`, `[::1]:80` → `[::1]`); '' if it is unusable."""
    host = header.strip().lower()
    if host.startswith("["):
        end = host.find("]")
        return host[: end + 1] if end > 0 else ""
    host = host.partition(":")[0]
    return host if tls.valid_domain(host) or host.replace(".", "").isdigit() else ""


class PlainApp:
    """Port 80: ACME HTTP-01 answers, the health check, and a 301 to HTTPS for everything else."""

    def __init__(self, domain: str, https_port: int, health: Handle | None = None) -> None:
        self.domain = domain  # "" with -tlscert: redirect to whatever host the client asked for
        self.https_port = https_port
        self.health = health  # the main app, asked only for HEALTH_PATH: local probes need no certificate
        self.challenges: dict[str, str] = {}  # token → key authorization; written by the ACME thread

    async def handle(self, request: Request) -> Response:
        if request.path == HEALTH_PATH and self.health is not None:
            return await self.health(request)
        if request.path.startswith(CHALLENGE_PATH):
            answer = self.challenges.get(request.path[len(CHALLENGE_PATH) :])
            if answer is None:
                return text_response("no such ACME challenge\n", 404)
            return text_response(answer)
        host = self.domain or host_only(request.headers.get("host", ""))
        if not host:
            return text_response("this server answers over HTTPS; send a Host header\n", 400)
        location = redirect_location(host, self.https_port, request.path, request.query_string)
        return Response(301, b"", None, [("Location", location)])

    def error_response(self, error: HTTPError, request: Request | None) -> Response:
        return text_response(f"{error.message}\n", error.status)

    def body_limit(self, path: str) -> int:
        return PLAIN_BODY_LIMIT


def listen_error(exc: OSError, port: int, purpose: str, host: str = "") -> StartupError:
    """Turn a failed bind into advice a self-hoster can act on."""
    where = f"cannot listen on {host}:{port} ({purpose})" if host else f"cannot listen on port {port} ({purpose})"
    if exc.errno is not None and exc.errno < 0:  # socket.gaierror: getaddrinfo's EAI_* codes are negative
        return StartupError(
            f"{where}: {host!r} is neither an IP address nor a name this machine can resolve; give -host one "
            "of this machine's addresses (127.0.0.1 for this machine only), or leave -host out for all of them"
        )
    if exc.errno == errno.EADDRNOTAVAIL:
        return StartupError(
            f"{where}: {host} is not an address of this machine (see `ip address`); give -host one of its "
            "addresses, or leave -host out to listen on all of them"
        )
    if exc.errno == errno.EACCES:
        return StartupError(
            f"{where}: permission denied. Ports below 1024 need CAP_NET_BIND_SERVICE: use the systemd unit "
            "in deploy/ (AmbientCapabilities=CAP_NET_BIND_SERVICE), or grant it to the interpreter with "
            '`sudo setcap cap_net_bind_service=+ep "$(readlink -f "$(command -v python3)")"` (every script that '
            "python3 runs then has it), or run on ports >= 1024 (-httpport/-httpsport) behind a port forward"
        )
    if exc.errno == errno.EADDRINUSE:
        return StartupError(
            f"{where}: another program already uses it (a web server such as nginx or Caddy, or another "
            f"medama?); `sudo ss -ltnp 'sport = :{port}'` shows which. Stop it, or choose another port"
        )
    return StartupError(f"{where}: {exc.strerror or exc}")


async def _listen(
    server: HTTPServer,
    config: Config,
    port: int,
    purpose: str,
    context: ssl.SSLContext | None = None,
) -> int:
    try:
        return await server.listen(config.host or None, port, ssl_context=context, reuse_port=config.reuseport)
    except OSError as exc:
        raise listen_error(exc, port, purpose, config.host) from None


def _require_acme() -> None:
    """Import the ACME client now, so a missing `cryptography` is a clear start-up error."""
    try:
        from medama_core import acme  # noqa: F401
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] == "cryptography":
            raise StartupError(tls.MISSING_CRYPTOGRAPHY) from None
        raise


def self_check(domain: str, http_port: int, token: str, expected: str) -> str | None:
    """Fetch our own challenge URL by name; None when it came back to us, else what went wrong.

    Advice only: a router without NAT loopback fails this although the CA,
    which asks from outside, would succeed.
    """
    import urllib.error  # here, not at the top: urllib.request costs ~13 ms at every start-up
    import urllib.request

    authority = domain if http_port == 80 else f"{domain}:{http_port}"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # no proxy: we want this machine
    try:
        with opener.open(f"http://{authority}{CHALLENGE_PATH}{token}", timeout=SELF_CHECK_TIMEOUT_S) as response:
            body = response.read(len(expected) + 1).decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        exc.close()
        return f"http://{authority}/ answered HTTP {exc.code}: the name points to another server"
    except (urllib.error.URLError, OSError) as exc:
        return f"could not fetch http://{authority}/ by name: {getattr(exc, 'reason', exc)}"
    if body != expected:
        return f"http://{authority}/ is answered by another server (not this one)"
    return None


@dataclass
class AutoCert:
    """One domain's ACME certificate: obtained at start-up if needed, renewed before it expires."""

    config: Config
    log: Logger
    plain: PlainApp
    store: tls.CertStore
    stop: threading.Event = field(default_factory=threading.Event)
    current: tls.Stored | None = None

    @property
    def domain(self) -> str:
        return self.config.autossl

    def usable(self, stored: tls.Stored | None, now: float) -> bool:
        """Issued by the configured CA for this domain and not expired (if due, the renewal task runs at once)."""
        return (
            stored is not None
            and stored.directory == self.config.acmedirectory
            and self.domain in stored.validity.names
            and now < stored.validity.not_after
        )

    async def startup(self) -> tls.Stored:
        """The certificate to serve first: the stored one when usable, else a new one (blocking start-up)."""
        stored = await asyncio.to_thread(self.store.load, self.domain)
        if stored is not None and self.usable(stored, time.time()):
            self.log.info("using stored certificate", domain=self.domain, **_describe(stored))
            self.current = stored
            return stored
        token, probe = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
        self.plain.challenges[token] = probe
        problem = await asyncio.to_thread(self_check, self.domain, self.config.httpport, token, probe)
        self.plain.challenges.pop(token, None)
        if problem is not None:
            self.log.warn("reachability self-check failed; asking the CA anyway", domain=self.domain, problem=problem)
        self.log.info("obtaining certificate", domain=self.domain, directory=self.config.acmedirectory)
        try:
            self.current = await self.obtain()
        except Exception as exc:
            raise StartupError(f"could not obtain a certificate for {self.domain}: {self.explain(exc)}") from None
        self.log.info("obtained certificate", domain=self.domain, **_describe(self.current))
        return self.current

    async def obtain(self) -> tls.Stored:
        return await asyncio.to_thread(self._obtain_blocking)

    def _obtain_blocking(self) -> tls.Stored:
        from medama_core import acme

        key_pem = self.store.read_account_key()
        if key_pem is None:
            key = acme.generate_key()
            self.store.write_account_key(acme.key_to_pem(key))
        else:
            key = acme.key_from_pem(key_pem)
        context = ssl.create_default_context(cafile=self.config.acmeca or None)
        published: list[str] = []

        def publish(token: str, answer: str) -> None:
            published.append(token)
            self.plain.challenges[token] = answer  # one dict store: atomic for the loop thread reading it

        try:
            cert_key, chain = acme.obtain(
                self.domain,
                self.config.autosslemail,
                self.config.acmedirectory,
                key,
                publish,
                context=context,
                stop=self.stop,
            )
        finally:
            for token in published:
                self.plain.challenges.pop(token, None)
        return self.store.save(self.domain, cert_key, chain, self.config.acmedirectory)

    def explain(self, exc: BaseException) -> str:
        from medama_core import acme

        if isinstance(exc, acme.AcmeError):
            return f"{exc} ({self.config.acmedirectory}); hint: {acme.hint(exc, self.domain, self.config.httpport)}"
        return f"{exc!r} ({self.config.acmedirectory})"

    async def renew_forever(self, context: ssl.SSLContext, renewed_hook: Callable[[], None] | None = None) -> None:
        """Sleep until the renewal date, renew, load the new chain into `context` (then call `renewed_hook`);
        retry on failure."""
        while self.current is not None:
            due = self.current.validity.renew_at()
            now = time.time()
            if now < due:
                await asyncio.sleep(min(due - now, RECHECK_S))
                continue
            try:
                renewed = await self._renew()
                tls.load(context, renewed.path)
            except Exception as exc:
                left = self.current.validity.not_after - time.time()
                retry = min(RETRY_MAX_S, max(RETRY_MIN_S, left * RETRY_FRACTION))
                self.log.error("certificate renewal failed", domain=self.domain, error=self.explain(exc), retry_s=retry)
                await asyncio.sleep(retry)
                continue
            self.current = renewed
            self.log.info("renewed certificate", domain=self.domain, **_describe(renewed))
            if renewed_hook is not None:
                renewed_hook()

    async def _renew(self) -> tls.Stored:
        # Another process on the same data directory (an upgrade in progress) may have renewed already.
        on_disk = await asyncio.to_thread(self.store.load, self.domain)
        if on_disk is not None and self.usable(on_disk, time.time()) and time.time() < on_disk.validity.renew_at():
            return on_disk
        return await self.obtain()


def _describe(stored: tls.Stored) -> dict[str, object]:
    validity = stored.validity
    return {
        "serial": f"{validity.serial:x}",
        "not_after": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(validity.not_after)),
        "renew_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(validity.renew_at())),
        "file": str(stored.path),
    }


@dataclass
class Front:
    """What HTTPS mode started: the live context, the plain listener and the renewal task."""

    context: ssl.SSLContext
    https_port: int
    http_port: int | None
    url: str
    plain: HTTPServer
    config: Config
    log: Logger
    auto: AutoCert | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    signals: bool = False
    # Told after the certificate files changed and loaded well here (a SIGHUP reload, a renewal): the
    # -workers children serving the same files (workers.Supervisor.reload_children).
    followers: list[Callable[[], None]] = field(default_factory=list)

    def reload(self) -> None:
        """SIGHUP: load the certificate files again, and tell the followers if they loaded."""
        if reload_into(self.context, self.config, self.log):
            self.changed()

    def changed(self) -> None:
        for follower in self.followers:
            follower()

    async def close(self) -> None:
        """Stop renewing and close the plain listener; the app server is shut down by its owner."""
        if self.signals:
            asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
        if self.auto is not None:
            self.auto.stop.set()
        for task in self.tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.plain.shutdown(PLAIN_SHUTDOWN_GRACE_S)


async def start(config: Config, log: Logger, server: HTTPServer, *, signals: bool) -> Front:
    """Listen on the HTTPS port with `server`, and on the plain port with a redirecting app."""
    if config.autossl and config.tlscert:
        raise ConfigError("use -autossl or -tlscert, not both")
    plain_app = PlainApp(config.autossl, config.httpsport, server.app.handle)
    plain = HTTPServer(plain_app, network_of=server.network_of)  # the same per-network caps as the app's
    auto: AutoCert | None = None
    try:
        if config.autossl:
            auto, context, http_port = await _start_auto(config, log, plain, plain_app)
        else:
            context = _context(*certificate_files(config))
            http_port = None
            if config.httpport:
                http_port = await _listen(plain, config, config.httpport, "redirects to HTTPS")
        https_port = await _listen(server, config, config.httpsport, "HTTPS", context)
    except BaseException:
        if auto is not None:
            auto.stop.set()
        await plain.shutdown(0)
        raise
    plain_app.https_port = https_port
    name = config.autossl or config.host or "localhost"
    url = redirect_location(name, https_port, "/", "")
    front = Front(context, https_port, http_port, url, plain, config, log, auto)
    if auto is not None:
        front.tasks.append(asyncio.get_running_loop().create_task(auto.renew_forever(context, front.changed)))
    if signals:
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, front.reload)
        front.signals = True
    return front


def certificate_files(config: Config) -> tuple[str, str]:
    """The chain and key files the HTTPS port serves: -tlscert's, or the bundle -autossl keeps up to date."""
    if config.autossl:
        store = tls.CertStore(tls.data_dir(config.datadir, config.appdb))
        return str(store.bundle_path(config.autossl)), ""
    return config.tlscert, config.tlskey


def reload_into(context: ssl.SSLContext, config: Config, log: Logger) -> bool:
    """Load the certificate files into `context` again (SIGHUP); a file that does not load is logged and
    the previous certificate stays in service (False)."""
    certfile, keyfile = certificate_files(config)
    try:
        tls.load(context, certfile, keyfile or None)
    except tls.CertificateError as exc:
        log.error("certificate reload failed; still serving the previous one", error=str(exc))
        return False
    log.info("reloaded certificate", file=certfile)
    return True


def worker_context(config: Config) -> ssl.SSLContext:
    """A -workers child's context for the listener its parent handed down: the same files the parent
    serves (the parent obtained an -autossl certificate before it started any child)."""
    return _context(*certificate_files(config))


async def _start_auto(
    config: Config, log: Logger, plain: HTTPServer, plain_app: PlainApp
) -> tuple[AutoCert, ssl.SSLContext, int]:
    domain = config.autossl
    if not tls.valid_domain(domain):
        raise ConfigError(f"-autossl {domain!r} is not a domain name (lower-case, no wildcard, no IP address)")
    if not config.httpport:
        raise ConfigError("-autossl needs a plain HTTP port for ACME challenges (-httpport, normally 80)")
    _require_acme()
    http_port = await _listen(plain, config, config.httpport, "ACME challenges and redirects to HTTPS")
    store = tls.CertStore(tls.data_dir(config.datadir, config.appdb))
    auto = AutoCert(config, log, plain_app, store)
    stored = await auto.startup()
    return auto, _context(str(stored.path), ""), http_port


def _context(certfile: str, keyfile: str) -> ssl.SSLContext:
    try:
        return tls.server_context(certfile, keyfile or None)
    except tls.CertificateError as exc:
        raise StartupError(str(exc)) from None
