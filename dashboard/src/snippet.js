// The tracking snippet: where visitors' browsers fetch the tracker from (the public URL, else this page's origin).

/** The origin visitors reach this server at: the tenant's `public_url` when set, else the dashboard's own. */
export function trackerBase(publicUrl, origin) {
  return typeof publicUrl === "string" && publicUrl ? publicUrl.replace(/\/+$/, "") : origin;
}

const LOOPBACK = /^(localhost|.+\.localhost|127(\.\d{1,3}){3}|\[::1\])$/i; // names that always mean "this computer"

/**
 * What may stop visitors' browsers from loading a tracker at `base`: "loopback" (localhost: only this computer
 * reaches it, as when the dashboard is opened through an SSH tunnel), "plain-http" (an http:// script is refused on
 * https:// pages as mixed content; loopback names are exempt) or "" (nothing).
 */
export function snippetProblem(base) {
  let url;
  try {
    url = new URL(base);
  } catch {
    return "";
  }
  if (LOOPBACK.test(url.hostname)) return "loopback";
  return url.protocol === "http:" ? "plain-http" : "";
}

/** The tag for the page's <head>; with a hostname, the site's own build (its settings choose the features). */
export function snippetFor(base, hostname = "") {
  const site = hostname ? `?site=${encodeURIComponent(hostname)}` : "";
  return `<script defer src="${base}/script.js${site}"></script>`;
}

/**
 * A typed public URL → `{ value }` to send (`""` clears it; a trailing / is dropped), or `{ error }`.
 * The server checks it too (CONTRACT 7); this only catches what can be said before sending.
 */
export function checkPublicUrl(text) {
  const value = text.trim().replace(/\/+$/, "");
  if (!value) return { value: "" };
  let url;
  try {
    url = new URL(value);
  } catch {
    return { error: "Enter a full address such as https://stats.example.com." };
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return { error: "The address starts with https:// (or http://)." };
  if (url.search || url.hash || value.includes("?") || value.includes("#")) return { error: "The address has no ? or # part." };
  if (url.username || url.password) return { error: "The address has no user name or password in it." };
  return { value };
}
