"""INTERSECT [ALL] and EXCEPT [ALL] of two queries, as Flink plans them in streaming.

Both inputs, each row marked with where it came from (`$l` 1 on the left, `$r` 1 on the right),
go through a UNION ALL, then a GROUP BY on every column counts each row's copies on either side
(NULLs are equal here, as in every set operation). INTERSECT keeps a row present on both sides,
EXCEPT one present on the left only; INTERSECT ALL gives min(left, right) copies and EXCEPT ALL
max(left - right, 0), through Flink's ReplicateRows. The column rules are UNION's: same count,
common types, the first input's names. The result updates as counts change.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlglot import exp

from clickstream.schema import Column
from clickstream.sql import render
from clickstream.sql.aggregation import AggregatePlanner
from clickstream.sql.plan import CalcNode, PlanNode, ReplicateRowsNode
from clickstream.sql.scope import Scope, ScopeEntry, unique_name
from clickstream.sql.set_operations import union_all, union_columns

if TYPE_CHECKING:
    from clickstream.sql.planner import Planner

_Planned = tuple[PlanNode, Scope]
LEFT_COUNT, RIGHT_COUNT, COPIES = "$l", "$r", "$n"


def plan_intersect_except(planner: Planner, query: exp.Intersect | exp.Except) -> _Planned:
    name = "INTERSECT" if isinstance(query, exp.Intersect) else "EXCEPT"
    inputs = [(branch, *planner.query_plan(branch)) for branch in (query.this, query.expression)]
    columns = union_columns(planner, inputs, name)
    markers = [_marked(node, scope, side) for side, (_, node, scope) in enumerate(inputs)]
    marker_columns = [(c, Column(c, "BIGINT", "BIGINT")) for c in (LEFT_COUNT, RIGHT_COUNT)]
    union, scope = union_all(
        [(branch, node, scope) for (branch, _, _), (node, scope) in zip(inputs, markers, strict=True)],
        columns + marker_columns,
    )
    keys = [exp.column(n, quoted=True) for n, _ in columns]
    left, right = (exp.func("SUM", exp.column(c, quoted=True)) for c in (LEFT_COUNT, RIGHT_COUNT))
    grouped = exp.Select(expressions=[k.copy() for k in keys], group=exp.Group(expressions=keys))
    if query.args.get("distinct"):
        # a row on both sides (INTERSECT), on the left only (EXCEPT)
        zero = exp.Literal.number(0)
        wanted: exp.Expression = exp.GT(this=right, expression=zero)
        if name == "EXCEPT":
            wanted = exp.EQ(this=right, expression=zero.copy())
        grouped.set(
            "having", exp.Having(this=exp.and_(exp.GT(this=left, expression=exp.Literal.number(0)), wanted))
        )
        return AggregatePlanner(planner).plan(grouped, union, scope, None, None)
    copies: exp.Expression
    if name == "INTERSECT":
        copies = exp.If(this=exp.LT(this=left, expression=right), true=left.copy(), false=right.copy())
    else:
        difference = exp.Sub(this=left, expression=right)
        copies = exp.If(
            this=exp.GT(this=difference, expression=exp.Literal.number(0)),
            true=difference.copy(),
            false=exp.Literal.number(0),
        )
    grouped.set("expressions", [*grouped.expressions, exp.alias_(copies, COPIES, quoted=True)])
    node, scope = AggregatePlanner(planner).plan(grouped, union, scope, None, None)
    count = next(e.internal for e in scope.entries if e.name == COPIES)
    replicated = ReplicateRowsNode(
        columns=[c for c in node.columns if c.name != count], input=node, count=count
    )
    return replicated, Scope([e for e in scope.entries if e.name != COPIES])


def _marked(node: PlanNode, scope: Scope, side: int) -> _Planned:
    """`node` with the two marker columns: (1, 0) on the left input, (0, 1) on the right."""
    taken = {c.name.lower() for c in node.columns}
    columns = list(node.columns)
    projections: list[exp.Expression] = [render.column(c.name) for c in node.columns]
    entries = list(scope.entries)
    for index, label in enumerate((LEFT_COUNT, RIGHT_COUNT)):
        name = unique_name(label, taken)
        column = Column(name, "BIGINT", "BIGINT")
        columns.append(column)
        projections.append(exp.cast(exp.Literal.number(int(index == side)), exp.DataType.build("BIGINT")))
        entries.append(ScopeEntry(None, label, name, column))
    calc = CalcNode(columns=columns, input=node, projections=projections, keeps_rowtime=node.rowtime)
    return calc, Scope(entries)
