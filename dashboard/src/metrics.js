// What each metric means (shown on tap, not only on hover), the change badge, and the bounce-rate floor.

export const BOUNCE_MIN_VIEWS = 6; // spec §4.1: with 5 or fewer timed first visits the API answers 0

/** One definition per metric, matching the API's formulas (spec §4.1); `pageVisitors` is the pages/time tables' column. */
export const DEFINITIONS = {
  visitors:
    "Visitors: browsers on their first page view of the day (days end at 00:00 UTC). Over several days this is the sum of each day's unique visitors, so someone who comes on 3 days counts 3 times.",
  pageVisitors:
    "Visitors of a page: browsers on their first view of that page on the day (UTC), summed over the days of the period.",
  pageviews: "Page views: every page load, repeat views included.",
  duration:
    "Time spent: the median time on page over all page views whose time was measured (the tracker reports it when the page is hidden or closed). N/A when none was measured.",
  bounces:
    "Bounce rate: of the first visits of the day (UTC) with a measured time on page, the share that stayed from 0.1 to 5 seconds. Shorter visits count in the total but not as bounces; visits without a measured time are left out. It needs at least 6 such visits: with fewer the server answers 0, shown here as —. Lower is better.",
  share: "Share: this row's visitors as a part of all visitors in the period.",
  viewsShare: "Share of page views: this page's views as a part of all page views in the period.",
  quartiles: "Q1 and Q3: a quarter of the measured times on this page are shorter than Q1, a quarter longer than Q3.",
  durationShare: "Duration %: this page's total measured time as a part of the total over the pages listed.",
  events: "Events: custom events sent with this property (a page view carrying properties counts once per property).",
  eventsShare: "Events %: this row's events as a part of all events with a property in the period.",
  entries:
    "Entries: views of this page that did not come from another page of the site (from another site, a bookmark, a typed address). A reload or a new tab opened on an entry page counts again.",
  entriesShare: "Entries %: this page's entries as a part of all entries in the period.",
  exits:
    "Exits: views of this page less the views that came from it by a link or an app's route change. There is no visit: a page left with the back button, or in a tab kept open, can be counted wrongly.",
  exitsShare: "Exits %: this page's exits as a part of all exits in the period.",
  exitRate: "Exit rate: this page's exits as a part of its views.",
};

/** The note under a table with "—" bounce rates; `unit` is what the floor is judged on (visitors, or page views). */
export function bounceNote(unit) {
  return (
    `— in Bounce %: no rate to show. A bounce rate needs at least 6 first visits with a measured time on page, and ` +
    `below that the server answers 0. With fewer than 6 ${unit} that is certain; with more, a 0 may also be a true ` +
    `0 %, and these numbers cannot tell which.`
  );
}

export const BOUNCE_FEW =
  "Not enough data: a bounce rate needs at least 6 first visits with a measured time on page, and this has fewer.";
export const BOUNCE_UNCLEAR =
  "The server answered 0, which means either that none of the first visits left within 5 seconds or that fewer than 6 of them had a measured time on page. These numbers cannot tell which, so no rate is shown.";

/**
 * How to show a bounce rate: `{ known: true }`, or `{ known: false, reason }` when the API's 0 may be its floor.
 * `bound` is a count that is at least the number of first visits with a measured time: visitors (unique-visitor views)
 * for the summary and most lists, page views for the pages list (whose visitors are per page). `duration` is the
 * median time: 0 means no view had a measured time at all.
 */
export function bounceState(rate, bound, duration) {
  if (typeof rate !== "number" || !Number.isFinite(rate)) return { known: false, reason: BOUNCE_FEW, few: true };
  if (rate > 0) return { known: true };
  if ((typeof bound === "number" && bound < BOUNCE_MIN_VIEWS) || duration === 0) return { known: false, reason: BOUNCE_FEW, few: true };
  return { known: false, reason: BOUNCE_UNCLEAR, few: false };
}

/**
 * The change badge: `{ kind: "change", value }` (rounded percent, or points for bounce rate), `{ kind: "new" }` when
 * there was nothing before, `{ kind: "none" }` when there was nothing either time, `{ kind: "unknown" }` when one side
 * has no value to compare (a bounce rate under its floor).
 */
export function changeBadge(current, previous, points = false) {
  if (current === null || previous === null || current === undefined || previous === undefined) return { kind: "unknown" };
  if (points) return { kind: "change", value: Math.round((current - previous) * 1000) / 10 };
  if (!previous) return current ? { kind: "new" } : { kind: "none" };
  return { kind: "change", value: Math.round(((current - previous) / previous) * 100) };
}
