"""Accumulators of the aggregate functions, as SQL: partial (over rows), merge (over partials),
combine (state + batch, pairwise) and final (the result value).

A DISTINCT aggregate has the same accumulators, taken over each value once: its operators keep the
distinct values in a table and feed the accumulators only the values new to it (an unbounded
GROUP BY), or aggregate the distinct values of a window when it fires (`DISTINCT "$value"`).
"""

from __future__ import annotations

from clickstream.runtime.batch import SEQ, quote
from clickstream.sql.plan import AggCall

_INTEGRAL = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT")
SPREAD = ("STDDEV_POP", "STDDEV_SAMP", "VAR_POP", "VAR_SAMP")
ORDERED = ("FIRST_VALUE", "LAST_VALUE", "LISTAGG", "JSON_ARRAYAGG", "JSON_OBJECTAGG")  # order matters
# Texts joined in arrival order (the JSON aggregates are LISTAGGs of JSON texts: json_aggregates.py)
JOINED = ("LISTAGG", "JSON_ARRAYAGG", "JSON_OBJECTAGG")

# DISTINCT aggregates' state: the distinct values per key (and, over an updating input, how
# many rows hold each). Quoted and `$`-prefixed so they never meet a user's column (`v`, `n`, ...).
DISTINCT_VALUE, DISTINCT_COUNT = quote("$value"), quote("$count")


def accumulators(
    index: int, call: AggCall, argument: str | None = None, merge_order: str | None = None
) -> list[tuple[str, str, str]]:
    """(accumulator column, partial SQL over rows, merge SQL over partial rows); the partial is
    taken over `argument` (SQL) when given, else over the call's argument column. Joined texts
    (LISTAGG) merge in the order of their first rows, or by `merge_order` (SQL) first."""
    arg = argument or (quote(call.argument) if call.argument else None)
    name = f"acc{index}"
    if call.function == "COUNT":
        partial = "count(*)" if arg is None else f"count({arg})"
        return [(name, partial, f"sum({name})")]
    if call.function == "SUM":
        return [(name, f"sum({arg})", f"sum({name})")]
    if call.function in ("MIN", "MAX"):
        fn = call.function.lower()
        return [(name, f"{fn}({arg})", f"{fn}({name})")]
    if call.function == "AVG":
        return [
            (f"{name}_s", f"sum({arg})", f"sum({name}_s)"),
            (f"{name}_n", f"count({arg})", f"sum({name}_n)"),
        ]
    if call.function in SPREAD:  # sums of values and of squares, as Calcite reduces them
        value = f"CAST({arg} AS {spread_type(call)})"
        return [
            (f"{name}_s", f"sum({value})", f"sum({name}_s)"),
            (f"{name}_q", f"sum({value} * {value})", f"sum({name}_q)"),
            (f"{name}_n", f"count({arg})", f"sum({name}_n)"),
        ]
    return _ordered(name, call, arg or "NULL", merge_order)


def _ordered(name: str, call: AggCall, arg: str, merge_order: str | None) -> list[tuple[str, str, str]]:
    """FIRST_VALUE, LAST_VALUE, LISTAGG: a value and the arrival order (`__seq`) of its first row;
    NULLs are skipped, as Flink's functions skip them."""
    seq, valued = quote(SEQ), f"FILTER (WHERE {arg} IS NOT NULL)"
    order = (f"{name}_o", f"min({seq}) {valued}", f"min({name}_o)")
    if call.function == "FIRST_VALUE":
        return [(name, f"arg_min({arg}, {seq}) {valued}", f"arg_min({name}, {name}_o)"), order]
    if call.function == "LAST_VALUE":
        last = (f"{name}_o", f"max({seq}) {valued}", f"max({name}_o)")
        return [(name, f"arg_max({arg}, {seq}) {valued}", f"arg_max({name}, {name}_o)"), last]
    if call.function in JOINED:
        sep = _string(call.separator)
        text = f"CAST({arg} AS VARCHAR)"
        merged_by = f"{merge_order}, {name}_o" if merge_order else f"{name}_o"
        return [
            (
                name,
                f"string_agg({text}, {sep} ORDER BY {seq})",
                f"string_agg({name}, {sep} ORDER BY {merged_by})",
            ),
            order,
        ]
    raise AssertionError(call.function)


def _string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def combine(index: int, call: AggCall, old: str, new: str) -> list[tuple[str, str]]:
    """(accumulator column, SQL combining `old.acc` with `new.acc`), NULL-aware."""
    out = []
    if call.function in ORDERED:
        return _combine_ordered(index, call, old, new)
    for name, _, _ in accumulators(index, call):
        a, b = f"{old}.{name}", f"{new}.{name}"
        if call.function in ("MIN", "MAX"):
            fn = "least" if call.function == "MIN" else "greatest"
            out.append((name, f"{fn}({a}, {b})"))
        else:
            out.append((name, f"CASE WHEN {a} IS NULL THEN {b} WHEN {b} IS NULL THEN {a} ELSE {a} + {b} END"))
    return out


def _combine_ordered(index: int, call: AggCall, old: str, new: str) -> list[tuple[str, str]]:
    """The state (`old`) holds earlier rows than the batch (`new`)."""
    name = f"acc{index}"
    a, b = f"{old}.{name}", f"{new}.{name}"
    if call.function in JOINED:
        sep = _string(call.separator)
        value = f"CASE WHEN {a} IS NULL THEN {b} WHEN {b} IS NULL THEN {a} ELSE {a} || {sep} || {b} END"
        return [(name, value), (f"{name}_o", f"coalesce({old}.{name}_o, {new}.{name}_o)")]
    # FIRST_VALUE keeps the state's value once it has one; LAST_VALUE takes the batch's.
    keep, take = (old, new) if call.function == "FIRST_VALUE" else (new, old)
    chosen = f"{keep}.{name}_o IS NOT NULL"
    return [
        (name, f"CASE WHEN {chosen} THEN {keep}.{name} ELSE {take}.{name} END"),
        (f"{name}_o", f"CASE WHEN {chosen} THEN {keep}.{name}_o ELSE {take}.{name}_o END"),
    ]


def distinct_accumulators(index: int, call: AggCall, values: str) -> list[str]:
    """`acc AS name` over the distinct values of a table whose value column is `values`."""
    return [f"{sql} AS {name}" for name, sql, _ in accumulators(index, call, f"DISTINCT {values}")]


def final(index: int, call: AggCall, source: str = "") -> str:
    """The aggregate's value from its accumulator columns, in Flink's result type."""
    prefix = f"{source}." if source else ""
    name = f"{prefix}acc{index}"
    out_type = call.output.duck_type
    if call.function == "COUNT":
        return f"CAST(coalesce({name}, 0) AS BIGINT)"
    if call.function == "AVG":
        ratio = f"({name}_s / nullif({name}_n, 0))"
        if out_type in _INTEGRAL:
            return f"CAST(trunc({ratio}) AS {out_type})"
        return f"CAST({ratio} AS {out_type})"
    if call.function == "SUM":
        return wrapped_integer(name, out_type)
    if call.function in SPREAD:
        return _spread(call.function, name, out_type)
    if call.function == "JSON_ARRAYAGG":
        return f"'[' || coalesce({name}, '') || ']'"
    if call.function == "JSON_OBJECTAGG":
        return _json_object(name)
    return f"CAST({name} AS {out_type})"


def _json_object(name: str) -> str:
    """JSON_OBJECTAGG's members (`key \x02 value`, joined by `\x01`) as an object with sorted
    keys (\x02 sorts before any character of a key); a key seen twice fails the job, as in Flink."""
    members = f"list_sort(string_split({name}, chr(1)))"
    keys = f"list_transform({members}, lambda m: split_part(m, chr(2), 1))"
    duplicate = f"list_filter({keys}, lambda k, i: i > 1 AND k = {keys}[i - 1])[1]"
    text = f"array_to_string(list_transform({members}, lambda m: replace(m, chr(2), ':')), ',')"
    return (
        f"CASE WHEN {name} IS NULL THEN '{{}}' WHEN list_contains({keys}, chr(3)) THEN "
        "error('Map views don''t support null keys.') "
        f"WHEN len(list_distinct({keys})) < len({keys}) THEN "
        f"error('Key ' || {duplicate} || ' is already present. Duplicate keys are not allowed in "
        f"JSON_OBJECTAGG. Please ensure that keys are unique.') ELSE '{{' || {text} || '}}' END"
    )


def spread_type(call: AggCall) -> str:
    """Integers are summed as integers: Flink divides them as integers (below)."""
    return "HUGEINT" if call.argument_type in _INTEGRAL else "DOUBLE"


def _spread(function: str, name: str, out_type: str) -> str:
    """VAR_POP = (Σx² - (Σx)²/n) / n, VAR_SAMP divides by n - 1 (NULL for one value); STDDEV_*
    are their square roots. This is Calcite's reduction, which Flink runs in the argument's
    type: for integers every division truncates."""
    n = f"{name}_n"
    divide = "/"
    spread = f"({name}_q - {name}_s * {name}_s {divide} {n})"
    divisor = f"nullif({n}, 0)" if function.endswith("_POP") else f"nullif({n} - 1, 0)"
    value = f"({spread} {divide} {divisor})"
    if function.startswith("STDDEV"):
        value = f"sqrt(CASE WHEN {value} < 0 THEN 0 ELSE {value} END)"  # NULL stays NULL
    if out_type in _INTEGRAL:
        value = f"trunc({value})"
    return f"CAST({value} AS {out_type})"


_BITS = {"TINYINT": 8, "SMALLINT": 16, "INTEGER": 32, "BIGINT": 64}


def wrapped_integer(value: str, duck_type: str) -> str:
    """`value` (an exact sum, DuckDB's HUGEINT) cast to `duck_type`; an integer that does not fit
    wraps around as Java's does (Flink's SUM of INT is an INT that overflows), instead of failing."""
    bits = _BITS.get(duck_type)
    if bits is None:
        return f"CAST({value} AS {duck_type})"
    half, full = 2 ** (bits - 1), 2**bits
    wrapped = f"(((CAST({value} AS HUGEINT) + {half}) % {full} + {full}) % {full} - {half})"
    return f"CAST({wrapped} AS {duck_type})"
