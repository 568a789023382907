// "My websites": cards with last-24-hour visitors and a sparkline, a page at a time, searchable; add a website.
import { useMemo, useState } from "preact/hooks";
import { api, ApiError } from "../api.js";
import { Dialog, Empty, ErrorView, Loading, Sparkline } from "../components.jsx";
import { formatExact } from "../format.js";
import { useApi, useTitle } from "../hooks.js";
import { rfc3339 } from "../period.js";
import { Link, navigate, useLocation } from "../router.jsx";
import { isAdmin, useCurrentUser } from "../session.js";

// Cards per page: eight rows of three on a laptop. Their sparklines come in one request, which the
// server allows up to 50 sites (SPARKLINES_MAX_SITES). With more sites than this, a search box appears.
export const PAGE_SIZE = 24;

const HOSTNAME = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;

/** What the user typed → a bare hostname (pasted URLs are trimmed to their host), or an error text. */
export function cleanHostname(input) {
  let text = input.trim().toLowerCase();
  if (text.includes("://")) {
    try {
      text = new URL(text).hostname;
    } catch {
      return { error: "That is not a valid address." };
    }
  }
  text = text.replace(/\/.*$/, "").replace(/\.$/, "");
  if (!text) return { error: "Enter the hostname of your website, such as example.com." };
  if (!HOSTNAME.test(text)) {
    return { error: "Use a hostname such as example.com or blog.example.com: letters, digits, hyphens and dots, no port." };
  }
  if (text !== "localhost" && !text.includes(".")) return { error: "Use a full domain such as example.com (or localhost)." };
  return { hostname: text };
}

function last24Hours() {
  const now = new Date();
  const next = new Date(now.getFullYear(), now.getMonth(), now.getDate(), now.getHours() + 1);
  return { start: rfc3339(new Date(next - 24 * 3600_000)), end: rfc3339(new Date(next - 1000)), interval: "hour" };
}

/** The sparklines (visitors per hour, last 24 hours) of the given sites, in one request. */
function useSparklines(hostnames) {
  const window = useMemo(last24Hours, []);
  const key = hostnames.join(",");
  const { data } = useApi(key ? "/websites/sparklines" : null, { hostnames: key, ...window }, key);
  return useMemo(() => {
    const lines = new Map();
    if (Array.isArray(data)) {
      for (const site of data) lines.set(site.hostname, site.interval.map((bucket) => bucket.visitors || 0));
    }
    return lines;
  }, [data]);
}

function SiteCard({ site, values }) {
  const visitors = site.summary ? site.summary.visitors : 0;
  return (
    <li class="card site-card">
      <Link href={`/${encodeURIComponent(site.hostname)}`} class="site-link">
        <span class="site-name">{site.hostname}</span>
        <span class="muted">
          <strong class="site-count">{formatExact(visitors)}</strong> {visitors === 1 ? "visitor" : "visitors"} in the last 24 hours
        </span>
        <Sparkline values={values} label={`Visitors per hour in the last 24 hours for ${site.hostname}`} />
      </Link>
    </li>
  );
}

/** Set (or, for "" and null, remove) query parameters of the websites page. */
function goTo(query, changes, replace = false) {
  const next = new URLSearchParams(query);
  for (const [key, value] of Object.entries(changes)) {
    if (value === null || value === "") next.delete(key);
    else next.set(key, String(value));
  }
  const text = next.toString();
  navigate(text ? `/?${text}` : "/", { replace });
}

function Pager({ query, page, pages, first, last, total }) {
  return (
    <nav class="pager" aria-label="Website pages">
      <span class="muted" aria-live="polite">
        {formatExact(first)}–{formatExact(last)} of {formatExact(total)}
      </span>
      <button type="button" class="button" disabled={page <= 1} onClick={() => goTo(query, { page: page - 1 === 1 ? null : page - 1 })}>
        ← Previous
      </button>
      <button type="button" class="button" disabled={page >= pages} onClick={() => goTo(query, { page: page + 1 })}>
        Next →
      </button>
    </nav>
  );
}

function SiteCards({ sites, query }) {
  const search = query.get("q") || "";
  const needle = search.trim().toLowerCase();
  const matching = needle ? sites.filter((site) => site.hostname.includes(needle)) : sites;
  const pages = Math.max(1, Math.ceil(matching.length / PAGE_SIZE));
  const page = Math.min(pages, Math.max(1, Math.floor(Number(query.get("page")) || 1)));
  const shown = matching.slice((page - 1) * PAGE_SIZE, page * PAGE_SIZE);
  const lines = useSparklines(shown.map((site) => site.hostname));
  return (
    <div class="stack">
      {sites.length > PAGE_SIZE && (
        <input
          type="search"
          placeholder="Search websites"
          aria-label="Search websites by hostname"
          value={search}
          onInput={(e) => goTo(query, { q: e.currentTarget.value, page: null }, true)}
        />
      )}
      {shown.length ? (
        <ul class="site-grid">
          {shown.map((site) => (
            <SiteCard key={site.hostname} site={site} values={lines.get(site.hostname)} />
          ))}
        </ul>
      ) : (
        <div class="card">
          <Empty>No website matches “{search}”.</Empty>
        </div>
      )}
      {pages > 1 && (
        <Pager query={query} page={page} pages={pages} first={(page - 1) * PAGE_SIZE + 1} last={(page - 1) * PAGE_SIZE + shown.length} total={matching.length} />
      )}
    </div>
  );
}

export function AddWebsite({ open, onClose }) {
  const [value, setValue] = useState("");
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);
  const submit = async (event) => {
    event.preventDefault();
    const { hostname, error: invalid } = cleanHostname(value);
    if (invalid) return setError(invalid);
    setBusy(true);
    setError("");
    try {
      await api("POST", "/websites", { body: { hostname } });
      onClose();
      navigate(`/${encodeURIComponent(hostname)}`);
    } catch (err) {
      setBusy(false);
      if (err instanceof ApiError && err.status === 409) setError(`${hostname} has already been added.`);
      else setError(err.message || "The website could not be added.");
    }
  };
  return (
    <Dialog open={open} title="Add a website" onClose={onClose}>
      <form onSubmit={submit} noValidate>
        <label for="add-hostname">Hostname</label>
        <input
          id="add-hostname"
          name="hostname"
          placeholder="example.com"
          autoComplete="off"
          spellcheck={false}
          aria-describedby="add-hostname-help add-hostname-error"
          aria-invalid={error ? "true" : "false"}
          value={value}
          onInput={(e) => setValue(e.currentTarget.value)}
        />
        <p id="add-hostname-help" class="muted small">
          The domain the tracker runs on, without https:// or a path. Use localhost to try it locally.
        </p>
        <p id="add-hostname-error" class="form-error" role="alert">
          {error}
        </p>
        <div class="form-actions">
          <button type="button" class="button" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" class="button primary" disabled={busy}>
            {busy ? "Adding…" : "Add website"}
          </button>
        </div>
      </form>
    </Dialog>
  );
}

export function Websites() {
  useTitle("My websites");
  const { query } = useLocation();
  const { data, error, loading } = useApi("/websites", { summary: true });
  const [adding, setAdding] = useState(false);
  const canAdd = isAdmin(useCurrentUser()); // adding a site is an admin's (docs/auth.md)
  return (
    <section>
      <div class="page-head">
        <h1>My websites</h1>
        {canAdd && (
          <button type="button" class="button primary" onClick={() => setAdding(true)}>
            Add website
          </button>
        )}
      </div>
      {error ? (
        <ErrorView error={error} />
      ) : data === undefined && loading ? (
        <Loading />
      ) : data && data.length ? (
        <SiteCards sites={data} query={query} />
      ) : (
        <div class="card">
          <Empty>{canAdd ? "No websites yet. Add your first website to get its tracking snippet." : "No websites have been shared with you yet."}</Empty>
        </div>
      )}
      <AddWebsite open={adding} onClose={() => setAdding(false)} />
    </section>
  );
}
