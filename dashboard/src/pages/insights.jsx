// Beyond page views: the link and not-found panel, chart notes, CSV export, a site's tracker settings, raw export.
import { useEffect, useRef, useState } from "preact/hooks";
import { api, downloadCsv } from "../api.js";
import { Empty, ErrorView, Loading, Snippet, Tabs } from "../components.jsx";
import { filterParams, withFilter } from "../filters.js";
import { formatExact, formatPercent } from "../format.js";
import { useApi } from "../hooks.js";
import { EVENT_TABS, FEATURES, noteDays, parseExtensions, parseRetention, shortUrl } from "../insights.js";
import { isoDay } from "../period.js";
import { Link, navigate } from "../router.jsx";
import { snippetFor, trackerBase } from "../snippet.js";

const encode = encodeURIComponent;

/** A copy of `query` without its property filters. */
function withoutProps(query) {
  const next = new URLSearchParams(query);
  for (const key of [...next.keys()]) if (key.startsWith("prop_name[") || key.startsWith("prop_value[")) next.delete(key);
  return next;
}

const siteLink = (hostname, query, name = "") =>
  `/${encode(hostname)}${name ? "/" + name : ""}${query.toString() ? "?" + query.toString() : ""}`;

/** The site's own settings (null while loading or when they cannot be read, e.g. another account's site). */
export function useSiteSettings(hostname) {
  // hostname null: not asked (a share link's dashboard, which has no account to read them with).
  const path = hostname === null ? null : `/websites/${encode(hostname)}/settings`;
  const { data, error, reload } = useApi(path, null, `site-settings|${hostname}`);
  return { settings: error ? null : data, error, reload };
}

/**
 * Outbound links, downloads and not-found pages: the values of the tracker's own event properties
 * (GET /website/{h}/properties with prop_name[eq]=…), under the page's other filters.
 */
export function EventsPanel({ hostname, query, stats, features }) {
  const chosen = EVENT_TABS.find((t) => t.key === query.get("panel[events]")) || EVENT_TABS[0];
  const params = { start: stats.base.start, end: stats.base.end, ...filterParams(stats.filters, { withoutProps: true }) };
  params["prop_name[eq]"] = chosen.prop;
  params.limit = 5;
  const { data, error, loading, stale } = useApi(`/website/${encode(hostname)}/properties`, params, `${stats.key}|events|${chosen.prop}`);
  const select = (key) => {
    const next = new URLSearchParams(query);
    if (key === EVENT_TABS[0].key) next.delete("panel[events]");
    else next.set("panel[events]", key);
    navigate(siteLink(hostname, next), { replace: true });
  };
  const off = features && !features.includes(chosen.feature);
  const pick = (value) => {
    let next = withFilter(withoutProps(query), { field: "prop_name", op: "eq", value: chosen.prop });
    next = withFilter(next, { field: "prop_value", op: "eq", value });
    next.delete("page");
    navigate(siteLink(hostname, next));
  };
  const rows = Array.isArray(data) ? data.filter((row) => typeof row.value === "string") : [];
  let body;
  if (error) body = <ErrorView error={error} />;
  else if (data === undefined || stale) body = <Loading />;
  else if (!rows.length) {
    body = off ? (
      <Empty>
        Counting {chosen.noun} is off for {hostname}.{" "}
        <Link href={`/settings/websites?website=${encode(hostname)}`}>Turn it on for this site</Link>.
      </Empty>
    ) : (
      <Empty>No {chosen.noun} in this period.</Empty>
    );
  } else {
    body = (
      <ol class="rows">
        {rows.map((row, index) => {
          const share = Math.max(0, Math.min(1, Number(row.events_percentage) || 0));
          return (
            <li key={`${index}:${row.value}`} class="row" data-value={row.value}>
              <span class="row-bar" style={{ width: `${(share * 100).toFixed(2)}%` }} aria-hidden="true" />
              <button type="button" class="row-button" title={`Filter by ${chosen.prop}: ${row.value}`} onClick={() => pick(row.value)}>
                <span class="row-label" title={row.value}>
                  {chosen.key === "downloads" ? shortUrl(row.value, hostname) : row.value}
                </span>
                <span class="row-value">{formatExact(row.events)}</span>
                <span class="row-share muted">{formatPercent(share)}</span>
              </button>
              {chosen.key === "outbound" && /^[a-z0-9.-]+$/i.test(row.value) && (
                <a class="row-external" href={`https://${row.value}`} target="_blank" rel="noopener noreferrer" aria-label={`Open ${row.value} in a new tab`}>
                  ↗
                </a>
              )}
            </li>
          );
        })}
      </ol>
    );
  }
  const all = withFilter(withoutProps(query), { field: "prop_name", op: "eq", value: chosen.all });
  all.delete("panel[events]");
  return (
    <section class="card panel" aria-label="Links and errors" data-panel="events">
      <Tabs tabs={EVENT_TABS.map((t) => [t.key, t.title])} active={chosen.key} onSelect={select} label="Links and errors" />
      <div role="tabpanel" aria-labelledby={`tab-${chosen.key}`} aria-busy={loading ? "true" : "false"} class="panel-body" data-events={chosen.key}>
        {body}
      </div>
      <Link class="panel-more" href={siteLink(hostname, all, "properties")}>
        All {chosen.title.toLowerCase()} →
      </Link>
    </section>
  );
}

/** The site's notes that touch the period shown, and a way to load them again (none for hostname null). */
export function useNotes(hostname, period) {
  const query = { start: isoDay(period.start), end: isoDay(period.end) };
  const path = hostname === null ? null : `/websites/${encode(hostname)}/annotations`;
  return useApi(path, query, `notes|${hostname}|${query.start}|${query.end}`);
}

/** "Add a note": a day (prefilled with the day clicked on the chart), an optional last day, and the text. */
export function NoteForm({ hostname, day, onSaved, onCancel }) {
  const [start, setStart] = useState(day);
  const [end, setEnd] = useState("");
  const [text, setText] = useState("");
  const [state, setState] = useState({ busy: false, error: "" });
  const textRef = useRef(null);
  useEffect(() => {
    setStart(day);
    if (textRef.current) textRef.current.focus();
  }, [day]);
  const submit = async (event) => {
    event.preventDefault();
    if (!text.trim()) return setState({ busy: false, error: "Write what happened." });
    if (end && end < start) return setState({ busy: false, error: "The last day is before the first." });
    setState({ busy: true, error: "" });
    try {
      const note = await api("POST", `/websites/${encode(hostname)}/annotations`, { body: { start, end: end || null, text } });
      setState({ busy: false, error: "" });
      onSaved(note);
    } catch (err) {
      setState({ busy: false, error: err.message || "Saving failed." });
    }
    return undefined;
  };
  return (
    <form class="note-form card" onSubmit={submit} aria-label="Add a note" data-testid="note-form">
      <label>
        <span>Day</span>
        <input type="date" name="start" required value={start} onInput={(e) => setStart(e.currentTarget.value)} />
      </label>
      <label>
        <span>Until (optional)</span>
        <input type="date" name="end" min={start} value={end} onInput={(e) => setEnd(e.currentTarget.value)} />
      </label>
      <label class="grow">
        <span>Note</span>
        <input name="text" maxLength={500} placeholder="What happened? (a launch, a campaign, an outage)" value={text} ref={textRef} onInput={(e) => setText(e.currentTarget.value)} />
      </label>
      <p class="form-error" role="alert">
        {state.error}
      </p>
      <div class="form-actions">
        <button type="button" class="button" onClick={onCancel}>
          Cancel
        </button>
        <button type="submit" class="button primary" disabled={state.busy}>
          Add note
        </button>
      </div>
    </form>
  );
}

/** One note, shown when its marker on the chart is chosen: its days, its text, and Delete (with onDeleted). */
export function NoteCard({ hostname, note, onDeleted, onClose }) {
  const [state, setState] = useState({ busy: false, error: "" });
  const remove = async () => {
    setState({ busy: true, error: "" });
    try {
      await api("DELETE", `/websites/${encode(hostname)}/annotations/${encode(note.id)}`);
      onDeleted(note);
    } catch (err) {
      setState({ busy: false, error: err.message || "Deleting failed." });
    }
  };
  return (
    <div class="note-card card" role="region" aria-label="Note" data-testid="note-card">
      <p class="muted small">{noteDays(note)}</p>
      <p class="note-text">{note.text}</p>
      <p class="form-error" role="alert">
        {state.error}
      </p>
      <div class="form-actions">
        <button type="button" class="button" onClick={onClose}>
          Close
        </button>
        {onDeleted && (
          <button type="button" class="button danger-button" disabled={state.busy} onClick={remove}>
            Delete note
          </button>
        )}
      </div>
    </div>
  );
}

/** "Export CSV": the whole filtered table (the API answers every row without `limit`), not only this page. */
export function ExportCsv({ path, params, name }) {
  const [state, setState] = useState({ busy: false, error: "" });
  const run = async () => {
    setState({ busy: true, error: "" });
    try {
      await downloadCsv(path, params, name);
      setState({ busy: false, error: "" });
    } catch (err) {
      setState({ busy: false, error: err.message || "The export failed." });
    }
  };
  return (
    <span class="export-csv">
      <button type="button" class="button small-button" disabled={state.busy} onClick={run} data-testid="export-csv">
        Export CSV
      </button>
      {state.error && (
        <span class="form-error" role="alert">
          {state.error}
        </span>
      )}
    </span>
  );
}

const STATE_OPTIONS = [
  ["", "As the server"],
  ["on", "On"],
  ["off", "Off"],
];
const toChoice = (value) => (value === true ? "on" : value === false ? "off" : "");
const fromChoice = (choice) => (choice === "on" ? true : choice === "off" ? false : null);

/** A site's own tracker features (each on, off, or as the server-wide setting), download list, retention, time zone. */
export function SiteTracker({ hostname }) {
  const { settings, error, reload } = useSiteSettings(hostname);
  const tenant = useApi("/tenant/settings", null, "tenant");
  const [form, setForm] = useState(null);
  const [state, setState] = useState({ busy: false, message: "", error: "" });
  useEffect(() => {
    if (!settings) return;
    const next = { extensions: (settings.downloadExtensions || []).join(", "), retention: settings.retentionDays ?? "", timezone: settings.timezone || "" };
    for (const [field] of FEATURES) next[field] = toChoice(settings[field]);
    setForm(next);
  }, [settings]);
  useEffect(() => setState({ busy: false, message: "", error: "" }), [hostname]);
  if (error) return <ErrorView error={error} title="This site's settings could not be loaded" children={<span />} />;
  if (!settings || !form) return <Loading />;
  const serverWide = (tenant.data && tenant.data.script_type) || [];
  const zones = typeof Intl.supportedValuesOf === "function" ? Intl.supportedValuesOf("timeZone") : [];
  const set = (key, value) => setForm({ ...form, [key]: value });
  const save = async (event) => {
    event.preventDefault();
    const extensions = parseExtensions(form.extensions);
    const retention = parseRetention(String(form.retention));
    const problem = extensions.error || retention.error;
    if (problem) return setState({ busy: false, message: "", error: problem });
    const body = { downloadExtensions: extensions.value, retentionDays: retention.value, timezone: form.timezone.trim() || null };
    for (const [field] of FEATURES) body[field] = fromChoice(form[field]);
    setState({ busy: true, message: "", error: "" });
    try {
      await api("PATCH", `/websites/${encode(hostname)}/settings`, { body });
      reload();
      setState({ busy: false, message: "Saved. Browsers that have the old script keep it for up to 6 hours.", error: "" });
    } catch (err) {
      setState({ busy: false, message: "", error: err.message || "Saving failed." });
    }
    return undefined;
  };
  const base = trackerBase(tenant.data && tenant.data.public_url, location.origin);
  return (
    <form class="card settings-form" onSubmit={save} noValidate aria-labelledby="site-tracker-title" data-testid="site-tracker">
      <h2 id="site-tracker-title">Tracker for {hostname}</h2>
      <p class="muted">
        Each feature is on or off for this site, or follows the server-wide choice under <Link href="/settings/tracker">Settings → Tracker</Link>. The
        snippet below loads the build this site needs.
      </p>
      <div class="feature-grid">
        {FEATURES.map(([field, feature, title, help]) => (
          <label key={field} class="feature-choice">
            <span>
              <strong>{title}</strong> <span class="muted small">{help}</span>
            </span>
            <select name={field} value={form[field]} onChange={(e) => set(field, e.currentTarget.value)}>
              {STATE_OPTIONS.map(([value, text]) => (
                <option key={value} value={value}>
                  {value ? text : `${text} (${serverWide.includes(feature) ? "on" : "off"})`}
                </option>
              ))}
            </select>
          </label>
        ))}
      </div>
      <label for="site-extensions">File extensions that count as downloads</label>
      <input
        id="site-extensions"
        spellcheck={false}
        placeholder={`Empty: ${settings.tracker.downloadExtensions.length} common ones (pdf, zip, csv, mp4, …)`}
        value={form.extensions}
        onInput={(e) => set("extensions", e.currentTarget.value)}
      />
      <label for="site-retention">Keep data for (days)</label>
      <input id="site-retention" type="number" min="30" max="36525" inputMode="numeric" placeholder="Empty: keep everything" value={form.retention} onInput={(e) => set("retention", e.currentTarget.value)} />
      <label for="site-timezone">Time zone</label>
      <input id="site-timezone" list="site-timezones" spellcheck={false} placeholder="e.g. Europe/Paris" value={form.timezone} onInput={(e) => set("timezone", e.currentTarget.value)} />
      <datalist id="site-timezones">
        {zones.map((zone) => (
          <option key={zone} value={zone} />
        ))}
      </datalist>
      <p class="muted small">
        Visits older than that many days are deleted in the background; their daily totals stay, so charts and unfiltered
        numbers do not change, but filters can no longer split those days. The time zone is stored for what comes next.
      </p>
      {(state.error || state.message) && (
        <p class={state.error ? "form-error" : "form-ok"} role={state.error ? "alert" : "status"}>
          {state.error || state.message}
        </p>
      )}
      <div class="form-actions">
        <button type="submit" class="button primary" disabled={state.busy}>
          Save
        </button>
      </div>
      <h3>Snippet for {hostname}</h3>
      <p class="muted small">
        Features now: {settings.tracker.features.length ? settings.tracker.features.join(", ") : "page views only"}.
      </p>
      <Snippet text={snippetFor(base, hostname)} label={`Tracking snippet for ${hostname}`} />
    </form>
  );
}

/** Every stored page view or custom event of the site, as a file the browser downloads as it streams. */
export function RawExport({ hostname }) {
  const link = (type, format) => `/api/websites/${encode(hostname)}/export?type=${type}&format=${format}`;
  return (
    <section class="card" aria-labelledby="raw-export-title" data-testid="raw-export">
      <h2 id="raw-export-title">Export all data</h2>
      <p class="muted">
        Every page view or custom event of {hostname}, one row each. CSV is for spreadsheets (text that looks like a formula
        gets a leading '); JSON Lines holds the exact values and is what <code>medama import</code> reads.
      </p>
      <div class="form-actions start">
        <a class="button" href={link("views", "csv")} download>
          Page views (CSV)
        </a>
        <a class="button" href={link("events", "csv")} download>
          Custom events (CSV)
        </a>
        <a class="button" href={link("views", "jsonl")} download>
          Page views (JSON Lines)
        </a>
        <a class="button" href={link("events", "jsonl")} download>
          Custom events (JSON Lines)
        </a>
      </div>
    </section>
  );
}
