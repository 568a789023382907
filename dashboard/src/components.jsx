// Small shared pieces: chart, sparkline, dialog, tabs, copyable snippet, loading and error states.
import { useEffect, useRef, useState } from "preact/hooks";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { latestBucket } from "./period.js";
import { Link } from "./router.jsx";
import { snippetProblem } from "./snippet.js";
import { onThemeChange } from "./theme.js";

const css = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();

function useThemeVersion() {
  const [version, setVersion] = useState(0);
  useEffect(() => onThemeChange(() => setVersion((v) => v + 1)), []);
  return version;
}

/**
 * Time-series chart (uPlot). `xs` are Dates; `series` = [{label, values, previous?}].
 * `format` renders values for the y axis and legend; `xLabel`/`xTitle` render bucket starts.
 * `notes` = [{id, text, from, to}] (seconds) are drawn as bands with a marker button each, which calls
 * `onNote(id)`; a click elsewhere on the plot calls `onPick(seconds)` with the time under the pointer.
 */
const INTEGER_STEPS = [1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1e3, 2e3, 2.5e3, 5e3, 1e4, 2e4, 5e4, 1e5, 2e5, 5e5, 1e6, 2e6, 5e6, 1e7];

/** uPlot hooks that draw notes as bands behind the series, with a marker button on each band's left edge. */
function notesPlugin(notes, shift, onNote) {
  const markers = [];
  const place = (u) => {
    const left = u.bbox.left / devicePixelRatio;
    const right = left + u.bbox.width / devicePixelRatio;
    for (const { note, button } of markers) {
      const x = u.valToPos(note.from + shift, "x");
      const end = u.valToPos(note.to + shift, "x");
      const visible = end > 0 && x <= right - left;
      button.hidden = !visible;
      button.style.left = `${Math.max(0, x)}px`;
    }
  };
  return {
    hooks: {
      init: [
        (u) => {
          for (const note of notes) {
            const button = document.createElement("button");
            button.type = "button";
            button.className = "note-marker";
            button.textContent = "✎";
            button.title = note.text;
            button.setAttribute("aria-label", `Note: ${note.text}`);
            button.dataset.noteId = note.id;
            button.addEventListener("click", (event) => {
              event.stopPropagation();
              onNote(note.id);
            });
            u.over.append(button);
            markers.push({ note, button });
          }
        },
      ],
      drawClear: [
        (u) => {
          if (!notes.length) return;
          const { ctx, bbox } = u;
          ctx.save();
          ctx.fillStyle = css("--note-band") || "rgba(234, 179, 8, 0.18)";
          for (const note of notes) {
            const x0 = Math.max(bbox.left, u.valToPos(note.from + shift, "x", true));
            const x1 = Math.min(bbox.left + bbox.width, u.valToPos(note.to + shift, "x", true));
            if (x1 > x0) ctx.fillRect(x0, bbox.top, Math.max(x1 - x0, 2 * devicePixelRatio), bbox.height);
          }
          ctx.restore();
        },
      ],
      draw: [place],
    },
  };
}

export function Chart({ xs, series, type = "area", format, xLabel, xTitle, label, integer = false, notes = [], onPick, onNote }) {
  const box = useRef(null);
  const theme = useThemeVersion();
  const callbacks = useRef({});
  const chartRef = useRef(null);
  callbacks.current = { onPick, onNote }; // the chart is made once per data change; these may change in between
  useEffect(() => {
    const el = box.current;
    if (!el) return undefined;
    const accent = css("--accent");
    const muted = css("--muted");
    const grid = css("--grid");
    const xsSeconds = xs.map((d) => d.getTime() / 1000);
    // Without a hovered point (idx null) the legend shows the latest bucket rather than empty values.
    const latest = latestBucket(xs);
    const at = (values, idx) => values[idx == null ? latest : idx];
    const step = xsSeconds.length > 1 ? xsSeconds[1] - xsSeconds[0] : 3600;
    const bars = type === "bar" ? uPlot.paths.bars({ size: [0.7, 48] }) : undefined;
    const axis = { stroke: muted, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 }, font: "12px system-ui, sans-serif" };
    const opts = {
      width: Math.max(200, el.clientWidth),
      height: el.clientWidth < 500 ? 220 : 300,
      padding: [12, 36, 0, 4], // room on the right for the last date label
      cursor: { drag: { x: false, y: false }, points: { size: 7 } },
      legend: { live: true },
      scales: {
        x: { time: true, range: xsSeconds.length ? (u, min, max) => [min - (bars ? step / 2 : 0), max + (bars ? step / 2 : 0)] : undefined },
        y: { range: (u, min, max) => [0, max > 0 ? max * 1.15 : 1] },
      },
      axes: [
        {
          ...axis,
          // Ticks on bucket starts only (never between two buckets), thinned to fit the width.
          splits: (u) => {
            const sample = xs.length ? xLabel(xs[0]).length : 5;
            const room = Math.max(2, Math.floor(u.bbox.width / devicePixelRatio / (sample * 7.5 + 24)));
            const every = Math.max(1, Math.ceil(xsSeconds.length / room));
            return xsSeconds.filter((_, i) => i % every === 0);
          },
          values: (u, splits) => splits.map((v) => xLabel(new Date(v * 1000))),
        },
        { ...axis, values: (u, splits) => splits.map((v) => format(v)), size: 56, space: 36, incrs: integer ? INTEGER_STEPS : undefined },
      ],
      series: [
        { label: "", value: (u, v, si, idx) => (at(xsSeconds, idx) == null ? "" : xTitle(new Date(at(xsSeconds, idx) * 1000))) },
        ...series.map((s, i) => ({
          label: s.label,
          stroke: s.previous ? muted : accent,
          fill: s.previous ? undefined : type === "bar" ? accent : accent + "33",
          width: s.previous ? 1.5 : 2,
          dash: s.previous ? [6, 4] : undefined,
          paths: s.previous ? undefined : bars,
          points: { show: false },
          value: (u, v, si, idx) => {
            const value = at(s.values, idx);
            return value == null ? "—" : format(value);
          },
          _order: i,
        })),
      ],
    };
    // Each bucket is drawn at its start (a point, or a bar centred there): a note's band is shifted by half a
    // bucket so that it is centred on the points and bars of its days.
    opts.plugins = [notesPlugin(notes, -step / 2, (id) => callbacks.current.onNote && callbacks.current.onNote(id))];
    const chart = new uPlot(opts, [xsSeconds, ...series.map((s) => s.values)], el);
    // The listener is always there and reads the current onPick when clicked: the chart may have been made before
    // the user (and so whether they may add notes) was known, or remade by a late answer under a resting pointer, so
    // the place comes from the click itself rather than from the cursor uPlot tracks on mouse moves.
    chart.over.addEventListener("click", (event) => {
      if (!callbacks.current.onPick) return;
      const left = event.clientX - chart.over.getBoundingClientRect().left;
      if (left < 0 || left > chart.over.clientWidth) return;
      callbacks.current.onPick(chart.posToVal(left, "x"));
    });
    chartRef.current = chart;
    const observer = new ResizeObserver(() => {
      const width = Math.max(200, el.clientWidth);
      if (width !== chart.width) chart.setSize({ width, height: width < 500 ? 220 : 300 });
    });
    observer.observe(el);
    return () => {
      observer.disconnect();
      chartRef.current = null;
      chart.destroy();
    };
  }, [xs, series, type, theme, integer, notes]);
  useEffect(() => {
    if (chartRef.current) chartRef.current.over.classList.toggle("pickable", Boolean(onPick));
  });
  return <div class="chart" ref={box} role="img" aria-label={label} />;
}

/** A tiny inline SVG line, no library: visitors per hour on the website cards. */
export function Sparkline({ values, label }) {
  if (!values || values.length < 2) return <svg class="sparkline" aria-hidden="true" />;
  const max = Math.max(1, ...values);
  const points = values.map((v, i) => `${((i / (values.length - 1)) * 100).toFixed(2)},${(22 - (v / max) * 20).toFixed(2)}`);
  return (
    <svg class="sparkline" viewBox="0 0 100 24" preserveAspectRatio="none" role="img" aria-label={label}>
      <polyline class="sparkline-area" points={`0,24 ${points.join(" ")} 100,24`} />
      <polyline class="sparkline-line" points={points.join(" ")} vector-effect="non-scaling-stroke" />
    </svg>
  );
}

/** A modal <dialog>: focus is trapped by the browser, Escape closes it. */
export function Dialog({ open, title, onClose, children }) {
  const ref = useRef(null);
  useEffect(() => {
    const dialog = ref.current;
    if (!dialog) return;
    if (open && !dialog.open) dialog.showModal();
    if (!open && dialog.open) dialog.close();
  }, [open]);
  return (
    <dialog ref={ref} class="dialog" onClose={onClose} aria-labelledby="dialog-title">
      <div class="dialog-head">
        <h2 id="dialog-title">{title}</h2>
        <button type="button" class="icon-button" aria-label="Close" onClick={onClose}>
          ×
        </button>
      </div>
      {open && children}
    </dialog>
  );
}

/** Tabs that change a URL parameter: arrow keys move between them. */
export function Tabs({ tabs, active, onSelect, label }) {
  const row = useRef(null);
  const [more, setMore] = useState("");
  const measure = () => {
    const el = row.current;
    if (!el) return;
    const left = el.scrollLeft > 1;
    const right = el.scrollLeft + el.clientWidth < el.scrollWidth - 1;
    setMore(left && right ? "both" : left ? "left" : right ? "right" : "");
  };
  useEffect(() => {
    const el = row.current;
    const tab = el && el.querySelector("[aria-selected=true]");
    if (tab) {
      // Scroll the row itself (not the page) so the chosen tab is wholly visible, with a little of its neighbour.
      const pad = 24;
      const left = tab.getBoundingClientRect().left - el.getBoundingClientRect().left + el.scrollLeft;
      const right = left + tab.offsetWidth;
      if (left - pad < el.scrollLeft) el.scrollLeft = Math.max(0, left - pad);
      else if (right + pad > el.scrollLeft + el.clientWidth) el.scrollLeft = right + pad - el.clientWidth;
    }
    measure();
    if (!el) return undefined;
    const observer = new ResizeObserver(measure);
    observer.observe(el);
    return () => observer.disconnect();
  }, [active]);
  const keydown = (event) => {
    const index = tabs.findIndex(([key]) => key === active);
    let next = -1;
    if (event.key === "ArrowRight") next = (index + 1) % tabs.length;
    if (event.key === "ArrowLeft") next = (index - 1 + tabs.length) % tabs.length;
    if (next >= 0) {
      event.preventDefault();
      onSelect(tabs[next][0]);
      requestAnimationFrame(() => event.currentTarget?.querySelectorAll?.("[role=tab]")[next]?.focus());
    }
  };
  return (
    <div class="tabs" role="tablist" aria-label={label} onKeyDown={keydown} ref={row} onScroll={measure} data-more={more || undefined}>
      {tabs.map(([key, title]) => (
        <button
          type="button"
          role="tab"
          key={key}
          id={`tab-${key}`}
          aria-selected={key === active ? "true" : "false"}
          tabIndex={key === active ? 0 : -1}
          class="tab"
          onClick={() => onSelect(key)}
        >
          {title}
        </button>
      ))}
    </div>
  );
}

export function Snippet({ text, label = "Tracking snippet" }) {
  const [copied, setCopied] = useState("");
  const ref = useRef(null);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(text);
      setCopied("Copied to the clipboard.");
      return;
    } catch {
      // No Clipboard API on a page that is not a secure context (a dashboard on plain HTTP): select the
      // text and let the browser copy the selection, as every browser still does for a click.
    }
    const range = document.createRange();
    range.selectNodeContents(ref.current);
    const selection = getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    let done = false;
    try {
      done = document.execCommand("copy");
    } catch {
      done = false;
    }
    setCopied(done ? "Copied to the clipboard." : "Selected: copy it with Ctrl+C (⌘C on a Mac; on a phone, touch and hold it).");
  };
  return (
    <div class="snippet">
      <pre aria-label={label} tabIndex={0}>
        <code ref={ref}>{text}</code>
      </pre>
      <div class="snippet-actions">
        <button type="button" class="button" onClick={copy}>
          Copy
        </button>
        <span role="status" class="muted">
          {copied}
        </span>
      </div>
    </div>
  );
}

/** Under a tracking snippet whose address visitors may not be able to use (snippetProblem), what to do about it. */
export function SnippetNote({ base, settingsLink = true }) {
  const problem = snippetProblem(base);
  if (!problem) return null;
  const where = settingsLink ? (
    <>
      under <Link href="/settings/tracker">Settings → Tracker</Link>
    </>
  ) : (
    "above"
  );
  return (
    <div class="callout small" role="note" aria-label="About the snippet's address" data-testid="snippet-note" data-problem={problem}>
      {problem === "loopback" ? (
        <p>
          <strong>This snippet points at this computer.</strong> Only pages opened on the machine running the server can
          reach <code>{base}</code>. If you opened the dashboard through an SSH tunnel, set the address visitors reach the
          server at as the public address {where}.
        </p>
      ) : (
        <p>
          <strong>Pages served over https:// will not load this.</strong> The snippet's address is plain{" "}
          <code>http://</code>, and browsers refuse an <code>http://</code> script on an <code>https://</code> page (mixed
          content), so their visits would never arrive. Give this server HTTPS (<code>-autossl</code>,{" "}
          <code>-tlscert</code> or a TLS proxy) and set its <code>https://</code> address as the public address {where}.
        </p>
      )}
    </div>
  );
}

export function Loading({ label = "Loading…" }) {
  return (
    <div class="loading" role="status">
      <span class="spinner" aria-hidden="true" />
      {label}
    </div>
  );
}

const ERROR_COPY = {
  0: ["Cannot reach the server", "Check your connection; the page will work again once the server answers."],
  400: ["That request was not valid", "The server could not use what was sent."],
  401: ["You are logged out", "Log in to continue."],
  403: ["Not allowed", "This server is in demo mode, or you may not do this."],
  404: ["Not found", "There is nothing here. It may have been deleted or renamed."],
  409: ["Already exists", "Something with that name already exists."],
  500: ["Something went wrong on the server", "Try again in a moment. If it keeps happening, check the server log."],
};

/** An error panel for a failed API call, with copy per status and the server's message as text. */
export function ErrorView({ error, title, children }) {
  const status = error && typeof error.status === "number" ? error.status : 500;
  const [heading, body] = ERROR_COPY[status] || ERROR_COPY[500];
  return (
    <div class="error-view" role="alert">
      <h2>{title || heading}</h2>
      <p>{body}</p>
      {error && error.message ? (
        <p class="muted">
          {status ? `${status}: ` : ""}
          {error.message}
        </p>
      ) : null}
      {children || (
        <p>
          <Link href="/">Back to your websites</Link>
        </p>
      )}
    </div>
  );
}

export function Empty({ children }) {
  return <p class="empty">{children}</p>;
}

/** A country's ISO code as a small chip: visible everywhere, unlike flag emoji, which need a font most servers lack. */
export function Flag({ code }) {
  if (!code) return null;
  return (
    <span class="flag" aria-hidden="true" data-code={code}>
      {code}
    </span>
  );
}

/**
 * A row label: text, with a country's code chip in front.
 */
export function Label({ text, code }) {
  return code ? (
    <>
      <Flag code={code} /> {text}
    </>
  ) : (
    text
  );
}
