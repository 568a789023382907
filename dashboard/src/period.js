// Date-range presets → the [start, end] window, the chart interval and the comparison window.
// Every window is whole buckets in the browser's time zone; `end` is inclusive (hh:mm:59).

export const PRESETS = [
  ["today", "Today"],
  ["yesterday", "Yesterday"],
  ["12h", "Last 12 hours"],
  ["24h", "Last 24 hours"],
  ["72h", "Last 72 hours"],
  ["7d", "Last 7 days"],
  ["14d", "Last 14 days"],
  ["30d", "Last 30 days"],
  ["quarter", "Last 3 months"],
  ["half", "Last 6 months"],
  ["year", "Last 12 months"],
  ["all", "All time"],
  ["custom", "Custom range"],
];
export const INTERVALS = ["minute", "hour", "day", "week", "month"];
export const EARLIEST = new Date(2024, 0, 1); // upstream's floor for "all" and the custom picker
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const MAX_BUCKETS = 2000; // a chart of more points than pixels is noise; refuse such interval overrides

const startOfHour = (d) => new Date(d.getFullYear(), d.getMonth(), d.getDate(), d.getHours());
const startOfDay = (d) => new Date(d.getFullYear(), d.getMonth(), d.getDate());
const startOfMonth = (d) => new Date(d.getFullYear(), d.getMonth(), 1);
const addDays = (d, n) => new Date(d.getFullYear(), d.getMonth(), d.getDate() + n, d.getHours(), d.getMinutes());
const addMonths = (d, n) => new Date(d.getFullYear(), d.getMonth() + n, 1);
const startOfWeek = (d) => addDays(startOfDay(d), -((d.getDay() + 6) % 7)); // Monday
const endBefore = (d) => new Date(d.getTime() - 1000); // inclusive end one second before the next bucket

const pad = (n) => String(n).padStart(2, "0");

/** RFC 3339 with the browser's offset, seconds precision: 2024-06-01T00:00:00+02:00. */
export function rfc3339(date) {
  const offset = -date.getTimezoneOffset();
  const sign = offset >= 0 ? "+" : "-";
  const abs = Math.abs(offset);
  return (
    `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}` +
    `T${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}` +
    `${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`
  );
}

export function isoDay(date) {
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
}

export function parseDay(text) {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(text || "");
  if (!m) return null;
  const d = new Date(Number(m[1]), Number(m[2]) - 1, Number(m[3]));
  return d.getMonth() === Number(m[2]) - 1 ? d : null;
}

function customInterval(start, endExclusive) {
  const days = Math.round((endExclusive - start) / DAY);
  if (days <= 3) return "hour";
  if (days <= 62) return "day";
  if (days <= 190) return "week";
  return "month";
}

/** Window for a preset name ("today", "7d", "36h", …) at `now`; null for an unknown name. */
function presetWindow(period, now, query) {
  const hours = /^(\d{1,4})h$/.exec(period);
  const days = /^(\d{1,4})d$/.exec(period);
  if (period === "today") return { start: startOfDay(now), next: addDays(startOfDay(now), 1), interval: "hour" };
  if (period === "yesterday") {
    const start = addDays(startOfDay(now), -1);
    return { start, next: startOfDay(now), interval: "hour" };
  }
  if (hours && Number(hours[1]) > 0) {
    const next = new Date(startOfHour(now).getTime() + HOUR);
    return { start: new Date(next.getTime() - Number(hours[1]) * HOUR), next, interval: "hour" };
  }
  if (days && Number(days[1]) > 0) {
    const next = addDays(startOfDay(now), 1);
    return { start: addDays(next, -Number(days[1])), next, interval: "day" };
  }
  if (period === "quarter") {
    const next = addDays(startOfWeek(now), 7);
    return { start: startOfWeek(addMonths(now, -3)), next, interval: "week" };
  }
  if (period === "half" || period === "year") {
    const next = addMonths(now, 1);
    return { start: addMonths(now, period === "half" ? -5 : -11), next, interval: "month" };
  }
  if (period === "all") return { start: EARLIEST, next: addMonths(now, 1), interval: "month" };
  if (period === "custom") {
    const from = parseDay(query.get("start"));
    const to = parseDay(query.get("end"));
    if (!from || !to || to < from) return null;
    const next = addDays(to, 1);
    return { start: from, next, interval: customInterval(from, next) };
  }
  return null;
}

/** Number of interval buckets in [start, next). */
export function bucketCount(start, next, interval) {
  if (interval === "month") {
    return (next.getFullYear() - start.getFullYear()) * 12 + next.getMonth() - start.getMonth();
  }
  const step = { minute: MINUTE, hour: HOUR, day: DAY, week: 7 * DAY }[interval];
  return Math.ceil((next - start) / step);
}

/**
 * The resolved period of a dashboard URL:
 * { period, label, start, end, interval, prevStart, prevEnd, compareEnd, live, invalid }.
 * The previous period is the same length right before `start`, so bucket i of both lines up.
 * When the window reaches into the future, `compareEnd` cuts the previous period at the same
 * elapsed time, so "today so far" is compared with "yesterday until this time", not all of yesterday.
 */
export function resolvePeriod(query, now = new Date()) {
  let period = query.get("period") || "today";
  let window = presetWindow(period, now, query);
  let invalid = false;
  if (!window) {
    invalid = true;
    period = "today";
    window = presetWindow(period, now, query);
  }
  const { start, next } = window;
  let interval = window.interval;
  const override = query.get("interval");
  if (INTERVALS.includes(override) && bucketCount(start, next, override) <= MAX_BUCKETS) interval = override;
  const end = endBefore(next);
  const length = next - start;
  const prevStart = new Date(start.getTime() - length);
  const prevEnd = endBefore(start);
  const live = start <= now && now <= end;
  const elapsed = Math.min(length, Math.max(0, now - start));
  const compareEnd = live ? new Date(prevStart.getTime() + elapsed) : prevEnd;
  const preset = PRESETS.find(([key]) => key === period);
  const label = period === "custom" ? `${isoDay(start)} – ${isoDay(end)}` : preset ? preset[1] : `Last ${period}`;
  return { period, label, start, end, next, interval, prevStart, prevEnd, compareEnd, live, invalid };
}

/** Parse a bucket date from the API ("2024-06-01 13:00:00+00" or RFC 3339) into a Date. */
export function parseBucket(text) {
  const m = /^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)(Z|[+-]\d{2}(?::?\d{2})?)?$/.exec(text || "");
  if (!m) return new Date(NaN);
  let zone = m[3] || "";
  if (/^[+-]\d{2}$/.test(zone)) zone += ":00";
  else if (/^[+-]\d{4}$/.test(zone)) zone = zone.slice(0, 3) + ":" + zone.slice(3);
  return new Date(`${m[1]}T${m[2]}${zone}`);
}

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const WEEKDAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];

/** Short axis label for a bucket start. */
export function bucketLabel(date, interval) {
  if (Number.isNaN(date.getTime())) return "";
  if (interval === "minute" || interval === "hour") return `${pad(date.getHours())}:${pad(date.getMinutes())}`;
  if (interval === "day") return `${WEEKDAYS[date.getDay()]}, ${MONTHS[date.getMonth()]} ${date.getDate()}`;
  if (interval === "week") return `${MONTHS[date.getMonth()]} ${date.getDate()}`;
  return `${MONTHS[date.getMonth()]} ${date.getFullYear()}`;
}

/** Long label for tooltips: the whole bucket, with its day. */
export function bucketTitle(date, interval) {
  if (Number.isNaN(date.getTime())) return "";
  const day = `${WEEKDAYS[date.getDay()]}, ${MONTHS[date.getMonth()]} ${date.getDate()}, ${date.getFullYear()}`;
  if (interval === "minute" || interval === "hour") return `${day} ${pad(date.getHours())}:${pad(date.getMinutes())}`;
  if (interval === "week") return `Week of ${day}`;
  if (interval === "month") return `${MONTHS[date.getMonth()]} ${date.getFullYear()}`;
  return day;
}

const STEP_MS = { minute: MINUTE, hour: HOUR, day: DAY, week: 7 * DAY, month: 30 * DAY };
const ADDITIVE = ["visitors", "pageviews"];

/**
 * Fold stray buckets into their neighbour: the server cuts months in its own time zone (a window
 * starting at local midnight east of UTC gets a leading bucket of the month before) and steps days
 * in fixed 24 h (after a DST change, a last one-hour bucket). Counts are added; the median duration
 * and bounce rate of the kept bucket stand.
 */
export function foldBuckets(buckets, start, end, interval) {
  const half = (STEP_MS[interval] || HOUR) / 2;
  const kept = [];
  let carry = null;
  for (const bucket of buckets) {
    const at = parseBucket(bucket.date).getTime();
    const stray = at < start.getTime() - half || at > end.getTime() - half + 1000;
    if (stray && (kept.length || bucket !== buckets[buckets.length - 1])) {
      if (kept.length && at > start.getTime()) {
        const last = kept[kept.length - 1];
        for (const key of ADDITIVE) last[key] = (last[key] || 0) + (bucket[key] || 0);
      } else {
        carry = carry || { visitors: 0, pageviews: 0 };
        for (const key of ADDITIVE) carry[key] += bucket[key] || 0;
      }
      continue;
    }
    const copy = { ...bucket };
    if (carry) {
      for (const key of ADDITIVE) copy[key] = (copy[key] || 0) + carry[key];
      carry = null;
    }
    kept.push(copy);
  }
  return kept.length ? kept : buckets;
}

/** The bucket a chart legend shows when nothing is hovered: the last one that has started (later ones are future). */
export function latestBucket(xs, now = Date.now()) {
  for (let i = xs.length - 1; i >= 0; i -= 1) if (xs[i].getTime() <= now) return i;
  return xs.length - 1;
}
