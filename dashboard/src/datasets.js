// The 14 list datasets: API path, label key, the filter a row click adds, and the detail-table columns.
import { countryCode } from "./countries.js";
import { formatDuration, formatExact, formatPercent, labelText } from "./format.js";

const count = (key, title) => ({ key, title, format: formatExact, numeric: true });
const percent = (key, title) => ({ key, title, format: formatPercent, numeric: true });
const duration = (key, title) => ({ key, title, format: formatDuration, numeric: true });

const standard = (title) => [
  { key: "label", title },
  count("visitors", "Visitors"),
  percent("visitors_percentage", "Visitors %"),
  percent("bounce_percentage", "Bounce %"),
  duration("duration", "Duration"),
];

export const DATASETS = {
  pages: {
    title: "Pages",
    labelKey: "path",
    field: "path",
    bar: "visitors_percentage",
    value: "visitors",
    columns: [
      { key: "label", title: "Path" },
      count("visitors", "Visitors"),
      percent("visitors_percentage", "Visitors %"),
      count("pageviews", "Views"),
      percent("pageviews_percentage", "Views %"),
      percent("bounce_percentage", "Bounce %"),
      duration("duration", "Duration"),
    ],
  },
  time: {
    title: "Time",
    labelKey: "path",
    field: "path",
    bar: "duration_percentage",
    value: "duration",
    valueFormat: formatDuration,
    columns: [
      { key: "label", title: "Path" },
      count("visitors", "Visitors"),
      duration("duration", "Duration"),
      duration("duration_lower_quartile", "Q1 (25%)"),
      duration("duration_upper_quartile", "Q3 (75%)"),
      percent("duration_percentage", "Duration %"),
    ],
  },
  // Ours: entry and exit pages (docs/insights.md).
  entries: {
    title: "Entries",
    labelKey: "path",
    field: "path",
    bar: "entries_percentage",
    value: "entries",
    columns: [
      { key: "label", title: "Entry page" },
      count("entries", "Entries"),
      percent("entries_percentage", "Entries %"),
      count("visitors", "Visitors"),
      percent("bounce_percentage", "Bounce %"),
    ],
  },
  exits: {
    title: "Exits",
    labelKey: "path",
    field: "path",
    bar: "exits_percentage",
    value: "exits",
    columns: [
      { key: "label", title: "Exit page" },
      count("exits", "Exits"),
      percent("exits_percentage", "Exits %"),
      count("visitors", "Visitors"),
      count("pageviews", "Views"),
      percent("exit_percentage", "Exit rate"),
    ],
  },
  referrers: { title: "Referrers", labelKey: "referrer", field: "referrer", columns: standard("Referrer") },
  sources: { title: "Sources", labelKey: "source", field: "utm_source", columns: standard("UTM Source") },
  mediums: { title: "Mediums", labelKey: "medium", field: "utm_medium", columns: standard("UTM Medium") },
  campaigns: { title: "Campaigns", labelKey: "campaign", field: "utm_campaign", columns: standard("UTM Campaign") },
  browsers: { title: "Browsers", labelKey: "browser", field: "browser", columns: standard("Browser") },
  os: { title: "OS", labelKey: "os", field: "os", columns: standard("OS") },
  devices: { title: "Devices", labelKey: "device", field: "device", columns: standard("Device") },
  countries: { title: "Countries", labelKey: "country", field: "country", columns: standard("Country") },
  languages: { title: "Languages", labelKey: "language", field: "language", columns: standard("Language") },
  properties: {
    title: "Properties",
    labelKey: "name",
    field: "prop_name",
    bar: "events_percentage",
    value: "events",
    noSummary: true,
    columns: [{ key: "label", title: "Name" }, count("events", "Events"), percent("events_percentage", "Events %")],
  },
};

export const DATASET_NAMES = Object.keys(DATASETS);

for (const name of DATASET_NAMES) {
  const d = DATASETS[name];
  d.name = name;
  d.bar = d.bar || "visitors_percentage";
  d.value = d.value || "visitors";
  d.valueFormat = d.valueFormat || formatExact;
}

/** The label of a row, and the filter field a click on it adds (properties: name, or value once a name is chosen). */
export function rowLabel(dataset, row) {
  if (dataset.name === "properties") {
    return row.name !== undefined ? { value: row.name, field: "prop_name" } : { value: row.value ?? "", field: "prop_value" };
  }
  return { value: row[dataset.labelKey] ?? "", field: dataset.field };
}

/** Text to show for a label. */
export function displayLabel(dataset, value) {
  return labelText(value);
}

/** The country code shown as a chip before a country's name ("" for other datasets and unknown names). */
export function labelCode(dataset, value) {
  return dataset.name === "countries" && value ? countryCode(value) : "";
}

/** Extra list parameters: referrers are grouped unless one referrer is picked; languages show dialects then. */
export function datasetParams(dataset, filters) {
  const params = {};
  if (dataset.name === "referrers") params.grouped = !filters.some((f) => f.field === "referrer" && f.op === "eq");
  if (dataset.name === "languages" && filters.some((f) => f.field === "language" && f.op === "eq")) params.locale = true;
  return params;
}
