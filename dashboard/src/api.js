// The one door to the API: same origin, JSON in and out, 401 sends the user to the login page.
import { navigate } from "./router.jsx";

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** Build a query string from an object or URLSearchParams; `undefined`/`null` values are left out. */
export function queryString(query) {
  if (!query) return "";
  const params = query instanceof URLSearchParams ? query : new URLSearchParams();
  if (!(query instanceof URLSearchParams)) {
    for (const [key, value] of Object.entries(query)) {
      if (value === undefined || value === null) continue;
      params.append(key, String(value));
    }
  }
  const text = params.toString();
  return text ? "?" + text : "";
}

const VERSION_KEY = "medama-version";

/**
 * The server names its build in X-Api-Commit. When it changes (the server was upgraded while this tab
 * was open), reload once so the new index.html brings the matching assets.
 */
function checkVersion(response) {
  const commit = response.headers.get("x-api-commit");
  if (!commit) return;
  try {
    const known = localStorage.getItem(VERSION_KEY);
    localStorage.setItem(VERSION_KEY, commit);
    if (known && known !== commit) location.reload();
  } catch {
    // storage blocked: keep running the loaded version
  }
}

export function loginPath() {
  const here = location.pathname + location.search;
  if (location.pathname === "/login") return here; // several calls failing at once: keep the first redirect
  return "/login" + (location.pathname === "/logout" ? "" : "?redirect=" + encodeURIComponent(here));
}

/**
 * Call `/api${path}`. Resolves to the parsed JSON body (or null for empty bodies);
 * rejects with ApiError(status, message). A 401 also navigates to /login?redirect=… unless `auth: false`.
 * `raw` (a File or Blob) is sent as the body itself, for uploads.
 */
export async function api(method, path, { query, body, raw, signal, auth = true } = {}) {
  const init = { method, signal, credentials: "same-origin", headers: { Accept: "application/json" } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  } else if (raw !== undefined) {
    init.headers["Content-Type"] = "application/octet-stream";
    init.body = raw;
  }
  let response;
  try {
    response = await fetch("/api" + path + queryString(query), init);
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, "The server could not be reached. Check your connection and try again.");
  }
  checkVersion(response);
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!response.ok) {
    const message = (data && data.error && data.error.message) || text || response.statusText;
    // A share link's 401 asks for its password (pages/share.jsx), never for an account.
    if (response.status === 401 && auth && !path.startsWith("/share/")) navigate(loginPath(), { replace: true });
    throw new ApiError(response.status, String(message).slice(0, 300));
  }
  return data;
}

export const get = (path, query, options) => api("GET", path, { ...options, query });

/**
 * The X-Medama-Partial header of GET `/api${path}` (null when absent or on an error): a filtered answer that
 * misses raw rows the site's retention deleted says from which day raw data is kept (api/retention.py).
 */
export async function partialNote(path, query, signal) {
  const init = { signal, credentials: "same-origin", headers: { Accept: "application/json" } };
  const response = await fetch("/api" + path + queryString(query), init);
  return response.ok ? response.headers.get("X-Medama-Partial") : null;
}

/** The file name a Content-Disposition header gives (`attachment; filename="x.csv"`), else `fallback`. */
export function dispositionName(header, fallback) {
  const match = /filename="([^"]+)"/.exec(header || "");
  return match ? match[1] : fallback;
}

/**
 * Download `/api${path}` as CSV (`format=csv`) and save it as a file: the whole answer, whatever the page shows.
 * Rejects with ApiError like `api`.
 */
export async function downloadCsv(path, query, fallbackName) {
  let response;
  try {
    response = await fetch("/api" + path + queryString({ ...query, format: "csv" }), {
      credentials: "same-origin",
      headers: { Accept: "text/csv" },
    });
  } catch {
    throw new ApiError(0, "The server could not be reached. Check your connection and try again.");
  }
  if (!response.ok) {
    let message = response.statusText;
    try {
      message = (await response.json()).error.message;
    } catch {
      // not the JSON error shape: keep the status text
    }
    if (response.status === 401) navigate(loginPath(), { replace: true });
    throw new ApiError(response.status, String(message).slice(0, 300));
  }
  const blob = await response.blob();
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = dispositionName(response.headers.get("content-disposition"), fallbackName);
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
}
