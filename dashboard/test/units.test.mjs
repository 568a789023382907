// Unit tests of the dashboard's pure modules, with Node's own runner (no packages needed):
//   TZ=Europe/Berlin node --test test/
import assert from "node:assert/strict";
import { test } from "node:test";
import { countryCode } from "../src/countries.js";
import { reasonText, siteDrops, unknownSites } from "../src/drops.js";
import { BOUNCE_FEW, BOUNCE_UNCLEAR, bounceState, changeBadge } from "../src/metrics.js";
import { DEFAULT_PASSWORD, passwordProblem, passwordRules } from "../src/password.js";
import { connection, pagePort, tunnel } from "../src/security.js";
import { checkPublicUrl, snippetFor, snippetProblem, trackerBase } from "../src/snippet.js";
import { parseFilters, withFilter, withoutFilter, filterParams } from "../src/filters.js";
import { formatCount, formatDuration, formatPercent, labelText } from "../src/format.js";
import { noteSpan, parseExtensions, parseRetention, pickedDay, shortUrl } from "../src/insights.js";
import { bucketCount, bucketLabel, latestBucket, parseBucket, resolvePeriod, rfc3339 } from "../src/period.js";

const q = (text) => new URLSearchParams(text);
const local = (...parts) => new Date(...parts);

test("durations follow XhYmZs, N/A under 50 ms", () => {
  assert.equal(formatDuration(undefined), "N/A");
  assert.equal(formatDuration(49), "N/A");
  assert.equal(formatDuration(50), "0.1s");
  assert.equal(formatDuration(440), "0.4s");
  assert.equal(formatDuration(960), "1s");
  assert.equal(formatDuration(12_400), "12s");
  assert.equal(formatDuration(184_000), "3m4s");
  assert.equal(formatDuration(3_723_000), "1h2m3s");
  assert.equal(formatDuration(3_600_000), "1h0m0s");
});

test("counts are compact, percentages have one decimal", () => {
  assert.equal(formatCount(999), "999");
  assert.equal(formatCount(1234), "1.2K");
  assert.equal(formatCount(2_500_000), "2.5M");
  assert.equal(formatPercent(0.1234), "12.3%");
  assert.equal(formatPercent(1), "100.0%");
  assert.equal(labelText(""), "Direct / None");
  assert.equal(labelText("Google"), "Google");
});

test("country codes (shown as chips, not emoji) come from country names", () => {
  assert.equal(countryCode("United Kingdom"), "GB");
  assert.equal(countryCode("Germany"), "DE");
  assert.equal(countryCode("Côte d’Ivoire"), "CI");
  assert.equal(countryCode("Unknown"), "");
});

test("change badge: new after nothing, nothing either time, unknown against a missing value", () => {
  assert.deepEqual(changeBadge(150, 100), { kind: "change", value: 50 });
  assert.deepEqual(changeBadge(5, 0), { kind: "new" });
  assert.deepEqual(changeBadge(0, 0), { kind: "none" });
  assert.deepEqual(changeBadge(0, 4), { kind: "change", value: -100 });
  assert.deepEqual(changeBadge(0.45, 0.3, true), { kind: "change", value: 15 });
  assert.deepEqual(changeBadge(0.45, null, true), { kind: "unknown" });
});

test("bounce rate: a 0 is shown as unknown, certainly under the floor when fewer than 6 views could count", () => {
  assert.deepEqual(bounceState(0.5, 6, 1000), { known: true });
  assert.deepEqual(bounceState(0, 5, 1000), { known: false, reason: BOUNCE_FEW, few: true });
  assert.deepEqual(bounceState(0, 40, 0), { known: false, reason: BOUNCE_FEW, few: true }); // no time measured at all
  assert.deepEqual(bounceState(0, 6, 1000), { known: false, reason: BOUNCE_UNCLEAR, few: false });
});

test("password rules as the user types", () => {
  const ok = (p, c) => passwordRules(p, c).map((r) => r.ok);
  assert.deepEqual(ok("", ""), [false, false, false]);
  assert.deepEqual(ok("abcd", "abcd"), [false, true, true]);
  assert.deepEqual(ok("abcde", "abcdx"), [true, true, false]);
  assert.deepEqual(ok(DEFAULT_PASSWORD, DEFAULT_PASSWORD), [true, false, true]);
  assert.deepEqual(ok("x".repeat(129), "x".repeat(129)), [false, true, true]);
  assert.equal(passwordProblem("abcde", "abcde"), "");
  assert.match(passwordProblem("abc", "abc"), /5 to 128 characters \(it has 3\)/);
  assert.match(passwordProblem(DEFAULT_PASSWORD, DEFAULT_PASSWORD), /other than the first-start one/);
  assert.equal(passwordProblem("abcdef", "abcdeg"), "The two new passwords differ.");
});

test("login advice: the tunnel command comes from the page's address", () => {
  const at = (href) => new URL(href);
  assert.deepEqual(tunnel(at("http://203.0.113.5:8080/login")), { command: "ssh -L 8080:localhost:8080 user@203.0.113.5", url: "http://localhost:8080/" });
  assert.deepEqual(tunnel(at("http://stats.example.com/login")), { command: "ssh -L 8080:localhost:80 user@stats.example.com", url: "http://localhost:8080/" });
  assert.equal(tunnel(at("http://[2001:db8::7]:9000/")).command, "ssh -L 9000:localhost:9000 user@2001:db8::7");
  assert.equal(pagePort(at("https://example.com/")), 443);
  assert.equal(connection(true, true), "ok");
  assert.equal(connection(false, true), "cookie-refused");
  assert.equal(connection(false, undefined), "cookie-refused");
  assert.equal(connection(false, false), "unencrypted");
});

test("dropped hits: unknown hostnames to add, and a site's rows", () => {
  const rows = [
    { date: "2026-06-02", hostname: "www.exmple.com", reason: "unknown_site", hits: 20 },
    { date: "2026-06-01", hostname: "www.exmple.com", reason: "unknown_site", hits: 3 },
    { date: "2026-06-02", hostname: "example.com", reason: "bot", hits: 7 },
    { date: "2026-06-02", hostname: "other.org", reason: "unknown_site", hits: 1 },
    { date: "2026-06-03", hostname: "", reason: "bad_payload", hits: 2 },
    { date: "2026-06-02", hostname: "mine.net", reason: "rate_limited", hits: 4 },
    { date: "2026-06-02", hostname: "Mine.net", reason: "unknown_site", hits: 9 },
  ];
  const websites = [{ hostname: "example.com" }, { hostname: "mine.net" }];
  assert.deepEqual(unknownSites(rows, websites), [
    { hostname: "www.exmple.com", hits: 23 },
    { hostname: "other.org", hits: 1 },
  ]);
  assert.deepEqual(
    siteDrops(rows, "example.com", websites).map((r) => `${r.date} ${r.hostname} ${r.reason}`),
    ["2026-06-02 www.exmple.com unknown_site", "2026-06-02 example.com bot", "2026-06-02 other.org unknown_site", "2026-06-01 www.exmple.com unknown_site"],
  );
  assert.equal(reasonText("too_many_unknowns").title, "Unrecognised browser");
  assert.deepEqual(reasonText("martian"), { title: "martian", detail: "" });
});

test("snippet: the public URL when set, else this page's origin", () => {
  assert.equal(trackerBase("", "http://localhost:8080"), "http://localhost:8080");
  assert.equal(trackerBase("https://stats.example.com/", "http://localhost:8080"), "https://stats.example.com");
  assert.equal(snippetFor("https://s.example"), '<script defer src="https://s.example/script.js"></script>');
  assert.deepEqual(checkPublicUrl("  https://stats.example.com/ "), { value: "https://stats.example.com" });
  assert.deepEqual(checkPublicUrl(""), { value: "" });
  assert.ok(checkPublicUrl("stats.example.com").error);
  assert.ok(checkPublicUrl("ftp://stats.example.com").error);
  assert.ok(checkPublicUrl("https://stats.example.com/?a=1").error);
  assert.ok(checkPublicUrl("https://stats.example.com#top").error);
});

test("snippet: what may stop visitors' browsers from loading the tracker", () => {
  const cases = {
    "http://203.0.113.5:8080": "plain-http",
    "http://stats.example.com": "plain-http",
    "http://medama.test:8080": "plain-http",
    "http://[2001:db8::7]:9000": "plain-http",
    "https://stats.example.com": "",
    "https://203.0.113.5:8443": "",
    "http://localhost:8080": "loopback",
    "https://localhost:8443": "loopback",
    "http://app.localhost": "loopback",
    "http://127.0.0.1:8080": "loopback",
    "http://127.1.2.3": "loopback",
    "http://[::1]:8080": "loopback",
    "not a url": "",
  };
  for (const [base, problem] of Object.entries(cases)) assert.equal(snippetProblem(base), problem, base);
});

test("the legend's resting point is the last bucket that has started", () => {
  const xs = [local(2026, 5, 10, 0), local(2026, 5, 10, 1), local(2026, 5, 10, 2)];
  assert.equal(latestBucket(xs, local(2026, 5, 10, 1, 30).getTime()), 1);
  assert.equal(latestBucket(xs, local(2026, 5, 11).getTime()), 2);
  assert.equal(latestBucket(xs, local(2026, 5, 9).getTime()), 2);
});

test("filters: one per field, parsed from and written to the URL", () => {
  const query = q("period=7d&path[eq]=/a&chart[stat]=duration&browser[neq]=Safari&bogus[eq]=x&path[zz]=y");
  assert.deepEqual(parseFilters(query), [
    { field: "path", op: "eq", value: "/a" },
    { field: "browser", op: "neq", value: "Safari" },
  ]);
  const replaced = withFilter(query, { field: "path", op: "contains", value: "blog" });
  assert.deepEqual(parseFilters(replaced).map((f) => `${f.field}[${f.op}]=${f.value}`), ["browser[neq]=Safari", "path[contains]=blog"]);
  assert.equal(replaced.get("period"), "7d");
  const removed = withoutFilter(replaced, { field: "browser", op: "neq", value: "Safari" });
  assert.equal(removed.has("browser[neq]"), false);
  assert.deepEqual(filterParams(parseFilters(q("prop_name[eq]=plan&os[eq]=iOS")), { withoutProps: true }), { "os[eq]": "iOS" });
});

test("rfc3339 carries the local offset", () => {
  assert.match(rfc3339(local(2026, 5, 1, 0, 0, 0)), /^2026-06-01T00:00:00[+-]\d\d:\d\d$/);
});

test("presets are whole buckets ending after now, with an equal previous period", () => {
  const now = local(2026, 5, 10, 14, 35, 20); // Wed 10 June 2026, 14:35:20
  const today = resolvePeriod(q(""), now);
  assert.equal(today.period, "today");
  assert.equal(today.interval, "hour");
  assert.deepEqual(today.start, local(2026, 5, 10));
  assert.deepEqual(today.end, local(2026, 5, 10, 23, 59, 59));
  assert.deepEqual(today.prevStart, local(2026, 5, 9));
  assert.deepEqual(today.prevEnd, local(2026, 5, 9, 23, 59, 59));
  assert.equal(today.live, true);
  assert.deepEqual(today.compareEnd, local(2026, 5, 9, 14, 35, 20)); // same elapsed time yesterday

  const yesterday = resolvePeriod(q("period=yesterday"), now);
  assert.equal(yesterday.live, false);
  assert.deepEqual(yesterday.compareEnd, yesterday.prevEnd);

  const h24 = resolvePeriod(q("period=24h"), now);
  assert.deepEqual(h24.start, local(2026, 5, 9, 15));
  assert.deepEqual(h24.end, local(2026, 5, 10, 14, 59, 59));
  assert.equal(bucketCount(h24.start, h24.next, "hour"), 24);

  const d7 = resolvePeriod(q("period=7d"), now);
  assert.equal(d7.interval, "day");
  assert.deepEqual(d7.start, local(2026, 5, 4));
  assert.equal(bucketCount(d7.start, d7.next, "day"), 7);

  const quarter = resolvePeriod(q("period=quarter"), now);
  assert.equal(quarter.interval, "week");
  assert.equal(quarter.start.getDay(), 1); // a Monday
  assert.deepEqual(quarter.next, local(2026, 5, 15)); // the Monday after this week

  const year = resolvePeriod(q("period=year"), now);
  assert.equal(year.interval, "month");
  assert.deepEqual(year.start, local(2025, 6, 1));
  assert.equal(bucketCount(year.start, year.next, "month"), 12);

  const all = resolvePeriod(q("period=all"), now);
  assert.deepEqual(all.start, local(2024, 0, 1));

  assert.equal(resolvePeriod(q("period=36h"), now).interval, "hour");
  assert.equal(resolvePeriod(q("period=nonsense"), now).invalid, true);
});

test("custom ranges pick their interval; overrides are honoured within bounds", () => {
  const now = local(2026, 5, 10, 12);
  const short = resolvePeriod(q("period=custom&start=2026-06-01&end=2026-06-02"), now);
  assert.equal(short.interval, "hour");
  assert.deepEqual(short.end, local(2026, 5, 2, 23, 59, 59));
  assert.equal(short.label, "2026-06-01 – 2026-06-02");
  assert.equal(resolvePeriod(q("period=custom&start=2026-05-01&end=2026-05-31"), now).interval, "day");
  assert.equal(resolvePeriod(q("period=custom&start=2026-01-01&end=2026-05-31"), now).interval, "week");
  assert.equal(resolvePeriod(q("period=custom&start=2025-01-01&end=2026-05-31"), now).interval, "month");
  assert.equal(resolvePeriod(q("period=custom&start=2026-06-05&end=2026-06-01"), now).invalid, true);
  assert.equal(resolvePeriod(q("period=custom&start=2026-02-30&end=2026-03-01"), now).invalid, true);
  assert.equal(resolvePeriod(q("period=7d&interval=hour"), now).interval, "hour");
  assert.equal(resolvePeriod(q("period=year&interval=minute"), now).interval, "month"); // too many buckets
});

test("bucket dates from the API parse in any offset form", () => {
  assert.equal(parseBucket("2024-06-01 13:00:00+00").toISOString(), "2024-06-01T13:00:00.000Z");
  assert.equal(parseBucket("2024-06-01T13:00:00+02:00").toISOString(), "2024-06-01T11:00:00.000Z");
  assert.equal(parseBucket("2024-06-01 13:00:00+0530").toISOString(), "2024-06-01T07:30:00.000Z");
  assert.equal(parseBucket("2024-06-01T13:00:00Z").toISOString(), "2024-06-01T13:00:00.000Z");
  assert.ok(Number.isNaN(parseBucket("yesterday").getTime()));
  assert.equal(bucketLabel(local(2024, 5, 3, 9, 0), "hour"), "09:00");
  assert.equal(bucketLabel(local(2024, 5, 3), "day"), "Mon, Jun 3");
  assert.equal(bucketLabel(local(2024, 5, 1), "month"), "Jun 2024");
});

test("stray buckets fold into their neighbours", async () => {
  const { foldBuckets } = await import("../src/period.js");
  const b = (date, visitors, duration = 100) => ({ date, visitors, pageviews: visitors * 2, duration, bounce_percentage: 0 });
  // A month window from local midnight of 1 October (+02:00) and a server cutting months in UTC.
  const start = new Date("2026-09-30T22:00:00Z");
  const end = new Date("2026-11-30T22:59:59Z");
  const folded = foldBuckets([b("2026-09-01 00:00:00+00", 1), b("2026-10-01 00:00:00+00", 5), b("2026-11-01 00:00:00+00", 7)], start, end, "month");
  assert.deepEqual(folded.map((x) => [x.date, x.visitors, x.pageviews]), [
    ["2026-10-01 00:00:00+00", 6, 12],
    ["2026-11-01 00:00:00+00", 7, 14],
  ]);
  // Seven days over the end of summer time: eight 24 h steps, the last one hour long.
  const days = ["20", "21", "22", "23", "24", "25", "26", "27"].map((d, i) => b(`2026-10-${d} 22:00:00+00`, i + 1));
  const week = foldBuckets(days, new Date("2026-10-20T22:00:00Z"), new Date("2026-10-27T22:59:59Z"), "day");
  assert.equal(week.length, 7);
  assert.equal(week[6].visitors, 7 + 8);
  // Nothing stray: unchanged.
  const plain = [b("2026-06-01 00:00:00+00", 1), b("2026-06-02 00:00:00+00", 2)];
  assert.deepEqual(foldBuckets(plain, new Date("2026-06-01T00:00:00Z"), new Date("2026-06-02T23:59:59Z"), "day"), plain);
});

test("a site's download list: separators, dots and case forgiven; empty means the default list", () => {
  assert.deepEqual(parseExtensions(" pdf, .ZIP  7z,pdf"), { value: ["pdf", "zip", "7z"] });
  assert.deepEqual(parseExtensions("  "), { value: null });
  assert.match(parseExtensions("pdf, tar.gz").error, /“tar\.gz” is not a file extension/);
  assert.match(parseExtensions("abcdefghijk").error, /not a file extension/);
  assert.equal(parseExtensions(Array.from({ length: 101 }, (_, i) => `e${i}`).join(",")).error, "At most 100 extensions.");
});

test("retention: empty keeps everything, else 30 to 36,525 whole days", () => {
  assert.deepEqual(parseRetention(""), { value: null });
  assert.deepEqual(parseRetention(" 90 "), { value: 90 });
  assert.ok(parseRetention("29").error);
  assert.ok(parseRetention("36526").error);
  assert.ok(parseRetention("1.5").error);
});

test("a note covers its days from local midnight to the midnight after its last day", () => {
  const single = noteSpan({ id: "n", text: "t", start: "2024-03-30", end: null });
  assert.equal(single.from, local(2024, 2, 30).getTime() / 1000);
  assert.equal(single.to, local(2024, 2, 31).getTime() / 1000); // 23 hours in Berlin: the clocks go forward
  const range = noteSpan({ id: "n", text: "t", start: "2024-06-01", end: "2024-06-03" });
  assert.equal(range.to - range.from, 3 * 86400);
  assert.equal(noteSpan({ id: "n", text: "t", start: "2024-02-30", end: null }), null);
});

test("a click on the chart picks the nearest bucket's day", () => {
  const xs = [local(2024, 5, 1), local(2024, 5, 2), local(2024, 5, 3)];
  const at = (d, h) => local(2024, 5, d, h).getTime() / 1000;
  assert.equal(pickedDay(xs, at(1, 0)), "2024-06-01");
  assert.equal(pickedDay(xs, at(1, 11)), "2024-06-01");
  assert.equal(pickedDay(xs, at(1, 13)), "2024-06-02");
  assert.equal(pickedDay(xs, at(3, 0) - 60), "2024-06-03"); // just left of the last point
  assert.equal(pickedDay(xs, at(9, 0)), "2024-06-03");
});

test("download links show their path on the site itself, else host and path", () => {
  assert.equal(shortUrl("https://example.com/files/a.pdf?v=2", "example.com"), "/files/a.pdf?v=2");
  assert.equal(shortUrl("http://localhost:8080/a.zip", "localhost"), "/a.zip");
  assert.equal(shortUrl("https://cdn.example.net/a.zip", "example.com"), "cdn.example.net/a.zip");
  assert.equal(shortUrl("not a url", "example.com"), "not a url");
});

test("the snippet names the site when given one", () => {
  assert.equal(snippetFor("https://stats.example.com"), '<script defer src="https://stats.example.com/script.js"></script>');
  assert.equal(
    snippetFor("https://stats.example.com", "example.com"),
    '<script defer src="https://stats.example.com/script.js?site=example.com"></script>',
  );
});
