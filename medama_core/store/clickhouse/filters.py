"""Stats filters as ClickHouse conditions: the SQLite store's whitelist and semantics (store/filters.py), values bound.

ClickHouse's `lower()` folds A-Z only, as SQLite's does, and the values are
folded the same way in Python (`Filter.values`), so matching is ASCII
case-insensitive on both engines. `%` and `_` are plain characters: there is
no LIKE here. Column names are unqualified: `views` and the dimension copies
in `events` share them, so one condition serves both tables.
"""

from __future__ import annotations

from collections.abc import Iterable

from medama_core.store.clickhouse.sql import in_list
from medama_core.store.filters import FIELDS, MAX_IN_VALUES, NEGATED, Filter, positive_op

__all__ = ["COLUMNS", "where_sql"]

# Filter field -> its columns, without the SQLite store's table prefixes.
COLUMNS: dict[str, tuple[str, ...]] = {
    field: tuple(column.split(".", 1)[1] for column in columns) for field, columns in FIELDS.items()
}


def where_sql(filters: Iterable[Filter], params: dict[str, object], prefix: str = "f") -> list[str]:
    """One condition per filter, binding its values into `params` as `{prefix}N...`."""
    return [_filter_sql(flt, params, f"{prefix}{i}") for i, flt in enumerate(filters)]


def _filter_sql(flt: Filter, params: dict[str, object], name: str) -> str:
    values = flt.values()
    positive = positive_op(flt.op)
    tests = []
    for index, column in enumerate(COLUMNS[flt.field]):
        # An empty referrer means direct traffic: compare it with the host only, never the group.
        col_values = values if index == 0 or flt.field != "referrer" else [v for v in values if v]
        if col_values:
            tests.append(_match_sql(column, positive, col_values, params, f"{name}_{index}"))
    test = " OR ".join(tests) if tests else "0"
    return f"NOT ({test})" if flt.op in NEGATED else f"({test})"


def _match_sql(column: str, op: str, values: list[str], params: dict[str, object], name: str) -> str:
    lowered = f"lower({column})"
    if op == "in":
        return f"{lowered} IN ({in_list(name + '_', values[:MAX_IN_VALUES], params)})"
    value = values[0]
    if op != "eq" and value == "":  # every string contains, starts and ends with ''
        return "1"
    params[name] = value
    placeholder = f"{{{name}:String}}"
    if op == "eq":
        return f"{lowered} = {placeholder}"
    if op == "contains":
        return f"position({lowered}, {placeholder}) > 0"
    if op == "starts_with":
        return f"startsWith({lowered}, {placeholder})"
    return f"endsWith({lowered}, {placeholder})"  # ends_with
