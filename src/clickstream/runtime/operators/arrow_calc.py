"""Calcs simple enough for Arrow compute: column selection and renaming, and filters that compare
columns with literals (`behavior = 'buy'`, `n > 3 AND k IS NOT NULL`).

Such a Calc is mostly moving columns; through DuckDB each batch would be copied in and out for
it. Arrow does the comparison on the batch in place and `filter` takes the rows, so these run in
well under a millisecond. Anything else (functions, casts, arithmetic, literals of another type
than the column) is left to DuckDB: `compile_calc` returns None for it.

SQL semantics carry over: a comparison with NULL is NULL, a NULL condition drops the row (Arrow's
`filter` drops nulls), and AND/OR/NOT follow three-valued logic (Kleene).
"""

from __future__ import annotations

from collections.abc import Callable

import pyarrow as pa
import pyarrow.compute as pc
from sqlglot import exp

from clickstream.runtime.batch import hidden_columns
from clickstream.sql.plan import CalcNode
from clickstream.sql.render import column_name

ArrowCalc = Callable[[pa.Table], pa.Table]
_Value = Callable[[pa.Table], pa.ChunkedArray | pa.Scalar]

_COMPARISONS = {
    exp.EQ: pc.equal,
    exp.NEQ: pc.not_equal,
    exp.LT: pc.less,
    exp.LTE: pc.less_equal,
    exp.GT: pc.greater,
    exp.GTE: pc.greater_equal,
}


class _Unsupported(Exception):
    pass


def compile_calc(nodes: list[CalcNode], schema: pa.Schema) -> ArrowCalc | None:
    """A function doing what the fused `nodes` do to batches of `schema`, or None."""
    try:
        return _compile(nodes, schema)
    except _Unsupported:
        return None


def _compile(nodes: list[CalcNode], schema: pa.Schema) -> ArrowCalc:
    names = {n: n for n in schema.names}  # visible column -> column of the input batch
    conditions: list[_Value] = []
    for node in nodes:
        if node.condition:
            conditions.append(_predicate(node.condition, names, schema))
        names = {
            column.name: _source_column(projection, names)
            for projection, column in zip(node.projections, node.columns, strict=True)
        }
    output = list(names)
    sources = [names[n] for n in output]

    def run(batch: pa.Table) -> pa.Table:
        if conditions:
            mask = conditions[0](batch)
            for condition in conditions[1:]:
                mask = pc.and_kleene(mask, condition(batch))
            batch = batch.filter(mask)
        hidden = hidden_columns(batch)
        return batch.select(sources + hidden).rename_columns(output + hidden)

    return run


def _source_column(projection: exp.Expression, names: dict[str, str]) -> str:
    name = column_name(projection)
    if name is None or name not in names:
        raise _Unsupported(projection.sql())
    return names[name]


def _predicate(expression: exp.Expression, names: dict[str, str], schema: pa.Schema) -> _Value:
    if isinstance(expression, exp.Paren):
        return _predicate(expression.this, names, schema)
    if isinstance(expression, (exp.And, exp.Or)):
        left = _predicate(expression.left, names, schema)
        right = _predicate(expression.right, names, schema)
        combine = pc.and_kleene if isinstance(expression, exp.And) else pc.or_kleene
        return lambda batch: combine(left(batch), right(batch))
    if isinstance(expression, exp.Not):
        if isinstance(expression.this, exp.Is):  # x IS NOT NULL
            column = _column(expression.this.this, names, schema)
            if not isinstance(expression.this.expression, exp.Null):
                raise _Unsupported(expression.sql())
            return lambda batch: pc.is_valid(batch.column(column))
        inner = _predicate(expression.this, names, schema)
        return lambda batch: pc.invert(inner(batch))
    if isinstance(expression, exp.Is) and isinstance(expression.expression, exp.Null):
        column = _column(expression.this, names, schema)
        return lambda batch: pc.is_null(batch.column(column))
    compare = _COMPARISONS.get(type(expression))
    if compare is None:
        raise _Unsupported(expression.sql())
    left, right = expression.left, expression.right
    if isinstance(left, (exp.Literal, exp.Neg)):  # 'buy' = behavior
        left, right = right, left
        compare = {
            pc.less: pc.greater,
            pc.greater: pc.less,
            pc.less_equal: pc.greater_equal,
            pc.greater_equal: pc.less_equal,
        }.get(compare, compare)
    column = _column(left, names, schema)
    literal = _literal(right, schema.field(column).type)
    return lambda batch: compare(batch.column(column), literal)


def _column(expression: exp.Expression, names: dict[str, str], schema: pa.Schema) -> str:
    if not isinstance(expression, exp.Column) or expression.table or expression.name not in names:
        raise _Unsupported(expression.sql())
    return names[expression.name]


def _literal(expression: exp.Expression, column_type: pa.DataType) -> pa.Scalar:
    """The literal as a scalar of the column's type; only when no SQL cast rule is involved."""
    negative = isinstance(expression, exp.Neg) and isinstance(expression.this, exp.Literal)
    if negative and expression.this.is_int and pa.types.is_integer(column_type):  # -1
        return pa.scalar(-int(expression.this.this), pa.int64())
    if not isinstance(expression, exp.Literal):
        raise _Unsupported(expression.sql())
    if expression.is_string and (pa.types.is_string(column_type) or pa.types.is_large_string(column_type)):
        return pa.scalar(expression.this, column_type)
    if not expression.is_string and pa.types.is_integer(column_type) and expression.is_int:
        return pa.scalar(int(expression.this), pa.int64())
    raise _Unsupported(expression.sql())
