// Detail table of one dataset: every column, server-side pages (limit/offset), sortable columns.
import { Empty, ErrorView, Label, Loading } from "../components.jsx";
import { DATASETS, DATASET_NAMES, datasetParams, displayLabel, labelCode, rowLabel } from "../datasets.js";
import { fieldLabel, withFilter } from "../filters.js";
import { labelText } from "../format.js";
import { useApi, useTitle } from "../hooks.js";
import { DEFINITIONS, bounceNote, bounceState } from "../metrics.js";
import { Link, navigate } from "../router.jsx";
import { currentShare, shows, statsPath } from "../scope.js";
import { ExportCsv } from "./insights.jsx";
import { DETAIL_PARAMS, PartialNotice, siteHref, useStatsBase, without } from "./site.jsx";

export const PAGE_SIZES = [10, 25, 50, 100];
const SORTED_LIMIT = 5000; // the API's largest page: a sort other than the server's order loads this many rows

/** The definition behind each column (reachable by keyboard and tap in the table's "What the columns mean"). */
export function columnDefinition(dataset, key) {
  const perPage = ["pages", "time", "entries", "exits"].includes(dataset.name);
  const map = {
    visitors: perPage ? DEFINITIONS.pageVisitors : DEFINITIONS.visitors,
    visitors_percentage: DEFINITIONS.share,
    pageviews: DEFINITIONS.pageviews,
    pageviews_percentage: DEFINITIONS.viewsShare,
    bounce_percentage: DEFINITIONS.bounces,
    duration: DEFINITIONS.duration,
    duration_lower_quartile: DEFINITIONS.quartiles,
    duration_upper_quartile: DEFINITIONS.quartiles,
    duration_percentage: DEFINITIONS.durationShare,
    events: DEFINITIONS.events,
    events_percentage: DEFINITIONS.eventsShare,
    entries: DEFINITIONS.entries,
    entries_percentage: DEFINITIONS.entriesShare,
    exits: DEFINITIONS.exits,
    exits_percentage: DEFINITIONS.exitsShare,
    exit_percentage: DEFINITIONS.exitRate,
  };
  return map[key] || "";
}

const definitionId = (key) => `define-${key === "duration_upper_quartile" ? "duration_lower_quartile" : key}`;

/** A row's bounce rate as the table shows it: the API's 0 under its floor is "—" (spec §4.1). */
function bounceOf(dataset, row) {
  // First visits with a measured time are at most the row's unique visitors; for pages (visitors per page) its views.
  const bound = dataset.name === "pages" ? row.pageviews : row.visitors;
  return bounceState(row.bounce_percentage, bound, row.duration);
}

function compareValues(a, b) {
  if (typeof a === "number" || typeof b === "number") return (Number(a) || 0) - (Number(b) || 0);
  return String(a ?? "").localeCompare(String(b ?? ""), "en", { sensitivity: "base", numeric: true });
}

export function Detail({ hostname, name, query }) {
  const dataset = DATASETS[name];
  useTitle(`${dataset.title} · ${hostname}`);
  const stats = useStatsBase(hostname, query);
  const size = PAGE_SIZES.includes(Number(query.get("size"))) ? Number(query.get("size")) : 25;
  const page = Math.max(1, Math.floor(Number(query.get("page")) || 1));
  const sortKey = dataset.columns.some((c) => c.key === query.get("sort")) ? query.get("sort") : "";
  const order = query.get("order") === "asc" ? "asc" : "desc";
  const propName = name === "properties" && stats.filters.some((f) => f.field === "prop_name" && f.op === "eq");
  // The server's order (visitors/events first) pages on the server; any other order needs every row.
  const serverPaged = !sortKey;
  const params = { ...stats.base, ...datasetParams(dataset, stats.filters) };
  if (!dataset.noSummary) params.summary = false;
  if (serverPaged) {
    params.limit = size + 1; // one extra row tells whether a next page exists
    if (page > 1) params.offset = (page - 1) * size;
  } else {
    params.limit = SORTED_LIMIT;
  }
  const { data, error, loading } = useApi(statsPath(hostname, name), params, `${stats.key}|${name}|${JSON.stringify(params)}`);
  // The whole filtered table for "Export CSV": the same query without limit/offset (the API then answers every row).
  const exportParams = { ...stats.base, ...datasetParams(dataset, stats.filters) };
  if (!dataset.noSummary) exportParams.summary = false;

  let rows = [];
  let hasNext = false;
  let truncated = false;
  if (Array.isArray(data)) {
    const labelled = data.map((row) => ({ ...row, label: rowLabel(dataset, row).value }));
    if (serverPaged) {
      hasNext = labelled.length > size;
      rows = labelled.slice(0, size);
    } else {
      const direction = order === "asc" ? 1 : -1;
      const sorted = [...labelled].sort((a, b) => direction * compareValues(a[sortKey], b[sortKey]) || compareValues(a.label, b.label));
      truncated = data.length >= SORTED_LIMIT;
      rows = sorted.slice((page - 1) * size, page * size);
      hasNext = sorted.length > page * size;
    }
  }
  const go = (changes) => {
    const next = new URLSearchParams(query);
    for (const [key, value] of Object.entries(changes)) {
      if (value === null || value === "") next.delete(key);
      else next.set(key, String(value));
    }
    navigate(siteHref(hostname, next, name), { replace: true });
  };
  const sortBy = (column) => {
    if (sortKey === column.key) {
      go({ order: order === "desc" ? "asc" : "desc", page: null });
    } else {
      go({ sort: column.key, order: column.numeric ? "desc" : "asc", page: null });
    }
  };
  const filterRow = (row) => {
    const { value, field } = rowLabel(dataset, row);
    navigate(siteHref(hostname, without(withFilter(query, { field, op: "eq", value }), DETAIL_PARAMS)));
  };
  const back = siteHref(hostname, without(query, DETAIL_PARAMS));
  const navQuery = without(query, ["page", "sort", "order"]);
  const columns = dataset.columns.map((c) => (c.key === "label" && propName ? { ...c, title: "Value" } : c));

  return (
    <div class="detail">
      <div class="page-head">
        <Link href={back} class="back-link">
          ← Back to {hostname}
        </Link>
      </div>
      <div class="detail-layout">
        <nav class="detail-nav card" aria-label="Datasets">
          <ul>
            {DATASET_NAMES.filter(shows).map((n) => (
              <li key={n}>
                <Link href={siteHref(hostname, navQuery, n)} aria-current={n === name ? "page" : undefined}>
                  {DATASETS[n].title}
                </Link>
              </li>
            ))}
          </ul>
        </nav>
        <section class="card detail-main" aria-labelledby="detail-title">
          <div class="detail-head">
            <h1 id="detail-title" class="detail-title">
              {dataset.title} <span class="muted small">{stats.period.label}</span>
            </h1>
            {/* The owner's export; a share link's visitor reads the table as the link shows it. */}
            {!currentShare() && <ExportCsv path={`/website/${encodeURIComponent(hostname)}/${name}`} params={exportParams} name={`${hostname}-${name}.csv`} />}
          </div>
          <PartialNotice path={statsPath(hostname, name)} query={{ ...exportParams, limit: 1 }} cacheKey={`${stats.key}|${name}|partial`} />
          {error ? (
            <ErrorView error={error} />
          ) : data === undefined ? (
            <Loading />
          ) : !rows.length ? (
            <Empty>{page > 1 ? "No more rows." : "No data for this period."}</Empty>
          ) : (
            <div class="table-wrap" aria-busy={loading ? "true" : "false"}>
              <table class="table">
                <thead>
                  <tr>
                    {columns.map((c) => (
                      <th
                        key={c.key}
                        scope="col"
                        class={c.numeric ? "num" : ""}
                        aria-sort={sortKey === c.key ? (order === "asc" ? "ascending" : "descending") : undefined}
                      >
                        <button
                          type="button"
                          class="sort-button"
                          onClick={() => sortBy(c)}
                          data-column={c.key}
                          aria-describedby={columnDefinition(dataset, c.key) ? definitionId(c.key) : undefined}
                        >
                          {c.title}
                          <span aria-hidden="true" class="sort-mark">
                            {sortKey === c.key ? (order === "asc" ? " ▲" : " ▼") : ""}
                          </span>
                        </button>
                      </th>
                    ))}
                  </tr>
                </thead>
                <tbody>
                  {rows.map((row, i) => (
                    <tr key={`${i}:${row.label}`}>
                      {columns.map((c) =>
                        c.key === "label" ? (
                          <th scope="row" key={c.key} class="label-cell">
                            <button
                              type="button"
                              class="link-button"
                              title={`Filter by ${fieldLabel(rowLabel(dataset, row).field)}: ${labelText(row.label)}`}
                              onClick={() => filterRow(row)}
                            >
                              <Label text={displayLabel(dataset, row.label)} code={labelCode(dataset, row.label)} />
                            </button>
                          </th>
                        ) : c.key === "bounce_percentage" && row[c.key] !== undefined && !bounceOf(dataset, row).known ? (
                          <td key={c.key} class="num" title={bounceOf(dataset, row).reason} aria-describedby="bounce-note">
                            <span data-bounce={bounceOf(dataset, row).few ? "few" : "unclear"}>—</span>
                          </td>
                        ) : (
                          <td key={c.key} class="num">
                            {row[c.key] === undefined ? "–" : c.format(row[c.key])}
                          </td>
                        ),
                      )}
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
          {rows.some((row) => row.bounce_percentage !== undefined && !bounceOf(dataset, row).known) && (
            <p class="muted small" id="bounce-note">
              {bounceNote(dataset.name === "pages" ? "page views" : "visitors")}
            </p>
          )}
          {truncated && <p class="muted small">Sorted over the first {SORTED_LIMIT} rows.</p>}
          <details class="definitions">
            <summary>What the columns mean</summary>
            <dl>
              {columns
                .filter((c) => columnDefinition(dataset, c.key) && !(c.key === "duration_upper_quartile"))
                .map((c) => (
                  <div key={c.key}>
                    <dt>{c.key === "duration_lower_quartile" ? "Q1 and Q3" : c.title}</dt>
                    <dd id={definitionId(c.key)}>{columnDefinition(dataset, c.key)}</dd>
                  </div>
                ))}
            </dl>
          </details>
          <div class="pager">
            <label class="inline-label">
              <span>Rows per page</span>
              <select value={String(size)} onChange={(e) => go({ size: e.currentTarget.value === "25" ? null : e.currentTarget.value, page: null })}>
                {PAGE_SIZES.map((s) => (
                  <option key={s} value={String(s)}>
                    {s}
                  </option>
                ))}
              </select>
            </label>
            <span class="muted" aria-live="polite">
              Page {page}
            </span>
            <button type="button" class="button" disabled={page <= 1} onClick={() => go({ page: page - 1 === 1 ? null : page - 1 })}>
              ← Previous
            </button>
            <button type="button" class="button" disabled={!hasNext} onClick={() => go({ page: page + 1 })}>
              Next →
            </button>
          </div>
        </section>
      </div>
    </div>
  );
}
