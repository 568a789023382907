/** "Numbers being prepared": a site's background work still catching up (GET /website/{h}/progress), with how far. */
import { useRef } from "preact/hooks";
import { formatExact } from "../format.js";
import { useApi, useInterval } from "../hooks.js";

/** Asked again this often while work is left: one small query (two counts) per open dashboard, none once ready. */
export const PROGRESS_POLL_MS = 3000;

function plural(count, word) {
  return `${formatExact(count)} ${word}${count === 1 ? "" : "s"}`;
}

/**
 * The site's /progress answer, asked on opening and again every PROGRESS_POLL_MS until it says ready; none for
 * hostname null (a share link's dashboard may not ask it).
 */
export function useProgress(hostname) {
  const progress = useApi(hostname === null ? null : `/website/${encodeURIComponent(hostname)}/progress`, null, `progress|${hostname}`);
  const waiting = Boolean(progress.data && !progress.data.ready);
  useInterval(progress.reload, PROGRESS_POLL_MS, hostname !== null && waiting);
  return progress;
}

/** A notice while the site's numbers wait for background work: they are exact meanwhile, only slower. */
export function PreparingNotice({ progress }) {
  // The most work seen waiting since the page opened: the bar shows how much of it is done.
  const most = useRef(0);
  const data = progress.data;
  if (!data || data.ready) {
    most.current = 0;
    return null;
  }
  const left = data.hours + data.blocks;
  most.current = Math.max(most.current, left);
  const done = most.current ? 1 - left / most.current : 0;
  return (
    <section class="card notice preparing" aria-labelledby="preparing-title" data-testid="preparing">
      <h2 class="panel-title" id="preparing-title">
        Numbers being prepared
      </h2>
      <p class="small" aria-live="polite">
        New or imported data is being summarised in the background: {plural(data.hours, "hour")} and {plural(data.blocks, "block")}{" "}
        left. The numbers below are exact meanwhile, but may load slowly.
      </p>
      <div class="progress" role="progressbar" aria-label="Numbers prepared" aria-valuemin="0" aria-valuemax="100" aria-valuenow={(done * 100).toFixed(0)}>
        <span style={{ width: `${(done * 100).toFixed(1)}%` }} />
      </div>
    </section>
  );
}
