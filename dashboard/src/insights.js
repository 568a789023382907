// Beyond page views: the tracker's link and not-found events, a site's own tracker settings, and chart notes.
import { isoDay, parseDay } from "./period.js";

// The custom event properties the tracker sends (docs/tracker.md), and the feature that makes it send them.
// Each tab lists one property's values (GET /website/{h}/properties with prop_name[eq]=…);
// `all` is the property the full table ("All …") lists.
export const EVENT_TABS = [
  { key: "outbound", title: "Outbound links", prop: "outbound-host", all: "outbound-link", feature: "outbound-links", noun: "outbound link clicks" },
  { key: "downloads", title: "Downloads", prop: "file-download", all: "file-download", feature: "file-downloads", noun: "file downloads" },
  { key: "notfound", title: "Not found", prop: "404", all: "404", feature: "not-found-pages", noun: "views of not-found pages" },
];

// The five optional tracker features: settings field, variant name, label and what each does.
export const FEATURES = [
  ["clickEvents", "click-events", "Click events", "Sends a custom event when an element with data-m:click is clicked."],
  ["pageEvents", "page-events", "Page view events", "Attaches data-m:load properties to page views."],
  ["outboundLinks", "outbound-links", "Outbound links", "Counts clicks on links to other sites (host and address)."],
  ["fileDownloads", "file-downloads", "File downloads", "Counts clicks on links to files with the extensions below."],
  ["notFoundPages", "not-found-pages", "Not-found pages", "Counts views of pages marked data-m:404 (or served with status 404)."],
];

/** "pdf, .ZIP  7z" → { value: ["pdf", "zip", "7z"] }; "" → { value: null } (the default list); or { error }. */
export function parseExtensions(text) {
  const items = text.split(/[\s,]+/).filter(Boolean).map((item) => item.replace(/^\./, "").toLowerCase());
  if (!items.length) return { value: null };
  const bad = items.find((item) => !/^[a-z0-9]{1,10}$/.test(item));
  if (bad !== undefined) return { error: `“${bad}” is not a file extension (1 to 10 letters or digits).` };
  const unique = [...new Set(items)];
  if (unique.length > 100) return { error: "At most 100 extensions." };
  return { value: unique };
}

/** A retention field's text → { value: days | null } or { error }. */
export function parseRetention(text) {
  const trimmed = text.trim();
  if (!trimmed) return { value: null };
  const days = Number(trimmed);
  if (!Number.isInteger(days) || days < 30 || days > 36525) return { error: "Keep data for 30 to 36,525 days, or leave it empty." };
  return { value: days };
}

/** A note's days as [from, to) in seconds at local midnights (the chart's time zone), for drawing. */
export function noteSpan(note) {
  const from = parseDay(note.start);
  const last = parseDay(note.end || note.start);
  if (!from || !last) return null;
  const to = new Date(last.getFullYear(), last.getMonth(), last.getDate() + 1);
  return { id: note.id, text: note.text, from: from.getTime() / 1000, to: to.getTime() / 1000 };
}

/**
 * The day a click on the chart picks: the day of the bucket nearest the pointer (`xs` ascending Dates).
 * Points (area) and bars are drawn at their bucket's start, so the nearest one is the one under the pointer.
 */
export function pickedDay(xs, seconds) {
  let chosen = null;
  for (const x of xs) {
    if (chosen === null || Math.abs(x.getTime() / 1000 - seconds) < Math.abs(chosen.getTime() / 1000 - seconds)) chosen = x;
  }
  return isoDay(chosen || new Date(seconds * 1000));
}

/** "3 Jun 2024" or "3 – 9 Jun 2024" for a note. */
export function noteDays(note) {
  const day = (text) => {
    const date = parseDay(text);
    return date ? date.toLocaleDateString("en-GB", { day: "numeric", month: "short", year: "numeric" }) : text;
  };
  return note.end ? `${day(note.start)} – ${day(note.end)}` : day(note.start);
}

/** A link as a row shows it: the path alone on the site itself, else host and path, never the scheme. */
export function shortUrl(text, hostname) {
  let url;
  try {
    url = new URL(text);
  } catch {
    return text;
  }
  const rest = url.pathname + url.search;
  return url.hostname === hostname ? rest : url.host + rest;
}
