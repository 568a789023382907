// Whose numbers the site dashboard shows: the site's own API, or a share link's read-only one (/share/<id>).
// Set by the share page before it renders the dashboard; the dashboard's paths and links follow it.
let share = null; // GET /api/share/<id>'s answer while a share link's dashboard is shown

export function setShare(next) {
  share = next;
}

export function currentShare() {
  return share;
}

/** The API path of a site's `name` stats (summary, pages, ...): its own, or the share link's. */
export function statsPath(hostname, name) {
  return share ? `/share/${encodeURIComponent(share.id)}/${name}` : `/website/${encodeURIComponent(hostname)}/${name}`;
}

/** The dashboard page of a site: `/<hostname>`, or the share link's `/share/<id>`. */
export function pageBase(hostname) {
  return share ? `/share/${encodeURIComponent(share.id)}` : `/${encodeURIComponent(hostname)}`;
}

/** Whether the dashboard shows the `name` list (a share may be limited to some). */
export function shows(name) {
  return !share || share.panels.includes(name);
}
