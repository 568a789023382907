// Number formatting shared by every page (spec §4.5): compact counts, XhYmZs durations, 1-decimal percentages.

const compact = new Intl.NumberFormat("en", { notation: "compact", maximumFractionDigits: 1 });
const whole = new Intl.NumberFormat("en");

export const DIRECT = "Direct / None";

export function formatCount(n) {
  return typeof n === "number" && Number.isFinite(n) ? compact.format(n) : "0";
}

export function formatExact(n) {
  return typeof n === "number" && Number.isFinite(n) ? whole.format(n) : "0";
}

/** Milliseconds → "N/A" (under 50 ms), "0.4s", "12s", "3m4s", "1h2m3s". */
export function formatDuration(ms) {
  if (typeof ms !== "number" || !Number.isFinite(ms) || ms < 50) return "N/A";
  if (ms < 950) return `0.${Math.round(ms / 100)}s`;
  const total = Math.round(ms / 1000);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  if (h) return `${h}h${m}m${s}s`;
  if (m) return `${m}m${s}s`;
  return `${s}s`;
}

/** A fraction 0–1 → "12.3%". */
export function formatPercent(fraction) {
  const value = typeof fraction === "number" && Number.isFinite(fraction) ? fraction * 100 : 0;
  return `${value.toFixed(1)}%`;
}

export function formatBytes(bytes) {
  if (typeof bytes !== "number" || !Number.isFinite(bytes) || bytes < 0) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

/** Label of a group; the empty string is a real group (direct traffic, no UTM tag). */
export function labelText(value) {
  return value === "" || value === undefined || value === null ? DIRECT : String(value);
}
