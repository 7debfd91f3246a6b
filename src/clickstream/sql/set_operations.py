"""UNION ALL and UNION of queries.

Flink's rules: the inputs must have the same number of columns, and each column's types a common
type (INT and BIGINT give BIGINT, INT and DECIMAL(2, 1) give DECIMAL(11, 1)); the names are the
first input's. UNION ALL passes every row of every input on (Flink's Union). UNION (distinct) is
planned as Flink plans it: UNION ALL, then a GROUP BY on every column (as SELECT DISTINCT is), which
emits each distinct row once, and over an updating input retracts it when its last copy goes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlglot import exp

from clickstream.errors import SqlValidationError
from clickstream.schema import Column, plan_name
from clickstream.sql import render
from clickstream.sql.aggregation import AggregatePlanner
from clickstream.sql.plan import CalcNode, PlanNode, UnionNode
from clickstream.sql.scope import Scope, ScopeEntry, unique_name
from clickstream.sql.statements import position_of
from clickstream.sql.types import flink_type_of_duckdb, normalize_duckdb_type

if TYPE_CHECKING:
    from clickstream.sql.planner import Planner

_Planned = tuple[PlanNode, Scope]


def plan_set_operation(planner: Planner, query: exp.Union) -> _Planned:
    distinct = bool(query.args.get("distinct"))
    label = "UNION" if distinct else "UNION ALL"
    inputs = [(branch, *planner.query_plan(branch)) for branch in _branches(query)]
    columns = union_columns(planner, inputs, label)
    node, scope = union_all(inputs, columns)
    if not distinct:
        return node, scope
    return AggregatePlanner(planner).plan_distinct(node, scope)


def _branches(query: exp.Union) -> list[exp.Expression]:
    """`a UNION ALL b UNION ALL c` as [a, b, c]: nested unions of the same kind are one union."""
    out: list[exp.Expression] = []
    for side in (query.this, query.expression):
        same_kind = isinstance(side, exp.Union) and side.args.get("distinct") == query.args.get("distinct")
        if same_kind and not any(side.args.get(k) for k in ("order", "limit", "offset", "with_")):
            out.extend(_branches(side))
        else:
            out.append(side)
    return out


def union_columns(
    planner: Planner, inputs: list[tuple[exp.Expression, PlanNode, Scope]], label: str
) -> list[tuple[str, Column]]:
    """The union's columns: the first input's names and, per position, the inputs' common type."""
    first = inputs[0][2].visible()
    for branch, _, scope in inputs[1:]:
        if len(scope.visible()) != len(first):
            raise SqlValidationError(f"Column count mismatch in {label}", *position_of(branch))
    names: set[str] = set()
    columns = []
    for index, entry in enumerate(first):
        types = [scope.visible()[index].column for _, _, scope in inputs]
        name = unique_name(entry.name, names)
        names.add(name.lower())
        columns.append((name, _common_column(planner, plan_name(name), types, inputs[0][0], index, label)))
    return columns


def _common_column(
    planner: Planner, name: str, types: list[Column], at: exp.Expression, index: int, label: str
) -> Column:
    nullable = any(c.nullable for c in types)
    if all(c.duck_type == types[0].duck_type for c in types):
        flink_types = {c.flink_type.replace(" *PROCTIME*", "") for c in types}
        flink = flink_types.pop() if len(flink_types) == 1 else flink_type_of_duckdb(types[0].duck_type)
        return Column(name, flink, types[0].duck_type, nullable)
    duck = planner.common_type([c.duck_type for c in types])
    if duck is None:
        raise SqlValidationError(f"Type mismatch in column {index + 1} of {label}", *position_of(at))
    duck = normalize_duckdb_type(duck)
    return Column(name, flink_type_of_duckdb(duck), duck, nullable)


def union_all(
    inputs: list[tuple[exp.Expression, PlanNode, Scope]], columns: list[tuple[str, Column]]
) -> _Planned:
    """Each input through a Calc giving the union's columns (names and types), then the union."""
    branches: list[PlanNode] = []
    for _, node, scope in inputs:
        projections: list[exp.Expression] = []
        rowtime = None
        for entry, (_, column) in zip(scope.visible(), columns, strict=True):
            reference = render.column(entry.internal)
            if normalize_duckdb_type(entry.column.duck_type) == column.duck_type:
                projections.append(reference)
                if entry.internal == node.rowtime and rowtime is None:
                    rowtime = column.name
            else:
                projections.append(
                    exp.cast(reference, exp.DataType.build(column.duck_type, dialect="duckdb"))
                )
        branch_columns = [c for _, c in columns]
        branches.append(
            CalcNode(columns=branch_columns, input=node, projections=projections, keeps_rowtime=rowtime)
        )
    union = UnionNode(columns=[c for _, c in columns], branches=branches)
    return union, Scope([ScopeEntry(None, name, c.name, c) for name, c in columns])
