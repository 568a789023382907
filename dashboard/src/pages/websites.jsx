// "My websites": cards with last-24-hour visitors and a sparkline; add a website.
import { useMemo, useState } from "preact/hooks";
import { api, ApiError } from "../api.js";
import { Dialog, Empty, ErrorView, Loading, Sparkline } from "../components.jsx";
import { formatExact } from "../format.js";
import { useApi, useTitle } from "../hooks.js";
import { rfc3339 } from "../period.js";
import { Link, navigate } from "../router.jsx";

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

function SiteCard({ site }) {
  const window = useMemo(last24Hours, []);
  const { data } = useApi(`/website/${encodeURIComponent(site.hostname)}/summary`, window, site.hostname);
  const values = data && Array.isArray(data.interval) ? data.interval.map((b) => b.visitors || 0) : null;
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
  const { data, error, loading } = useApi("/websites", { summary: true });
  const [adding, setAdding] = useState(false);
  return (
    <section>
      <div class="page-head">
        <h1>My websites</h1>
        <button type="button" class="button primary" onClick={() => setAdding(true)}>
          Add website
        </button>
      </div>
      {error ? (
        <ErrorView error={error} />
      ) : data === undefined && loading ? (
        <Loading />
      ) : data && data.length ? (
        <ul class="site-grid">
          {data.map((site) => (
            <SiteCard key={site.hostname} site={site} />
          ))}
        </ul>
      ) : (
        <div class="card">
          <Empty>No websites yet. Add your first website to get its tracking snippet.</Empty>
        </div>
      )}
      <AddWebsite open={adding} onClose={() => setAdding(false)} />
    </section>
  );
}
