/** Live visitors: the pages of a site open now, as a count beside its name and a panel (GET /website/{h}/live). */
import { Empty, Label } from "../components.jsx";
import { DATASETS, displayLabel, labelCode } from "../datasets.js";
import { formatExact } from "../format.js";
import { useApi, useInterval } from "../hooks.js";

/** A new visit shows within seconds; one small query (the last 30 minutes of one site) per open dashboard. */
export const LIVE_POLL_MS = 5000;

const LISTS = [
  ["pages", "path"],
  ["referrers", "referrer"],
  ["countries", "country"],
];

const RULE = "Pages open now: loaded in the last 30 minutes and not yet left. Each open page counts once.";

/** The site's /live answer, asked again every LIVE_POLL_MS while the tab is visible; none for hostname null. */
export function useLive(hostname) {
  // hostname null: not asked (a share link's dashboard: a few open pages could single out a visitor).
  const live = useApi(hostname === null ? null : `/website/${encodeURIComponent(hostname)}/live`, null, `live|${hostname}`);
  useInterval(live.reload, LIVE_POLL_MS, hostname !== null);
  return live;
}

function visitors(count) {
  return `${formatExact(count)} ${count === 1 ? "visitor" : "visitors"}`;
}

/** "● 3 visitors now" beside the site's name; a link to the panel. */
export function LiveCount({ live }) {
  if (!live.data) return null;
  return (
    <a class="live live-count small" href="#live" title={RULE} data-testid="live-count">
      <span class="live-dot" aria-hidden="true" /> <span aria-live="polite">{visitors(live.data.visitors)} now</span>
    </a>
  );
}

/** What the open pages are, where their visitors came from and where they are. */
export function LivePanel({ live }) {
  if (!live.data) return null;
  const { data } = live;
  return (
    <section class="card panel live-panel" id="live" aria-labelledby="live-title" data-testid="live-panel">
      <h2 class="panel-title" id="live-title">
        Right now · {visitors(data.visitors)}
      </h2>
      {data.visitors === 0 ? (
        <Empty>No page of this site is open right now.</Empty>
      ) : (
        <div class="live-lists">
          {LISTS.map(([name, key]) => (
            <div key={name} data-live={name}>
              <h3 class="live-list-title muted small">{DATASETS[name].title}</h3>
              <ol class="rows">
                {data[name].map((row) => (
                  <li key={row[key]} class="row live-row">
                    <span class="row-label">
                      <Label text={displayLabel(DATASETS[name], row[key])} code={labelCode(DATASETS[name], row[key])} />
                    </span>
                    <span class="row-value">{formatExact(row.visitors)}</span>
                  </li>
                ))}
              </ol>
            </div>
          ))}
        </div>
      )}
      <p class="muted small">{RULE} Updated every few seconds.</p>
    </section>
  );
}
