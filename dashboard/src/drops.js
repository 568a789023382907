// Dropped hits (GET /api/drops): each reason in plain words, unknown hostnames worth adding, one site's rows.

/** Reason → [short title, what happened]. */
export const REASONS = {
  unknown_site: ["Unknown site", "the page's hostname is not one of your websites"],
  bot: ["Bot", "the browser said it is a bot, crawler or preview fetcher"],
  spam_referrer: ["Spam referrer", "the visit came from a site on the referrer spam list"],
  blocked_ip: ["Blocked address", "the visitor's IP address is on a block list (Settings → Spam)"],
  rate_limited: ["Rate limited", "too many hits came from one network within a minute"],
  too_many_unknowns: ["Unrecognised browser", "neither the browser nor the system could be recognised, which is typical of bots"],
  bad_payload: ["Unreadable hit", "the request was not a hit the tracker sends (bad JSON or missing fields)"],
  quota: ["Over the daily quota", "the site had already received its daily number of hits"],
};

export function reasonText(reason) {
  const known = REASONS[reason];
  return known ? { title: known[0], detail: known[1] } : { title: reason || "Unknown reason", detail: "" };
}

const registeredSet = (websites) => new Set((websites || []).map((w) => String(w.hostname).toLowerCase()));

/** Hostnames dropped as unknown sites that are not registered, with their hits, most hits first. */
export function unknownSites(rows, websites) {
  const known = registeredSet(websites);
  const hits = new Map();
  for (const row of rows || []) {
    const host = String(row.hostname || "").toLowerCase();
    if (row.reason !== "unknown_site" || !host || known.has(host)) continue;
    hits.set(host, (hits.get(host) || 0) + (Number(row.hits) || 0));
  }
  return [...hits].map(([hostname, n]) => ({ hostname, hits: n })).sort((a, b) => b.hits - a.hits || a.hostname.localeCompare(b.hostname));
}

/** The rows a site's settings show: its own, plus unknown-site rows of hostnames nobody registered (newest first). */
export function siteDrops(rows, hostname, websites) {
  const known = registeredSet(websites);
  const site = String(hostname).toLowerCase();
  return (rows || [])
    .filter((row) => {
      const host = String(row.hostname || "").toLowerCase();
      return host === site || (row.reason === "unknown_site" && !known.has(host));
    })
    .sort((a, b) => String(b.date).localeCompare(String(a.date)) || b.hits - a.hits);
}
