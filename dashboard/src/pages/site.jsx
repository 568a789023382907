// The site dashboard: period and filters from the URL, metric boxes, chart with the previous period, five panels.
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { api, ApiError, partialNote } from "../api.js";
import { Chart, Empty, ErrorView, Label, Loading, SnippetNote, Snippet, Tabs } from "../components.jsx";
import { DATASETS, datasetParams, displayLabel, labelCode, rowLabel } from "../datasets.js";
import { reasonText, unknownSites } from "../drops.js";
import {
  FIELDS,
  OPERATORS,
  fieldLabel,
  filterParams,
  operatorLabel,
  parseFilters,
  withFilter,
  withoutFilter,
} from "../filters.js";
import { formatCount, formatDuration, formatExact, formatPercent, labelText } from "../format.js";
import { useApi, useInterval, useTitle } from "../hooks.js";
import {
  EARLIEST,
  INTERVALS,
  PRESETS,
  bucketCount,
  bucketLabel,
  bucketTitle,
  foldBuckets,
  isoDay,
  parseBucket,
  resolvePeriod,
  rfc3339,
} from "../period.js";
import { DEFINITIONS, bounceState, changeBadge } from "../metrics.js";
import { Link, navigate } from "../router.jsx";
import { currentShare, pageBase, shows, statsPath } from "../scope.js";
import { isAdmin, useCurrentUser } from "../session.js";
import { snippetFor, trackerBase } from "../snippet.js";
import { noteSpan, pickedDay } from "../insights.js";
import { EventsPanel, NoteCard, NoteForm, useNotes, useSiteSettings } from "./insights.jsx";
import { GoalsPanel } from "./goals.jsx";
import { LiveCount, LivePanel, useLive } from "./live.jsx";
import { PreparingNotice, useProgress } from "./preparing.jsx";
import { cleanHostname } from "./websites.jsx";

const REFRESH_MS = 60_000; // auto-refresh for ranges that include now
const SNIPPET_POLL_MS = 3_000; // while waiting for the first hit

export const METRICS = [
  { key: "visitors", title: "Visitors", field: "visitors", format: formatCount, help: DEFINITIONS.visitors },
  { key: "pageviews", title: "Page Views", field: "pageviews", format: formatCount, help: DEFINITIONS.pageviews },
  { key: "duration", title: "Time Spent", field: "duration", format: formatDuration, help: DEFINITIONS.duration },
  { key: "bounces", title: "Bounce Rate", field: "bounce_percentage", format: formatPercent, points: true, help: DEFINITIONS.bounces },
];

/** A metric's value in `totals` (a summary's current/previous or a bucket), or null when it has none to show. */
export function metricValue(metric, totals) {
  if (!totals) return null;
  const value = totals[metric.field];
  if (typeof value !== "number") return null;
  if (metric.key === "bounces" && !bounceState(value, totals.visitors, totals.duration).known) return null;
  return value;
}

const PANELS = [
  { id: "pages", label: "Pages", tabs: ["pages", "time", "entries", "exits"] },
  { id: "sources", label: "Sources", tabs: ["referrers", "sources", "mediums", "campaigns"] },
  { id: "devices", label: "Devices", tabs: ["browsers", "os", "devices"] },
  { id: "geo", label: "Locations", tabs: ["countries", "languages"] },
];

const DETAIL_PARAMS = ["page", "size", "sort", "order"];

export const siteHref = (hostname, query, name = "") =>
  `${pageBase(hostname)}${name ? "/" + name : ""}${query.toString() ? "?" + query.toString() : ""}`;

/** A copy of the query without the given keys. */
export function without(query, keys) {
  const next = new URLSearchParams(query);
  for (const key of keys) next.delete(key);
  return next;
}

function setParam(query, key, value) {
  const next = new URLSearchParams(query);
  if (value === null || value === undefined || value === "") next.delete(key);
  else next.set(key, value);
  return next;
}

/** Everything the stats calls of a page share: the window, the filters and a cache key. */
export function useStatsBase(hostname, query) {
  const [refresh, setRefresh] = useState(0);
  const now = useMemo(() => new Date(), [hostname, query.toString(), refresh]);
  const period = resolvePeriod(query, now);
  const filters = parseFilters(query);
  const fp = filterParams(filters);
  const base = { start: rfc3339(period.start), end: rfc3339(period.end), ...fp };
  const key = `${hostname}|${JSON.stringify(base)}|${refresh}`;
  useInterval(() => setRefresh((n) => n + 1), REFRESH_MS, period.live);
  return { period, filters, fp, base, key, refresh: () => setRefresh((n) => n + 1) };
}

function ChangeBadge({ metric, current, previous, since }) {
  if (previous === undefined) return null;
  const now = metricValue(metric, current);
  const before = metricValue(metric, previous);
  const badge = changeBadge(now, before, metric.points);
  const was = before === null ? "no value" : metric.format(before);
  let tone = "neutral";
  let mark = "■";
  let text = "";
  if (badge.kind === "change") {
    const value = badge.value;
    const good = metric.points ? value < 0 : value > 0;
    tone = value === 0 ? "neutral" : good ? "good" : "bad";
    mark = value > 0 ? "▲" : value < 0 ? "▼" : "■";
    text = `${value > 0 ? "+" : value < 0 ? "−" : "±"}${Math.abs(value)}${metric.points ? " pts" : "%"}`;
  } else if (badge.kind === "new") {
    mark = "▲";
    text = "new";
  } else if (badge.kind === "none") {
    text = "no change"; // nothing this time, nothing the time before
  } else {
    mark = "";
    text = "no rate to compare";
  }
  return (
    <span class={`change ${tone}`} title={`Previous period: ${was}`} data-kind={badge.kind}>
      {mark && <span aria-hidden="true">{mark} </span>}
      {text}
      <span class="visually-hidden">
        {" "}
        {since}, previous {was}
      </span>
    </span>
  );
}

function MetricBoxes({ current, previous, selected, onSelect, since, busy }) {
  const [explained, setExplained] = useState(null);
  const shown = METRICS.find((m) => m.key === explained);
  return (
    <>
      {/* Busy while the numbers of a new period or filter are on their way: the ones shown are the last answer's. */}
      <div class="metrics" role="group" aria-label="Metrics: choose the one shown in the chart" aria-busy={busy ? "true" : "false"}>
        {METRICS.map((metric) => {
          const value = current ? metricValue(metric, current) : undefined;
          const missing = current && value === null;
          return (
            <div class="metric-box" key={metric.key}>
              <button
                type="button"
                class="metric"
                aria-pressed={selected === metric.key ? "true" : "false"}
                aria-describedby={`define-${metric.key}`}
                data-metric={metric.key}
                onClick={() => onSelect(metric.key)}
              >
                <span class="metric-title">{metric.title}</span>
                <span class="metric-value">{value === undefined ? "–" : value === null ? "—" : metric.format(value)}</span>
                <span class="metric-change">
                  {missing && metric.key === "bounces" ? (
                    <span class="muted small">{bounceState(0, current.visitors, current.duration).few ? "too few timed visits" : "0 or too few timed visits"}</span>
                  ) : (
                    <>
                      {current && previous && <ChangeBadge metric={metric} current={current} previous={previous} since={since} />}
                      <span class="muted small"> {since}</span>
                    </>
                  )}
                </span>
              </button>
              <button
                type="button"
                class="info-button"
                aria-label={`What is ${metric.title}?`}
                aria-expanded={explained === metric.key ? "true" : "false"}
                aria-controls="metric-definition"
                onClick={() => setExplained(explained === metric.key ? null : metric.key)}
              >
                i
              </button>
              <span id={`define-${metric.key}`} hidden>
                {metric.help}
                {missing && metric.key === "bounces" ? ` ${bounceState(0, current.visitors, current.duration).reason}` : ""}
              </span>
            </div>
          );
        })}
      </div>
      <div id="metric-definition" class="definition card" role="region" aria-label="Metric definition" hidden={!shown} data-testid="metric-definition">
        {shown && (
          <>
            <p>{shown.help}</p>
            {shown.key === "bounces" && current && metricValue(shown, current) === null && (
              <p>{bounceState(0, current.visitors, current.duration).reason}</p>
            )}
            <button type="button" class="button small-button" onClick={() => setExplained(null)}>
              Close
            </button>
          </>
        )}
      </div>
    </>
  );
}

function chartValue(metric, bucket) {
  if (!bucket) return null;
  if (typeof bucket[metric.field] !== "number") return 0;
  const v = metricValue(metric, bucket);
  if (v === null) return null; // a bounce rate under its floor: a gap, not a 0
  return metric.key === "bounces" ? v * 100 : v;
}

function chartFormat(metric) {
  if (metric.key === "bounces") return (v) => `${Number(v).toFixed(v >= 10 || v === 0 ? 0 : 1)}%`;
  if (metric.key === "duration") return formatDuration;
  return formatCount;
}

function MainChart({ summary, previous, metricKey, type, period, notes, onPickDay, onNote }) {
  const metric = METRICS.find((m) => m.key === metricKey) || METRICS[0];
  const buckets = useMemo(
    () => foldBuckets((summary && summary.interval) || [], period.start, period.end, period.interval),
    [summary],
  );
  const prevBuckets = useMemo(
    () => foldBuckets((previous && previous.interval) || [], period.prevStart, period.prevEnd, period.interval),
    [previous],
  );
  const xs = useMemo(() => buckets.map((b) => parseBucket(b.date)), [buckets]);
  const series = useMemo(
    () => [
      { label: `${metric.title}`, values: buckets.map((b) => chartValue(metric, b)) },
      { label: "Previous period", values: buckets.map((_, i) => chartValue(metric, prevBuckets[i])), previous: true },
    ],
    [buckets, prevBuckets, metricKey],
  );
  const spans = useMemo(() => (notes || []).map(noteSpan).filter(Boolean), [notes]);
  if (!buckets.length) return <Empty>No data to chart for this period.</Empty>;
  const fmt = chartFormat(metric);
  return (
    <Chart
      xs={xs}
      series={series}
      type={type}
      format={fmt}
      xLabel={(d) => bucketLabel(d, period.interval)}
      xTitle={(d) => bucketTitle(d, period.interval)}
      integer={metric.key === "visitors" || metric.key === "pageviews"}
      label={`${metric.title} per ${period.interval}, ${period.label}, with the previous period for comparison${spans.length ? `, and ${spans.length} note${spans.length === 1 ? "" : "s"}` : ""}`}
      notes={spans}
      onPick={onPickDay && ((seconds) => onPickDay(pickedDay(xs, seconds)))}
      onNote={onNote}
    />
  );
}

function FilterChips({ hostname, query, filters, path }) {
  if (!filters.length) return null;
  return (
    <ul class="chips" aria-label="Active filters">
      {filters.map((f) => {
        const text = `${fieldLabel(f.field)} ${operatorLabel(f.op)} ${f.value === "" ? labelText("") : f.value}`;
        return (
          <li class="chip" key={`${f.field}${f.op}${f.value}`}>
            <span>
              <span class="chip-field">{fieldLabel(f.field)}</span> <span class="chip-op">{operatorLabel(f.op)}</span>{" "}
              <span class="chip-value">{f.value === "" ? labelText("") : f.value}</span>
            </span>
            <button
              type="button"
              class="chip-remove"
              aria-label={`Remove filter: ${text}`}
              onClick={() => navigate(`${path}?${without(withoutFilter(query, f), ["page"]).toString()}`)}
            >
              ×
            </button>
          </li>
        );
      })}
      {filters.length > 1 && (
        <li>
          <Link class="button small-button" href={siteHref(hostname, without(query, filters.map((f) => `${f.field}[${f.op}]`)))}>
            Clear all
          </Link>
        </li>
      )}
    </ul>
  );
}

function AddFilter({ query, path }) {
  const [open, setOpen] = useState(false);
  const [field, setField] = useState("path");
  const [op, setOp] = useState("eq");
  const [value, setValue] = useState("");
  const valueRef = useRef(null);
  useEffect(() => {
    if (open && valueRef.current) valueRef.current.focus();
  }, [open]);
  const apply = (event) => {
    event.preventDefault();
    const cleaned = op === "in" || op === "not_in" ? value.split(",").map((v) => v.trim()).join(",") : value;
    setOpen(false);
    setValue("");
    navigate(`${path}?${without(withFilter(query, { field, op, value: cleaned }), ["page"]).toString()}`);
  };
  if (!open) {
    return (
      <button type="button" class="button" aria-expanded="false" onClick={() => setOpen(true)}>
        + Add filter
      </button>
    );
  }
  return (
    <form class="filter-form card" onSubmit={apply} aria-label="Add filter">
      <label>
        <span>Field</span>
        <select name="field" value={field} onChange={(e) => setField(e.currentTarget.value)}>
          {FIELDS.map(([key, title]) => (
            <option key={key} value={key}>
              {title}
            </option>
          ))}
        </select>
      </label>
      <label>
        <span>Operator</span>
        <select name="op" value={op} onChange={(e) => setOp(e.currentTarget.value)}>
          {OPERATORS.map(([key, title]) => (
            <option key={key} value={key}>
              {title}
            </option>
          ))}
        </select>
      </label>
      <label class="grow">
        <span>Value</span>
        <input
          name="value"
          value={value}
          placeholder={op === "in" || op === "not_in" ? "comma-separated values" : "empty = Direct / None"}
          onInput={(e) => setValue(e.currentTarget.value)}
          ref={valueRef}
        />
      </label>
      <div class="form-actions">
        <button type="button" class="button" onClick={() => setOpen(false)}>
          Cancel
        </button>
        <button type="submit" class="button primary">
          Apply
        </button>
      </div>
    </form>
  );
}

function PeriodControls({ hostname, query, period }) {
  const [custom, setCustom] = useState(false);
  const today = isoDay(new Date());
  const [from, setFrom] = useState(query.get("start") || isoDay(period.start));
  const [to, setTo] = useState(query.get("end") || isoDay(period.end));
  const [error, setError] = useState("");
  const go = (q) => navigate(siteHref(hostname, without(q, ["page"])), { replace: false });
  const pick = (value) => {
    if (value === "custom") {
      setFrom(isoDay(period.start));
      setTo(isoDay(period.end > new Date() ? new Date() : period.end));
      setCustom(true);
      return;
    }
    setCustom(false);
    go(without(setParam(query, "period", value === "today" ? null : value), ["start", "end", "interval"]));
  };
  const applyCustom = (event) => {
    event.preventDefault();
    if (!from || !to) return setError("Choose both dates.");
    if (from > to) return setError("The start date is after the end date.");
    if (from < isoDay(EARLIEST) || to > today) return setError(`Choose dates from ${isoDay(EARLIEST)} to today.`);
    setError("");
    setCustom(false);
    let q = setParam(query, "period", "custom");
    q = setParam(q, "start", from);
    q = setParam(q, "end", to);
    go(without(q, ["interval"]));
  };
  const presetValue = PRESETS.some(([key]) => key === period.period) ? period.period : "";
  return (
    <div class="period-controls">
      <label class="inline-label">
        <span class="visually-hidden">Date range</span>
        <select aria-label="Date range" value={custom ? "custom" : presetValue} onChange={(e) => pick(e.currentTarget.value)}>
          {!presetValue && <option value="">{period.label}</option>}
          {PRESETS.map(([key, title]) => (
            <option key={key} value={key}>
              {key === "custom" && period.period === "custom" ? period.label : title}
            </option>
          ))}
        </select>
      </label>
      <label class="inline-label">
        <span class="visually-hidden">Interval</span>
        <select
          aria-label="Interval"
          value={query.get("interval") || ""}
          onChange={(e) => go(setParam(query, "interval", e.currentTarget.value))}
        >
          <option value="">Auto ({period.interval})</option>
          {INTERVALS.map((i) => (
            <option key={i} value={i} disabled={bucketCount(period.start, period.next, i) > 2000}>
              By {i}
            </option>
          ))}
        </select>
      </label>
      {custom && (
        <form class="custom-range card" onSubmit={applyCustom} aria-label="Custom date range">
          <label>
            <span>From</span>
            <input type="date" name="start" min={isoDay(EARLIEST)} max={today} value={from} onInput={(e) => setFrom(e.currentTarget.value)} />
          </label>
          <label>
            <span>To</span>
            <input type="date" name="end" min={isoDay(EARLIEST)} max={today} value={to} onInput={(e) => setTo(e.currentTarget.value)} />
          </label>
          <p class="form-error" role="alert">
            {error}
          </p>
          <div class="form-actions">
            <button type="button" class="button" onClick={() => setCustom(false)}>
              Cancel
            </button>
            <button type="submit" class="button primary">
              Apply
            </button>
          </div>
        </form>
      )}
    </div>
  );
}

function SiteSwitcher({ hostname, query }) {
  const { data } = useApi("/websites", null, "websites");
  const sites = data || [];
  const keep = new URLSearchParams();
  for (const key of ["period", "start", "end", "interval", "chart[stat]", "chart[type]"]) {
    if (query.has(key)) keep.set(key, query.get(key));
  }
  return (
    <select
      class="site-switcher"
      aria-label="Website"
      value={hostname}
      onChange={(e) => navigate(siteHref(e.currentTarget.value, keep))}
    >
      {!sites.some((s) => s.hostname === hostname) && <option value={hostname}>{hostname}</option>}
      {sites.map((s) => (
        <option key={s.hostname} value={s.hostname}>
          {s.hostname}
        </option>
      ))}
    </select>
  );
}

/** Top rows of one dataset with percentage bars; a click adds the row's filter. */
export function Rows({ dataset, rows, hostname, query, path }) {
  if (!rows.length) return <Empty>No data for this period.</Empty>;
  return (
    <ol class="rows">
      {rows.map((row, index) => {
        const { value, field } = rowLabel(dataset, row);
        const share = Math.max(0, Math.min(1, Number(row[dataset.bar]) || 0));
        const external = dataset.name === "referrers" && value && value.includes(".") && !value.includes(" ");
        return (
          <li key={`${index}:${value}`} class="row">
            <span class="row-bar" style={{ width: `${(share * 100).toFixed(2)}%` }} aria-hidden="true" />
            <button
              type="button"
              class="row-button"
              title={`Filter by ${fieldLabel(field)}: ${labelText(value)}`}
              onClick={() => navigate(`${path || pageBase(hostname)}?${without(withFilter(query, { field, op: "eq", value }), ["page"])}`)}
            >
              <span class="row-label">
                <Label text={displayLabel(dataset, value)} code={labelCode(dataset, value)} />
              </span>
              <span class="row-value">{dataset.valueFormat(row[dataset.value])}</span>
              <span class="row-share muted">{formatPercent(share)}</span>
            </button>
            {external && (
              <a class="row-external" href={`https://${value}`} target="_blank" rel="noopener noreferrer" aria-label={`Open ${value} in a new tab`}>
                ↗
              </a>
            )}
          </li>
        );
      })}
    </ol>
  );
}

function Panel({ hostname, query, panel, stats }) {
  const tabs = panel.tabs.filter(shows); // a share link may show only some lists
  const active = tabs.includes(query.get(`panel[${panel.id}]`)) ? query.get(`panel[${panel.id}]`) : tabs[0];
  const dataset = DATASETS[active];
  const params = { ...stats.base, summary: true, limit: 5, ...datasetParams(dataset, stats.filters) };
  const { data, error, loading, stale } = useApi(statsPath(hostname, active), params, `${stats.key}|${active}|${JSON.stringify(params)}`);
  const select = (tab) => navigate(siteHref(hostname, setParam(query, `panel[${panel.id}]`, tab === tabs[0] ? null : tab)), { replace: true });
  return (
    <section class="card panel" aria-label={panel.label} data-panel={panel.id}>
      <Tabs tabs={tabs.map((t) => [t, DATASETS[t].title])} active={active} onSelect={select} label={panel.label} />
      <div role="tabpanel" aria-labelledby={`tab-${active}`} aria-busy={loading ? "true" : "false"} class="panel-body" data-dataset={active}>
        {error ? <ErrorView error={error} /> : data === undefined || stale ? <Loading /> : <Rows dataset={dataset} rows={data} hostname={hostname} query={query} />}
      </div>
      <Link class="panel-more" href={siteHref(hostname, query, active)}>
        All {DATASETS[active].title.toLowerCase()} →
      </Link>
    </section>
  );
}

function PropertiesPanel({ hostname, query, stats }) {
  const dataset = DATASETS.properties;
  const chosen = stats.filters.find((f) => f.field === "prop_name" && f.op === "eq");
  const path = statsPath(hostname, "properties");
  const namesParams = { start: stats.base.start, end: stats.base.end, ...filterParams(stats.filters, { withoutProps: true }) };
  const names = useApi(path, namesParams, `${stats.key}|names`);
  const rowsParams = { ...stats.base, limit: 5 };
  const rows = useApi(path, rowsParams, `${stats.key}|props`);
  const pickName = (name) => {
    let q = new URLSearchParams(query);
    for (const key of [...q.keys()]) if (key.startsWith("prop_name[") || key.startsWith("prop_value[")) q.delete(key);
    if (name !== "") q = withFilter(q, { field: "prop_name", op: "eq", value: name });
    navigate(siteHref(hostname, q), { replace: true });
  };
  const nameList = (names.data || []).filter((r) => r.name !== undefined);
  return (
    <section class="card panel" aria-label="Properties" data-panel="properties">
      <div class="panel-head">
        <h2 class="panel-title">Properties</h2>
        <label class="inline-label">
          <span class="visually-hidden">Property</span>
          <select aria-label="Property" value={chosen ? chosen.value : ""} onChange={(e) => pickName(e.currentTarget.value)}>
            <option value="">All properties</option>
            {chosen && !nameList.some((r) => r.name === chosen.value) && <option value={chosen.value}>{chosen.value}</option>}
            {nameList.map((r) => (
              <option key={r.name} value={r.name}>
                {r.name}
              </option>
            ))}
          </select>
        </label>
      </div>
      <div class="panel-body" data-dataset="properties" aria-busy={rows.loading ? "true" : "false"}>
        {rows.error ? (
          <ErrorView error={rows.error} />
        ) : rows.data === undefined ? (
          <Loading />
        ) : (
          <Rows dataset={dataset} rows={rows.data} hostname={hostname} query={query} />
        )}
      </div>
      <Link class="panel-more" href={siteHref(hostname, query, "properties")}>
        All properties →
      </Link>
    </section>
  );
}

/** Add `hostname` as a website, then open it (already added by someone else: open it all the same). */
async function addAndOpen(hostname) {
  try {
    await api("POST", "/websites", { body: { hostname } });
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 409)) throw err;
  }
  navigate(`/${encodeURIComponent(hostname)}`);
}

/** "23 hits from www.exmple.com were dropped: unknown site — add it?" for each unregistered hostname that sent hits. */
export function DropSuggestions({ drops, websites, limit = 5 }) {
  const [state, setState] = useState({ busy: "", error: "" });
  const sites = unknownSites(drops, websites).slice(0, limit);
  if (!sites.length) return null;
  const add = async (hostname) => {
    setState({ busy: hostname, error: "" });
    try {
      await addAndOpen(hostname);
    } catch (err) {
      setState({ busy: "", error: err.message || "Adding failed." });
    }
  };
  const { title } = reasonText("unknown_site");
  return (
    <div class="suggestions" data-testid="drop-suggestions">
      <ul>
        {sites.map(({ hostname, hits }) => (
          <li key={hostname} data-hostname={hostname}>
            <span>
              {formatExact(hits)} {hits === 1 ? "hit" : "hits"} from <code>{hostname}</code> {hits === 1 ? "was" : "were"} dropped:{" "}
              {title.toLowerCase()} — add it?
            </span>
            {cleanHostname(hostname).hostname === hostname && (
              <button type="button" class="button small-button" disabled={Boolean(state.busy)} onClick={() => add(hostname)}>
                Add {hostname}
              </button>
            )}
          </li>
        ))}
      </ul>
      <p class="form-error" role="alert">
        {state.error}
      </p>
    </div>
  );
}

function FirstHitWait({ hostname, onHit }) {
  const { data, reload } = useApi(`/website/${encodeURIComponent(hostname)}/summary`, {}, `first|${hostname}`);
  const empty = data && data.current && data.current.pageviews === 0;
  const drops = useApi(empty ? "/drops" : null, null, `drops|${hostname}`);
  const websites = useApi(empty ? "/websites" : null, null, `sites|${hostname}`);
  const tenant = useApi(empty ? "/tenant/settings" : null, null, "tenant");
  useInterval(
    () => {
      reload();
      drops.reload();
    },
    SNIPPET_POLL_MS,
    Boolean(empty),
  );
  const hasHits = Boolean(data && data.current && data.current.pageviews > 0);
  const waited = useRef(false);
  if (empty) waited.current = true;
  useEffect(() => {
    if (hasHits && waited.current) {
      waited.current = false;
      onHit(); // the first hit arrived while we watched: reload everything
    }
  }, [hasHits]);
  if (!empty) return null;
  const settled = tenant.data !== undefined || tenant.error;
  const base = trackerBase(tenant.data && tenant.data.public_url, location.origin);
  const snippet = snippetFor(base, hostname);
  return (
    <section class="card notice" aria-labelledby="snippet-title" data-testid="snippet">
      <h2 id="snippet-title">Waiting for the first visit to {hostname}</h2>
      <p>
        Add this tag to the <code>&lt;head&gt;</code> of every page of {hostname}. This page checks every few seconds and
        shows the stats as soon as the first page view arrives.
      </p>
      {settled ? <Snippet text={snippet} /> : <Loading />}
      {settled && <SnippetNote base={base} />}
      <DropSuggestions drops={drops.data} websites={websites.data} />
      <p class="muted small">
        The tracker sets no cookies. Pick extra tracker features and the address visitors reach this server at under{" "}
        <Link href="/settings/tracker">Settings → Tracker</Link>; see what was dropped under{" "}
        <Link href={`/settings/websites?website=${encodeURIComponent(hostname)}`}>Settings → Websites</Link>.
      </p>
    </section>
  );
}

/** A note when the period includes days of totals imported from another tool (api/imported.py). */
function ImportedNotice({ hostname, period }) {
  const { data } = useApi(statsPath(hostname, "imported"), null, `imported|${hostname}`);
  const start = isoDay(period.start);
  const end = isoDay(period.end);
  const shown = ((data && data.periods) || []).filter((p) => p.start <= end && p.end >= start);
  if (!shown.length) return null;
  return (
    <p class="muted small imported-notice" role="note" data-testid="imported-notice">
      {shown.map((p) => `Includes daily totals imported from ${p.tool} for ${p.start} to ${p.end}`).join("; ")}
      {" "}(added to the totals and lists; filters and medians leave them out).
    </p>
  );
}

/**
 * A note when an answer misses visits the site's retention deleted (api/retention.py): asks `path` with `query`
 * (null: nothing to ask) and shows the X-Medama-Partial header's day. `cacheKey` says when to ask again.
 */
export function PartialNotice({ path, query, cacheKey }) {
  const [note, setNote] = useState(null);
  const queryRef = useRef(query);
  queryRef.current = query;
  useEffect(() => {
    setNote(null);
    if (path === null) return undefined;
    const controller = new AbortController();
    partialNote(path, queryRef.current, controller.signal).then(setNote, () => {});
    return () => controller.abort();
  }, [path, cacheKey]);
  if (!note) return null;
  const day = note.replace(/^raw data kept from /, "");
  return (
    <p class="muted small partial-notice" role="note" data-testid="partial-notice">
      These numbers count only visits from {day} on: older visits are kept as totals only (this site's retention),
      which filters and some detail columns cannot split. The chart and the numbers without filters are complete.
    </p>
  );
}

export function SiteDashboard({ hostname, query }) {
  useTitle(hostname);
  const stats = useStatsBase(hostname, query);
  const { period, base, key } = stats;
  const site = statsPath(hostname, "summary");
  const shared = currentShare(); // a share link's dashboard: read-only, no account around it
  const canNote = !shared && isAdmin(useCurrentUser()); // adding and deleting notes is an admin's (docs/auth.md)
  const summary = useApi(site, { ...base, interval: period.interval }, `${key}|${period.interval}`);
  const previousQuery = { ...stats.fp, start: rfc3339(period.prevStart), end: rfc3339(period.prevEnd), interval: period.interval };
  const previous = useApi(site, previousQuery, `${key}|prev|${period.interval}`);
  // A window reaching into the future is compared with the previous one cut at the same elapsed time.
  const compareQuery = { ...stats.fp, start: rfc3339(period.prevStart), end: rfc3339(period.compareEnd) };
  const compare = useApi(period.live && period.period !== "all" ? site : null, compareQuery, `${key}|cmp`);
  const previousTotals = period.period === "all" ? undefined : period.live ? compare.data && compare.data.current : previous.data && previous.data.current;
  const metricKey = METRICS.some((m) => m.key === query.get("chart[stat]")) ? query.get("chart[stat]") : "visitors";
  const chartType = query.get("chart[type]") === "bar" ? "bar" : "area";
  const since = period.period === "today" ? "since yesterday" : period.period === "all" ? "" : "vs previous period";
  const path = pageBase(hostname);
  // A share link shows neither the owner's notes nor the site's settings (no account to read them with).
  const notes = useNotes(shared ? null : hostname, period);
  const siteSettings = useSiteSettings(shared ? null : hostname);
  const [picked, setPicked] = useState(null); // the day of a note being added
  const [chosenNote, setChosenNote] = useState(null); // the id of the note shown
  const shownNote = (notes.data || []).find((n) => n.id === chosenNote);
  const live = useLive(shared ? null : hostname);
  const progress = useProgress(shared ? null : hostname); // a share may not ask /progress

  if (summary.error && summary.data === undefined) {
    return (
      <ErrorView error={summary.error} title={summary.error.status === 404 ? `No website called ${hostname}` : undefined} />
    );
  }
  return (
    <div class="site">
      <div class="toolbar">
        <div class="toolbar-site">
          {shared ? <h1 class="share-title">{hostname}</h1> : <SiteSwitcher hostname={hostname} query={query} />}
          {!shared && <LiveCount live={live} />}
          {period.live && (
            <span class="muted small" title="The numbers of a period that includes now refresh every minute">
              · refreshes every minute
            </span>
          )}
        </div>
        <PeriodControls hostname={hostname} query={query} period={period} />
      </div>
      {period.invalid && (
        <p class="form-error" role="alert">
          Unknown date range in the address; showing today.
        </p>
      )}
      {!shared && <FirstHitWait hostname={hostname} onHit={stats.refresh} />}
      <ImportedNotice hostname={hostname} period={period} />
      {!shared && <PreparingNotice progress={progress} />}
      <PartialNotice
        path={stats.filters.length ? site : null}
        query={{ ...base, previous: true }}
        cacheKey={`${key}|partial`}
      />
      <div class="filter-bar">
        <FilterChips hostname={hostname} query={query} filters={stats.filters} path={path} />
        <AddFilter query={query} path={path} />
      </div>
      <MetricBoxes
        current={summary.data && summary.data.current}
        previous={previousTotals}
        selected={metricKey}
        since={since}
        busy={summary.loading}
        onSelect={(m) => navigate(siteHref(hostname, setParam(query, "chart[stat]", m === "visitors" ? null : m)), { replace: true })}
      />
      <section class="card chart-card" aria-label="Chart" aria-busy={summary.loading ? "true" : "false"}>
        <div class="chart-head">
          <h2 class="panel-title">
            {(METRICS.find((m) => m.key === metricKey) || METRICS[0]).title} · {period.label}
          </h2>
          <div class="chart-actions">
            {canNote && (
              <button
                type="button"
                class="button small-button"
                onClick={() => {
                  setChosenNote(null);
                  setPicked(isoDay(period.end > new Date() ? new Date() : period.end));
                }}
              >
                + Note
              </button>
            )}
            <div class="segmented" role="group" aria-label="Chart type">
              {["area", "bar"].map((t) => (
                <button
                  type="button"
                  key={t}
                  aria-pressed={chartType === t ? "true" : "false"}
                  onClick={() => navigate(siteHref(hostname, setParam(query, "chart[type]", t === "area" ? null : t)), { replace: true })}
                >
                  {t === "area" ? "Area" : "Bar"}
                </button>
              ))}
            </div>
          </div>
        </div>
        {summary.data === undefined ? (
          <Loading />
        ) : (
          <MainChart
            summary={summary.data}
            previous={previous.data}
            metricKey={metricKey}
            type={chartType}
            period={period}
            notes={notes.data}
            onPickDay={
              canNote &&
              ((day) => {
                setChosenNote(null);
                setPicked(day);
              })
            }
            onNote={(id) => {
              setPicked(null);
              setChosenNote(id);
            }}
          />
        )}
        {canNote && <p class="muted small chart-hint">Click the chart to add a note to that day.</p>}
        {picked && (
          <NoteForm
            hostname={hostname}
            day={picked}
            onCancel={() => setPicked(null)}
            onSaved={(note) => {
              setPicked(null);
              setChosenNote(note.id);
              notes.reload();
            }}
          />
        )}
        {shownNote && (
          <NoteCard
            hostname={hostname}
            note={shownNote}
            onClose={() => setChosenNote(null)}
            onDeleted={
              canNote &&
              (() => {
                setChosenNote(null);
                notes.reload();
              })
            }
          />
        )}
      </section>
      <div class="panels">
        {!shared && <LivePanel live={live} />}
        {PANELS.filter((panel) => panel.tabs.some(shows)).map((panel) => (
          <Panel key={panel.id} hostname={hostname} query={query} panel={panel} stats={stats} />
        ))}
        {shows("properties") && <PropertiesPanel hostname={hostname} query={query} stats={stats} />}
        {!shared && (
          <EventsPanel hostname={hostname} query={query} stats={stats} features={siteSettings.settings && siteSettings.settings.tracker.features} />
        )}
        {!shared && <GoalsPanel hostname={hostname} stats={stats} canManage={canNote} />}
      </div>
    </div>
  );
}

export { DETAIL_PARAMS };
