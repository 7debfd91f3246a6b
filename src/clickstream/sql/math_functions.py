"""Flink's numeric functions as DuckDB expressions, where DuckDB's namesake differs.

On the integer types Flink computes as Java does and wraps around where DuckDB fails the query
with an overflow: ABS of the type's minimum is that minimum (Java's `Math.abs`), and ROUND to
tens, hundreds, ... rounds half up in a BigDecimal and narrows the result back to the argument's
type (`BigDecimal.intValue()`), so ROUND(-2147483648, -1) on an INT is 2147483646.
"""

from __future__ import annotations

from sqlglot import exp

from clickstream.sql.base_functions import Builder, Call, literal_int, sql

_BITS = {"TINYINT": 8, "SMALLINT": 16, "INTEGER": 32, "BIGINT": 64}


def wrapped(value: exp.Expression, duck: str) -> exp.Expression:
    """A HUGEINT `value` wrapped into the integer type `duck` (two's complement, as Java narrows)."""
    half, full = 2 ** (_BITS[duck] - 1), 2 ** _BITS[duck]
    return sql(f"CAST((((__a0 + {half}) % {full} + {full}) % {full} - {half}) AS {duck})", value)


def _abs(call: Call) -> exp.Expression:
    call.arity(1)
    value, duck = call.args[0], call.type(0)
    if duck not in _BITS:
        return exp.Abs(this=value)
    # -MIN does not fit the type; Java's Math.abs returns MIN itself.
    return sql(f"CASE WHEN __a0 = {-(2 ** (_BITS[duck] - 1))} THEN __a0 ELSE abs(__a0) END", value)


def _round(call: Call) -> exp.Expression:
    call.arity(1, 2)
    value, duck = call.args[0], call.type(0)
    digits = call.args[1] if len(call.args) == 2 else None
    if duck not in _BITS:
        return exp.Round(this=value, decimals=digits)
    places = 0 if digits is None else literal_int(digits)
    if places is not None:
        if places >= 0:
            return value
        if places < -19:  # 10^20 exceeds every BIGINT: nothing rounds up to it
            return sql(f"CASE WHEN __a0 IS NULL THEN NULL ELSE CAST(0 AS {duck}) END", value)
        return _round_integer(value, duck, exp.Literal.number(10**-places))
    # Places from a column: the step 10^-places from a list of the powers of ten up to 10^19.
    assert digits is not None  # ROUND(i) rounds to 0 places, a literal
    powers = ", ".join(f"CAST({10**k} AS HUGEINT)" for k in range(20))
    step = sql(f"[{powers}][1 - __a0]", digits)
    return sql(
        f"CASE WHEN __a1 >= 0 THEN __a0 WHEN __a1 < -19 THEN CAST(0 AS {duck}) ELSE __a2 END",
        value,
        digits,
        _round_integer(value, duck, step),
    )


def _round_integer(value: exp.Expression, duck: str, step: exp.Expression) -> exp.Expression:
    """`value` rounded to a multiple of `step` (a power of ten), half away from zero as BigDecimal's
    HALF_UP, and wrapped into the type."""
    rounded = sql("(sign(__a0) * ((abs(CAST(__a0 AS HUGEINT)) + __a1 // 2) // __a1) * __a1)", value, step)
    return wrapped(rounded, duck)


MATH_FUNCTIONS: dict[str, Builder] = {
    "ABS": _abs,
    "ROUND": _round,
}
