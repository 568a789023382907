// Stats filters as they live in the URL: `field[op]=value`, one per field; different fields are AND-ed.

export const FIELDS = [
  ["path", "Path"],
  ["referrer", "Referrer"],
  ["utm_source", "UTM Source"],
  ["utm_medium", "UTM Medium"],
  ["utm_campaign", "UTM Campaign"],
  ["browser", "Browser"],
  ["os", "OS"],
  ["device", "Device"],
  ["country", "Country"],
  ["language", "Language"],
  ["prop_name", "Property Name"],
  ["prop_value", "Property Value"],
];

export const OPERATORS = [
  ["eq", "equals"],
  ["neq", "does not equal"],
  ["contains", "contains"],
  ["not_contains", "does not contain"],
  ["starts_with", "starts with"],
  ["not_starts_with", "does not start with"],
  ["ends_with", "ends with"],
  ["not_ends_with", "does not end with"],
  ["in", "is one of"],
  ["not_in", "is not one of"],
];

const FIELD_NAMES = new Map(FIELDS);
const OPERATOR_NAMES = new Map(OPERATORS);
const KEY = /^([a-z_]+)\[([a-z_]+)\]$/;

export const fieldLabel = (field) => FIELD_NAMES.get(field) || field;
export const operatorLabel = (op) => OPERATOR_NAMES.get(op) || op;

/** All filters in a query, in URL order: [{field, op, value}]. */
export function parseFilters(query) {
  const filters = [];
  for (const [key, value] of query) {
    const m = KEY.exec(key);
    if (m && FIELD_NAMES.has(m[1]) && OPERATOR_NAMES.has(m[2])) filters.push({ field: m[1], op: m[2], value });
  }
  return filters;
}

export const filterKey = (f) => `${f.field}[${f.op}]`;

/**
 * A copy of `query` with `filter` added. The server reads one operator per field, so a new filter
 * replaces any other on the same field instead of being silently ignored.
 */
export function withFilter(query, filter) {
  const next = new URLSearchParams();
  for (const [key, value] of query) {
    const m = KEY.exec(key);
    if (!(m && m[1] === filter.field && OPERATOR_NAMES.has(m[2]))) next.append(key, value);
  }
  next.append(filterKey(filter), filter.value);
  return next;
}

export function withoutFilter(query, filter) {
  const next = new URLSearchParams();
  let removed = false;
  for (const [key, value] of query) {
    if (!removed && key === filterKey(filter) && value === filter.value) {
      removed = true;
      continue;
    }
    next.append(key, value);
  }
  return next;
}

/** The filters of a query as API parameters (only the filters, nothing else). */
export function filterParams(filters, { withoutProps = false } = {}) {
  const params = {};
  for (const f of filters) {
    if (withoutProps && f.field.startsWith("prop_")) continue;
    params[filterKey(f)] = f.value;
  }
  return params;
}

export const hasEq = (filters, field) => filters.some((f) => f.field === field && f.op === "eq");
