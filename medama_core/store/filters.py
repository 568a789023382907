"""Stats filters: `field[op]=value` turned into SQL over a whitelist of columns, values always bound.

Matching is ASCII case-insensitive: both the column and the value go through
SQLite's `lower()`, which folds A-Z only, and `ascii_lower` mirrors it in
Python. `eq` is an exact match (upstream used ILIKE, so `%` and `_` in a value
were wildcards, spec §10.8); `in`/`not_in` take comma-separated values (upstream
produced invalid SQL, §10.7). A field stored in two columns (`referrer`,
`language`) matches when either column does; its negated operators match when
neither does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

# Filter field -> the columns it reads. `views` columns are qualified `v.`, `events` columns `e.`.
FIELDS: dict[str, tuple[str, ...]] = {
    "path": ("v.pathname",),
    "referrer": ("v.referrer_host", "v.referrer_group"),
    "utm_source": ("v.utm_source",),
    "utm_medium": ("v.utm_medium",),
    "utm_campaign": ("v.utm_campaign",),
    "browser": ("v.ua_browser",),
    "os": ("v.ua_os",),
    "device": ("v.ua_device_type",),
    "country": ("v.country",),
    "language": ("v.language_base", "v.language_dialect"),
    "prop_name": ("e.name",),
    "prop_value": ("e.value",),
}
PROP_FIELDS = frozenset({"prop_name", "prop_value"})

# In upstream's precedence order: when a field carries several operators, the first one here wins.
OPERATORS = (
    "eq",
    "neq",
    "contains",
    "not_contains",
    "starts_with",
    "not_starts_with",
    "ends_with",
    "not_ends_with",
    "in",
    "not_in",
)
NEGATED = frozenset({"neq", "not_contains", "not_starts_with", "not_ends_with", "not_in"})
MAX_IN_VALUES = 100  # a hand-written list is a few values; this bounds the SQL a query string can build

_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def ascii_lower(text: str) -> str:
    """What SQLite's built-in `lower()` does: fold A-Z, leave every other character alone."""
    return text.lower() if text.isascii() else text.translate(_ASCII_LOWER)


@dataclass(frozen=True, slots=True)
class Filter:
    field: str  # a key of FIELDS
    op: str  # one of OPERATORS
    value: str

    def values(self) -> list[str]:
        """The lower-cased values compared with: one, or the comma-separated list of in/not_in."""
        if self.op in ("in", "not_in"):
            return [ascii_lower(v) for v in self.value.split(",")]
        return [ascii_lower(self.value)]


def where_sql(filters: Iterable[Filter], params: dict[str, object], prefix: str = "f") -> list[str]:
    """SQL conditions for `filters`, binding their values into `params` as `:{prefix}N`."""
    clauses = []
    for i, flt in enumerate(filters):
        clauses.append(_filter_sql(flt, params, f"{prefix}{i}"))
    return clauses


def _filter_sql(flt: Filter, params: dict[str, object], name: str) -> str:
    columns = FIELDS[flt.field]
    values = flt.values()
    positive = positive_op(flt.op)
    tests = []
    for index, column in enumerate(columns):
        # An empty referrer means direct traffic: compare it with the host only, never the group.
        col_values = values if index == 0 or flt.field != "referrer" else [v for v in values if v]
        if col_values:
            tests.append(_match_sql(column, positive, col_values, params, f"{name}_{index}"))
    test = " OR ".join(tests) if tests else "0"
    return f"NOT ({test})" if flt.op in NEGATED else f"({test})"


def positive_op(op: str) -> str:
    """The operator a negated one negates: `neq` -> `eq`, `not_in` -> `in`, `not_contains` -> `contains`."""
    return "eq" if op == "neq" else op.removeprefix("not_")


def _match_sql(column: str, op: str, values: list[str], params: dict[str, object], name: str) -> str:
    # Equality is written COLLATE NOCASE, which folds A-Z only, as lower() does: the same test, and one
    # an index built COLLATE NOCASE could seek.
    if op == "in":
        names = []
        for i, value in enumerate(values[:MAX_IN_VALUES]):
            params[f"{name}_{i}"] = value
            names.append(f":{name}_{i}")
        return f"{column} COLLATE NOCASE IN ({', '.join(names)})"
    value = values[0]
    params[name] = value
    if op == "eq":
        return f"{column} COLLATE NOCASE = :{name}"
    lowered = f"lower({column})"
    if value == "":  # every string contains, starts and ends with ''
        return "1"
    if op == "contains":
        return f"instr({lowered}, :{name}) > 0"
    params[f"{name}_n"] = len(value)
    if op == "starts_with":
        return f"substr({lowered}, 1, :{name}_n) = :{name}"
    return f"substr({lowered}, -:{name}_n) = :{name}"  # ends_with


def value_test(op: str, values: list[str]) -> Callable[[str], bool]:
    """`_match_sql` in Python: the positive operator `op` against lower-cased `values`, on lower-cased text."""
    if op == "in":
        allowed = set(values[:MAX_IN_VALUES])
        return allowed.__contains__
    value = values[0]
    tests: dict[str, Callable[[str], bool]] = {
        "eq": value.__eq__,
        "contains": lambda text: value in text,
        "starts_with": lambda text: text.startswith(value),
        "ends_with": lambda text: text.endswith(value),
    }
    return tests[op]


def matcher(flt: Filter) -> Callable[[str], bool]:
    """The same test as `where_sql` for one value of a single-column field, in Python."""
    test = value_test(positive_op(flt.op), flt.values())
    negate = flt.op in NEGATED
    return lambda text: test(ascii_lower(text)) != negate
