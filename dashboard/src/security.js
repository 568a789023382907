// Can this page keep the session cookie? The login advice, the SSH tunnel command and the unencrypted-page state.

const DEFAULT_PORTS = { "http:": 80, "https:": 443 };
const FIRST_UNPRIVILEGED_PORT = 1024; // a tunnel's local end below this would need root on the user's computer
const TUNNEL_FALLBACK_PORT = 8080; // the local port offered when the server's own port is privileged

/** The port this page was loaded from (the browser leaves `location.port` empty for the scheme's default). */
export function pagePort(loc) {
  return loc.port ? Number(loc.port) : DEFAULT_PORTS[loc.protocol] || 80;
}

/**
 * The SSH tunnel that makes the dashboard a secure context (http://localhost) without touching the server:
 * `{ command, url }` built from where this page was loaded.
 */
export function tunnel(loc) {
  const remote = pagePort(loc);
  const local = remote < FIRST_UNPRIVILEGED_PORT ? TUNNEL_FALLBACK_PORT : remote;
  const host = loc.hostname.replace(/^\[(.*)\]$/, "$1"); // IPv6 literals come in brackets; ssh wants them bare
  return { command: `ssh -L ${local}:localhost:${remote} user@${host}`, url: `http://localhost:${local}/` };
}

/**
 * What the login page and the header must say about this connection:
 * "ok" (HTTPS or localhost), "cookie-refused" (plain HTTP while the server's cookie is Secure: logging in cannot
 * work here) or "unencrypted" (plain HTTP and the server allows it: it works, but everything is readable on the way).
 * `secureCookie` is undefined while unknown; servers without GET /api/auth/config always sent Secure cookies.
 */
export function connection(secureContext, secureCookie) {
  if (secureContext) return "ok";
  return secureCookie === false ? "unencrypted" : "cookie-refused";
}
