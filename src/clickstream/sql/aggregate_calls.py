"""The aggregate calls of a query: which function, over which argument, DISTINCT or not, and the
type Flink gives the result.

`agg(x) FILTER (WHERE c)` is planned as `agg(CASE WHEN c THEN x END)`: every supported aggregate
ignores NULLs, so a row the filter rejects counts as if its value were NULL (Calcite rewrites
FILTER the same way when it expands aggregates).
"""

from __future__ import annotations

from typing import cast

from sqlglot import exp

from clickstream.errors import SqlValidationError, UnsupportedFeatureError
from clickstream.sql.json_aggregates import JSON_AGGREGATES, OBJECT_SEPARATOR, json_member
from clickstream.sql.statements import position_of

_INTEGRAL = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT")
_SIMPLE = (
    (exp.Sum, "SUM"),
    (exp.Min, "MIN"),
    (exp.Max, "MAX"),
    (exp.Avg, "AVG"),
    (exp.StddevPop, "STDDEV_POP"),
    (exp.StddevSamp, "STDDEV_SAMP"),
    (exp.VariancePop, "VAR_POP"),
    (exp.Variance, "VAR_SAMP"),
    (exp.FirstValue, "FIRST_VALUE"),
    (exp.LastValue, "LAST_VALUE"),
    (exp.GroupConcat, "LISTAGG"),
)
# Their result depends on the order of the rows: over an updating input Flink keeps every row.
ORDERED = ("FIRST_VALUE", "LAST_VALUE", "LISTAGG", "JSON_ARRAYAGG", "JSON_OBJECTAGG")


def collect_calls(roots: list[exp.Expression]) -> dict[exp.Expr, exp.Expr]:
    """Each distinct aggregate call under `roots` (an AggFunc, or a Filter around one), keyed by
    itself (equal trees are one call)."""
    calls: dict[exp.Expr, exp.Expr] = {}
    for root in roots:
        for node in root.walk():
            if isinstance(node, exp.AggFunc) and isinstance(node.parent, exp.Filter):
                continue  # planned with its FILTER
            if isinstance(node, exp.Filter) and isinstance(node.this, exp.AggFunc):
                _check_not_nested(node.this, node.expression)
            elif isinstance(node, exp.AggFunc):
                _check_not_nested(node, None)
            else:
                continue
            function_of(node)  # refuses unsupported aggregates by name
            calls.setdefault(node, node)
    return calls


def is_call(node: exp.Expr) -> bool:
    """Is `node` what `collect_calls` returns for an aggregate (so a rewrite replaces it whole)?"""
    if isinstance(node, exp.Filter):
        return isinstance(node.this, exp.AggFunc)
    return isinstance(node, exp.AggFunc) and not isinstance(node.parent, exp.Filter)


def _check_not_nested(call: exp.AggFunc, condition: exp.Expression | None) -> None:
    for part in (call.this, condition):
        for inner in part.walk() if part is not None else []:
            if inner is not call and isinstance(inner, exp.AggFunc):
                raise SqlValidationError("aggregates cannot be nested", *call_position(inner))


def _aggregate(call: exp.Expr) -> exp.AggFunc:
    return cast(exp.AggFunc, call.this if isinstance(call, exp.Filter) else call)


def function_of(call: exp.Expr) -> str:
    aggregate = _aggregate(call)
    if isinstance(aggregate, exp.Count):
        return "COUNT"
    for cls, name in _SIMPLE + JSON_AGGREGATES:
        if isinstance(aggregate, cls):
            return name
    label = aggregate.sql_names()[0] if aggregate.sql_names() else type(aggregate).__name__
    raise UnsupportedFeatureError(
        f"aggregate function {label.upper()} is not supported", *call_position(aggregate)
    )


def is_distinct(call: exp.Expr) -> bool:
    """DISTINCT matters to all but MIN and MAX, which are the same without it."""
    return isinstance(_aggregate(call).this, exp.Distinct) and function_of(call) not in ("MIN", "MAX")


def argument_of(call: exp.Expr) -> exp.Expression | None:
    """The expression aggregated (None for COUNT(*)), with a FILTER folded in."""
    aggregate = _aggregate(call)
    if isinstance(aggregate, exp.JSONArrayAgg | exp.JSONObjectAgg):
        argument: exp.Expression | None = json_member(aggregate)
    else:
        argument = aggregate.this
    if isinstance(argument, exp.Distinct):
        if len(argument.expressions) != 1:
            raise UnsupportedFeatureError(
                f"{function_of(call)}(DISTINCT a, b) is not supported", *call_position(aggregate)
            )
        argument = argument.expressions[0]
    if isinstance(argument, exp.Star):
        argument = None
    if isinstance(call, exp.Filter):
        condition = call.expression.this if isinstance(call.expression, exp.Where) else call.expression
        value = argument.copy() if argument is not None else exp.Literal.number(1)
        return exp.Case(ifs=[exp.If(this=condition.copy(), true=value)])
    return argument


def call_position(node: exp.Expr) -> tuple[int | None, int | None]:
    return position_of(cast(exp.Expression, node))


def separator_of(call: exp.Expr) -> str:
    """LISTAGG's separator: a string literal, ',' by default."""
    aggregate = _aggregate(call)
    if isinstance(aggregate, exp.JSONObjectAgg):
        return OBJECT_SEPARATOR
    separator = aggregate.args.get("separator") if isinstance(aggregate, exp.GroupConcat) else None
    if separator is None:
        return ","
    if not (isinstance(separator, exp.Literal) and separator.is_string):
        raise UnsupportedFeatureError("LISTAGG's separator must be a string literal", *position_of(separator))
    return separator.this


def result_type(function: str, argument: str | None) -> str:
    """Flink's result types: COUNT is BIGINT, SUM/AVG keep an integral input's type."""
    if function == "COUNT":
        return "BIGINT"
    if function in ("LISTAGG", "JSON_ARRAYAGG", "JSON_OBJECTAGG"):
        return "VARCHAR"
    assert argument is not None
    if function in ("MIN", "MAX", "FIRST_VALUE", "LAST_VALUE"):
        return argument
    if function.startswith(("STDDEV", "VAR")) and argument.startswith("DECIMAL"):
        return "DECIMAL(38, 6)"
    if argument in _INTEGRAL:
        return argument
    if argument.startswith("DECIMAL"):
        scale = argument[argument.index(",") + 1 : -1].strip()
        return f"DECIMAL(38, {max(int(scale), 6) if function == 'AVG' else scale})"
    return "DOUBLE"
