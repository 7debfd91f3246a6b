"""DEFINE conditions simple enough to evaluate in Python, row by partial match, without a DuckDB
query per step of the automaton.

A condition qualifies when its bound tree holds only column references, string, integer and
decimal literals, `NULL`, `TRUE`/`FALSE`, comparisons between values of one family (integers and
decimals, text, booleans, one timestamp type), `AND`, `OR`, `NOT` and `IS NULL`: for those, SQL's
three-valued logic is spelled out here and gives DuckDB's answer. Anything else (functions, casts,
arithmetic, floating point with its NaN rules) returns None and is evaluated by DuckDB.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from sqlglot import exp

Evaluator = Callable[[Mapping[str, Any]], Any]

_COMPARISONS: dict[type[exp.Expression], Callable[[Any, Any], bool]] = {
    exp.EQ: operator.eq,
    exp.NEQ: operator.ne,
    exp.GT: operator.gt,
    exp.GTE: operator.ge,
    exp.LT: operator.lt,
    exp.LTE: operator.le,
}
_EXACT_NUMBERS = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT")


class _Unsupported(Exception):
    pass


def python_condition(expression: exp.Expression, types: Mapping[str, str]) -> Evaluator | None:
    """A Python function of the `$r<i>` values giving the condition's SQL value, or None when the
    condition needs DuckDB. `types` gives each column's DuckDB type."""
    try:
        evaluator, _ = _compile(expression, types)
    except _Unsupported:
        return None
    return evaluator


def _compile(node: exp.Expression, types: Mapping[str, str]) -> tuple[Evaluator, str | None]:
    """(evaluator, value family); the family None stands for NULL, which compares with any."""
    if isinstance(node, exp.Paren):
        return _compile(node.this, types)
    if isinstance(node, exp.Column) and node.name in types:
        name = node.name
        return (lambda values: values[name]), _family(types[name])
    if isinstance(node, exp.Literal):
        return _literal(node)
    if isinstance(node, exp.Null):
        return (lambda values: None), None
    if isinstance(node, exp.Boolean):
        truth = bool(node.this)
        return (lambda values: truth), "boolean"
    if type(node) in _COMPARISONS:
        return _comparison(node, types), "boolean"
    if isinstance(node, exp.And | exp.Or):
        return _logical(node, types), "boolean"
    if isinstance(node, exp.Not):
        inner = _boolean(node.this, types)
        return (lambda values: None if (v := inner(values)) is None else not v), "boolean"
    if isinstance(node, exp.Is) and isinstance(node.expression, exp.Null):
        value, _ = _compile(node.this, types)
        return (lambda values: value(values) is None), "boolean"
    raise _Unsupported


def _literal(node: exp.Literal) -> tuple[Evaluator, str]:
    if node.is_string:
        text = node.this
        return (lambda values: text), "text"
    try:
        number: Any = int(node.this) if node.this.lstrip("-").isdigit() else Decimal(node.this)
    except ArithmeticError:
        raise _Unsupported from None
    if isinstance(number, Decimal) and not number.is_finite():
        raise _Unsupported
    return (lambda values: number), "exact"


def _comparison(node: exp.Expression, types: Mapping[str, str]) -> Evaluator:
    left, left_family = _compile(node.this, types)
    right, right_family = _compile(node.expression, types)
    if None not in (left_family, right_family) and left_family != right_family:
        raise _Unsupported  # DuckDB would cast one side: leave it to DuckDB
    compare = _COMPARISONS[type(node)]

    def evaluate(values: Mapping[str, Any]) -> Any:
        a, b = left(values), right(values)
        return None if a is None or b is None else compare(a, b)

    return evaluate


def _logical(node: exp.Expression, types: Mapping[str, str]) -> Evaluator:
    left, right = _boolean(node.this, types), _boolean(node.expression, types)
    decisive = isinstance(node, exp.Or)  # the value that settles OR (TRUE) or AND (FALSE)

    def evaluate(values: Mapping[str, Any]) -> Any:
        a = left(values)
        if a is decisive:
            return decisive
        b = right(values)
        if b is decisive:
            return decisive
        return None if a is None or b is None else not decisive

    return evaluate


def _boolean(node: exp.Expression, types: Mapping[str, str]) -> Evaluator:
    evaluator, family = _compile(node, types)
    if family not in ("boolean", None):
        raise _Unsupported
    return evaluator


def _family(duck_type: str) -> str:
    if duck_type in _EXACT_NUMBERS or duck_type.startswith("DECIMAL"):
        return "exact"
    if duck_type == "VARCHAR":
        return "text"
    if duck_type == "BOOLEAN":
        return "boolean"
    if duck_type in ("TIMESTAMP", "TIMESTAMPTZ", "DATE"):
        return duck_type
    raise _Unsupported
