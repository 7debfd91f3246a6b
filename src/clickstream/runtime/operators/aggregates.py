"""Accumulators of the aggregate functions, as SQL: partial (over rows), merge (over partials),
combine (state + batch, pairwise) and final (the result value).

A DISTINCT aggregate has the same accumulators, taken over each value once: its operators keep the
distinct values in a table and feed the accumulators only the values new to it (an unbounded
GROUP BY), or aggregate the distinct values of a window when it fires (`DISTINCT "$value"`).
"""

from __future__ import annotations

from clickstream.runtime.batch import quote
from clickstream.sql.plan import AggCall

_INTEGRAL = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT")

# DISTINCT aggregates' state: the distinct values per key (and, over an updating input, how
# many rows hold each). Quoted and `$`-prefixed so they never meet a user's column (`v`, `n`, ...).
DISTINCT_VALUE, DISTINCT_COUNT = quote("$value"), quote("$count")


def accumulators(index: int, call: AggCall, argument: str | None = None) -> list[tuple[str, str, str]]:
    """(accumulator column, partial SQL over rows, merge SQL over partial rows); the partial is
    taken over `argument` (SQL) when given, else over the call's argument column."""
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
    raise AssertionError(call.function)


def combine(index: int, call: AggCall, old: str, new: str) -> list[tuple[str, str]]:
    """(accumulator column, SQL combining `old.acc` with `new.acc`), NULL-aware."""
    out = []
    for name, _, _ in accumulators(index, call):
        a, b = f"{old}.{name}", f"{new}.{name}"
        if call.function in ("MIN", "MAX"):
            fn = "least" if call.function == "MIN" else "greatest"
            out.append((name, f"{fn}({a}, {b})"))
        else:
            out.append((name, f"CASE WHEN {a} IS NULL THEN {b} WHEN {b} IS NULL THEN {a} ELSE {a} + {b} END"))
    return out


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
    return f"CAST({name} AS {out_type})"


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
